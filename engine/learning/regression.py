"""Online regression of task duration on task features, with an honest error figure.

:class:`RLS` is recursive least squares with exponential forgetting (the textbook
update, e.g. Haykin, *Adaptive Filter Theory*): each observation costs ``O(d^2)``
for ``d`` features, memory is constant, and the forgetting factor ``lam`` gives it an
effective memory of ``1 / (1 - lam)`` observations, so it follows an agent that slows
down.

:class:`DurationPredictor` keeps one model per (task kind, agent) on the features
``[1, f_1 / scale_1, ...]`` (names fixed at the kind's first task, scales at their
first non-zero value, so the update stays well conditioned).  Its error is
*prequential*: each task is predicted **before** its duration is used for training,
so the reported mean absolute percentage error is out-of-sample.  The same is done
for the obvious baseline -- the running mean of the same (kind, agent) -- so the
error can be judged against what a model-free guess achieves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class RLS:
    """Recursive least squares with forgetting factor ``lam`` (0 < lam <= 1)."""

    def __init__(self, dim: int, *, lam: float = 0.99, delta: float = 100.0) -> None:
        if dim < 1 or not 0.0 < lam <= 1.0:
            raise ValueError(f"need dim >= 1 and 0 < lam <= 1, got dim={dim}, lam={lam}")
        self.dim = dim
        self.lam = lam
        self.w = [0.0] * dim
        self.p = [[delta if i == j else 0.0 for j in range(dim)] for i in range(dim)]
        self.n = 0

    def predict(self, x: list[float]) -> float:
        """``w . x``."""
        return sum(wi * xi for wi, xi in zip(self.w, x))

    def update(self, x: list[float], y: float) -> None:
        """Fold in one observation ``(x, y)``."""
        p = self.p
        px = [sum(p[i][j] * x[j] for j in range(self.dim)) for i in range(self.dim)]
        denom = self.lam + sum(x[i] * px[i] for i in range(self.dim))
        if not math.isfinite(denom) or denom <= 0:
            return
        gain = [v / denom for v in px]
        err = y - self.predict(x)
        self.w = [wi + gi * err for wi, gi in zip(self.w, gain)]
        # P = (P - g (P x)^T) / lam ; P stays symmetric
        self.p = [[(p[i][j] - gain[i] * px[j]) / self.lam for j in range(self.dim)] for i in range(self.dim)]
        self.n += 1

    def state(self) -> dict[str, Any]:
        """Checkpointable state."""
        return {"w": list(self.w), "p": [list(r) for r in self.p], "n": self.n, "lam": self.lam}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RLS:
        """Inverse of :meth:`state`."""
        w = [float(v) for v in state["w"]]
        model = cls(len(w), lam=float(state.get("lam", 0.99)))
        model.w = w
        model.p = [[float(v) for v in row] for row in state["p"]]
        model.n = int(state.get("n", 0))
        return model


class _KeyModel:
    __slots__ = ("mean", "n", "rls")

    def __init__(self, dim: int, lam: float) -> None:
        self.rls = RLS(dim, lam=lam)
        self.mean = 0.0
        self.n = 0


class DurationPredictor:
    """Predicts a task's service time from its features, per (kind, agent).

    Args:
        lam: forgetting factor of each model.
        smoothing: weight of the newest error in the reported (exponentially
            weighted) mean absolute percentage errors.
    """

    def __init__(self, *, lam: float = 0.99, smoothing: float = 0.02) -> None:
        self.lam = lam
        self.smoothing = smoothing
        self._names: dict[str, list[str]] = {}
        self._scale: dict[str, list[float]] = {}
        self._models: dict[tuple[str, str], _KeyModel] = {}
        self.mape: float | None = None
        self.baseline_mape: float | None = None
        self.scored = 0

    def _vector(self, kind: str, features: Mapping[str, float]) -> list[float]:
        names = self._names.get(kind)
        if names is None:
            names = self._names[kind] = sorted(k for k, v in features.items() if _number(v))
            self._scale[kind] = [0.0] * len(names)
        scale = self._scale[kind]
        x = [1.0]
        for i, name in enumerate(names):
            v = float(features.get(name, 0.0)) if _number(features.get(name, 0.0)) else 0.0
            if scale[i] == 0.0 and v != 0.0:
                scale[i] = abs(v)
            x.append(v / scale[i] if scale[i] else 0.0)
        return x

    def predict(self, kind: str, agent: str, features: Mapping[str, float]) -> float | None:
        """Predicted seconds, or ``None`` before the model has seen two tasks."""
        model = self._models.get((kind, agent))
        if model is None or model.n < 2:
            return None
        return max(model.rls.predict(self._vector(kind, features)), 0.0)

    def observe(self, kind: str, agent: str, features: Mapping[str, float], seconds: float) -> float | None:
        """Score the prediction for this task, then learn from it; returns the prediction."""
        if not math.isfinite(seconds) or seconds <= 0:
            return None
        x = self._vector(kind, features)
        model = self._models.get((kind, agent))
        if model is None:
            model = self._models[(kind, agent)] = _KeyModel(len(x), self.lam)
        predicted = max(model.rls.predict(x), 0.0) if model.n >= 2 else None
        if predicted is not None:
            a = self.smoothing
            ape = abs(predicted - seconds) / seconds
            base = abs(model.mean - seconds) / seconds
            self.mape = ape if self.mape is None else (1 - a) * self.mape + a * ape
            self.baseline_mape = base if self.baseline_mape is None else (1 - a) * self.baseline_mape + a * base
            self.scored += 1
        model.rls.update(x, seconds)
        model.n += 1
        model.mean += (seconds - model.mean) / min(model.n, 1.0 / (1.0 - self.lam))
        return predicted

    def forget(self, agent: str) -> None:
        """Drop the models of a destroyed agent."""
        for key in [k for k in self._models if k[1] == agent]:
            del self._models[key]

    def state(self) -> dict[str, Any]:
        """Checkpointable state."""
        return {
            "names": self._names, "scale": self._scale, "mape": self.mape,
            "baseline_mape": self.baseline_mape, "scored": self.scored,
            "models": [[k, a, m.rls.state(), m.mean, m.n] for (k, a), m in self._models.items()],
        }  # fmt: skip

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state`."""
        self._names = {str(k): [str(n) for n in v] for k, v in dict(state.get("names", {})).items()}
        self._scale = {str(k): [float(s) for s in v] for k, v in dict(state.get("scale", {})).items()}
        self.mape = state.get("mape")
        self.baseline_mape = state.get("baseline_mape")
        self.scored = int(state.get("scored", 0))
        self._models = {}
        for kind, agent, rls, mean, n in state.get("models", []):
            model = _KeyModel(1, self.lam)
            model.rls = RLS.from_state(rls)
            model.mean = float(mean)
            model.n = int(n)
            self._models[(str(kind), str(agent))] = model


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
