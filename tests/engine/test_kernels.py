"""Compute kernels: correctness against numpy, formulas, registry, warm-up, CUDA simulator.

Sizes are tiny; no test asserts on timing.  The numba on-disk cache makes reruns fast.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine.kernels import (
    KERNELS,
    KernelError,
    WorkloadResult,
    _loader,
    clear_input_cache,
    get_kernel,
    run_reference_workload,
    run_workload,
    warm_up,
)
from engine.kernels.cuda import cuda_available

TINY = {"triad": 1000, "jacobi": 17, "matmul": 37, "montecarlo": 20_000, "nbody": 50}
RTOL = {"triad": 0.0, "jacobi": 0.0, "matmul": 1e-12, "montecarlo": 0.0, "nbody": 1e-10}


def _inputs(name: str, n: int | None = None, seed: int = 1):
    return KERNELS[name].make_inputs(n or TINY[name], np.random.default_rng(seed))


def _assert_matches(name: str, got, want) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL[name], atol=1e-12)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_registry_lists_the_five_kernels_with_complete_specs() -> None:
    """Every kernel has tunables, defaults covering them, and a description."""
    assert set(KERNELS) == {"triad", "jacobi", "matmul", "montecarlo", "nbody"}
    for name, spec in KERNELS.items():
        assert spec.name == name and spec.description
        assert set(spec.tunables) <= set(spec.default_params)
        assert all(values for values in spec.tunables.values())


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_matches_numpy_reference(name: str) -> None:
    """Default params and one thread both reproduce the numpy reference."""
    spec = KERNELS[name]
    inputs = _inputs(name)
    want = np.array(spec.reference(inputs), copy=True)
    for params in ({}, {"threads": 1}):
        _assert_matches(name, spec.run(inputs, **params), want)


@pytest.mark.parametrize("n", [1, 3, 8, 13, 70])
@pytest.mark.parametrize("tile", [1, 4, 7, 64])
def test_blocked_matmul_handles_edges(n: int, tile: int) -> None:
    """Odd sizes and tiles that do not divide n exercise the edge loops."""
    inputs = _inputs("matmul", n)
    got = KERNELS["matmul"].run(inputs, variant="blocked", tile=tile)
    np.testing.assert_allclose(got, inputs["a"] @ inputs["b"], rtol=1e-12, atol=1e-12)


def test_matmul_defaults_to_blas() -> None:
    """The registry's default matmul is the BLAS path; blocked is opt-in."""
    spec = KERNELS["matmul"]
    assert spec.default_params["variant"] == "blas"
    assert spec.tunables["variant"] == ["blas", "blocked"]
    with pytest.raises(KernelError, match="unknown variant"):
        spec.run(_inputs("matmul", 4), variant="strassen")


def test_jacobi_iteration_count_and_boundary() -> None:
    """Even and odd sweep counts end in the right buffer; the boundary never moves."""
    spec = KERNELS["jacobi"]
    inputs = _inputs("jacobi")
    for iters in (1, 2, 5):
        got = spec.run(inputs, iters=iters)
        np.testing.assert_array_equal(got, spec.reference(inputs, iters=iters))
        np.testing.assert_array_equal(got[0], inputs["u0"][0])
        np.testing.assert_array_equal(got[:, -1], inputs["u0"][:, -1])


def test_montecarlo_is_thread_chunk_and_slice_invariant() -> None:
    """Counts depend only on (key, offset, n): slices add up exactly."""
    spec = KERNELS["montecarlo"]
    whole = _inputs("montecarlo", 30_000)
    pi = spec.run(whole)
    assert abs(pi - np.pi) < 0.05
    for params in ({"chunk": 1}, {"chunk": 4096, "threads": 1}, {"chunk": 10**6}):
        assert spec.run(whole, **params) == pi
    half = dict(whole, n=15_000)
    inside = (spec.run(half) + spec.run(half, offset=15_000)) * 15_000 / 4
    assert round(inside) == round(pi * 30_000 / 4)
    assert spec.run(half, offset=15_000) == spec.reference(half, offset=15_000)


@pytest.mark.parametrize(
    ("name", "n", "params", "flops", "nbytes"),
    [
        ("triad", 1000, {}, 2000, 24_000),
        ("jacobi", 10, {"iters": 3}, 4 * 64 * 3, 16 * 100 * 3),
        ("matmul", 10, {}, 2000, 2400),
        ("montecarlo", 1000, {}, 5000, 0),
        ("nbody", 10, {}, 2000, 560),
    ],
)
def test_flops_and_bytes_formulas(name: str, n: int, params: dict, flops: float, nbytes: float) -> None:
    """The counting conventions documented in docs/KERNELS.md."""
    spec = KERNELS[name]
    merged = spec.resolve_params(params)
    assert spec.flops(n, merged) == flops
    assert spec.bytes_moved(n, merged) == nbytes


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_tunable_combination_runs_correctly(name: str) -> None:
    """The autotuner's whole search space runs and stays correct."""
    spec = KERNELS[name]
    inputs = _inputs(name)
    want = np.array(spec.reference(inputs), copy=True)
    keys = sorted(spec.tunables)
    for values in itertools.product(*(spec.tunables[k] for k in keys)):
        _assert_matches(name, spec.run(inputs, **dict(zip(keys, values))), want)


def test_threads_beyond_pool_are_clamped_and_bad_values_rejected() -> None:
    """threads > pool size runs (clamped); negative or non-integer raise."""
    spec = KERNELS["triad"]
    inputs = _inputs("triad")
    spec.run(inputs, threads=10_000)
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(KernelError):
            spec.run(inputs, threads=bad)
    with pytest.raises(KernelError):
        KERNELS["matmul"].run(_inputs("matmul", 4), variant="blocked", tile=0)
    with pytest.raises(KernelError):
        spec.run(inputs, chunk=-1)


def test_parallel_settings_are_restored_after_a_call() -> None:
    """threads and chunk apply to one call only."""
    import numba

    threads, chunk = numba.get_num_threads(), numba.get_parallel_chunksize()
    KERNELS["nbody"].run(_inputs("nbody"), threads=1, chunk=16)
    assert (numba.get_num_threads(), numba.get_parallel_chunksize()) == (threads, chunk)


def test_run_workload_reports_a_measurement() -> None:
    """Result fields, merged params, gflops/gbps from the formulas, checksum of the result."""
    clear_input_cache()
    result = run_workload("triad", 4096, {"threads": 1}, repeats=3, seed=7)
    assert isinstance(result, WorkloadResult)
    assert (result.name, result.n, result.params, result.repeats) == ("triad", 4096, {"threads": 1, "chunk": 0}, 3)
    assert result.seconds > 0
    assert result.gbps == pytest.approx(24 * 4096 / result.seconds / 1e9)
    assert result.gflops == pytest.approx(2 * 4096 / result.seconds / 1e9)
    inputs = KERNELS["triad"].make_inputs(4096, np.random.default_rng(7))
    assert result.checksum == pytest.approx(float(np.sum(KERNELS["triad"].reference(inputs))))
    assert json.loads(json.dumps(result.to_dict()))["name"] == "triad"
    ref = run_reference_workload("jacobi", 16, {"iters": 4, "threads": 2}, repeats=1)
    assert ref.params == {"impl": "numpy", "iters": 4}
    clear_input_cache()


def test_run_workload_stops_at_max_seconds() -> None:
    """A zero time budget still makes exactly one run."""
    result = run_workload("montecarlo", 1000, repeats=50, max_seconds=0.0)
    assert result.repeats == 1
    clear_input_cache()


def test_run_workload_rejects_unknown_names() -> None:
    """Errors name what is allowed."""
    with pytest.raises(KernelError, match="known: jacobi, matmul"):
        run_workload("fft", 10)
    with pytest.raises(KernelError, match="allowed: chunk, offset, threads"):
        run_workload("montecarlo", 10, {"tile": 4})
    with pytest.raises(KernelError, match="n must be"):
        get_kernel("jacobi").make_inputs(2, np.random.default_rng())


def test_warm_up_reports_progress_per_kernel() -> None:
    """progress(name, done, total) once per kernel, in order; a second call compiles nothing."""
    calls: list[tuple[str, int, int]] = []
    first = warm_up(progress=lambda *args: calls.append(args))
    assert calls == [(name, i, len(KERNELS)) for i, name in enumerate(KERNELS, start=1)]
    assert set(first) == set(KERNELS)
    assert all(r.source in {"cache", "compiled", "memory"} and r.seconds >= 0 for r in first.values())
    again = warm_up(["triad", "nbody"])
    assert list(again) == ["triad", "nbody"]
    assert all(r.source == "memory" and r.from_cache for r in again.values())
    with pytest.raises(KernelError):
        warm_up(["nope"])


def test_restarted_process_loads_kernels_from_disk_cache() -> None:
    """After one process compiled, the next loads from the numba cache."""
    code = """
        from engine.kernels import warm_up
        print(warm_up(["triad"])["triad"].source)
    """
    first = _run_python(code)
    assert first.returncode == 0, first.stderr
    second = _run_python(code)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "cache"


def test_import_compiles_nothing() -> None:
    """Importing engine.kernels adds no numba import and loads no compiled module."""
    proc = _run_python(
        """
        import sys, engine
        before = "numba" in sys.modules
        import engine.kernels
        print(before, "numba" in sys.modules, "engine.kernels._cpu" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr
    before, after, cpu_loaded = proc.stdout.split()
    assert after == before and cpu_loaded == "False"


def test_cache_dir_policy(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """NUMBA_CACHE_DIR wins; else in-tree if writable; else the user cache dir."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "explicit"))
    assert _loader.choose_cache_dir() == _loader.CacheInfo(str(tmp_path / "explicit"), "NUMBA_CACHE_DIR")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(_loader, "_dir_writable", lambda path: True)
    assert _loader.choose_cache_dir().source == "in-tree"
    monkeypatch.setattr(_loader, "_dir_writable", lambda path: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    info = _loader.choose_cache_dir()
    assert info == _loader.CacheInfo(str(tmp_path / "swarm-tui" / "numba"), "user")


def test_cuda_available_gives_a_reason() -> None:
    """Without a GPU the answer is False with an 'unavailable: ...' reason."""
    ok, reason = cuda_available()
    assert isinstance(ok, bool) and reason
    if not ok:
        assert reason.startswith("unavailable:")


def test_cuda_kernels_match_numpy_under_simulator() -> None:
    """NUMBA_ENABLE_CUDASIM=1 (set before numba loads, hence a subprocess)."""
    proc = _run_python(
        """
        import numpy as np
        from engine.kernels import KERNELS
        from engine.kernels.cuda import cuda_available, jacobi_cuda, triad_cuda
        ok, reason = cuda_available()
        assert ok and reason.startswith("simulator"), reason
        rng = np.random.default_rng(3)
        b, c = rng.random(700), rng.random(700)
        np.testing.assert_allclose(triad_cuda(b, c, 2.5), b + 2.5 * c, rtol=1e-15)
        inputs = KERNELS["jacobi"].make_inputs(11, rng)
        want = KERNELS["jacobi"].reference(inputs, iters=3)
        np.testing.assert_allclose(jacobi_cuda(inputs["u0"], 3), want, rtol=1e-15)
        print("ok")
        """,
        NUMBA_ENABLE_CUDASIM="1",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
