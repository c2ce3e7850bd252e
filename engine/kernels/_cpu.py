"""The numba CPU kernels (imported lazily through :func:`engine.kernels._loader.cpu`).

Every function is ``cache=True`` (see ``_loader`` for where the cache lives).
``parallel=True`` is used where it measured faster on the development machine
(all of them; see docs/KERNELS.md).  ``fastmath`` is enabled only where
floating-point sums must be reassociated or contracted into FMAs to vectorise
(n-body, blocked matmul); triad, Jacobi and Monte Carlo give bit-for-bit the
numpy reference's results.

Inputs are C-contiguous float64 arrays and Python ints/floats, so one signature
per kernel is compiled and cached; :mod:`engine.kernels` validates before calling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# --- STREAM triad -------------------------------------------------------------------


@njit(parallel=True, cache=True)
def triad(a, b, c, s):  # pragma: no cover - compiled
    """``a[i] = b[i] + s * c[i]``; prange splits ``i`` statically across threads."""
    for i in prange(a.shape[0]):
        a[i] = b[i] + s * c[i]


# --- 2-D Jacobi, 5-point --------------------------------------------------------------


@njit(parallel=True, cache=True)
def jacobi(u0, w0, w1, iters):  # pragma: no cover - compiled
    """``iters`` Jacobi sweeps from ``u0``, ping-ponging between ``w0`` and ``w1``.

    ``u0`` is only read, so repeated runs do the same work.  ``w0`` and ``w1``
    carry the same fixed boundary as ``u0`` (never written here).  Returns the
    index (0 or 1) of the buffer holding the final grid.
    """
    rows, cols = u0.shape
    src = u0
    for it in range(iters):
        dst = w0 if it % 2 == 0 else w1
        for i in prange(1, rows - 1):
            for j in range(1, cols - 1):
                dst[i, j] = 0.25 * (
                    (src[i - 1, j] + src[i + 1, j]) + src[i, j - 1] + src[i, j + 1]
                )
        src = dst
    return (iters - 1) % 2


# --- blocked matrix multiply ----------------------------------------------------------


@njit(inline="always", fastmath=True, cache=True)
def _tile_tail(a, b, c, r0, r1, k0, k1, j0, j1):  # pragma: no cover - compiled
    """``c[r0:r1, j0:j1] += a[r0:r1, k0:k1] @ b[k0:k1, j0:j1]``, i-k-j order."""
    for r in range(r0, r1):
        for k in range(k0, k1):
            x = a[r, k]
            for j in range(j0, j1):
                c[r, j] += x * b[k, j]


@njit(parallel=True, fastmath=True, cache=True)
def matmul_blocked(a, b, c, tile):  # pragma: no cover - compiled
    """``c = a @ b`` with ``tile`` blocking and a 4 x 8 register-blocked inner kernel.

    Row blocks of ``c`` are independent, so they are the prange dimension (no
    write sharing).  For each (k, j) tile, a 4 x 8 block of ``c`` is accumulated
    in 32 scalars over the tile's ``k`` range: per ``k`` step, 8 contiguous
    ``b`` values and 4 ``a`` values feed 32 multiply-adds, which LLVM turns into
    four 8-wide FMAs (``fastmath`` allows the contraction).  This measured about
    1.5x faster than a plain i-k-j loop over the tile; edges use the plain loop.
    """
    n, m = a.shape
    p = b.shape[1]
    nblocks = (n + tile - 1) // tile
    for bi in prange(nblocks):
        i0 = bi * tile
        i1 = min(i0 + tile, n)
        for i in range(i0, i1):
            for j in range(p):
                c[i, j] = 0.0
        for k0 in range(0, m, tile):
            k1 = min(k0 + tile, m)
            for j0 in range(0, p, tile):
                j1 = min(j0 + tile, p)
                i = i0
                while i + 4 <= i1:
                    j = j0
                    while j + 8 <= j1:
                        c00 = c01 = c02 = c03 = c04 = c05 = c06 = c07 = 0.0
                        c10 = c11 = c12 = c13 = c14 = c15 = c16 = c17 = 0.0
                        c20 = c21 = c22 = c23 = c24 = c25 = c26 = c27 = 0.0
                        c30 = c31 = c32 = c33 = c34 = c35 = c36 = c37 = 0.0
                        for k in range(k0, k1):
                            b0 = b[k, j]
                            b1 = b[k, j + 1]
                            b2 = b[k, j + 2]
                            b3 = b[k, j + 3]
                            b4 = b[k, j + 4]
                            b5 = b[k, j + 5]
                            b6 = b[k, j + 6]
                            b7 = b[k, j + 7]
                            x = a[i, k]
                            c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3  # noqa: E702
                            c04 += x * b4; c05 += x * b5; c06 += x * b6; c07 += x * b7  # noqa: E702
                            x = a[i + 1, k]
                            c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3  # noqa: E702
                            c14 += x * b4; c15 += x * b5; c16 += x * b6; c17 += x * b7  # noqa: E702
                            x = a[i + 2, k]
                            c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3  # noqa: E702
                            c24 += x * b4; c25 += x * b5; c26 += x * b6; c27 += x * b7  # noqa: E702
                            x = a[i + 3, k]
                            c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3  # noqa: E702
                            c34 += x * b4; c35 += x * b5; c36 += x * b6; c37 += x * b7  # noqa: E702
                        c[i, j] += c00; c[i, j + 1] += c01; c[i, j + 2] += c02  # noqa: E702
                        c[i, j + 3] += c03; c[i, j + 4] += c04; c[i, j + 5] += c05  # noqa: E702
                        c[i, j + 6] += c06; c[i, j + 7] += c07  # noqa: E702
                        c[i + 1, j] += c10; c[i + 1, j + 1] += c11; c[i + 1, j + 2] += c12  # noqa: E702
                        c[i + 1, j + 3] += c13; c[i + 1, j + 4] += c14; c[i + 1, j + 5] += c15  # noqa: E702
                        c[i + 1, j + 6] += c16; c[i + 1, j + 7] += c17  # noqa: E702
                        c[i + 2, j] += c20; c[i + 2, j + 1] += c21; c[i + 2, j + 2] += c22  # noqa: E702
                        c[i + 2, j + 3] += c23; c[i + 2, j + 4] += c24; c[i + 2, j + 5] += c25  # noqa: E702
                        c[i + 2, j + 6] += c26; c[i + 2, j + 7] += c27  # noqa: E702
                        c[i + 3, j] += c30; c[i + 3, j + 1] += c31; c[i + 3, j + 2] += c32  # noqa: E702
                        c[i + 3, j + 3] += c33; c[i + 3, j + 4] += c34; c[i + 3, j + 5] += c35  # noqa: E702
                        c[i + 3, j + 6] += c36; c[i + 3, j + 7] += c37  # noqa: E702
                        j += 8
                    _tile_tail(a, b, c, i, i + 4, k0, k1, j, j1)
                    i += 4
                _tile_tail(a, b, c, i, i1, k0, k1, j0, j1)


# --- Monte Carlo pi, counter-based RNG ------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


@njit(inline="always", cache=True)
def _mix(counter, key):  # pragma: no cover - compiled
    """SplitMix64 output for stream position ``counter`` under ``key`` (uint64)."""
    z = key + (counter + _ONE) * _GAMMA
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(parallel=True, cache=True)
def mc_pi_count(n, offset, key, chunk):  # pragma: no cover - compiled
    """Count samples ``offset .. offset+n-1`` that fall inside the unit quarter circle.

    Sample ``i`` uses counters ``2i`` and ``2i+1``: the result depends only on
    ``(key, offset, n)``, never on threads or ``chunk``, so work can be sliced.
    """
    nchunks = (n + chunk - 1) // chunk
    total = 0
    for ci in prange(nchunks):
        start = ci * chunk
        stop = min(start + chunk, n)
        inside = 0
        for s in range(start, stop):
            ctr = np.uint64(offset + s) * _TWO
            x = np.float64(_mix(ctr, key) >> _S11) * _INV53
            y = np.float64(_mix(ctr + _ONE, key) >> _S11) * _INV53
            if x * x + y * y < 1.0:
                inside += 1
        total += inside
    return total


# --- all-pairs n-body -----------------------------------------------------------------


@njit(parallel=True, fastmath=True, cache=True)
def nbody_accel(pos, mass, eps2, acc):  # pragma: no cover - compiled
    """Softened gravitational acceleration on each body from all bodies (G = 1).

    ``pos`` and ``acc`` are (3, n) structure-of-arrays so the inner ``j`` loop
    reads three unit-stride streams; ``fastmath`` lets LLVM reassociate the three
    sums and vectorise them.  Self-interaction contributes zero (``dx = 0``).
    """
    n = pos.shape[1]
    x = pos[0]
    y = pos[1]
    z = pos[2]
    for i in prange(n):
        xi = x[i]
        yi = y[i]
        zi = z[i]
        sx = 0.0
        sy = 0.0
        sz = 0.0
        for j in range(n):
            dx = x[j] - xi
            dy = y[j] - yi
            dz = z[j] - zi
            r2 = dx * dx + dy * dy + dz * dz + eps2
            inv = 1.0 / np.sqrt(r2)
            w = mass[j] * inv * inv * inv
            sx += dx * w
            sy += dy * w
            sz += dz * w
        acc[0, i] = sx
        acc[1, i] = sy
        acc[2, i] = sz
