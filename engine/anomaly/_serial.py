"""JSON/msgspec-friendly encoding of the numpy arrays that hold detector state.

An array becomes ``{"dtype": "<f8", "shape": [n], "b64": "..."}``: the raw
little-endian bytes in base64.  That keeps a snapshot small (a 16k-slot hash
table is ~170 kB of text instead of ~350 kB of decimal integers) and exact
(floats round-trip bit for bit, including the sign of zero).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

__all__ = ["decode_array", "encode_array"]


def encode_array(arr: np.ndarray) -> dict[str, Any]:
    """Encode ``arr`` as a plain dict of str/list values (bit-exact)."""
    a = np.ascontiguousarray(arr)
    le = a.dtype.newbyteorder("<")
    a = a.astype(le, copy=False)
    return {
        "dtype": le.str,
        "shape": list(a.shape),
        "b64": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def decode_array(obj: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array`; returns a writable, native-order array."""
    dt = np.dtype(obj["dtype"])
    raw = base64.b64decode(obj["b64"].encode("ascii"))
    a = np.frombuffer(raw, dtype=dt).reshape(tuple(obj["shape"]))
    return a.astype(dt.newbyteorder("="), copy=True)
