"""Headless mode: run the swarm with no UI, printing status lines and events.

The printer is an observer like the recorder and the exporter: it prints the snapshot
the orchestrator takes each ``monitoring_interval`` (it never takes one of its own) and
every event.  ``run_replay`` prints a recording the same way, at once, without a UI.

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
from pathlib import Path
from typing import IO, Any

from engine import events as ev
from engine.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from engine.config import SwarmConfig
from engine.errors import SwarmError
from engine.events import Event
from engine.export import ObserverOptions, Observers, attach_observers
from engine.model import SwarmSnapshot
from engine.orchestrator import Orchestrator
from engine.recording import RecordingError, open_recording

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
    demo: str | bool | None = None,
    json_lines: bool = False,
    stream: IO[str] | None = None,
    log_level: str = "WARNING",
    observers: ObserverOptions | None = None,
) -> int:
    """Run the swarm until ``duration`` elapses, SIGINT/SIGTERM, or a finite demo ends.

    ``demo`` names a scenario (``True`` = the default one); the configuration should
    already carry its overlay (:func:`engine.demo.prepare_config`).  ``observers``
    says what to record, export and audit.  Returns the exit status.
    """
    printer = HeadlessPrinter(stream or sys.stdout, json_lines=json_lines)
    stop = asyncio.Event()
    reason = "duration"
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        nonlocal reason
        reason = sig.name
        stop.set()

    started = time.monotonic()
    last: SwarmSnapshot | None = None
    status = EXIT_OK
    swarm = Orchestrator(config, log_level=log_level)
    swarm.add_event_handler("*", printer.on_event)

    def on_status(snapshot: SwarmSnapshot) -> None:
        nonlocal last
        last = snapshot
        printer.on_status(snapshot)

    swarm.add_status_handler(on_status)
    attached: Observers | None = None
    if observers is not None:
        try:
            attached = attach_observers(swarm, observers)
        except (SwarmError, OSError) as exc:
            print(f"swarm-tui: {exc}", file=sys.stderr)
            return EXIT_USAGE
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    demo_task: asyncio.Task[None] | None = None
    try:
        async with swarm:
            await swarm.start_configured()
            if demo:
                from engine.demo import start_demo

                demo_task = await start_demo(swarm, demo)
            if attached is not None and attached.exporter is not None and attached.exporter.server is not None:
                print(f"swarm-tui: serving Prometheus metrics at {attached.exporter.server.url}", file=sys.stderr)
            reason = await _wait_for_end(stop, started, duration, demo_task) or reason
            if demo_task is not None:
                from engine.demo import stop_demo

                await stop_demo(demo_task)
            last = swarm.get_system_status()
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
    summary = printer.summary(last, duration_s=time.monotonic() - started, exit_status=status, reason=reason)
    if attached is not None:
        attached.close(reason=reason, summary={"summary": summary})
    return status


async def _wait_for_end(stop: asyncio.Event, started: float, duration: float | None,
                        demo_task: asyncio.Task[None] | None) -> str:
    """Wait for a signal, the duration, or (without a duration) the end of the demo; returns
    ``"demo finished"`` in that last case, else ``""`` (the caller knows the other reasons)."""
    stopper = asyncio.ensure_future(stop.wait())
    waiters: set[asyncio.Future[Any]] = {stopper}
    if demo_task is not None and duration is None:
        waiters.add(demo_task)
    timeout = None if duration is None else max(0.0, started + duration - time.monotonic())
    try:
        done, _pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if demo_task is not None and demo_task in done and not stop.is_set():
        if not demo_task.cancelled() and demo_task.exception() is not None:
            log.error("the demo failed", exc_info=demo_task.exception())
        return "demo finished"
    return ""


def run_headless_sync(config: SwarmConfig, **kwargs: Any) -> int:
    """``asyncio.run(run_headless(...))``."""
    return asyncio.run(run_headless(config, **kwargs))


# --- replay without a UI --------------------------------------------------------------------


def resolve_recording(name_or_path: str) -> Path:
    """A recording file: ``name_or_path`` if it is a file, else the bundled demo of that name.

    Raises:
        RecordingError: neither (the message lists the bundled demos).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    from engine.demo import bundled_recordings

    bundled = bundled_recordings()
    if name_or_path in bundled:
        return bundled[name_or_path]
    if path.suffix or "/" in name_or_path or path.exists():
        return path  # let the reader say what is wrong with it
    names = ", ".join(sorted(bundled)) or "none installed"
    raise RecordingError(f"no recording {name_or_path!r}: not a file, and not a bundled demo ({names})")


def run_replay(name_or_path: str, *, json_lines: bool = False, stream: IO[str] | None = None,
               audit: Any = None) -> int:
    """Print a recording's events and a summary (no UI, no waiting); returns the exit status.

    A damaged or cut-off recording is printed as far as it is readable, with a warning
    on stderr; an unreadable one gives a one-line error and exit status 2.
    """
    out = stream or sys.stdout
    printer = HeadlessPrinter(out, json_lines=json_lines)
    try:
        path = resolve_recording(name_or_path)
        recording = open_recording(path)
    except RecordingError as exc:
        _audit_replay(audit, name_or_path, "error", error=str(exc))
        print(f"swarm-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _audit_replay(audit, str(path), "ok", format_version=recording.format_version,
                  truncated=recording.truncated, warnings=len(recording.warnings))
    for warning in recording.warnings:
        print(f"swarm-tui: warning: {path}: {warning}", file=sys.stderr)
    header = {
        "type": "recording", "path": str(path), "name": recording.name,
        "format_version": recording.format_version, "engine_version": recording.engine_version,
        "started": recording.start_time, "duration_s": round(recording.duration, 3),
        "machine": recording.header.get("machine", {}), "demo": recording.header.get("demo"),
        "description": recording.header.get("description", ""),
        "snapshots": len(recording.snapshot_times), "events": len(recording.events),
        "truncated": recording.truncated, "warnings": list(recording.warnings),
    }  # fmt: skip
    printer._write(json.dumps(header, default=str) if json_lines else f"recording: {recording.describe()}")
    for event in recording.events:
        printer.on_event(event)
    last = recording.snapshot(len(recording.snapshot_times) - 1) if recording.snapshot_times else None
    reason = "truncated recording" if recording.truncated else "end of recording"
    printer.summary(last, duration_s=recording.duration, exit_status=EXIT_OK, reason=reason)
    return EXIT_OK


def _audit_replay(audit: Any, target: str, outcome: str, **details: Any) -> None:
    if audit is None:
        return
    from engine.cli import CLI_ACTOR, _user

    try:
        audit.append(CLI_ACTOR, "replay_start", target, outcome, user=_user(), **details)
    except OSError as exc:
        log.error("audit log %s not written: %s", audit.path, exc)
