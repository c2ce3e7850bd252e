"""Headless mode: run the swarm with no UI, printing status lines and events.

Without ``--json``: one readable status line per monitoring interval, each event on
its own line, and a final summary.  With ``--json``: one JSON object per line on
stdout -- ``{"type": "status", ...}``, ``{"type": "event", ...}``,
``{"type": "summary", ...}``.  Logs go to stderr only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import signal
import sys
import time
from collections import Counter
from typing import IO, Any

from engine import events as ev
from engine.cli import EXIT_FAILURE, EXIT_OK
from engine.config import SwarmConfig
from engine.errors import SwarmError
from engine.events import Event
from engine.model import SwarmSnapshot
from engine.orchestrator import Orchestrator

log = logging.getLogger("engine.headless")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def status_record(snapshot: SwarmSnapshot) -> dict[str, Any]:
    """The ``{"type": "status"}`` JSON object for one snapshot."""
    return {
        "type": "status",
        "time": snapshot.time,
        "uptime_s": snapshot.uptime_s,
        "agents": [
            {
                "id": a.id, "type": a.type, "pid": a.pid, "state": a.state,
                "priority": a.priority, "restarts": a.restarts, "cpu_percent": a.cpu_percent,
                "rss_bytes": a.rss_bytes, "tasks_done": a.tasks_done, "tasks_per_s": a.tasks_per_s,
                "messages_in": a.messages_in, "messages_out": a.messages_out,
                "heartbeat_age_s": _finite(a.heartbeat_age_s), "gauges": a.gauges,
            }  # fmt: skip
            for a in snapshot.agents
        ],
        "machine": {
            "cpu_percent": snapshot.machine.cpu_percent,
            "per_cpu_percent": list(snapshot.machine.per_cpu_percent),
            "memory_percent": snapshot.machine.memory_percent,
            "memory_used_bytes": snapshot.machine.memory_used_bytes,
        },
        "bus": snapshot.bus.to_dict(),
        "events_total": snapshot.events_total,
        "alerts_total": snapshot.alerts_total,
        **({"extra": snapshot.extra} if snapshot.extra else {}),
    }


def status_line(snapshot: SwarmSnapshot) -> str:
    """One readable line for a snapshot."""
    counts = snapshot.count_by_state()
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    tasks = sum(a.tasks_per_s for a in snapshot.agents)
    bus = snapshot.bus
    m = snapshot.machine
    return (
        f"[{snapshot.uptime_s:8.1f}s] agents {len(snapshot.agents)} ({states}) | "
        f"cpu {m.cpu_percent:5.1f}% mem {m.memory_percent:5.1f}% | tasks/s {tasks:8.1f} | "
        f"msgs/s {bus.messages_per_s:8.1f} | bus p50 {bus.latency_p50_us:.1f}us "
        f"p99 {bus.latency_p99_us:.1f}us | alerts {snapshot.alerts_total}"
    )


def event_line(event: Event) -> str:
    """One readable line for an event."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    who = f" [{event.agent_id}]" if event.agent_id else ""
    return f"{stamp} {event.severity.value.upper():8s} {event.name}{who}: {event.message}"


class HeadlessPrinter:
    """Writes status, events and the summary to a stream (JSON lines or text)."""

    def __init__(self, stream: IO[str], *, json_lines: bool) -> None:
        self.stream = stream
        self.json_lines = json_lines
        self.event_counts: Counter[str] = Counter()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except BrokenPipeError:  # e.g. piped into `head`
            pass

    def on_event(self, event: Event) -> None:
        """Print one event."""
        self.event_counts[event.name] += 1
        if self.json_lines:
            record = {**event.to_dict(), "type": "event"}
            self._write(json.dumps(record, default=str))
        else:
            self._write(event_line(event))

    def on_status(self, snapshot: SwarmSnapshot) -> None:
        """Print one status line."""
        if self.json_lines:
            self._write(json.dumps(status_record(snapshot), default=str))
        else:
            self._write(status_line(snapshot))

    def summary(self, snapshot: SwarmSnapshot | None, *, duration_s: float, exit_status: int,
                reason: str) -> dict[str, Any]:
        """Print (and return) the final summary."""
        record: dict[str, Any] = {
            "type": "summary",
            "duration_s": round(duration_s, 3),
            "exit_status": exit_status,
            "stopped_by": reason,
            "events": dict(self.event_counts),
            "agents_created": self.event_counts.get(ev.AGENT_CREATED, 0),
            "crashes": self.event_counts.get(ev.AGENT_CRASHED, 0),
            "restarts": self.event_counts.get(ev.AGENT_RESTARTED, 0),
            "gave_up": self.event_counts.get(ev.AGENT_GAVE_UP, 0),
            "alerts": snapshot.alerts_total if snapshot else 0,
            "agents": [
                {"id": a.id, "type": a.type, "state": a.state, "restarts": a.restarts,
                 "tasks_done": a.tasks_done}
                for a in (snapshot.agents if snapshot else ())
            ],
        }
        if self.json_lines:
            self._write(json.dumps(record, default=str))
        else:
            self._write(
                f"summary: ran {record['duration_s']:.1f} s, stopped by {reason}; "
                f"{record['agents_created']} agents created, {record['crashes']} crashes, "
                f"{record['restarts']} restarts, {record['gave_up']} given up, "
                f"{record['alerts']} alerts; exit status {exit_status}"
            )
            for a in record["agents"]:
                self._write(f"  {a['id']:<24} {a['type']:<16} {a['state']:<10} "
                            f"restarts {a['restarts']:<3} tasks {a['tasks_done']}")
        return record


async def run_headless(
    config: SwarmConfig,
    *,
    duration: float | None = None,
    demo: bool = False,
    json_lines: bool = False,
    stream: IO[str] | None = None,
    log_level: str = "WARNING",
) -> int:
    """Run the swarm until ``duration`` elapses or SIGINT/SIGTERM; returns the exit status."""
    printer = HeadlessPrinter(stream or sys.stdout, json_lines=json_lines)
    stop = asyncio.Event()
    reason = "duration"
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        nonlocal reason
        reason = sig.name
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    started = time.monotonic()
    last: SwarmSnapshot | None = None
    status = EXIT_OK
    try:
        async with Orchestrator(config, log_level=log_level) as swarm:
            swarm.add_event_handler("*", printer.on_event)
            await swarm.start_configured()
            if demo:
                from engine.demo import start_demo

                await start_demo(swarm)
            deadline = started + duration if duration else math.inf
            while not stop.is_set():
                timeout = min(config.monitoring_interval, deadline - time.monotonic())
                if timeout <= 0:
                    break
                try:
                    await asyncio.wait_for(stop.wait(), timeout)
                except asyncio.TimeoutError:
                    pass
                last = swarm.get_system_status()
                printer.on_status(last)
    except SwarmError as exc:
        log.error("swarm failed: %s", exc)
        print(f"swarm-tui: {exc}", file=sys.stderr)
        status, reason = EXIT_FAILURE, f"error: {exc}"
    except Exception as exc:
        log.exception("swarm failed")
        print(f"swarm-tui: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        status, reason = EXIT_FAILURE, f"error: {type(exc).__name__}"
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    printer.summary(last, duration_s=time.monotonic() - started, exit_status=status, reason=reason)
    return status


def run_headless_sync(config: SwarmConfig, **kwargs: Any) -> int:
    """``asyncio.run(run_headless(...))``."""
    return asyncio.run(run_headless(config, **kwargs))
