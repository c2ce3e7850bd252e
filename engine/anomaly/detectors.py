"""Streaming anomaly detectors: one value in, one score in [0, 1] out.

All detectors share one contract (:class:`StreamingDetector`):

* ``update(value, timestamp=None) -> float`` -- strictly online: the score of a
  point depends only on that point and the ones before it.
* ``update_many(values, timestamps=None) -> np.ndarray`` -- the same computation over a batch
  (one call into a numba kernel; identical to calling ``update`` per value).
* ``state() -> dict`` / ``from_state(dict)`` -- a JSON/msgspec-friendly
  snapshot; a detector restored mid-stream continues exactly where it stopped.
* Constant memory and constant (amortised) time per point: all state lives in
  fixed-size arrays allocated at construction.

Non-finite values (NaN, inf) are skipped: they score 0.0 and change nothing.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, ClassVar

import numpy as np

from . import _kernels as K
from ._serial import decode_array, encode_array

__all__ = [
    "DETECTORS",
    "SentinelDetector",
    "StreamingDetector",
    "WindowedGaussianDetector",
    "available_detectors",
    "detector_from_state",
    "make_detector",
]

STATE_VERSION = 1
_EPOCH = _dt.datetime(1970, 1, 1)
_NO_TIMES = np.empty(0, dtype=np.float64)


def to_seconds(timestamp: Any) -> float:
    """Seconds since the Unix epoch of a float/int, a datetime (naive = UTC) or
    ``numpy.datetime64``; ``None`` -> NaN (no timestamp)."""
    if timestamp is None:
        return math.nan
    if isinstance(timestamp, _dt.datetime):
        if timestamp.tzinfo is not None:
            return timestamp.timestamp()
        return (timestamp - _EPOCH).total_seconds()
    if isinstance(timestamp, np.datetime64):
        return float(timestamp.astype("datetime64[ns]").astype(np.int64)) / 1e9
    return float(timestamp)


def times_array(timestamps: Any, n: int) -> np.ndarray:
    """Float seconds for a batch of timestamps (None -> no timestamps)."""
    if timestamps is None:
        return _NO_TIMES
    arr = np.asarray(timestamps)
    if np.issubdtype(arr.dtype, np.datetime64):
        out = arr.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
    elif arr.dtype == object:
        out = np.array([to_seconds(t) for t in arr.reshape(-1)], dtype=np.float64)
    else:
        out = arr.astype(np.float64)
    out = np.ascontiguousarray(out.reshape(-1))
    if out.shape[0] != n:
        raise ValueError(f"got {out.shape[0]} timestamps for {n} values")
    return out


class StreamingDetector:
    """Base class: parameters, state arrays, and the kernel that advances them.

    Subclasses set ``name`` and ``defaults``, and implement ``_allocate`` (create
    the state arrays from ``self.params``) and ``_advance`` (call the kernel).
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, float]] = {}
    _array_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: float) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ValueError(
                "{}: unknown parameter(s) {}; allowed: {}".format(type(self).__name__, ", ".join(sorted(unknown)), ", ".join(sorted(self.defaults)))
            )
        self.params: dict[str, float] = {**self.defaults, **params}
        self._validate()
        self._one_in = np.empty(1, dtype=np.float64)
        self._one_t = np.empty(1, dtype=np.float64)
        self._one_out = np.empty(1, dtype=np.float64)
        self._allocate()

    # -- subclass hooks ------------------------------------------------------
    def _validate(self) -> None:
        """Raise ValueError on out-of-range parameters."""

    def _allocate(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _advance(self, values: np.ndarray, times: np.ndarray, out: np.ndarray) -> None:
        """Run the kernel; ``times`` is empty or has one entry per value."""
        raise NotImplementedError  # pragma: no cover

    # -- public API ----------------------------------------------------------
    def update(self, value: float, timestamp: Any = None) -> float:
        """Feed one value; return its anomaly score in [0, 1].

        ``timestamp`` (seconds since the epoch, datetime, or None) feeds the
        calendar context where a detector has one; None means "unknown".
        """
        self._one_in[0] = value
        if timestamp is None:
            self._advance(self._one_in, _NO_TIMES, self._one_out)
        else:
            self._one_t[0] = to_seconds(timestamp)
            self._advance(self._one_in, self._one_t, self._one_out)
        return float(self._one_out[0])

    def update_many(self, values: Any, timestamps: Any = None) -> np.ndarray:
        """Feed a batch of values (and optional timestamps) in order; return
        their scores (float64).  Same computation as ``update`` per value."""
        arr = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
        times = times_array(timestamps, arr.shape[0])
        out = np.empty(arr.shape[0], dtype=np.float64)
        if arr.shape[0]:
            self._advance(arr, times, out)
        return out

    def reset(self) -> None:
        """Forget everything (same parameters)."""
        self._allocate()

    def state(self) -> dict[str, Any]:
        """Snapshot: plain dict of str/int/float/list values (JSON-safe)."""
        return {
            "detector": self.name,
            "version": STATE_VERSION,
            "params": dict(self.params),
            "arrays": {n: encode_array(getattr(self, n)) for n in self._array_names},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> StreamingDetector:
        """Rebuild a detector from :meth:`state` output."""
        if state.get("detector") != cls.name:
            raise ValueError("state is for detector {!r}, not {!r}".format(state.get("detector"), cls.name))
        if state.get("version") != STATE_VERSION:
            raise ValueError("unsupported state version {!r}".format(state.get("version")))
        det = cls(**state["params"])
        for n in cls._array_names:
            cur = getattr(det, n)
            arr = decode_array(state["arrays"][n])
            if arr.shape != cur.shape or arr.dtype != cur.dtype:
                raise ValueError(f"state array {n!r} has shape {arr.shape}/{arr.dtype}, expected {cur.shape}/{cur.dtype}")
            cur[...] = arr
        return det

    def state_nbytes(self) -> int:
        """Bytes of state held (constant for a given parameter set)."""
        return int(sum(getattr(self, n).nbytes for n in self._array_names))

    def __repr__(self) -> str:
        return "{}({})".format(type(self).__name__,
                           ", ".join("{}={:g}".format(*kv) for kv in sorted(self.params.items())))


# ----------------------------------------------------------------------------


class WindowedGaussianDetector(StreamingDetector):
    """NAB's "windowed Gaussian" baseline.

    Score = 1 - Q(|x - mean| / std), the two-sided Gaussian tail of the value
    against the mean/std of the previous ``window`` values; once the window is
    full its statistics move every ``step`` values.  Memory: ``window`` floats.
    Published NAB standard score: 39.6.
    """

    name = "windowed_gaussian"
    defaults: ClassVar[dict[str, float]] = {"window": 6400.0, "step": 100.0}
    _array_names = ("params_arr", "fs", "ist", "buf")

    def _validate(self) -> None:
        if int(self.params["window"]) < 2 or int(self.params["step"]) < 1:
            raise ValueError("windowed_gaussian: window >= 2 and step >= 1 required")

    def _allocate(self) -> None:
        p = self.params
        self.params_arr = np.array([p["window"], p["step"]], dtype=np.float64)
        self.fs = np.zeros(K.WG_F, dtype=np.float64)
        self.fs[1] = 1e-6
        self.ist = np.zeros(K.WG_I, dtype=np.int64)
        self.buf = np.zeros(int(p["window"]), dtype=np.float64)

    def _advance(self, values: np.ndarray, times: np.ndarray, out: np.ndarray) -> None:
        K.wg_run(self.params_arr, self.fs, self.ist, self.buf, values, out)


class SentinelDetector(StreamingDetector):
    """Contextual-surprise detector with per-stream calibrated likelihoods.

    Per point, in constant time (about 2 * (``orders`` + 1) hash-table probes
    plus a few dozen flops) and constant memory (~200 kB at the defaults):

    1. *Range and out-of-range alarm*: running min/max of all values so far.
       A value beyond it by more than ``spatial_tol`` x range scores 1.0 (as in
       Numenta's detector); held off per direction for ``hold`` points.
    2. *Symbol*: the value quantised into ``levels`` bins of that range.
    3. *Raw channels* (each in [0, 1]):
       - ``sequence``: mean over k = 1..``orders`` of 1 - P(symbol | last k
         symbols), probabilities from counts in a 2-way set-associative hash
         table of ``2**table_bits`` slots (frequent contexts survive churn);
       - ``rarity``: 1 - P(symbol) (order 0; computed, not scored by default);
       - ``calendar`` (needs timestamps): two-sided Gaussian surprise of the
         value against an EW mean/std of its hour-of-day x weekday/weekend
         bucket (``tod`` buckets a day; used once seen on ``cal_days`` days).
    4. *Evidence*: each scored channel's slow EW average (horizon ``avg_long``
       points; plus an ``avg``-point moving average if ``avg`` > 0) becomes a z
       score against that statistic's own EW mean/std (horizon ``long``,
       floored by ``mean_floor``/``std_floor``).
    5. *Calibration*: the largest z is turned into a tail probability
       ``(recent exceedances + prior_n * m * Q(z)) / prior_n``: the stream's own
       exceedances of that z (decaying with horizon ``calib``) plus a
       Bonferroni Gaussian prior (m = statistics scored).  So bursty streams
       must beat their own recent record to alarm.  Score = log scale of
       1 - tail (0.5 <-> tail 1e-5, 1.0 <-> 1e-10).
    6. *Hold-off*: after a score >= ``arm`` the detector outputs 0 for ``hold``
       points unless a higher score comes (NAB rewards the first detection in
       a window and charges every false positive).

    The first ``skip + min_stat`` points score 0 (learning).  No look-ahead,
    no labels, no knowledge of the series' length or global min/max.
    """

    name = "sentinel"
    defaults: ClassVar[dict[str, float]] = {
        "levels": 8.0,
        "orders": 6.0,
        "table_bits": 14.0,
        "spatial_tol": 0.05,
        "avg": 0.0,
        "skip": 100.0,
        "min_stat": 50.0,
        "long": 1000.0,
        "std_floor": math.sqrt(3e-4),
        "mean_floor": 0.03,
        "hold": 100.0,
        "arm": 0.2,
        "tod": 24.0,
        "avg_long": 50.0,
        "cal_long": 200.0,
        "cal_days": 3.0,
        "cal_floor": 0.02,
        "prior_n": 1000.0,
        "calib": 1000.0,
        "channels": 5.0,
    }
    _array_names = ("params_arr", "fs", "ist", "hist", "ring", "keys", "counts", "cal", "zh")

    def _validate(self) -> None:
        p = self.params
        if not 2 <= int(p["levels"]) <= 4096:
            raise ValueError("sentinel: levels must be in [2, 4096]")
        if not 1 <= int(p["orders"]) <= 64:
            raise ValueError("sentinel: orders must be in [1, 64]")
        if not 4 <= int(p["table_bits"]) <= 24:
            raise ValueError("sentinel: table_bits must be in [4, 24]")
        if int(p["avg"]) < 0 or p["long"] < 1 or int(p["hold"]) < 0:
            raise ValueError("sentinel: avg >= 0, long >= 1, hold >= 0 required")
        if int(p["avg"]) == 0 and p["avg_long"] <= 0:
            raise ValueError("sentinel: avg and avg_long cannot both be off")

    def _allocate(self) -> None:
        p = self.params
        arr = np.zeros(K.P_N, dtype=np.float64)
        arr[K.P_LEVELS] = int(p["levels"])
        arr[K.P_ORDERS] = int(p["orders"])
        arr[K.P_SPATIAL] = p["spatial_tol"]
        arr[K.P_AVG] = int(p["avg"])
        arr[K.P_SKIP] = int(p["skip"])
        arr[K.P_MINSTAT] = int(p["min_stat"])
        arr[K.P_LONG] = p["long"]
        arr[K.P_STDFLOOR] = p["std_floor"]
        arr[K.P_MEANFLOOR] = p["mean_floor"]
        arr[K.P_HOLD] = int(p["hold"])
        arr[K.P_ARM] = p["arm"]
        arr[K.P_TOD] = int(p["tod"])
        arr[K.P_AVGLONG] = p["avg_long"]
        arr[K.P_CALLONG] = p["cal_long"]
        arr[K.P_CALDAYS] = p["cal_days"]
        arr[K.P_CALFLOOR] = p["cal_floor"]
        arr[K.P_PRIORN] = p["prior_n"]
        arr[K.P_CALIB] = p["calib"]
        arr[K.P_CHMASK] = int(p["channels"])
        self.params_arr = arr
        self.fs = np.zeros(K.F_N, dtype=np.float64)
        self.fs[K.F_ZN] = 1.0
        self.ist = np.zeros(K.I_N_, dtype=np.int64)
        self.hist = np.zeros(int(p["orders"]), dtype=np.int64)
        self.ring = np.zeros((K.NCH, max(int(p["avg"]), 1)), dtype=np.float64)
        self.keys = np.zeros(1 << int(p["table_bits"]), dtype=np.uint64)
        self.counts = np.zeros(1 << int(p["table_bits"]), dtype=np.int32)
        self.cal = np.zeros((2 * max(int(p["tod"]), 1), 5), dtype=np.float64)
        self.zh = np.zeros(K.ZBINS, dtype=np.float64)

    def _advance(self, values: np.ndarray, times: np.ndarray, out: np.ndarray) -> None:
        K.sentinel_run(self.params_arr, self.fs, self.ist, self.hist, self.ring,
                       self.keys, self.counts, self.cal, self.zh, values, times, out)

    CHANNELS = ("sequence", "rarity", "calendar")

    @property
    def last_raw(self) -> dict[str, float]:
        """Raw surprise per channel for the last point (0 = fully expected)."""
        return {c: float(self.fs[K.F_CH + K.F_STRIDE * i]) for i, c in enumerate(self.CHANNELS)}

    @property
    def last_statistic(self) -> str | None:
        """Which statistic had the largest z at the last point, e.g.
        ``"calendar/slow"`` (None before scoring starts)."""
        why = int(self.fs[K.F_WHY])
        if why < 0:
            return None
        return "{}/{}".format(self.CHANNELS[why // 2], "short" if why % 2 == 0 else "slow")

    @property
    def last_score(self) -> float:
        """Score of the last point before the hold-off (and out-of-range) rules."""
        return float(self.fs[K.F_SCORE])


DETECTORS: dict[str, type[StreamingDetector]] = {
    SentinelDetector.name: SentinelDetector,
    WindowedGaussianDetector.name: WindowedGaussianDetector,
}


def available_detectors() -> list[str]:
    """Names accepted by :func:`make_detector`."""
    return sorted(DETECTORS)


def make_detector(name: str, **params: float) -> StreamingDetector:
    """Build a detector by registry name (``sentinel``, ``windowed_gaussian``)."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError("unknown detector {!r}; available: {}".format(name, ", ".join(available_detectors()))) from None
    return cls(**params)


def detector_from_state(state: dict[str, Any]) -> StreamingDetector:
    """Rebuild any registered detector from its :meth:`StreamingDetector.state`."""
    name = state.get("detector")
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r} in state")
    return DETECTORS[name].from_state(state)
