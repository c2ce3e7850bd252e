"""Online linear trend of a series, for predictive failure ("memory grows by
40 MB/min; the RSS limit is reached in 6 minutes").

:class:`TrendPredictor` fits a straight line value = level + slope * (t - now)
by exponentially weighted least squares on the time axis: a sample's weight
halves every ``halflife`` seconds of age.  Irregular sampling is handled
naturally (weights depend on real time, not sample counts).  State is five
running sums plus two scalars: O(1) memory and time per update.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from typing import Any

__all__ = ["TrendPredictor"]

_STATE_VERSION = 1


def _as_seconds(timestamp: Any) -> float:
    if timestamp is None:
        return time.monotonic()
    if isinstance(timestamp, _dt.datetime):
        return timestamp.timestamp()
    return float(timestamp)


class TrendPredictor:
    """Exponentially weighted linear regression of value on time.

    Args:
        halflife: seconds after which a sample's weight has halved.  Longer is
            steadier, shorter reacts faster to a change of slope.
        min_points: samples needed before :meth:`time_to_threshold` answers.
    """

    def __init__(self, halflife: float = 600.0, min_points: int = 3) -> None:
        if not halflife > 0 or not math.isfinite(halflife):
            raise ValueError("TrendPredictor: halflife must be a positive number of seconds")
        if min_points < 2:
            raise ValueError("TrendPredictor: min_points must be >= 2")
        self.halflife = float(halflife)
        self.min_points = int(min_points)
        self.reset()

    def reset(self) -> None:
        """Forget all samples."""
        self.n = 0
        self.t_ref = 0.0  # time of the newest sample; u = t - t_ref <= 0
        # weighted sums: w, w*u, w*x, w*u*u, w*u*x
        self._s = [0.0, 0.0, 0.0, 0.0, 0.0]

    def update(self, value: float, timestamp: Any = None) -> None:
        """Add one sample (``timestamp`` in seconds, a datetime, or None = now).
        Non-finite values are ignored."""
        x = float(value)
        t = _as_seconds(timestamp)
        if not (math.isfinite(x) and math.isfinite(t)):
            return
        s0, su, sx, suu, sux = self._s
        if self.n == 0:
            self.t_ref = t
        dt = t - self.t_ref
        if dt > 0.0:
            # move the origin to t, then age every weight by dt
            suu = suu - 2.0 * dt * su + dt * dt * s0
            sux = sux - dt * sx
            su = su - dt * s0
            d = 0.5 ** (dt / self.halflife)
            s0, su, sx, suu, sux = s0 * d, su * d, sx * d, suu * d, sux * d
            self.t_ref = t
            u = 0.0
        else:
            u = dt  # late sample: insert at its own (past) time
        self._s = [s0 + 1.0, su + u, sx + x, suu + u * u, sux + u * x]
        self.n += 1

    # -- fitted line -----------------------------------------------------
    def _fit(self) -> tuple[float, float] | None:
        s0, su, sx, suu, sux = self._s
        if self.n < 2 or s0 <= 0.0:
            return None
        var_u = suu - su * su / s0
        if var_u <= 1e-12 * max(1.0, suu):
            return None
        slope = (sux - su * sx / s0) / var_u
        level = sx / s0 - slope * su / s0
        return level, slope

    @property
    def slope(self) -> float | None:
        """Fitted slope in value units per second (None before two distinct times)."""
        fit = self._fit()
        return None if fit is None else fit[1]

    @property
    def level(self) -> float | None:
        """Fitted value at the newest sample's time."""
        fit = self._fit()
        return None if fit is None else fit[0]

    def predict(self, horizon: float) -> float | None:
        """Fitted value ``horizon`` seconds after the newest sample."""
        fit = self._fit()
        return None if fit is None else fit[0] + fit[1] * horizon

    def time_to_threshold(self, limit: float, horizon: float | None = None,
                          rising: bool = True) -> float | None:
        """Seconds from the newest sample until the trend line reaches ``limit``.

        ``rising=True`` (default) treats ``limit`` as a ceiling (memory, RSS,
        temperature); ``rising=False`` as a floor (free disk, battery).
        Returns 0.0 when the fitted level is already at or past the limit;
        None when the line is flat or moving away from it, before
        ``min_points`` samples, or when the answer exceeds ``horizon`` seconds.
        """
        if self.n < self.min_points:
            return None
        fit = self._fit()
        if fit is None:
            return None
        level, slope = fit
        gap = (limit - level) if rising else (level - limit)
        if gap <= 0.0:
            return 0.0
        speed = slope if rising else -slope
        if not speed > 0.0 or not math.isfinite(speed):
            return None
        eta = gap / speed
        if horizon is not None and eta > horizon:
            return None
        return eta

    # -- persistence -----------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-safe snapshot."""
        return {"kind": "trend", "version": _STATE_VERSION, "halflife": self.halflife,
                "min_points": self.min_points, "n": self.n, "t_ref": self.t_ref,
                "sums": list(self._s)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrendPredictor:
        """Rebuild from :meth:`state` output."""
        if state.get("kind") != "trend" or state.get("version") != _STATE_VERSION:
            raise ValueError(f"not a TrendPredictor state (version {_STATE_VERSION})")
        tp = cls(halflife=state["halflife"], min_points=state["min_points"])
        tp.n = int(state["n"])
        tp.t_ref = float(state["t_ref"])
        tp._s = [float(v) for v in state["sums"]]
        return tp
