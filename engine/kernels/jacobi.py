"""2-D Jacobi relaxation, 5-point stencil, on an ``n x n`` float64 grid.

Each sweep sets every interior point to the mean of its four neighbours; the
boundary is fixed.  Two work buffers are ping-ponged (double buffering); the
initial grid ``u0`` is only read, so every run does identical work.

Counting per sweep: 4 flops per interior point (3 adds, 1 multiply) and
2 x 8 x n^2 bytes (read the source grid once, write the destination once; the
three rows a point needs stay in cache, so neighbours cost no extra traffic).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.kernels import _loader
from engine.kernels.spec import (
    Inputs,
    KernelError,
    KernelSpec,
    non_negative_int,
    positive_int,
    thread_choices,
    thread_count,
)

NAME = "jacobi"
DEFAULT_ITERS = 10


def make_inputs(n: int, rng: np.random.Generator) -> Inputs:
    """Random ``n x n`` start grid and two work buffers carrying its boundary."""
    if n < 3:
        raise KernelError(f"kernel 'jacobi': n must be >= 3 (grid side), got {n}")
    u0 = rng.random((n, n))
    return {"u0": u0, "w0": u0.copy(), "w1": u0.copy()}


def run(
    inputs: Inputs, *, iters: int = DEFAULT_ITERS, threads: int = 0, chunk: int = 0
) -> np.ndarray:
    """``iters`` parallel sweeps; returns the buffer holding the final grid.

    ``chunk``: grid rows per dynamically scheduled prange chunk (0 = one equal
    block per thread).
    """
    iters = positive_int(NAME, "iters", iters)
    chunk = non_negative_int(NAME, "chunk", chunk)
    kernel = _loader.cpu().jacobi
    with _loader.numba_parallel(thread_count(NAME, threads), chunk):
        last = kernel(inputs["u0"], inputs["w0"], inputs["w1"], iters)
    return inputs["w0"] if last == 0 else inputs["w1"]


def reference(inputs: Inputs, *, iters: int = DEFAULT_ITERS) -> np.ndarray:
    """Plain numpy sweeps with slicing and ``out=`` (no temporaries), same sum order."""
    bufs = inputs.get("_ref_w")
    if bufs is None:
        bufs = inputs["_ref_w"] = (inputs["u0"].copy(), inputs["u0"].copy())
    src = inputs["u0"]
    for it in range(iters):
        dst = bufs[it % 2]
        d = dst[1:-1, 1:-1]
        np.add(src[:-2, 1:-1], src[2:, 1:-1], out=d)
        np.add(d, src[1:-1, :-2], out=d)
        np.add(d, src[1:-1, 2:], out=d)
        np.multiply(d, 0.25, out=d)
        src = dst
    return src


def _iters(params: Mapping[str, Any] | None) -> int:
    return int((params or {}).get("iters", DEFAULT_ITERS))


def flops(n: int, params: Mapping[str, Any] | None = None) -> float:
    """4 flops per interior point per sweep."""
    return 4.0 * (n - 2) ** 2 * _iters(params)


def bytes_moved(n: int, params: Mapping[str, Any] | None = None) -> float:
    """Read one grid and write one grid per sweep: 16 n^2 per sweep."""
    return 16.0 * n * n * _iters(params)


def _warm() -> None:
    run(make_inputs(8, np.random.default_rng(0)), iters=2)


def _checksum(result: np.ndarray) -> float:
    return float(np.sum(result))


SPEC = KernelSpec(
    name=NAME,
    description="2-D Jacobi 5-point stencil, double-buffered (n = grid side)",
    tunables={"threads": thread_choices(), "chunk": [0, 4, 16, 64]},
    default_params={"iters": DEFAULT_ITERS, "threads": 0, "chunk": 0},
    make_inputs=make_inputs,
    run=run,
    reference=reference,
    flops=flops,
    bytes_moved=bytes_moved,
    warm=_warm,
    dispatchers=lambda: _loader.dispatchers("jacobi"),
    checksum=_checksum,
)
