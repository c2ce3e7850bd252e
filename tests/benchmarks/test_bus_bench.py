"""pytest-benchmark wrapper over ``benchmarks.bus`` (not in the default test run).

Run with::

    python -m pytest tests/benchmarks/test_bus_bench.py --benchmark-only

Each transport runs the quick harness once (two spawned processes on two
cores); the measured figures land in ``extra_info``.  Nothing here asserts on
speed -- only that every message arrived, in order, and the idle wake-up worked.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pytest_benchmark")

from benchmarks.bus import KEYS, QUICK, run_transport  # noqa: E402
from benchmarks._bus_transports import available_transports  # noqa: E402


@pytest.mark.parametrize("transport", available_transports())
def test_transport(benchmark: Any, transport: str) -> None:
    """Round trip, throughput at 64 B and 4 KiB, CPU and idle cost of one transport."""
    result: dict[str, Any] = {}

    def once() -> None:
        result.update(run_transport(transport, QUICK))

    benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update({k: result[k] for k in KEYS})
    errors = result["errors"]
    assert errors["rt_bad_replies"] == 0
    assert errors["seq_errors_64"] == 0 and errors["seq_errors_4k"] == 0
    assert errors["idle_wake_ok"]
