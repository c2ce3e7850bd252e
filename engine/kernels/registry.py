"""The kernel registry and the calls the compute agent makes.

``run_workload`` is what the compute agent's ``execute_workload`` handler calls;
``warm_up`` is what it calls once at start (or the UI, with a progress bar).

Throttling: one *run* of a kernel is indivisible, and its length is set by
``n`` (see the sizes in docs/KERNELS.md).  ``run_workload`` stops repeating once
``max_seconds`` of measured time is used up (at least one run is always made),
so the agent implements a duty cycle by choosing ``n`` so that one run fits its
slice and passing the slice as ``max_seconds``.  Monte Carlo can additionally be
sliced exactly with its ``offset`` parameter.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from engine.kernels import jacobi, matmul, montecarlo, nbody, triad
from engine.kernels.spec import Inputs, KernelError, KernelSpec, WarmUpResult, WorkloadResult

KERNELS: dict[str, KernelSpec] = {
    spec.name: spec
    for spec in (triad.SPEC, jacobi.SPEC, matmul.SPEC, montecarlo.SPEC, nbody.SPEC)
}
"""Every kernel by name.  Importing this costs no compilation and no numba import."""

_inputs_lock = threading.Lock()
_inputs_cache: tuple[tuple[str, int, int], Inputs] | None = None
_warmed: set[str] = set()


def get_kernel(name: str) -> KernelSpec:
    """The spec registered under ``name``.

    Raises:
        KernelError: no such kernel (the message lists the known names).
    """
    try:
        return KERNELS[name]
    except KeyError:
        raise KernelError(
            f"unknown kernel {name!r} (known: {', '.join(sorted(KERNELS))})"
        ) from None


def get_inputs(name: str, n: int, seed: int = 0) -> Inputs:
    """Inputs for ``(name, n, seed)``, reusing the last ones built if they match.

    Only the most recent working set is kept (the triad at large ``n`` holds
    hundreds of MiB); :func:`clear_input_cache` drops it.
    """
    global _inputs_cache
    spec = get_kernel(name)
    key = (name, int(n), int(seed))
    with _inputs_lock:
        if _inputs_cache is not None and _inputs_cache[0] == key:
            return _inputs_cache[1]
        _inputs_cache = None  # free the old working set before allocating the new
        inputs = spec.make_inputs(int(n), np.random.default_rng(seed))
        _inputs_cache = (key, inputs)
        return inputs


def clear_input_cache() -> None:
    """Release the cached working set."""
    global _inputs_cache
    with _inputs_lock:
        _inputs_cache = None


def _ensure_compiled(spec: KernelSpec) -> None:
    if spec.name not in _warmed:
        spec.warm()
        _warmed.add(spec.name)


def _timed(
    fn: Callable[[], Any], repeats: int, max_seconds: float | None
) -> tuple[float, int, Any]:
    """Median seconds of up to ``repeats`` calls, the count done and the last result."""
    if repeats < 1:
        raise KernelError(f"repeats must be >= 1, got {repeats}")
    times: list[float] = []
    result: Any = None
    spent = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        spent += elapsed
        if max_seconds is not None and spent >= max_seconds:
            break
    return statistics.median(times), len(times), result


def _result(
    spec: KernelSpec, n: int, params: dict[str, Any], seconds: float, repeats: int, result: Any
) -> WorkloadResult:
    safe = max(seconds, 1e-12)
    return WorkloadResult(
        name=spec.name,
        n=int(n),
        params=params,
        seconds=seconds,
        gflops=spec.flops(n, params) / safe / 1e9,
        gbps=spec.bytes_moved(n, params) / safe / 1e9,
        checksum=spec.checksum(result),
        repeats=repeats,
    )


def run_workload(
    name: str,
    n: int,
    params: Mapping[str, Any] | None = None,
    repeats: int = 3,
    *,
    max_seconds: float | None = None,
    seed: int = 0,
) -> WorkloadResult:
    """Run kernel ``name`` at size ``n`` and measure it.

    Compilation (or cache loading) happens before timing, once per process.
    Inputs are built with ``np.random.default_rng(seed)`` and reused across calls
    with the same ``(name, n, seed)``.

    Args:
        name: a key of :data:`KERNELS`.
        n: problem size (vector length, grid side, matrix side, samples, bodies).
        params: overrides of the kernel's ``default_params``.
        repeats: timed runs wanted; the median is reported.
        max_seconds: stop repeating once this much run time is spent.
        seed: input generator seed.

    Raises:
        KernelError: unknown kernel, unknown/invalid parameter, invalid ``n``.
    """
    spec = get_kernel(name)
    merged = spec.resolve_params(params)
    inputs = get_inputs(name, n, seed)
    _ensure_compiled(spec)
    seconds, done, result = _timed(lambda: spec.run(inputs, **merged), repeats, max_seconds)
    return _result(spec, n, merged, seconds, done, result)


def run_reference_workload(
    name: str,
    n: int,
    params: Mapping[str, Any] | None = None,
    repeats: int = 3,
    *,
    max_seconds: float | None = None,
    seed: int = 0,
) -> WorkloadResult:
    """Like :func:`run_workload` but timing the plain-numpy ``reference``.

    Only the workload-defining parameters (those not in ``tunables``, such as
    Jacobi's ``iters``) reach the reference; tuning knobs do not apply to it.
    The result's ``params`` is ``{"impl": "numpy", **workload params}``.
    """
    spec = get_kernel(name)
    merged = spec.resolve_params(params)
    workload = {k: v for k, v in merged.items() if k not in spec.tunables}
    inputs = get_inputs(name, n, seed)
    spec.reference(inputs, **workload)  # allocate its scratch outside the timing
    seconds, done, result = _timed(
        lambda: spec.reference(inputs, **workload), repeats, max_seconds
    )
    return _result(spec, n, {"impl": "numpy", **workload}, seconds, done, result)


def _cache_counts(dispatchers: list[Any]) -> tuple[int, int]:
    hits = misses = 0
    for disp in dispatchers:
        stats = disp.stats
        hits += sum(stats.cache_hits.values())
        misses += sum(stats.cache_misses.values())
    return hits, misses


def warm_up(
    names: Iterable[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, WarmUpResult]:
    """Compile, or load from the on-disk cache, every numba path of each kernel.

    Each kernel runs once on tiny inputs with the production types, so later
    calls never compile.  ``progress(name, done, total)`` is called after each
    kernel (``done`` counts from 1).  Where the code came from is read from the
    dispatchers' ``stats.cache_hits`` / ``stats.cache_misses`` counters.

    Returns:
        Per kernel name, the seconds spent and the source
        (``"cache"``/``"compiled"``/``"memory"``/``"none"``).
    """
    chosen = list(KERNELS) if names is None else list(names)
    specs = [get_kernel(name) for name in chosen]
    out: dict[str, WarmUpResult] = {}
    for index, spec in enumerate(specs, start=1):
        start = time.perf_counter()
        dispatchers = spec.dispatchers()
        hits0, misses0 = _cache_counts(dispatchers)
        spec.warm()
        _warmed.add(spec.name)
        hits1, misses1 = _cache_counts(dispatchers)
        if not dispatchers:
            source = "none"
        elif misses1 > misses0:
            source = "compiled"
        elif hits1 > hits0:
            source = "cache"
        else:
            source = "memory"
        out[spec.name] = WarmUpResult(seconds=time.perf_counter() - start, source=source)
        if progress is not None:
            progress(spec.name, index, len(specs))
    return out
