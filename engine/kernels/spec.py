"""Value types shared by every compute kernel: the spec, the result, the errors.

Nothing here imports numba; building a :class:`KernelSpec` is free, compiling
happens on first use (or in :func:`engine.kernels.warm_up`).
"""

from __future__ import annotations

import dataclasses
import operator
import os
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import SwarmError

Inputs = dict[str, Any]
"""A kernel's working set: arrays and scalars keyed by name (see each kernel)."""

Params = dict[str, Any]


class KernelError(SwarmError, ValueError):
    """A kernel name, parameter or input is not valid.

    The message names the offending value and what is allowed.
    """


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """Everything the compute and optimization agents need to know about a kernel.

    Attributes:
        name: registry key (``"triad"``, ``"jacobi"``, ...).
        description: one line for UIs and docs.
        tunables: the autotuner's search space, parameter name to candidate values.
            ``run`` accepts any valid value, not only these.
        default_params: every parameter ``run`` understands, with its default.
            Parameters absent from ``tunables`` (``iters``, ``offset``) are part of
            the workload's definition, not tuning knobs.
        make_inputs: ``(n, rng) -> inputs``; allocates and first-touches the
            working set for problem size ``n`` (meaning of ``n`` is per kernel).
        run: ``(inputs, **params) -> result``; the measured computation. Writes
            into output buffers held in ``inputs`` and returns the result array
            (or scalar), never allocating per call on the hot path.
        reference: ``(inputs) -> result``; plain numpy implementation of the same
            computation, used for correctness checks and as the numpy baseline.
        flops: ``(n, params) -> float``; floating-point operations of one run.
        bytes_moved: ``(n, params) -> float``; compulsory DRAM/cache traffic of one
            run (algorithmic minimum, see docs/KERNELS.md for each formula).
        warm: ``() -> None``; compiles (or loads from the numba cache) every
            numba code path of the kernel on tiny inputs with the real types.
        dispatchers: ``() -> list``; the numba dispatchers ``warm`` exercises
            (their ``stats`` tell cache hits from compilations).
        checksum: ``(result) -> float``; a cheap scalar summary of a result.
    """

    name: str
    description: str
    tunables: Mapping[str, list[Any]]
    default_params: Mapping[str, Any]
    make_inputs: Callable[[int, Any], Inputs]
    run: Callable[..., Any]
    reference: Callable[[Inputs], Any]
    flops: Callable[[int, Mapping[str, Any]], float]
    bytes_moved: Callable[[int, Mapping[str, Any]], float]
    warm: Callable[[], None]
    dispatchers: Callable[[], list[Any]]
    checksum: Callable[[Any], float]

    def resolve_params(self, params: Mapping[str, Any] | None) -> Params:
        """Merge ``params`` over the defaults; reject names ``run`` does not know.

        Raises:
            KernelError: an unknown parameter name.
        """
        merged: Params = dict(self.default_params)
        for key, value in (params or {}).items():
            if key not in merged:
                allowed = ", ".join(sorted(merged)) or "none"
                raise KernelError(
                    f"kernel {self.name!r} has no parameter {key!r} (allowed: {allowed})"
                )
            merged[key] = value
        return merged


@dataclasses.dataclass(frozen=True)
class WorkloadResult:
    """One measured workload, as reported by the compute agent.

    Attributes:
        name: kernel name.
        n: problem size (per-kernel meaning).
        params: the parameters used (defaults merged in).
        seconds: median wall time of one run over the repeats performed.
        gflops: ``flops / seconds / 1e9``.
        gbps: ``bytes_moved / seconds / 1e9`` (0 for compute-only kernels).
        checksum: scalar summary of the result of the last run.
        repeats: how many timed runs were performed (``max_seconds`` may cut
            the requested number short; at least one is always done).
    """

    name: str
    n: int
    params: Params
    seconds: float
    gflops: float
    gbps: float
    checksum: float
    repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for messages and JSON)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class WarmUpResult:
    """How one kernel got ready in :func:`engine.kernels.warm_up`.

    Attributes:
        seconds: wall time spent (compilation or cache load plus a tiny run).
        source: ``"cache"`` (loaded from the on-disk numba cache),
            ``"compiled"`` (at least one signature compiled now), ``"memory"``
            (already compiled earlier in this process) or ``"none"`` (no numba
            code, e.g. a pure BLAS path).
    """

    seconds: float
    source: str

    @property
    def from_cache(self) -> bool:
        """True when nothing had to be compiled (disk cache or already in memory)."""
        return self.source in ("cache", "memory")


def max_threads() -> int:
    """The numba thread pool's size, without importing numba.

    Mirrors numba's default (``NUMBA_NUM_THREADS`` or the CPUs this process may
    run on); ``set_num_threads`` can never exceed it.
    """
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env and env.strip().isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def thread_choices() -> list[int]:
    """Candidate thread counts for the autotuner: powers of two up to the pool size."""
    top = max_threads()
    out = []
    k = 1
    while k < top:
        out.append(k)
        k *= 2
    out.append(top)
    return out


def positive_int(spec_name: str, key: str, value: Any) -> int:
    """Validate an integer parameter ``>= 1`` (Python or numpy integer).

    Raises:
        KernelError: ``value`` is not a positive integer.
    """
    try:
        number = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        number = None
    if number is None or number < 1:
        raise KernelError(f"kernel {spec_name!r}: {key} must be an integer >= 1, got {value!r}")
    return number


def non_negative_int(spec_name: str, key: str, value: Any) -> int:
    """Validate an integer parameter ``>= 0`` (0 meaning "default"/"all").

    Raises:
        KernelError: negative or not an integer.
    """
    if value == 0 and not isinstance(value, bool):
        return 0
    return positive_int(spec_name, key, value)


def thread_count(spec_name: str, value: Any) -> int:
    """Validate a ``threads`` parameter: 0 means the whole pool, else ``>= 1``.

    Raises:
        KernelError: negative or not an integer.
    """
    return non_negative_int(spec_name, "threads", value)
