"""Per-series health signals: an anomaly score with a practical floor, and a trend
toward a limit that knows a warm-up from a leak.

The fault-tolerance agent keeps one :class:`Series` per telemetry value (machine
CPU, an agent's RSS, an inbox's fill...) and one :class:`Trend` per value that has a
limit.  Both are pure computation over samples: no I/O, O(1) memory and time per
sample.  :data:`KINDS` says, per kind of series, its unit and the smallest
deviation from the recent mean that is worth an event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.anomaly.trend import TrendPredictor

__all__ = ["KINDS", "Kind", "MiB", "Series", "Trend"]

MiB = 2**20


@dataclass(frozen=True)
class Kind:
    """What a series measures: its unit and the smallest deviation worth an event."""

    unit: str
    floor: float


KINDS: dict[str, Kind] = {
    "cpu": Kind("%", 10.0),
    "mem": Kind("%", 2.0),
    "mib": Kind("MiB", 16.0),
    "age": Kind("s", 0.5),
    "rate": Kind("/s", 5.0),
    "errors": Kind("/s", 0.5),
    "cycle": Kind("ms", 50.0),
    "latency": Kind("ms", 2.0),
    "fill": Kind("", 0.05),
    "bps": Kind("B/s", float(MiB)),
    "load": Kind("", 0.5),
    "temp": Kind("°C", 2.0),
}


class Series:
    """One telemetry series: its detector, a slow mean (for the practical floor), the
    last score and when it last raised an event."""

    __slots__ = ("det", "hi", "kind", "last_event", "last_score", "last_value", "lo", "mean", "n", "name",
                 "target")

    #: Points after which a break of a perfectly flat series counts (the detector's learning period).
    LEARN = 150

    def __init__(self, name: str, kind: str, target: str, det: Any) -> None:
        self.name, self.kind, self.target, self.det = name, kind, target, det
        self.mean = math.nan
        self.lo = self.hi = math.nan
        self.n = 0
        self.last_value = math.nan
        self.last_score = 0.0
        self.last_event = -math.inf

    def update(self, value: float, wall: float) -> tuple[float, float]:
        """Score ``value``; returns (score, deviation from the mean before it).

        The sentinel's out-of-range rule needs a range of non-zero width, so a series
        that was perfectly flat (an error rate of 0, an empty queue) would only build
        up weak sequence evidence when it breaks.  Here leaving a flat range after the
        learning period scores 1.0 as well; the kind's floor decides whether it matters.
        """
        score = self.det.update(value, wall)
        dev = abs(value - self.mean) if self.n else 0.0
        if self.n >= self.LEARN and self.lo == self.hi and value != self.lo:
            score = 1.0
        if self.n:
            self.mean += 0.05 * (value - self.mean)
            self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        else:
            self.mean = self.lo = self.hi = value
        self.n += 1
        self.last_value, self.last_score = value, score
        return score, dev


class Trend:
    """A trend toward a limit: a straight line (``TrendPredictor``), how steadily the
    series rises, and whether it is *settling* toward a level.

    A straight line extrapolates every warm-up as if it went on forever (a
    temperature approaching its steady state looks linear at first).  So the trend
    also regresses the local slope on the local value (``dx/dt = a + b x``, O(1)
    exponentially weighted sums, midpoints so white noise adds no bias): a
    significantly negative ``b`` means first-order settling toward ``x_inf = -a/b``
    with time constant ``-1/b``.  Then the limit is reached only if ``x_inf`` is past
    it, after ``tau * ln((x_inf - x) / (x_inf - limit))`` -- never sooner than the
    straight line says.

    ``eta``, ``last_eta`` and ``last_emit`` are the caller's reporting state (the
    current prediction, the last one reported and when); the trend never reads them.
    """

    __slots__ = ("eta", "k", "last_emit", "last_eta", "prev", "prev_t", "rise", "sums", "tp")

    def __init__(self, halflife: float) -> None:
        self.tp = TrendPredictor(halflife=halflife, min_points=5)
        self.rise = 0.0
        self.prev: float | None = None
        self.prev_t = 0.0
        self.sums = [0.0] * 7  # W, W*m, W*s, W*m*m, W*m*s, W*s*s, sum of W^2
        self.k = 0
        self.last_emit = -math.inf
        self.last_eta: float | None = None
        self.eta: float | None = None

    def update(self, value: float, t: float) -> None:
        """Add the sample ``value`` at time ``t`` (seconds); non-finite values are ignored."""
        if not math.isfinite(value):
            return
        if self.prev is not None:
            self.rise += 0.2 * ((1.0 if value > self.prev else 0.0) - self.rise)
            dt = t - self.prev_t
            if dt > 0.0:
                d = 0.5 ** (dt / self.tp.halflife)
                m, sl = 0.5 * (value + self.prev), (value - self.prev) / dt
                w, wm, ws, wmm, wms, wss, w2 = (x * d for x in self.sums)
                self.sums = [w + 1.0, wm + m, ws + sl, wmm + m * m, wms + m * sl, wss + sl * sl,
                             w2 * d + 1.0]
                self.k += 1
        self.prev, self.prev_t = value, t
        self.tp.update(value, t)

    @property
    def sustained(self) -> bool:
        """Whether most recent samples rose (a leak, not one allocation)."""
        return self.rise >= 0.7 and self.tp.n >= self.tp.min_points

    def settling(self) -> tuple[float, float] | None:
        """``(x_inf, tau)`` when the series significantly settles toward a level, else None."""
        w, wm, ws, wmm, wms, wss, w2 = self.sums
        if self.k < 8 or w <= 0.0:
            return None
        mm, ms = wm / w, ws / w
        vm, cms, vs = wmm / w - mm * mm, wms / w - mm * ms, wss / w - ms * ms
        if vm <= 1e-12 * max(1.0, mm * mm):
            return None
        b = cms / vm
        if b >= 0.0:
            return None
        n_eff = w * w / w2
        se = math.sqrt(max(vs - b * b * vm, 0.0) / (vm * max(n_eff - 2.0, 1.0)))
        if -b < 3.0 * se:
            return None
        return (ms - b * mm) / -b, -1.0 / b

    def time_to(self, limit: float, horizon: float | None = None) -> float | None:
        """Seconds until the series reaches the ceiling ``limit`` (0.0 if past it), or None."""
        if self.k < 8:  # too few slopes to tell a leak from a warm-up
            return None
        eta = self.tp.time_to_threshold(limit, horizon=horizon)
        if not eta:  # None, or already there
            return eta
        settle = self.settling()
        if settle is None or self.prev is None:
            return eta
        x_inf, tau = settle
        if x_inf <= limit:
            return None  # it levels off below the limit
        if self.prev < limit:
            eta = max(eta, tau * math.log((x_inf - self.prev) / (x_inf - limit)))
        return None if horizon is not None and eta > horizon else eta

    def reset(self) -> None:
        """Forget all samples (the series started over, e.g. a restarted agent's RSS)."""
        self.tp.reset()
        self.rise, self.prev, self.eta = 0.0, None, None
        self.sums, self.k = [0.0] * 7, 0

    def state(self) -> dict[str, Any]:
        """A msgspec/JSON-friendly snapshot; :meth:`from_state` rebuilds the trend."""
        return {"tp": self.tp.state(), "rise": self.rise, "prev": self.prev, "prev_t": self.prev_t,
                "sums": list(self.sums), "k": self.k}

    @classmethod
    def from_state(cls, halflife: float, state: dict[str, Any]) -> Trend:
        """The trend :meth:`state` saved, with the half-life ``halflife``."""
        tr = cls(halflife)
        tp = TrendPredictor.from_state(state["tp"])
        tp.halflife = halflife
        tr.tp = tp
        tr.rise = float(state["rise"])
        tr.prev = None if state["prev"] is None else float(state["prev"])
        tr.prev_t = float(state.get("prev_t", 0.0))
        sums = [float(x) for x in state.get("sums", ())]
        if len(sums) == 7:
            tr.sums, tr.k = sums, int(state.get("k", 0))
        return tr
