"""Compute-kernel benchmark: numba kernels vs plain numpy vs the machine's copy bandwidth.

Usage::

    python -m benchmarks.compute [--json PATH] [--quick] [--repeats N]

For each case it measures the registry kernel (``engine.kernels.run_workload``,
median of repeats, compilation excluded) and the same computation in plain numpy
(``run_reference_workload``), and it measures ``copy_gbps``: ``np.copyto`` between
two arrays far beyond the last-level cache, counted as read + write (2 x 8 bytes
per element), sampled at the start, before every case and at the end (the
median of all samples is reported).  Everything runs in one process, so ratios are comparable even on a
shared, noisy machine.

JSON written with ``--json``::

    {"copy_gbps": float,
     "kernels": [{"name", "n", "gbps", "gflops", "numpy_gbps", "numpy_gflops"}, ...]}

``name`` is the registry name; a non-default variant gets a suffix
(``matmul_blocked`` is ``matmul`` with ``variant="blocked"``; plain ``matmul`` is the
default BLAS path).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.kernels import (
    WorkloadResult,
    clear_input_cache,
    run_reference_workload,
    run_workload,
    warm_up,
)

MIB = 1 << 20
MIN_SECONDS = 0.25
MAX_REPEATS = 200
MEMORY_BOUND = ("triad", "jacobi")


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark row: a registry kernel at one size with fixed params."""

    label: str
    kernel: str
    n: int
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


FULL_CASES = [
    Case("triad", "triad", 1 << 20),  # 3 x 8 MiB: about the size of the LLC
    Case("triad", "triad", 1 << 23),  # 3 x 64 MiB
    Case("triad", "triad", 1 << 25),  # 3 x 256 MiB: far beyond the LLC
    Case("jacobi", "jacobi", 512),
    Case("jacobi", "jacobi", 2048),  # 32 MiB per grid, 3 grids
    Case("matmul", "matmul", 256),
    Case("matmul", "matmul", 1024),
    Case("matmul_blocked", "matmul", 256, {"variant": "blocked"}),
    Case("matmul_blocked", "matmul", 1024, {"variant": "blocked"}),
    Case("montecarlo", "montecarlo", 1 << 24),
    Case("nbody", "nbody", 1024),
    Case("nbody", "nbody", 4096),
]

QUICK_CASES = [
    Case("triad", "triad", 1 << 20),
    Case("triad", "triad", 1 << 24),  # 3 x 128 MiB: beyond the LLC
    Case("jacobi", "jacobi", 512),
    Case("matmul", "matmul", 256),
    Case("matmul_blocked", "matmul", 256, {"variant": "blocked"}),
    Case("montecarlo", "montecarlo", 1 << 22),
    Case("nbody", "nbody", 1024),
]


class CopyProbe:
    """``np.copyto(dst, src)`` bandwidth on two ``nbytes`` float64 arrays.

    Counted as read + write (2 x nbytes per copy).  The arrays are allocated and
    first-touched once, so the probe can be sampled between benchmark cases and
    the copy figure reflects the same machine conditions as the kernels.
    """

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.src = np.empty(nbytes // 8)
        self.src.fill(1.0)
        self.dst = np.empty(nbytes // 8)
        self.dst.fill(0.0)
        np.copyto(self.dst, self.src)

    def sample(self, repeats: int) -> list[float]:
        """One GB/s figure per copy."""
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.copyto(self.dst, self.src)
            rates.append(2.0 * self.nbytes / (time.perf_counter() - start) / 1e9)
        return rates


def _measure(
    runner: Callable[..., WorkloadResult], case: Case, repeats: int, budget: float
) -> WorkloadResult:
    """Median over enough repeats to fill ~``MIN_SECONDS`` (short kernels are noisy).

    One untimed-for-the-report run estimates the duration; then at least
    ``repeats`` and at most ``MAX_REPEATS`` runs, stopped by ``budget`` seconds.
    """
    probe = runner(case.kernel, case.n, case.params, 1)
    wanted = int(MIN_SECONDS / max(probe.seconds, 1e-6))
    count = min(max(repeats, wanted), MAX_REPEATS)
    return runner(case.kernel, case.n, case.params, count, max_seconds=budget)


def run_suite(
    quick: bool = False,
    repeats: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every case; return the JSON-shaped report (see module docstring)."""
    cases = QUICK_CASES if quick else FULL_CASES
    repeats = repeats or (3 if quick else 7)
    copy_bytes = (128 if quick else 256) * MIB
    budget = 1.0 if quick else 3.0
    say = log or (lambda _msg: None)

    say("warming up kernels (compile or load from the numba cache)...")
    for name, info in warm_up().items():
        say(f"  {name}: {info.source} in {info.seconds:.2f} s")
    probe = CopyProbe(copy_bytes)
    copies = probe.sample(repeats)
    rows = []
    for case in cases:
        say(f"{case.label} n={case.n} ...")
        copies += probe.sample(2)
        mine = _measure(run_workload, case, repeats, budget)
        ref = _measure(run_reference_workload, case, repeats, budget)
        rows.append(
            {
                "name": case.label,
                "n": case.n,
                "gbps": mine.gbps,
                "gflops": mine.gflops,
                "numpy_gbps": ref.gbps,
                "numpy_gflops": ref.gflops,
            }
        )
        clear_input_cache()
    copies += probe.sample(repeats)
    return {"copy_gbps": statistics.median(copies), "kernels": rows}


def _speedup(row: dict[str, Any]) -> float:
    if row["numpy_gflops"] > 0:
        return row["gflops"] / row["numpy_gflops"]
    return row["gbps"] / row["numpy_gbps"] if row["numpy_gbps"] > 0 else float("nan")


def format_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width text table (also valid Markdown)."""
    copy = report["copy_gbps"]
    lines = [
        f"copy bandwidth (np.copyto, read+write): {copy:.1f} GB/s",
        "",
        "| kernel | n | GB/s | GFLOP/s | numpy GB/s | numpy GFLOP/s | vs numpy | GB/s vs copy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["kernels"]:
        of_copy = f"{row['gbps'] / copy:.0%}" if row["name"] in MEMORY_BOUND else "-"
        lines.append(
            f"| {row['name']} | {row['n']} | {row['gbps']:.1f} | {row['gflops']:.2f} "
            f"| {row['numpy_gbps']:.1f} | {row['numpy_gflops']:.2f} "
            f"| {_speedup(row):.2f}x | {of_copy} |"
        )
    return "\n".join(lines)


def triad_fraction_of_copy(report: dict[str, Any]) -> float:
    """Triad GB/s at its largest size divided by the copy bandwidth."""
    triads = [row for row in report["kernels"] if row["name"] == "triad"]
    largest = max(triads, key=lambda row: row["n"])
    return float(largest["gbps"] / report["copy_gbps"])


def _loadavg() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - platform without getloadavg
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compute", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case")
    args = parser.parse_args(argv)
    load_before = _loadavg()
    report = run_suite(
        quick=args.quick, repeats=args.repeats, log=lambda m: print(m, file=sys.stderr)
    )
    print(format_table(report))
    print(f"\ntriad (largest n) = {triad_fraction_of_copy(report):.0%} of copy bandwidth")
    print(f"load average (1 min) before/after: {load_before} / {_loadavg()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
