"""One-step-ahead load forecasts: EWMA and Holt's (damped) double exponential smoothing.

The resource agent feeds one CPU-utilisation sample per interval into a
:class:`Holt` forecaster and publishes the forecast of the *next* interval for the
auto-scaler.  Every forecaster scores itself honestly: when a new observation
arrives, the forecast that was made for it one step earlier is compared with it,
and the mean absolute error (and the root mean square error) is kept next to the
error of the naive forecast "the next value equals the last one", so a reader can
see whether the smoothing earns its keep.

Holt's linear method (additive trend, optionally damped by ``phi``)::

    level_t = alpha * x_t + (1 - alpha) * (level_{t-1} + phi * trend_{t-1})
    trend_t = beta * (level_t - level_{t-1}) + (1 - beta) * phi * trend_{t-1}
    forecast_{t+h} = level_t + (phi + phi^2 + ... + phi^h) * trend_t

The level starts at the first observation and the trend at the first difference.
``phi = 1`` is the plain Holt method; ``phi < 1`` damps the trend so a burst does not
extrapolate to absurd values (CPU load is bounded; use ``lo``/``hi`` to clamp).
Pure Python, no clock: one call of :meth:`update` is one step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class ErrorStats:
    """Running one-step forecast errors (all observations weigh the same).

    Attributes:
        n: how many forecasts have been scored.
        abs_sum: sum of absolute errors.
        sq_sum: sum of squared errors.
        naive_abs_sum: sum of absolute errors of the naive (last value) forecast.
    """

    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0
    naive_abs_sum: float = 0.0

    def add(self, error: float, naive_error: float) -> None:
        """Score one forecast (``error = observed - forecast``)."""
        self.n += 1
        self.abs_sum += abs(error)
        self.sq_sum += error * error
        self.naive_abs_sum += abs(naive_error)

    @property
    def mae(self) -> float | None:
        """Mean absolute error, or ``None`` before the first scored forecast."""
        return self.abs_sum / self.n if self.n else None

    @property
    def rmse(self) -> float | None:
        """Root mean square error, or ``None`` before the first scored forecast."""
        return math.sqrt(self.sq_sum / self.n) if self.n else None

    @property
    def naive_mae(self) -> float | None:
        """Mean absolute error of the naive "same as last" forecast."""
        return self.naive_abs_sum / self.n if self.n else None


def _clamp(value: float, lo: float | None, hi: float | None) -> float:
    if lo is not None and value < lo:
        return lo
    if hi is not None and value > hi:
        return hi
    return value


class Ewma:
    """Exponentially weighted moving average; its forecast is the current average.

    Args:
        alpha: weight of the newest observation, in (0, 1].
    """

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.value: float | None = None
        self.last: float | None = None
        self.errors = ErrorStats()

    def update(self, x: float) -> float:
        """Add one observation; returns the forecast of the next one."""
        x = float(x)
        if self.value is None:
            self.value = x
        else:
            self.errors.add(x - self.value, x - (self.last if self.last is not None else x))
            self.value += self.alpha * (x - self.value)
        self.last = x
        return self.value

    def forecast(self, steps: int = 1) -> float | None:
        """The forecast ``steps`` ahead (flat), or ``None`` before any observation."""
        return self.value


class Holt:
    """Holt's double exponential smoothing with an optional damped trend.

    Args:
        alpha: level smoothing, in (0, 1].
        beta: trend smoothing, in [0, 1].
        phi: trend damping, in (0, 1]; 1 = undamped Holt.
        lo, hi: clamp forecasts (and the level) to this range (e.g. 0..100 %).
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.2, phi: float = 0.9,
                 lo: float | None = None, hi: float | None = None) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        if not 0.0 < phi <= 1.0:
            raise ValueError(f"phi must be in (0, 1], got {phi}")
        self.alpha, self.beta, self.phi = alpha, beta, phi
        self.lo, self.hi = lo, hi
        self.level: float | None = None
        self.trend = 0.0
        self.last: float | None = None
        self.errors = ErrorStats()

    @property
    def count(self) -> int:
        """Observations seen (scored forecasts are one fewer)."""
        return self.errors.n + (1 if self.level is not None else 0)

    def forecast(self, steps: int = 1) -> float | None:
        """The forecast ``steps`` (>= 1) ahead, or ``None`` before any observation."""
        if self.level is None:
            return None
        damp = sum(self.phi ** k for k in range(1, steps + 1)) if self.phi < 1.0 else float(steps)
        return _clamp(self.level + damp * self.trend, self.lo, self.hi)

    def update(self, x: float) -> float:
        """Add one observation; returns the forecast of the next one."""
        x = float(x)
        if self.level is None:
            self.level = x
            self.trend = 0.0
        else:
            predicted = self.forecast(1)
            assert predicted is not None
            self.errors.add(x - predicted, x - (self.last if self.last is not None else x))
            if self.errors.n == 1:  # second observation: start from the observed slope
                self.trend = x - self.level
                self.level = _clamp(x, self.lo, self.hi)
                self.last = x
                result = self.forecast(1)
                assert result is not None
                return result
            prev_level = self.level
            self.level = self.alpha * x + (1.0 - self.alpha) * (prev_level + self.phi * self.trend)
            self.level = _clamp(self.level, self.lo, self.hi)
            self.trend = self.beta * (self.level - prev_level) + (1.0 - self.beta) * self.phi * self.trend
        self.last = x
        result = self.forecast(1)
        assert result is not None
        return result

    def state(self) -> dict[str, Any]:
        """Plain-data state (for agent checkpoints)."""
        e = self.errors
        return {"level": self.level, "trend": self.trend, "last": self.last,
                "n": e.n, "abs_sum": e.abs_sum, "sq_sum": e.sq_sum, "naive_abs_sum": e.naive_abs_sum}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` output (unknown or missing keys are ignored)."""
        level = state.get("level")
        self.level = None if level is None else float(level)
        self.trend = float(state.get("trend", 0.0) or 0.0)
        last = state.get("last")
        self.last = None if last is None else float(last)
        self.errors = ErrorStats(int(state.get("n", 0)), float(state.get("abs_sum", 0.0)),
                                 float(state.get("sq_sum", 0.0)), float(state.get("naive_abs_sum", 0.0)))
