"""The autotuner against exhaustive search and the default, kernel by kernel, in one run.

    python -m benchmarks.autotune [--json PATH] [--kernels triad,jacobi,...] [--cap N] [--repeats 3]

For each kernel (at the optimization agent's tuning size, ``TUNING_SIZES``), with
``threads`` up to ``--cap`` (default: every core; below that the process is pinned to
``--cap`` cores, as a compute agent is by the affinity plan -- ``--cap 1`` is the
default swarm on this 2-core VM, two compute agents with a core each):

1. successive halving (``engine.autotune``, eta 2, ``--min-runs`` first-round runs,
   as the optimization agent runs it) -- the *tuned* configuration;
2. exhaustive search at the same final fidelity (every configuration measured as
   many times as successive halving's winner was) -- the *exhaustive best*;
3. a final interleaved measurement of the default, the tuned and the exhaustive
   best configurations (``--final`` rounds, shuffled order in each round): their
   medians are the figures compared, so the three are measured under the same
   conditions.

A measurement is one kernel run, repeated to last at least 2 ms (the same
``KernelTrial`` the agent uses); "evaluations" count measurements.  Steps 1-3 are
repeated ``--repeats`` times; the JSON gives per-kernel medians of the ratios and
how often successive halving found the exhaustive best.  Wall-clock time only: this
VM has no hardware counters.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from typing import Any

from engine import autotune
from engine.agents.optimization import (
    TUNING_SIZES,
    KernelTrial,
    pin_to_least_busy,
    tuning_space,
)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return autotune.config_key(a) == autotune.config_key(b)


def bench_kernel(name: str, n: int, cap: int, final_rounds: int, seed: int, min_runs: int) -> dict[str, Any]:
    """One repeat of steps 1-3 for one kernel."""
    trial = KernelTrial(name, n)
    configs, default = tuning_space(name, cap)
    trial.calibrate(default)
    t0 = time.perf_counter()
    sh = autotune.successive_halving(configs, trial, eta=2, min_runs=min_runs, seed=seed)
    sh_s = time.perf_counter() - t0
    fidelity = autotune.sh_final_samples(len(configs), eta=2, min_runs=min_runs)
    t0 = time.perf_counter()
    ex = autotune.exhaustive(configs, trial, runs=fidelity, seed=seed)
    ex_s = time.perf_counter() - t0
    contenders = {"default": default, "tuned": sh.best, "exhaustive": ex.best}
    distinct = {autotune.config_key(c): c for c in contenders.values()}  # one config, one set of samples
    samples: dict[Any, list[float]] = {k: [] for k in distinct}
    rng = random.Random(seed)
    for _ in range(final_rounds):
        order = list(distinct)
        rng.shuffle(order)
        for key in order:
            samples[key].append(trial(distinct[key]))
    med = {name: statistics.median(samples[autotune.config_key(c)]) for name, c in contenders.items()}
    spec = trial.spec
    return {
        "n": n, "configs": len(configs), "runs_per_measurement": trial.reps,
        "default": {"params": default, "seconds": med["default"]},
        "tuned": {"params": sh.best, "seconds": med["tuned"], "evaluations": sh.evaluations,
                  "search_s": sh_s},
        "exhaustive": {"params": ex.best, "seconds": med["exhaustive"], "evaluations": ex.evaluations,
                       "search_s": ex_s},
        "tuned_vs_default": med["default"] / med["tuned"],
        "tuned_vs_exhaustive": med["exhaustive"] / med["tuned"],
        "found_exhaustive_best": _same(sh.best, ex.best),
        "tuned_gflops": spec.flops(n, spec.resolve_params(sh.best)) / med["tuned"] / 1e9,
        "tuned_gbps": spec.bytes_moved(n, spec.resolve_params(sh.best)) / med["tuned"] / 1e9,
    }  # fmt: skip


def run(kernels: list[str], cap: int, repeats: int, final_rounds: int, seed: int, min_runs: int = 2,
        progress: bool = True) -> dict[str, Any]:
    """Every kernel ``repeats`` times; medians of the ratios.

    With ``cap`` below the number of cores the process is pinned to ``cap`` cores, as
    the optimization agent pins itself (and as the affinity plan pins a compute agent).
    """
    load_before = os.getloadavg()
    pinned = pin_to_least_busy(cap) is not None and cap < (os.cpu_count() or 1)
    out: dict[str, Any] = {}
    for name in kernels:
        reps = []
        for r in range(repeats):
            res = bench_kernel(name, TUNING_SIZES[name], cap, final_rounds, seed + r, min_runs)
            reps.append(res)
            if progress:
                print(f"{name:10s} #{r + 1}: tuned {res['tuned']['params']} {res['tuned_vs_default']:.2f}x default, "
                      f"{res['tuned_vs_exhaustive']:.3f}x exhaustive best; evaluations "
                      f"{res['tuned']['evaluations']} vs {res['exhaustive']['evaluations']}", file=sys.stderr)
        out[name] = {
            "n": reps[0]["n"], "configs": reps[0]["configs"],
            "tuned_vs_default": statistics.median(x["tuned_vs_default"] for x in reps),
            "tuned_vs_exhaustive": statistics.median(x["tuned_vs_exhaustive"] for x in reps),
            "evaluations": {"successive_halving": reps[0]["tuned"]["evaluations"],
                            "exhaustive": reps[0]["exhaustive"]["evaluations"]},
            "found_exhaustive_best": sum(x["found_exhaustive_best"] for x in reps),
            "repeats": reps,
        }  # fmt: skip
    return {
        "kernels": out,
        "setup": {"cap_threads": cap, "pinned_to_cap_cores": pinned, "sh_min_runs": min_runs,
                  "repeats": repeats, "final_rounds": final_rounds, "seed": seed,
                  "cpus": os.cpu_count(), "objective": "wall-clock seconds per run (no hardware counters here)",
                  "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())},
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--kernels", default=",".join(TUNING_SIZES))
    parser.add_argument("--cap", type=int, default=os.cpu_count() or 1, help="most threads per configuration")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--final", type=int, default=31, help="rounds of the final interleaved measurement")
    parser.add_argument("--min-runs", type=int, default=2, help="successive halving's first-round runs")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    names = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = [k for k in names if k not in TUNING_SIZES]
    if unknown:
        parser.error(f"unknown kernel(s) {unknown}; choose from {', '.join(TUNING_SIZES)}")
    out = run(names, args.cap, args.repeats, args.final, args.seed, args.min_runs)
    print(f"{'kernel':10s} {'configs':>7s} {'tuned/default':>13s} {'tuned/exhaustive':>16s} "
          f"{'evals SH':>8s} {'evals ex':>8s} {'found best':>10s}")
    for name, r in out["kernels"].items():
        print(f"{name:10s} {r['configs']:7d} {r['tuned_vs_default']:12.2f}x {r['tuned_vs_exhaustive']:15.3f}x "
              f"{r['evaluations']['successive_halving']:8d} {r['evaluations']['exhaustive']:8d} "
              f"{r['found_exhaustive_best']:>7d}/{args.repeats}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
