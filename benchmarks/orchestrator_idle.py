"""Idle cost of the orchestrator with 16 agents: event-loop wake-ups and CPU.

    python -m benchmarks.orchestrator_idle [--seconds 20] [--rounds 2] [--warmup 15]
                                           [--skip-wakeups] [--skip-headless] [--json PATH]

Two measurements with the same swarm (13 idle compute agents plus resource,
thermal and fault-tolerance, monitoring every second, no auto-scaling):

1. *Wake-ups*, in this process: an :class:`engine.Orchestrator` is started, and
   after the warm-up the script counts, per second, the calls of
   ``InboxPump._drain_and_signal`` (each one is a ``call_soon_threadsafe`` from the
   inbox watcher thread, i.e. one event-loop wake-up caused by the bus), the frames
   handled by kind, and this process's CPU time.
2. *Headless CPU*: ``swarm-tui --config <file> --run`` in a subprocess; after the
   warm-up, ``rounds`` windows of ``seconds`` each sample that process's own CPU
   time (``psutil`` ``cpu_times``, user + system, children excluded), i.e. the
   orchestrator with its monitoring loop, inbox and hang checks.

Reports % of one core.  Figures vary with the machine's other load; compare runs
made one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

CONFIG = """
monitoring_interval = 1.0
auto_scaling = false
[agents.compute]
count = 13
background = false
[agents.resource]
count = 1
[agents.thermal]
count = 1
[agents.fault_tolerance]
count = 1
[agents.optimization]
count = 0
[agents.learning]
count = 0
"""


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


async def _wakeups(config_path: Path, warmup: float, seconds: float) -> dict[str, Any]:
    """Start an orchestrator here and count its inbox wake-ups over ``seconds``."""
    from engine import Orchestrator
    from engine._runtime import inbox as inbox_mod
    from engine._runtime.protocol import Kind
    from engine.config import load_config

    kinds: collections.Counter[int] = collections.Counter()
    drains = [0]
    original_init = inbox_mod.InboxPump.__init__
    original_drain = inbox_mod.InboxPump._drain_and_signal

    def init(self: Any, receiver: Any, handle: Any, loop: Any, **kw: Any) -> None:
        def counted(frame: Any) -> None:
            kinds[frame.msg_type] += 1
            handle(frame)

        original_init(self, receiver, counted, loop, **kw)

    def drain_and_signal(self: Any) -> None:
        drains[0] += 1
        original_drain(self)

    inbox_mod.InboxPump.__init__ = init  # type: ignore[method-assign]
    inbox_mod.InboxPump._drain_and_signal = drain_and_signal  # type: ignore[method-assign]
    try:
        orch = Orchestrator(load_config(config_path), start_configured_agents=True)
        await orch.start()
        try:
            await asyncio.sleep(warmup)
            me = psutil.Process()
            kinds.clear()
            drains[0] = 0
            cpu0, t0 = _cpu_s(me), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, t1 = _cpu_s(me), time.monotonic()
            dt = t1 - t0
            return {
                "agents": len(orch.get_system_status().agents),
                "loop_wakeups_per_s": round(drains[0] / dt, 2),
                "frames_per_s": {Kind(k).name: round(v / dt, 2) for k, v in sorted(kinds.items())},
                "cpu_percent": round((cpu1 - cpu0) / dt * 100.0, 2),
            }
        finally:
            await orch.shutdown()
    finally:
        inbox_mod.InboxPump.__init__ = original_init  # type: ignore[method-assign]
        inbox_mod.InboxPump._drain_and_signal = original_drain  # type: ignore[method-assign]


def _headless(config_path: Path, warmup: float, seconds: float, rounds: int) -> list[float]:
    """CPU % of one core of a headless ``swarm-tui --run`` over ``rounds`` windows."""
    exe = shutil.which("swarm-tui") or str(Path(sys.executable).with_name("swarm-tui"))
    duration = warmup + rounds * seconds + 10
    proc = subprocess.Popen(
        [exe, "--config", str(config_path), "--run", "--duration", f"{duration:g}"],
        cwd=config_path.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        ps = psutil.Process(proc.pid)
        time.sleep(warmup)
        out = []
        for _ in range(rounds):
            c0, t0 = _cpu_s(ps), time.monotonic()
            time.sleep(seconds)
            c1, t1 = _cpu_s(ps), time.monotonic()
            out.append(round((c1 - c0) / (t1 - t0) * 100.0, 2))
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print (and optionally save) the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of one measured window")
    ap.add_argument("--rounds", type=int, default=2, help="headless windows")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    ap.add_argument("--skip-wakeups", action="store_true")
    ap.add_argument("--skip-headless", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="orch-idle-") as tmp:
        config_path = Path(tmp) / "swarm.toml"
        config_path.write_text(CONFIG)
        if not args.skip_wakeups:
            result["in_process"] = asyncio.run(_wakeups(config_path, args.warmup, args.seconds))
            print("in-process orchestrator:", json.dumps(result["in_process"]))
        if not args.skip_headless:
            result["headless_cpu_percent"] = _headless(config_path, args.warmup, args.seconds, args.rounds)
            print("headless swarm-tui --run, CPU % of one core per window:", result["headless_cpu_percent"])
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
