"""All-pairs gravitational accelerations for ``n`` bodies (float64, G = 1).

``a_i = sum_j m_j (r_j - r_i) / (|r_j - r_i|^2 + eps^2)^(3/2)``; softening
``eps`` keeps close pairs finite and makes the ``j = i`` term exactly zero.
Positions and accelerations are (3, n) structure-of-arrays.

Counting: the customary 20 flops per pair (3 sub, 6 for the squared distance
with softening, 1 sqrt, 1 divide, 3 multiplies for m/r^3, 6 for the sums;
sqrt and divide counted as one each), i.e. 20 n^2; bytes: compulsory traffic
8 x (3n positions + n masses + 3n accelerations) = 56 n.
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
    thread_choices,
    thread_count,
)

NAME = "nbody"
SOFTENING2 = 1e-3
_REF_BLOCK = 256


def make_inputs(n: int, rng: np.random.Generator) -> Inputs:
    """Bodies uniformly in the unit cube, masses in [0.5, 1.5), first-touched output."""
    if n < 1:
        raise KernelError(f"kernel 'nbody': n must be >= 1, got {n}")
    acc = np.empty((3, n))
    acc.fill(0.0)
    return {
        "pos": rng.random((3, n)),
        "mass": 0.5 + rng.random(n),
        "eps2": SOFTENING2,
        "acc": acc,
    }


def run(inputs: Inputs, *, threads: int = 0, chunk: int = 0) -> np.ndarray:
    """Parallel over bodies ``i``; vectorised inner loop over ``j``. Returns ``acc``.

    ``chunk``: bodies per dynamically scheduled prange chunk (0 = one equal
    block per thread).
    """
    chunk = non_negative_int(NAME, "chunk", chunk)
    kernel = _loader.cpu().nbody_accel
    with _loader.numba_parallel(thread_count(NAME, threads), chunk):
        kernel(inputs["pos"], inputs["mass"], float(inputs["eps2"]), inputs["acc"])
    return inputs["acc"]


def reference(inputs: Inputs) -> np.ndarray:
    """numpy broadcasting over blocks of 256 target bodies (bounded temporaries)."""
    pos, mass, eps2 = inputs["pos"], inputs["mass"], inputs["eps2"]
    n = pos.shape[1]
    out = inputs.get("_ref_acc")
    if out is None:
        out = inputs["_ref_acc"] = np.empty_like(inputs["acc"])
    for i0 in range(0, n, _REF_BLOCK):
        i1 = min(i0 + _REF_BLOCK, n)
        d = pos[:, None, :] - pos[:, i0:i1, None]  # (3, block, n): r_j - r_i
        r2 = np.einsum("kij,kij->ij", d, d) + eps2
        w = mass / (r2 * np.sqrt(r2))
        out[:, i0:i1] = np.einsum("kij,ij->ki", d, w)
    return out


def flops(n: int, params: Mapping[str, Any] | None = None) -> float:
    """20 flops per ordered pair, n^2 pairs (self-pairs included, as computed)."""
    return 20.0 * float(n) ** 2


def bytes_moved(n: int, params: Mapping[str, Any] | None = None) -> float:
    """Compulsory traffic: 56 n bytes (the kernel is compute-bound)."""
    return 56.0 * n


def _warm() -> None:
    run(make_inputs(16, np.random.default_rng(0)))


def _checksum(result: np.ndarray) -> float:
    return float(np.abs(result).sum())


SPEC = KernelSpec(
    name=NAME,
    description="all-pairs n-body accelerations (float64, softened), compute-bound",
    tunables={"threads": thread_choices(), "chunk": [0, 16, 64, 256]},
    default_params={"threads": 0, "chunk": 0},
    make_inputs=make_inputs,
    run=run,
    reference=reference,
    flops=flops,
    bytes_moved=bytes_moved,
    warm=_warm,
    dispatchers=lambda: _loader.dispatchers("nbody_accel"),
    checksum=_checksum,
)
