"""Dense ``n x n`` float64 matrix multiply ``c = a @ b``.

Two variants:

* ``"blas"`` (default): ``np.matmul`` into a preallocated ``c``, i.e. the BLAS
  numpy was built with (OpenBLAS here).  Packed panels, hand-written AVX2/AVX-512
  micro-kernels and its own threads: it wins, by a wide margin.  Its thread count
  follows ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``, not the ``threads`` param.
* ``"blocked"``: a cache-blocked numba kernel (``tile`` x ``tile`` blocks,
  prange over row blocks, ``threads`` numba threads), for the optimization
  agent to autotune and for the benchmark to compare honestly against BLAS.

Counting: 2 n^3 flops; 3 x 8 x n^2 bytes (read ``a`` and ``b``, write ``c`` once:
the compulsory traffic; a blocked kernel re-reads tiles from cache, not counted).
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

NAME = "matmul"
VARIANTS = ("blas", "blocked")
DEFAULT_TILE = 64


def make_inputs(n: int, rng: np.random.Generator) -> Inputs:
    """Two random ``n x n`` matrices and a first-touched output."""
    if n < 1:
        raise KernelError(f"kernel 'matmul': n must be >= 1, got {n}")
    c = np.empty((n, n))
    c.fill(0.0)
    return {"a": rng.random((n, n)), "b": rng.random((n, n)), "c": c}


def run(
    inputs: Inputs, *, variant: str = "blas", tile: int = DEFAULT_TILE, threads: int = 0
) -> np.ndarray:
    """``c = a @ b`` with the chosen variant; returns ``c``."""
    tile = positive_int(NAME, "tile", tile)
    threads = thread_count(NAME, threads)
    a, b, c = inputs["a"], inputs["b"], inputs["c"]
    if variant == "blas":
        np.matmul(a, b, out=c)
    elif variant == "blocked":
        kernel = _loader.cpu().matmul_blocked
        with _loader.numba_parallel(threads):
            kernel(a, b, c, tile)
    else:
        raise KernelError(
            f"kernel 'matmul': unknown variant {variant!r} (allowed: {', '.join(VARIANTS)})"
        )
    return c


def reference(inputs: Inputs) -> np.ndarray:
    """numpy's ``a @ b`` (BLAS) into a separate buffer."""
    out = inputs.get("_ref_c")
    if out is None:
        out = inputs["_ref_c"] = np.empty_like(inputs["c"])
    return np.matmul(inputs["a"], inputs["b"], out=out)


def flops(n: int, params: Mapping[str, Any] | None = None) -> float:
    """2 n^3 (one multiply and one add per inner-product term)."""
    return 2.0 * float(n) ** 3


def bytes_moved(n: int, params: Mapping[str, Any] | None = None) -> float:
    """Compulsory traffic: 3 x 8 x n^2."""
    return 24.0 * float(n) ** 2


def _warm() -> None:
    inputs = make_inputs(9, np.random.default_rng(0))
    run(inputs, variant="blocked", tile=4)


def _checksum(result: np.ndarray) -> float:
    return float(np.sum(result))


SPEC = KernelSpec(
    name=NAME,
    description="dense float64 matmul: BLAS by default, numba cache-blocked variant to tune",
    tunables={
        "variant": list(VARIANTS),
        "tile": [16, 32, 64, 128, 256],
        "threads": thread_choices(),
    },
    default_params={"variant": "blas", "tile": DEFAULT_TILE, "threads": 0},
    make_inputs=make_inputs,
    run=run,
    reference=reference,
    flops=flops,
    bytes_moved=bytes_moved,
    warm=_warm,
    dispatchers=lambda: _loader.dispatchers("matmul_blocked"),
    checksum=_checksum,
)
