"""CPU cost of the TUI beside glances, both live in tmux, measured in one run.

    python -m benchmarks.ui_cpu [--seconds 30] [--rounds 3] [--json PATH]

Starts ``swarm-tui`` with 16 agents (13 idle compute agents plus resource, thermal
and fault-tolerance) at its default refresh, and ``glances`` full screen at a 1 s
refresh, each in its own detached tmux session of the same size.  After a warm-up,
it samples both processes' CPU time over the same window and reports % of one core.
The swarm-tui process also runs the embedded orchestrator (monitoring loop, inbox,
hang checks), so its figure is the UI *and* the engine's own monitoring; the agent
processes are not counted (glances, likewise, is measured without what it watches).
Needs tmux and glances (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
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


def _session_pid(session: str, name_part: str, timeout: float = 60.0) -> int:
    """The pid of the process whose command line contains ``name_part`` in a tmux session."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                             capture_output=True, text=True)
        for line in out.stdout.split():
            root = psutil.Process(int(line))
            for proc in [root, *root.children(recursive=True)]:
                try:
                    if name_part in " ".join(proc.cmdline()):
                        return proc.pid
                except psutil.Error:
                    continue
        time.sleep(0.5)
    raise RuntimeError(f"no {name_part!r} process in tmux session {session!r}")


def measure(seconds: float, rounds: int, width: int, height: int) -> dict[str, Any]:
    """Run both tools side by side; return CPU % of one core per round and medians."""
    for tool in ("tmux", "glances"):
        if shutil.which(tool) is None and not (Path(sys.executable).parent / tool).exists():
            raise SystemExit(f"{tool} is required for this benchmark")
    glances = shutil.which("glances") or str(Path(sys.executable).parent / "glances")
    swarm_tui = shutil.which("swarm-tui") or str(Path(sys.executable).parent / "swarm-tui")
    tmp = Path(tempfile.mkdtemp(prefix="ui-cpu-"))
    (tmp / "swarm.toml").write_text(CONFIG)
    sessions = {"swarm": f"cd {tmp} && {swarm_tui} --config swarm.toml",
                "glances": f"{glances} --time 1"}
    results: dict[str, list[float]] = {"swarm-tui": [], "glances": []}
    try:
        for name, cmd in sessions.items():
            subprocess.run(["tmux", "new-session", "-d", "-s", f"bench-{name}", "-x", str(width),
                            "-y", str(height), cmd], check=True)
        pids = {"swarm-tui": _session_pid("bench-swarm", "swarm-tui"),
                "glances": _session_pid("bench-glances", "glances")}
        time.sleep(15)  # let the swarm start and both settle
        procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        for r in range(rounds):
            before = {n: sum(p.cpu_times()[:2]) for n, p in procs.items()}
            t0 = time.monotonic()
            time.sleep(seconds)
            dt = time.monotonic() - t0
            for n, p in procs.items():
                results[n].append(round((sum(p.cpu_times()[:2]) - before[n]) / dt * 100.0, 2))
            print(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.2f}%" for n, v in results.items()),
                  file=sys.stderr)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", "bench-swarm", "q"], capture_output=True)
        time.sleep(8)  # the app stops its agents and frees the shared memory
        for name in sessions:
            subprocess.run(["tmux", "kill-session", "-t", f"bench-{name}"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    medians = {n: statistics.median(v) for n, v in results.items()}
    return {"seconds": seconds, "rounds": rounds, "terminal": f"{width}x{height}", "agents": 16,
            "cpu_percent": results, "median_cpu_percent": medians,
            "ratio_swarm_to_glances": round(medians["swarm-tui"] / medians["glances"], 3)
            if medians["glances"] else None}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="160x48", help="terminal size WxH (default 160x48)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    width, height = (int(x) for x in args.size.lower().split("x"))
    result = measure(args.seconds, args.rounds, width, height)
    m = result["median_cpu_percent"]
    print(f"median CPU over {args.rounds} x {args.seconds:g} s: swarm-tui {m['swarm-tui']:.2f}% of a core, "
          f"glances {m['glances']:.2f}% (ratio {result['ratio_swarm_to_glances']})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
