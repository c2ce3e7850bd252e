"""STREAM triad ``a = b + s*c`` on float64 vectors of length ``n``.

Traffic is counted as STREAM does, 3 x 8 x n bytes (read b, read c, write a).
With ordinary stores the CPU also reads each line of ``a`` before writing it
(write-allocate), so the DRAM really moves 4 x 8 x n; the reported GB/s is the
STREAM figure, which understates the bus traffic by 25 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.kernels import _loader
from engine.kernels.spec import (
    Inputs,
    KernelError,
    KernelSpec,
    non_negative_int,
    thread_choices,
    thread_count,
)

NAME = "triad"
SCALAR = 3.0


def make_inputs(n: int, rng: np.random.Generator) -> Inputs:
    """Three first-touched float64 vectors of length ``n`` and the scalar ``s``."""
    if n < 1:
        raise KernelError(f"kernel 'triad': n must be >= 1, got {n}")
    a = np.empty(n)
    a.fill(0.0)
    return {"a": a, "b": rng.random(n), "c": rng.random(n), "s": SCALAR}


def run(inputs: Inputs, *, threads: int = 0, chunk: int = 0) -> np.ndarray:
    """Numba parallel triad into ``inputs["a"]``; returns ``a``.

    ``chunk``: elements per dynamically scheduled prange chunk (0 = one equal
    block per thread).
    """
    chunk = non_negative_int(NAME, "chunk", chunk)
    kernel = _loader.cpu().triad
    with _loader.numba_parallel(thread_count(NAME, threads), chunk):
        kernel(inputs["a"], inputs["b"], inputs["c"], float(inputs["s"]))
    return inputs["a"]


def reference(inputs: Inputs) -> np.ndarray:
    """Best plain numpy: two in-place passes (``out = s*c; out += b``), no temporaries."""
    out = inputs.get("_ref_a")
    if out is None:
        out = inputs["_ref_a"] = np.empty_like(inputs["b"])
    np.multiply(inputs["c"], inputs["s"], out=out)
    np.add(out, inputs["b"], out=out)
    return out


def flops(n: int, params: Any = None) -> float:
    """One multiply and one add per element."""
    return 2.0 * n


def bytes_moved(n: int, params: Any = None) -> float:
    """STREAM convention: 3 x 8 x n (write-allocate of ``a`` not counted)."""
    return 24.0 * n


def _warm() -> None:
    run(make_inputs(64, np.random.default_rng(0)))


def _checksum(result: np.ndarray) -> float:
    return float(np.sum(result))


SPEC = KernelSpec(
    name=NAME,
    description="STREAM triad a = b + s*c (float64), memory-bandwidth bound",
    tunables={"threads": thread_choices(), "chunk": [0, 1 << 16, 1 << 18, 1 << 20]},
    default_params={"threads": 0, "chunk": 0},
    make_inputs=make_inputs,
    run=run,
    reference=reference,
    flops=flops,
    bytes_moved=bytes_moved,
    warm=_warm,
    dispatchers=lambda: _loader.dispatchers("triad"),
    checksum=_checksum,
)
