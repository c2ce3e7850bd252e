"""Optional GPU offload with ``numba.cuda``: triad and Jacobi.

Nothing is imported or compiled until a function here is called.  On a machine
without an NVIDIA driver/GPU, :func:`cuda_available` says why and the compute
agent stays on the CPU kernels.  For tests, set ``NUMBA_ENABLE_CUDASIM=1``
*before numba is first imported* (e.g. in a subprocess): numba then runs the
same kernels in its Python simulator -- correct, but slow, so only for small
inputs and never for performance numbers.

The CUDA kernels are JIT-compiled once per process (not disk-cached: the CUDA
target's cache does not apply under the simulator, and PTX compilation is short).
Host arrays in, host arrays out; device transfers are part of each call.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from engine.kernels.spec import KernelError

_THREADS_1D = 256
_BLOCK_2D = (16, 16)


def cuda_available() -> tuple[bool, str]:
    """Whether CUDA kernels can run here, and why (or why not).

    Returns:
        ``(True, "available: <device>")``, ``(True, "simulator ...")`` under
        ``NUMBA_ENABLE_CUDASIM=1``, or ``(False, "unavailable: <reason>")``.
    """
    try:
        import numba
        from numba import cuda
    except Exception as exc:  # pragma: no cover - numba is a dependency
        return False, f"unavailable: numba.cuda cannot be imported ({exc})"
    if numba.config.ENABLE_CUDASIM:
        return True, "simulator (NUMBA_ENABLE_CUDASIM=1): correctness only, not speed"
    try:
        if cuda.is_available():
            return True, f"available: {cuda.get_current_device().name!s}"
    except Exception as exc:  # driver present but broken
        return False, f"unavailable: {_first_line(exc)}"
    try:
        from numba.cuda.cudadrv.driver import driver

        driver.get_device_count()
    except Exception as exc:
        return False, f"unavailable: no CUDA driver / no GPU ({_first_line(exc)})"
    return False, "unavailable: no CUDA GPU"


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip(" :") for ln in str(exc).splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith("Error at driver init")]
    return useful[0] if useful else type(exc).__name__


@functools.cache
def _kernels() -> dict[str, Any]:
    ok, reason = cuda_available()
    if not ok:
        raise KernelError(f"CUDA kernels cannot run: {reason}")
    from numba import cuda

    from engine.kernels import _cuda_kernels

    return {"triad": _cuda_kernels.triad_kernel, "jacobi": _cuda_kernels.jacobi_sweep, "cuda": cuda}


def triad_cuda(b: np.ndarray, c: np.ndarray, s: float) -> np.ndarray:
    """``b + s*c`` on the GPU (grid-stride loop, 256 threads a block).

    Raises:
        KernelError: CUDA is unavailable, or the shapes differ.
    """
    if b.shape != c.shape or b.ndim != 1:
        raise KernelError(f"triad_cuda: b and c must be equal 1-D shapes, got {b.shape}, {c.shape}")
    k = _kernels()
    cuda = k["cuda"]
    n = b.shape[0]
    d_b = cuda.to_device(np.ascontiguousarray(b, dtype=np.float64))
    d_c = cuda.to_device(np.ascontiguousarray(c, dtype=np.float64))
    d_a = cuda.device_array(n, dtype=np.float64)
    blocks = min(max(1, (n + _THREADS_1D - 1) // _THREADS_1D), 4096)
    k["triad"][blocks, _THREADS_1D](d_a, d_b, d_c, float(s))
    return d_a.copy_to_host()


def jacobi_cuda(u0: np.ndarray, iters: int) -> np.ndarray:
    """``iters`` Jacobi 5-point sweeps on the GPU, double-buffered on the device.

    Raises:
        KernelError: CUDA is unavailable, ``u0`` is not 2-D (>= 3 x 3), or
            ``iters < 1``.
    """
    if u0.ndim != 2 or min(u0.shape) < 3 or iters < 1:
        raise KernelError(f"jacobi_cuda: need a 2-D grid >= 3x3 and iters >= 1, got {u0.shape}, {iters}")
    k = _kernels()
    cuda = k["cuda"]
    host = np.ascontiguousarray(u0, dtype=np.float64)
    src = cuda.to_device(host)
    dst = cuda.to_device(host)  # carries the fixed boundary
    rows, cols = host.shape
    grid = ((rows + _BLOCK_2D[0] - 1) // _BLOCK_2D[0], (cols + _BLOCK_2D[1] - 1) // _BLOCK_2D[1])
    for _ in range(iters):
        k["jacobi"][grid, _BLOCK_2D](src, dst)
        src, dst = dst, src
    return src.copy_to_host()
