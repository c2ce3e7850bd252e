"""Bus benchmark: this project's shared-memory channel against Python IPC peers.

Usage::

    python -m benchmarks.bus [--json PATH] [--quick] [--transports swarm,mp.Pipe,...]

For each transport, two spawned worker processes pinned to two different cores
(``os.sched_setaffinity``) measure in one run (see ``benchmarks/_bus_worker.py``):

- round-trip latency of a 64-byte message: p50 / p99 / p99.9 in microseconds over
  ``rt_n`` (20,000; 2,000 with ``--quick``) timed round trips after a warm-up;
- one-way throughput at 64 B and 4 KiB in messages per second, every message
  sequence-checked by the receiver;
- CPU seconds of the sending and the receiving process during the 64 B run;
- CPU of the receiver while it blocks idle for 5 s (0.5 s with ``--quick``), in
  percent of one core.

Transports: ``swarm`` (engine.channels: a mailbox per side, NORMAL lane, frames
acknowledged after handling), ``multiprocessing.Queue``, ``SimpleQueue``,
``Pipe`` (``send_bytes``/``recv_bytes``), pyzmq ``ipc://`` PAIR sockets and
faster-fifo (raw bytes, ``put_many``/``get_many``).  Batch APIs are used for
throughput where a transport has them (swarm ``send_batch``/``receive_batch``,
faster-fifo ``put_many``/``get_many``); every message is still individually
framed -- and, for swarm, checksummed and sequence-checked.

``--json PATH`` writes ``{transport: {"rt_p50_us", "rt_p99_us", "rt_p999_us",
"msgs_per_s_64", "msgs_per_s_4k", "cpu_s_send", "cpu_s_recv",
"idle_cpu_percent"}}``.  The machine is shared: compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
from typing import Any

from benchmarks._bus_transports import TRANSPORTS, available_transports, spawn_context
from benchmarks._bus_worker import run_role

__all__ = ["FULL", "QUICK", "format_table", "main", "run", "run_transport"]

FULL = {"deadline_s": 900.0, "warmup": 2000, "rt_n": 20000, "n_64": 300_000, "n_4k": 30_000, "idle_s": 5.0}
QUICK = {"deadline_s": 120.0, "warmup": 200, "rt_n": 2000, "n_64": 20_000, "n_4k": 3_000, "idle_s": 0.5}
KEYS = (
    "rt_p50_us", "rt_p99_us", "rt_p999_us", "msgs_per_s_64", "msgs_per_s_4k",
    "cpu_s_send", "cpu_s_recv", "idle_cpu_percent",
)  # fmt: skip


def pick_cores() -> tuple[int | None, int | None]:
    """Two different cores this process may run on (``None`` if only one)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return (None, None)
    return (cores[0], cores[1])


def run_transport(name: str, params: dict[str, Any], *, timeout_s: float | None = None) -> dict[str, Any]:
    """Run every phase for one transport; returns the JSON fields (plus diagnostics)."""
    if timeout_s is None:
        timeout_s = params["deadline_s"] + 30.0
    ctx = spawn_context()
    transport = TRANSPORTS[name]()
    spec = transport.setup(ctx)
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    params = dict(params, cores=pick_cores())
    procs = [
        ctx.Process(target=run_role, args=(role, name, spec, params, barrier, results), daemon=True)
        for role in ("a", "b")
    ]
    try:
        for p in procs:
            p.start()
        got: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(got) < len(procs):
            try:
                role, out = results.get(timeout=1.0)
                got[role] = out
                continue
            except queue.Empty:
                pass
            dead = [p for p in procs if not p.is_alive() and p.exitcode != 0]
            if dead or time.monotonic() > deadline:
                codes = [p.exitcode for p in procs]
                raise RuntimeError(f"{name}: workers died or hung (exit codes {codes}), results {got}")
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
        transport.teardown()
    a, b = got.get("a", {}), got.get("b", {})
    errors = [x["error"] for x in (a, b) if "error" in x]
    if errors:
        raise RuntimeError(f"{name} failed:\n" + "\n".join(errors))

    def rate(key: str, n: int) -> float:
        return n / max((b[f"t_end_{key}"] - a[f"t0_{key}"]) / 1e9, 1e-9)

    return {
        "rt_p50_us": round(a["rt_p50_us"], 2),
        "rt_p99_us": round(a["rt_p99_us"], 2),
        "rt_p999_us": round(a["rt_p999_us"], 2),
        "msgs_per_s_64": round(rate("64", params["n_64"])),
        "msgs_per_s_4k": round(rate("4k", params["n_4k"])),
        "cpu_s_send": round(a["cpu_64"], 3),
        "cpu_s_recv": round(b["cpu_64"], 3),
        "idle_cpu_percent": round(b["idle_cpu_percent"], 3),
        "errors": {
            "rt_bad_replies": a["rt_bad"],
            "seq_errors_64": b["seq_errors_64"],
            "seq_errors_4k": b["seq_errors_4k"],
            "idle_wake_ok": b["idle_ok"],
        },
    }


def run(transports: list[str] | None = None, *, quick: bool = False, echo: bool = True) -> dict[str, Any]:
    """Benchmark the given transports (default: all available) in one run."""
    params = QUICK if quick else FULL
    names = transports or available_transports()
    out: dict[str, Any] = {}
    for name in names:
        if echo:
            print(f"  running {name} ...", file=sys.stderr, flush=True)
        out[name] = run_transport(name, params)
    return out


def format_table(results: dict[str, Any]) -> str:
    """A readable table, plus the swarm ratios against each peer."""
    head = (
        f"{'transport':16s} {'rt p50':>8s} {'rt p99':>8s} {'rt p99.9':>9s} "
        f"{'msg/s 64B':>11s} {'msg/s 4KiB':>11s} {'cpu send':>9s} {'cpu recv':>9s} {'idle cpu':>9s}"
    )
    units = (
        f"{'':16s} {'us':>8s} {'us':>8s} {'us':>9s} {'':>11s} {'':>11s} {'s':>9s} {'s':>9s} {'%':>9s}"
    )
    lines = [head, units, "-" * len(head)]
    for name, r in results.items():
        lines.append(
            f"{name:16s} {r['rt_p50_us']:8.1f} {r['rt_p99_us']:8.1f} {r['rt_p999_us']:9.1f} "
            f"{r['msgs_per_s_64']:11,d} {r['msgs_per_s_4k']:11,d} {r['cpu_s_send']:9.2f} "
            f"{r['cpu_s_recv']:9.2f} {r['idle_cpu_percent']:9.2f}"
        )
    sw = results.get("swarm")
    if sw:
        lines.append("")
        lines.append("swarm vs peer: rt p50 ratio (peer/swarm), 64B and 4KiB throughput ratio (swarm/peer)")
        for name, r in results.items():
            if name == "swarm":
                continue
            lines.append(
                f"  {name:16s} rt x{r['rt_p50_us'] / sw['rt_p50_us']:6.1f}   "
                f"64B x{sw['msgs_per_s_64'] / max(r['msgs_per_s_64'], 1):5.2f}   "
                f"4KiB x{sw['msgs_per_s_4k'] / max(r['msgs_per_s_4k'], 1):5.2f}"
            )
    bad = {n: r["errors"] for n, r in results.items() if any(
        v for k, v in r["errors"].items() if k != "idle_wake_ok") or not r["errors"]["idle_wake_ok"]}
    if bad:
        lines.append(f"\nERRORS: {bad}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bus", description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--quick", action="store_true", help="a fast smoke run (smaller counts)")
    ap.add_argument(
        "--transports", metavar="LIST",
        help=f"comma-separated subset of: {', '.join(TRANSPORTS)}",
    )  # fmt: skip
    args = ap.parse_args(argv)
    names = None
    if args.transports:
        names = [t.strip() for t in args.transports.split(",") if t.strip()]
        unknown = [t for t in names if t not in TRANSPORTS]
        if unknown:
            ap.error(f"unknown transport(s) {unknown}; choose from {list(TRANSPORTS)}")
    params = QUICK if args.quick else FULL
    cores = pick_cores()
    print(
        f"bus benchmark ({'quick' if args.quick else 'full'}): cores {cores}, "
        f"{params['rt_n']} round trips, {params['n_64']:,} x 64 B, {params['n_4k']:,} x 4 KiB, "
        f"idle {params['idle_s']} s",
        file=sys.stderr,
    )
    results = run(names, quick=args.quick)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({n: {k: r[k] for k in KEYS} for n, r in results.items()}, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
