"""Compute kernels for the compute agent: numba (cached on disk) and numpy.

Public surface::

    KERNELS: dict[str, KernelSpec]     # "triad", "jacobi", "matmul", "montecarlo", "nbody"
    run_workload(name, n, params=None, repeats=3, *, max_seconds=None, seed=0)
        -> WorkloadResult(name, n, params, seconds, gflops, gbps, checksum, repeats)
    run_reference_workload(...)        # the same, timing the plain-numpy reference
    warm_up(names=None, progress=None) -> dict[str, WarmUpResult]
    cache_info() -> CacheInfo          # where numba's on-disk cache lives

Importing this package neither imports numba nor compiles anything; the first
``run_workload`` (or ``warm_up``) does.  The optional GPU path is
:mod:`engine.kernels.cuda` (import it explicitly).  See docs/KERNELS.md.
"""

from __future__ import annotations

from engine.kernels._loader import CacheInfo, cache_info
from engine.kernels.registry import (
    KERNELS,
    clear_input_cache,
    get_inputs,
    get_kernel,
    run_reference_workload,
    run_workload,
    warm_up,
)
from engine.kernels.spec import KernelError, KernelSpec, WarmUpResult, WorkloadResult

__all__ = [
    "KERNELS",
    "CacheInfo",
    "KernelError",
    "KernelSpec",
    "WarmUpResult",
    "WorkloadResult",
    "cache_info",
    "clear_input_cache",
    "get_inputs",
    "get_kernel",
    "run_reference_workload",
    "run_workload",
    "warm_up",
]
