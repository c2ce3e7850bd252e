"""Monte Carlo estimate of pi from ``n`` points in the unit square.

The random numbers come from a counter-based generator (the SplitMix64 output
function applied to ``key + (counter + 1) * golden_gamma``): sample ``i`` uses
counters ``2i`` and ``2i + 1``.  So the estimate depends only on ``(key, offset,
n)`` -- not on the thread count or ``chunk`` -- and a long run can be sliced into
pieces (``offset`` = samples already done) whose counts add up exactly.  The numpy
reference evaluates the same generator and gets the identical count.

Counting: 5 flops per sample (2 scalings to [0, 1), 2 squares, 1 add; the
comparison and the integer hashing are not floating-point work and are not
counted) and 0 bytes (compute-bound; the reported GB/s is 0).
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
    positive_int,
    thread_choices,
    thread_count,
)

NAME = "montecarlo"
DEFAULT_CHUNK = 16384
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_REF_BLOCK = 1 << 20


def make_inputs(n: int, rng: np.random.Generator) -> Inputs:
    """The sample count and a 64-bit stream key drawn from ``rng``."""
    if n < 1:
        raise KernelError(f"kernel 'montecarlo': n must be >= 1, got {n}")
    key = np.uint64(rng.integers(0, 2**63, dtype=np.int64))
    return {"n": int(n), "key": key}


def run(
    inputs: Inputs, *, chunk: int = DEFAULT_CHUNK, offset: int = 0, threads: int = 0
) -> float:
    """Parallel count over ``chunk``-sized blocks; returns the pi estimate."""
    chunk = positive_int(NAME, "chunk", chunk)
    if isinstance(offset, bool) or int(offset) != offset or offset < 0:
        raise KernelError(f"kernel 'montecarlo': offset must be an integer >= 0, got {offset!r}")
    n = inputs["n"]
    kernel = _loader.cpu().mc_pi_count
    with _loader.numba_parallel(thread_count(NAME, threads)):
        inside = kernel(n, int(offset), np.uint64(inputs["key"]), chunk)
    return 4.0 * int(inside) / n


def _mix(counter: np.ndarray, key: np.uint64) -> np.ndarray:
    """Vectorised SplitMix64 output (uint64 arithmetic wraps, as intended)."""
    z = key + (counter + np.uint64(1)) * _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def reference(inputs: Inputs, *, offset: int = 0) -> float:
    """The same generator and test in numpy, in blocks of 2^20 samples."""
    n, key = inputs["n"], np.uint64(inputs["key"])
    inside = 0
    for start in range(0, n, _REF_BLOCK):
        idx = np.arange(offset + start, offset + min(start + _REF_BLOCK, n), dtype=np.uint64)
        ctr = idx * np.uint64(2)
        x = (_mix(ctr, key) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        y = (_mix(ctr + np.uint64(1), key) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        inside += int(np.count_nonzero(x * x + y * y < 1.0))
    return 4.0 * inside / n


def flops(n: int, params: Mapping[str, Any] | None = None) -> float:
    """5 floating-point operations per sample."""
    return 5.0 * n


def bytes_moved(n: int, params: Mapping[str, Any] | None = None) -> float:
    """No array traffic: the generator is computed, not read."""
    return 0.0


def _warm() -> None:
    run(make_inputs(100, np.random.default_rng(0)), chunk=16)


SPEC = KernelSpec(
    name=NAME,
    description="Monte Carlo pi, counter-based RNG (thread- and slice-invariant), compute-bound",
    tunables={"chunk": [1024, 4096, 16384, 65536], "threads": thread_choices()},
    default_params={"chunk": DEFAULT_CHUNK, "offset": 0, "threads": 0},
    make_inputs=make_inputs,
    run=run,
    reference=reference,
    flops=flops,
    bytes_moved=bytes_moved,
    warm=_warm,
    dispatchers=lambda: _loader.dispatchers("mc_pi_count"),
    checksum=float,
)
