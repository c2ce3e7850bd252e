"""pytest-benchmark wrapper over ``benchmarks.compute`` (not in the default test run).

Run with::

    python -m pytest tests/benchmarks/test_compute_bench.py --benchmark-only

Figures go to pytest-benchmark's report (and ``extra_info``); nothing here
asserts on speed.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

from benchmarks.compute import QUICK_CASES, run_suite, triad_fraction_of_copy  # noqa: E402
from engine.kernels import KERNELS, clear_input_cache, warm_up  # noqa: E402


@pytest.mark.parametrize("case", QUICK_CASES, ids=lambda c: f"{c.label}-{c.n}")
def test_kernel(benchmark, case) -> None:
    """One registry kernel run per round, at the quick suite's sizes."""
    spec = KERNELS[case.kernel]
    params = spec.resolve_params(case.params)
    warm_up([case.kernel])
    inputs = spec.make_inputs(case.n, np.random.default_rng(0))
    benchmark.extra_info.update(
        flops=spec.flops(case.n, params), bytes=spec.bytes_moved(case.n, params)
    )
    benchmark(lambda: spec.run(inputs, **params))
    stats = benchmark.stats.stats if benchmark.stats else None
    if stats is not None and stats.median > 0:
        benchmark.extra_info["gflops"] = spec.flops(case.n, params) / stats.median / 1e9
        benchmark.extra_info["gbps"] = spec.bytes_moved(case.n, params) / stats.median / 1e9


def test_quick_suite(benchmark) -> None:
    """The whole quick harness once; the report lands in ``extra_info``."""
    report = benchmark.pedantic(run_suite, kwargs={"quick": True}, rounds=1, iterations=1)
    clear_input_cache()
    benchmark.extra_info["copy_gbps"] = report["copy_gbps"]
    benchmark.extra_info["triad_fraction_of_copy"] = triad_fraction_of_copy(report)
    benchmark.extra_info["kernels"] = report["kernels"]
    assert report["copy_gbps"] > 0
    assert {row["name"] for row in report["kernels"]} >= {"triad", "matmul", "nbody"}
