"""Predict a temperature ahead from its recent trajectory, and score the predictions.

:class:`TrajectoryPredictor` fits a least-squares line to the samples of the last
``window_s`` seconds and extrapolates it ``horizon`` seconds past the newest one.
It is what the thermal agent uses on real sensors, whose thermal resistance and
capacity it does not know.  A straight line over-predicts a first-order heating
curve (the curve bends towards its steady state); given an assumed time constant
``tau`` the extrapolation follows a first-order curve instead:
``T + slope * tau * (1 - exp(-horizon / tau))`` (the line for ``tau -> inf``).

:class:`PredictionScorer` keeps each prediction until its target time has passed
and then compares it with the value observed then, so the published prediction
error is measured, not assumed.
"""

from __future__ import annotations

import math
from collections import deque


class TrajectoryPredictor:
    """Linear least-squares extrapolation over a sliding time window.

    Args:
        window_s: how much history the fit uses.
        min_points: below this many samples the prediction is the last value.
        min_span_s: ... and so it is while the samples span less time than this (a
            line through two jittery readings a fraction of a second apart says little).
        limits: predictions are clamped to this range (the plausible sensor range).
    """

    def __init__(self, window_s: float = 10.0, min_points: int = 3, min_span_s: float = 2.0,
                 limits: tuple[float, float] = (-50.0, 200.0)) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.window_s = window_s
        self.min_points = max(2, min_points)
        self.min_span_s = min(max(0.0, min_span_s), window_s)
        self.limits = limits
        self.samples: deque[tuple[float, float]] = deque()

    def add(self, t: float, value: float) -> None:
        """Add a sample at time ``t`` (seconds, non-decreasing)."""
        self.samples.append((float(t), float(value)))
        while self.samples and self.samples[0][0] < t - self.window_s:
            self.samples.popleft()

    def slope(self) -> float:
        """Fitted rate of change (units per second); 0 with too little history."""
        n = len(self.samples)
        if n < self.min_points or self.samples[-1][0] - self.samples[0][0] < self.min_span_s:
            return 0.0
        t0 = self.samples[-1][0]
        xs = [t - t0 for t, _ in self.samples]
        ys = [v for _, v in self.samples]
        mx = sum(xs) / n
        my = sum(ys) / n
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx <= 1e-12:
            return 0.0
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx

    def predict(self, horizon_s: float, tau_s: float | None = None) -> float | None:
        """The value ``horizon_s`` after the newest sample, or ``None`` with no samples.

        With ``tau_s`` the present slope decays as a first-order system's would."""
        n = len(self.samples)
        if n == 0:
            return None
        if n < self.min_points or self.samples[-1][0] - self.samples[0][0] < self.min_span_s:
            return self.samples[-1][1]
        t0 = self.samples[-1][0]
        xs = [t - t0 for t, _ in self.samples]
        ys = [v for _, v in self.samples]
        mx = sum(xs) / n
        my = sum(ys) / n
        slope = self.slope()
        fitted_now = my + slope * (0.0 - mx)  # the fit at the newest sample's time
        h = max(0.0, horizon_s)
        reach = h if not tau_s or tau_s <= 0 else tau_s * (1.0 - math.exp(-h / tau_s))
        return min(self.limits[1], max(self.limits[0], fitted_now + slope * reach))


class PredictionScorer:
    """Mean absolute error of predictions, scored when their target time arrives.

    Args:
        tolerance_s: a prediction for time ``T`` is scored by the first observation at
            or after ``T - tolerance_s``.
    """

    def __init__(self, tolerance_s: float = 0.0) -> None:
        self.tolerance_s = tolerance_s
        self.pending: deque[tuple[float, float]] = deque()
        self.n = 0
        self.abs_sum = 0.0

    def predicted(self, target_t: float, value: float) -> None:
        """Record a prediction of the value at ``target_t``."""
        self.pending.append((float(target_t), float(value)))

    def observed(self, t: float, value: float) -> None:
        """Score every pending prediction whose target time has come."""
        while self.pending and self.pending[0][0] <= t + self.tolerance_s:
            _, guess = self.pending.popleft()
            self.n += 1
            self.abs_sum += abs(value - guess)

    @property
    def mae(self) -> float | None:
        """Mean absolute error so far, or ``None`` before the first scored prediction."""
        return self.abs_sum / self.n if self.n else None
