"""The learning agent's brain for dispatch: estimates, predictions and progress figures.

The orchestrator's learned dispatch policy (:class:`engine.dispatch.LearnedDispatch`)
sends the learning agent batches of completed-task records::

    {"agent": "compute-2", "kind": "execute_workload", "service_s": 0.012,
     "latency_s": 0.030, "queue": {"compute-1": 2, "compute-2": 1}, "features": {...},
     "explored": False, "ok": True, "t": <monotonic completion time>}

:class:`DispatchLearner` folds each into the discounted service-time model
(:class:`~engine.learning.service.ServiceTimeModel`, whose export the orchestrator's
policy samples from) and the duration regression, and keeps the figures that show
whether learning pays:

* **reward** -- tasks completed per second over the recent records (what dispatch is for);
* **regret** -- for each decision, the expected delay ``(queue + 1) * mean service``
  of the agent chosen minus that of the best agent, with service means *in
  hindsight*: a decision is scored only after ``hindsight`` later records of its kind
  have arrived, with the estimates as they stand then.  Reported per decision (ms,
  recent mean) and cumulated (seconds);
* **exploration rate** -- share of recent decisions where the Thompson draw chose
  another agent than the posterior means would have;
* **prediction error** -- prequential MAPE of the duration regression and of the
  running-mean baseline.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from engine.learning.regression import DurationPredictor
from engine.learning.service import ServiceTimeModel

RECENT = 256
"""Records the recent-window figures are computed over."""


class DispatchLearner:
    """Learns per-agent service times and task durations from completion records.

    Args:
        discount: the service-time model's forgetting factor per observation of a kind.
        hindsight: later records of the same kind to wait for before scoring a decision.
    """

    def __init__(self, *, discount: float = 0.98, hindsight: int = 32) -> None:
        self.service = ServiceTimeModel(discount)
        self.durations = DurationPredictor()
        self.hindsight = max(1, hindsight)
        self._waiting: dict[str, deque[tuple[str, dict[str, int]]]] = {}
        self._recent: deque[tuple[float, bool]] = deque(maxlen=RECENT)  # (completion time, explored)
        self._recent_regret: deque[float] = deque(maxlen=RECENT)
        self.observations = 0
        self.failures = 0
        self.explored = 0
        self.regret_s = 0.0
        self.version = 0

    # --- learning ----------------------------------------------------------------------

    def observe(self, record: Mapping[str, Any]) -> None:
        """Fold in one completed-task record (see the module docstring)."""
        agent = str(record.get("agent", ""))
        kind = str(record.get("kind", ""))
        if not agent or not kind:
            return
        if not record.get("ok", True):
            self.failures += 1
            return
        service = _float(record.get("service_s"))
        if service is None or service < 0:
            return
        features = record.get("features") or {}
        self.durations.observe(kind, agent, features if isinstance(features, Mapping) else {}, service)
        self.service.update(kind, agent, service)
        self.observations += 1
        explored = bool(record.get("explored", False))
        self.explored += explored
        t = _float(record.get("t"))
        self._recent.append((t if t is not None else math.nan, explored))
        queue = record.get("queue")
        if isinstance(queue, Mapping) and queue:
            waiting = self._waiting.setdefault(kind, deque())
            waiting.append((agent, {str(a): int(q) for a, q in queue.items()}))
            while len(waiting) > self.hindsight:
                self._score(kind, *waiting.popleft())
        self.version += 1

    def observe_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Fold in a batch; returns how many records it held."""
        n = 0
        for record in records:
            if isinstance(record, Mapping):
                self.observe(record)
                n += 1
        return n

    def _score(self, kind: str, chosen: str, queue: Mapping[str, int]) -> None:
        delays = {}
        for agent, q in queue.items():
            mean = self.service.mean(kind, agent)
            if mean is not None:
                delays[agent] = (q + 1) * mean
        if chosen not in delays:
            return
        regret = max(delays[chosen] - min(delays.values()), 0.0)
        self.regret_s += regret
        self._recent_regret.append(regret)

    def forget(self, agent: str) -> None:
        """Drop everything about a destroyed agent."""
        self.service.forget(agent)
        self.durations.forget(agent)
        self.version += 1

    # --- what it shows ----------------------------------------------------------------

    def reward(self) -> float:
        """Tasks completed per second over the recent records (0 until two have come)."""
        times = [t for t, _ in self._recent if math.isfinite(t)]
        if len(times) < 2 or max(times) <= min(times):
            return 0.0
        return (len(times) - 1) / (max(times) - min(times))

    def exploration_rate(self) -> float:
        """Share of recent decisions that explored."""
        return sum(e for _, e in self._recent) / len(self._recent) if self._recent else 0.0

    def recent_regret_ms(self) -> float:
        """Mean regret per scored decision over the recent ones, in milliseconds."""
        r = self._recent_regret
        return 1000.0 * sum(r) / len(r) if r else 0.0

    def summary(self) -> dict[str, Any]:
        """Progress figures (published and shown as gauges)."""
        means = {kind: {a: round(self.service.mean(kind, a) or 0.0, 6) for a in self.service.agents(kind)}
                 for kind in self.service.kinds()}
        return {
            "observations": self.observations, "failures": self.failures,
            "reward_tasks_per_s": round(self.reward(), 3),
            "regret_ms_per_decision": round(self.recent_regret_ms(), 4),
            "regret_total_s": round(self.regret_s, 6),
            "exploration_rate": round(self.exploration_rate(), 4),
            "prediction_mape": _round(self.durations.mape),
            "baseline_mape": _round(self.durations.baseline_mape),
            "predictions_scored": self.durations.scored,
            "changes_detected": self.service.changes,
            "service_mean_s": means,
        }  # fmt: skip

    def model_payload(self) -> dict[str, Any]:
        """What the orchestrator's dispatch policy samples from (see ``LearnedDispatch``)."""
        return {"version": self.version, "kinds": self.service.export()}

    # --- persistence ------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Checkpointable state (msgspec-serialisable)."""
        return {
            "service": self.service.state(), "durations": self.durations.state(),
            "observations": self.observations, "failures": self.failures,
            "explored": self.explored, "regret_s": self.regret_s, "version": self.version,
        }  # fmt: skip

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state`."""
        self.service.load(state.get("service", {}))
        self.durations.load(state.get("durations", {}))
        self.observations = int(state.get("observations", 0))
        self.failures = int(state.get("failures", 0))
        self.explored = int(state.get("explored", 0))
        self.regret_s = float(state.get("regret_s", 0.0))
        self.version = int(state.get("version", 0)) + 1


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)
