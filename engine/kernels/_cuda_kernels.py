"""``numba.cuda`` kernels, imported lazily by :mod:`engine.kernels.cuda`.

They live at module level because numba's CUDA simulator substitutes its fake
``cuda`` module through the kernel function's globals (a closure would keep the
real one).
"""

from __future__ import annotations

from numba import cuda


@cuda.jit
def triad_kernel(a, b, c, s):  # pragma: no cover - runs on the device
    """Grid-stride ``a[i] = b[i] + s*c[i]``."""
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, a.shape[0], stride):
        a[i] = b[i] + s * c[i]


@cuda.jit
def jacobi_sweep(src, dst):  # pragma: no cover - runs on the device
    """One 5-point sweep ``src -> dst`` over the interior, one thread a point."""
    i, j = cuda.grid(2)
    if 1 <= i < src.shape[0] - 1 and 1 <= j < src.shape[1] - 1:
        dst[i, j] = 0.25 * ((src[i - 1, j] + src[i + 1, j]) + src[i, j - 1] + src[i, j + 1])
