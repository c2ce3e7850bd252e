"""Streaming anomaly detection and trend prediction for telemetry series.

Public API::

    from engine.anomaly import make_detector, TrendPredictor
    det = make_detector("sentinel")          # or "windowed_gaussian"
    score = det.update(value)                # float in [0, 1], strictly online
    scores = det.update_many(values)         # same computation, batched (numba)
    snap = det.state(); det2 = detector_from_state(snap)

    tp = TrendPredictor(halflife=600.0)
    tp.update(rss_bytes, timestamp=time.time())
    eta = tp.time_to_threshold(rss_limit)    # seconds, or None

See docs/ANOMALY.md for the algorithm and its NAB evaluation.
"""

from __future__ import annotations

from .detectors import (
    DETECTORS,
    SentinelDetector,
    StreamingDetector,
    WindowedGaussianDetector,
    available_detectors,
    detector_from_state,
    make_detector,
)
from .trend import TrendPredictor

__all__ = [
    "DETECTORS",
    "SentinelDetector",
    "StreamingDetector",
    "TrendPredictor",
    "WindowedGaussianDetector",
    "available_detectors",
    "detector_from_state",
    "make_detector",
]
