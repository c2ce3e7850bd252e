"""Synthetic swarm data for the recording, replay and exporter tests (no processes)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from engine.events import Event, Severity
from engine.model import AgentInfo, BusInfo, MachineInfo, SwarmSnapshot
from engine.recording import RecordingSettings, RecordingWriter

T0 = 1_700_000_000.0


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def agent(agent_id: str, i: int, *, agent_type: str = "echo", state: str = "running", **more: Any) -> AgentInfo:
    """An agent row at step ``i``."""
    values: dict[str, Any] = dict(
        id=agent_id, type=agent_type, slot=1, pid=1000 + i, state=state, priority=0, restarts=0,
        cpu_percent=10.0 + i, rss_bytes=30_000_000, tasks_done=10 * i, tasks_per_s=10.0, messages_in=10 * i,
        messages_out=10 * i, errors=0, heartbeat_age_s=0.1, uptime_s=float(i), duty_cycle=1.0,
        latency_p50_us=40.0, latency_p99_us=90.0, gauges={"handled": float(10 * i)},
    )  # fmt: skip
    values.update(more)
    return AgentInfo(**values)


def snapshot(i: int, *, t: float | None = None, agents: tuple[AgentInfo, ...] | None = None,
             extra: dict[str, Any] | None = None) -> SwarmSnapshot:
    """The swarm at step ``i`` (one second apart from ``T0``)."""
    return SwarmSnapshot(
        name="test-swarm", time=T0 + i if t is None else t, uptime_s=float(i),
        agents=agents if agents is not None else (agent("echo-1", i), agent("echo-2", i, heartbeat_age_s=math.inf)),
        bus=BusInfo(sent=100 * i, received=100 * i, latency_p50_us=42.0, latency_p99_us=99.0, messages_per_s=100.0),
        machine=MachineInfo(cpu_percent=20.0, per_cpu_percent=(10.0, 30.0), memory_percent=40.0,
                            memory_used_bytes=4 << 30, memory_total_bytes=16 << 30, load_average=(0.5, 0.4, 0.3)),
        events_total=i, alerts_total=0, max_agents=8, extra=extra or {},
    )  # fmt: skip


def event(name: str, t: float, *, severity: Severity = Severity.INFO, agent_id: str | None = "echo-1",
          **data: Any) -> Event:
    """An event at wall-clock time ``t``."""
    return Event(name, t, severity, agent_id, f"{name} at {t - T0:g}", data)


def header(name: str = "test-swarm") -> dict[str, Any]:
    """A recording header like the recorder's, without probing the machine."""
    from engine.config import config_to_dict, default_config

    return {"engine_version": "0.1.0", "name": name, "config": config_to_dict(default_config().with_overrides(name=name)),
            "machine": {"brand": "Test CPU", "identity_key": "test-key"}, "agent_types": ["echo", "compute"],
            "description": "synthetic", "demo": None, "started": T0}


def write_recording(path: Path, *, seconds: int = 10, chunk_seconds: float = 3.0, close: bool = True,
                    events: list[Event] | None = None) -> RecordingWriter:
    """A recording of ``seconds`` one-second snapshots (chunks every ``chunk_seconds``) plus ``events``.

    By default: an agent_created at 0.5 s, a performance_alert at 4.5 s and an
    agent_crashed at 7.5 s.
    """
    clock = FakeClock()
    writer = RecordingWriter(path, header=header(), clock=clock,
                             settings=RecordingSettings(chunk_seconds=chunk_seconds, fsync=False))
    writer.open()
    pending = sorted(events if events is not None else [
        event("agent_created", T0 + 0.5),
        event("performance_alert", T0 + 4.5, severity=Severity.WARNING, agent_id=None, metric="cpu"),
        event("agent_crashed", T0 + 7.5, severity=Severity.ERROR, traceback="Traceback: boom"),
    ], key=lambda e: e.time)
    for i in range(seconds):
        while pending and pending[0].time <= T0 + i:
            writer.add_event(pending.pop(0))
        writer.add_snapshot(snapshot(i))
        clock.advance(1.0)
    for e in pending:
        writer.add_event(e)
    if close:
        writer.close(reason="test")
    else:
        writer.flush()
    return writer
