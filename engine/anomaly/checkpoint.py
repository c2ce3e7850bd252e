"""Compact binary checkpoint of a streaming detector's state.

:meth:`StreamingDetector.state` encodes its arrays as base64 text (JSON-friendly).
For a checkpoint that must fit a byte budget, :func:`pack_detector` stores the raw
array bytes as msgpack ``bin`` instead and compresses the whole state with zlib;
:func:`unpack_detector` rebuilds the detector bit for bit.
"""

from __future__ import annotations

import base64
import zlib

import msgspec

from engine.anomaly.detectors import StreamingDetector, detector_from_state

__all__ = ["pack_detector", "unpack_detector"]


def pack_detector(det: StreamingDetector) -> bytes:
    """``det``'s state as compressed msgpack bytes (raw arrays, no base64 bloat)."""
    state = det.state()
    for arr in state["arrays"].values():
        arr["b64"] = base64.b64decode(arr["b64"])  # raw bytes: msgpack bin
    return zlib.compress(msgspec.msgpack.encode(state), 6)


def unpack_detector(blob: bytes) -> StreamingDetector:
    """The detector :func:`pack_detector` packed into ``blob``."""
    state = msgspec.msgpack.decode(zlib.decompress(blob))
    for arr in state["arrays"].values():
        arr["b64"] = base64.b64encode(arr["b64"]).decode("ascii")
    return detector_from_state(state)
