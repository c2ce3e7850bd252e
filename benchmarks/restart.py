"""Crash-to-serving time: SIGKILL an agent, measure until its restart answers a message.

    python -m benchmarks.restart [--trials 50] [--json PATH]

Each trial: wait until the echo agent serves, take t0, SIGKILL its process, send a
ping at once (it waits in the agent's inbox while the agent is down -- the bus keeps
it), and stop the clock when a reply comes from the *new* process.  The supervisor's
first-restart delay (``backoff_initial``) is part of what is measured; the restart
window (``max_seconds``) is shorter than the gap between trials so every trial is a
first restart, as a real crash usually is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
from typing import Any

from benchmarks._stats import percentile
from engine import Orchestrator
from engine.config import config_from_mapping


def bench_config(backoff_initial: float) -> Any:
    """A configuration with no default agents and a restart window shorter than a trial gap."""
    return config_from_mapping({
        "max_agents": 4,
        "auto_scaling": False,
        "agents": {name: {"count": 0} for name in
                   ("compute", "resource", "thermal", "optimization", "fault_tolerance", "learning")},
        "supervisor": {"max_restarts": 1000, "max_seconds": 0.2, "backoff_initial": backoff_initial,
                       "heartbeat_interval": 0.1, "heartbeat_timeout": 5.0},
    }, "benchmarks.restart")


async def measure(trials: int, backoff_initial: float, progress: bool = True) -> dict[str, Any]:
    """Run the trials; returns the JSON-ready result."""
    samples: list[float] = []
    async with Orchestrator(bench_config(backoff_initial)) as swarm:
        aid = await swarm.create_agent("echo")
        await swarm.wait_ready(aid)
        for _ in range(3):  # warm the path
            await swarm.ping(aid)
        for trial in range(trials):
            await asyncio.sleep(0.3)  # longer than the restart window
            first = await swarm.ping(aid)
            old_pid = first["pong"]
            t0 = time.perf_counter()
            os.kill(old_pid, signal.SIGKILL)
            while True:
                reply = await swarm.ping(aid, timeout=10.0)
                if reply["pong"] != old_pid:
                    break
            samples.append((time.perf_counter() - t0) * 1000.0)
            if progress:
                print(f"\rtrial {trial + 1}/{trials}: {samples[-1]:.1f} ms", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return {
        "trials": len(samples),
        "median_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "min_ms": round(min(samples), 3),
        "max_ms": round(max(samples), 3),
        "backoff_initial_ms": backoff_initial * 1000.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restart", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--backoff-initial", type=float, default=0.01, help="first restart delay, s (default 0.01)")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    result = asyncio.run(measure(args.trials, args.backoff_initial))
    print(f"crash-to-serving over {result['trials']} trials: median {result['median_ms']:.1f} ms, "
          f"p99 {result['p99_ms']:.1f} ms (min {result['min_ms']:.1f}, max {result['max_ms']:.1f}; "
          f"backoff_initial {result['backoff_initial_ms']:g} ms)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
