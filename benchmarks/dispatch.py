"""Dispatch policies on a real swarm of unequal workers, side by side in one run.

    python -m benchmarks.dispatch [--json PATH] [--rounds 3] [--tasks 1200] [--window 8]

Each run starts a fresh swarm: four ``bench_worker`` agents (``benchmarks.workers``:
real CPU work per task, then a rest set by the agent's duty cycle, so a worker at a
third of another's duty cycle serves a task in three times the time) and a learning
agent.  Through ``Orchestrator.throttle_agent`` ``w1`` and ``w2`` run at duty cycle
0.6 and ``w3``, ``w4`` at a third of that (0.2) before the stream starts; ``w2`` is
throttled to 0.2 once half the tasks have been submitted.  (0.6, not 1.0: four
workers then need at most 1.6 of this machine's 2 cores, so their speeds are set by
the duty cycles, not by a fight over cores.)  The same seeded task stream (70 % ``light``, 30 % ``heavy`` = twice the
work, sizes +-25 %) is pushed through ``Orchestrator.submit_task`` with ``--window``
tasks in flight, under each policy:

* ``round_robin``, ``random``, ``jsq`` (join shortest queue), ``p2c`` (power of two
  choices) -- the baselines in ``engine.dispatch``;
* ``learning`` -- the orchestrator's own policy with ``load_balancing = true``
  (``LearnedDispatch``, fed by the running learning agent);
* ``oracle`` -- shortest expected delay with the true duty cycles and each task's
  true work (in-flight work + this task's, over the speed), told of ``w2``'s
  slow-down at the moment it happens.

Throughput is tasks / (last completion - first submission); p99 is the 99th
percentile of submit-to-reply latency.  Policies run in a shuffled order in every
round; the JSON gives each policy's median over rounds, and the ratios are medians
of per-round ratios (same round = same machine conditions).  The machine is shared:
the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from typing import Any

from benchmarks._stats import percentile
from benchmarks.workers import spin
from engine import Orchestrator
from engine.config import config_from_mapping
from engine.dispatch import (
    JoinShortestQueue,
    LearnedDispatch,
    PowerOfTwoChoices,
    RandomChoice,
    RoundRobin,
    ShortestExpectedDelay,
)

POLICIES = ("round_robin", "random", "jsq", "p2c", "learning", "oracle")
WORKERS = ("w1", "w2", "w3", "w4")
FAST = 0.6
"""Duty cycle of the fast workers: four workers then need at most 1.6 of the 2 cores, so
their speeds are set by their duty cycles rather than by fighting over cores."""
SLOW = FAST / 3.0
BUILTIN = ("compute", "resource", "thermal", "optimization", "fault_tolerance", "learning")


def bench_config() -> Any:
    """A swarm with the benchmark worker type, load balancing on, no default agents."""
    return config_from_mapping({
        "max_agents": 8, "auto_scaling": False, "load_balancing": True,
        "optimization_interval": 3600.0, "monitoring_interval": 1.0,
        "agents": {name: {"count": 0} for name in BUILTIN} | {"learning": {"count": 0, "cycle_interval": 0.1}},
        "custom_agents": {"bench_worker": {"import_path": "benchmarks.workers:BenchWorker", "count": 0,
                                           "cycle_interval": 1.0}},
        "security": {"allowed_agent_modules": ["benchmarks"]},
        "supervisor": {"heartbeat_timeout": 10.0},
    }, "benchmarks.dispatch")


def units_per_ms() -> float:
    """How many ``spin`` units this machine does per millisecond (median of 7 runs)."""
    rates = []
    for _ in range(7):
        t0 = time.perf_counter()
        spin(100_000)
        rates.append(100_000 / ((time.perf_counter() - t0) * 1000.0))
    return statistics.median(rates)


def task_stream(n: int, light_units: int, seed: int) -> list[tuple[str, int]]:
    """The same ``(kind, units)`` sequence for every policy."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = "heavy" if rng.random() < 0.3 else "light"
        units = int(light_units * (2 if kind == "heavy" else 1) * rng.uniform(0.75, 1.25))
        out.append((kind, units))
    return out


async def run_policy(policy_name: str, stream: list[tuple[str, int]], window: int, seed: int) -> dict[str, Any]:
    """One fresh swarm, one pass of the stream under one policy."""
    speeds = {w: FAST for w in WORKERS}
    async with Orchestrator(bench_config()) as swarm:
        for w in WORKERS:
            await swarm.create_agent("bench_worker", id=w)
        learner = await swarm.create_agent("learning", id="learner")
        for aid in (*WORKERS, learner):
            await swarm.wait_ready(aid)
        for w in WORKERS:
            speeds[w] = FAST if w in ("w1", "w2") else SLOW
            await swarm.throttle_agent(w, speeds[w])
        policy: Any = {
            "round_robin": lambda: RoundRobin(),
            "random": lambda: RandomChoice(seed),
            "jsq": lambda: JoinShortestQueue(),
            "p2c": lambda: PowerOfTwoChoices(seed),
            "oracle": lambda: ShortestExpectedDelay(lambda: speeds, work=lambda f: f["units"], name="oracle"),
            "learning": lambda: None,
        }[policy_name]()
        if policy is not None:
            swarm.set_dispatch_policy(policy)
        elif not isinstance(swarm.dispatcher.policy, LearnedDispatch):
            raise RuntimeError("load_balancing = true did not install the learned policy")
        await asyncio.sleep(0.3)  # throttle commands applied, agents idle
        latencies: list[float] = []
        per_agent: dict[str, int] = {}
        index = 0
        half = len(stream) // 2

        async def client() -> None:
            nonlocal index
            while index < len(stream):
                i = index
                index += 1
                if i == half:
                    await swarm.throttle_agent("w2", SLOW)
                    speeds["w2"] = SLOW
                kind, units = stream[i]
                result = await swarm.submit_task(kind, {"units": units}, agent_type="bench_worker",
                                                 features={"units": float(units)}, timeout=30.0)
                latencies.append(result.latency_s)
                per_agent[result.agent_id] = per_agent.get(result.agent_id, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(window)))
        elapsed = time.perf_counter() - t0
        out: dict[str, Any] = {
            "throughput": len(stream) / elapsed, "p99_ms": 1000.0 * percentile(latencies, 0.99),
            "p50_ms": 1000.0 * percentile(latencies, 0.5), "seconds": elapsed, "per_agent": per_agent,
        }  # fmt: skip
        if isinstance(swarm.dispatcher.policy, LearnedDispatch):
            pol = swarm.dispatcher.policy
            pol.flush()
            await asyncio.sleep(0.3)
            summary = (await swarm.communicator.request(learner, "learning_summary", timeout=5)).payload
            out["learner"] = {k: summary[k] for k in (
                "observations", "reward_tasks_per_s", "regret_ms_per_decision", "regret_total_s",
                "exploration_rate", "prediction_mape", "baseline_mape", "service_mean_s")}
            out["learner"]["jsq_fallback_decisions"] = pol.fallbacks
            out["learner"]["dropped_batches"] = pol.dropped_batches
        return out


async def run(rounds: int, tasks: int, window: int, light_ms: float, seed: int,
              progress: bool = True) -> dict[str, Any]:
    """Every policy ``rounds`` times (shuffled order per round)."""
    rate = units_per_ms()
    stream = task_stream(tasks, int(rate * light_ms), seed)
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {p: [] for p in POLICIES}
    order_rng = random.Random(seed)
    for r in range(rounds):
        order = list(POLICIES)
        order_rng.shuffle(order)
        for name in order:
            res = await run_policy(name, stream, window, seed + r)
            results[name].append(res)
            if progress:
                print(f"round {r + 1}/{rounds} {name:12s} {res['throughput']:7.1f} tasks/s  "
                      f"p99 {res['p99_ms']:7.1f} ms  per agent {res['per_agent']}", file=sys.stderr)
    policies = {}
    for name, runs in results.items():
        policies[name] = {
            "throughput": statistics.median(x["throughput"] for x in runs),
            "p99_ms": statistics.median(x["p99_ms"] for x in runs),
            "p50_ms": statistics.median(x["p50_ms"] for x in runs),
            "rounds": [{k: v for k, v in x.items()} for x in runs],
        }

    def ratio(a: str, b: str) -> float:
        return statistics.median(x["throughput"] / y["throughput"] for x, y in zip(results[a], results[b]))

    return {
        "policies": policies,
        "ratios": {
            "learning_vs_oracle": ratio("learning", "oracle"),
            "learning_vs_round_robin": ratio("learning", "round_robin"),
            "learning_vs_jsq": ratio("learning", "jsq"),
            "oracle_vs_round_robin": ratio("oracle", "round_robin"),
        },
        "setup": {
            "workers_duty_cycle": {"w1": FAST, "w2": f"{FAST} then {SLOW:.3f} after half the tasks",
                                   "w3": SLOW, "w4": SLOW},
            "tasks": tasks, "window": window, "rounds": rounds, "light_task_ms_at_full_speed": light_ms,
            "spin_units_per_ms": rate, "cpus": os.cpu_count(), "seed": seed,
            "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=1200)
    parser.add_argument("--window", type=int, default=8, help="tasks in flight")
    parser.add_argument("--light-ms", type=float, default=8.0, help="a light task's work at full speed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    out = asyncio.run(run(args.rounds, args.tasks, args.window, args.light_ms, args.seed))
    for name, res in out["policies"].items():
        print(f"{name:12s} throughput {res['throughput']:7.1f} tasks/s   p99 {res['p99_ms']:7.1f} ms")
    for name, value in out["ratios"].items():
        print(f"{name:26s} {value:.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
