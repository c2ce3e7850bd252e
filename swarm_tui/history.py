"""Recent history of the swarm, kept by the UI from the snapshots it is shown.

The engine's snapshot is an instant; graphs need a window.  :class:`History` keeps
bounded series (the swarm's throughput, bus latency and machine load, and per agent
its CPU, tasks/s and RSS) and turns each new snapshot into an immutable
:class:`Frame` that the screens bind to.  One writer (the app, on the UI loop), so
no locks; readers get tuples.

A snapshot whose ``time`` is not newer than the last one is a repeat (a paused
replay, a fixed-data source) and adds nothing, so a still source draws a still
picture.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice

from engine import SwarmSnapshot

#: Samples kept per series (10 minutes at the default 1 s monitoring interval).
HISTORY_SAMPLES = 600
#: Samples of the per-agent trend column in the agent table.
TREND_SAMPLES = 16

#: Swarm-wide series names.
SWARM_SERIES = ("tasks_per_s", "messages_per_s", "bus_p50_us", "bus_p99_us", "cpu_percent", "memory_percent")
#: Per-agent series names.
AGENT_SERIES = ("cpu_percent", "tasks_per_s", "rss_bytes")


@dataclass(frozen=True, eq=False)
class Frame:
    """Everything the screens draw from, for one snapshot.

    Attributes:
        snapshot: the swarm at this instant.
        series: swarm-wide history, oldest first (see ``SWARM_SERIES``).
        trends: per agent id, its recent tasks/s (the table's trend column).
    """

    snapshot: SwarmSnapshot
    series: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    trends: Mapping[str, tuple[float, ...]] = field(default_factory=dict)


class History:
    """Bounded series built from successive snapshots (see module docstring)."""

    def __init__(self, samples: int = HISTORY_SAMPLES) -> None:
        self.samples = samples
        self._swarm: dict[str, deque[float]] = {name: deque(maxlen=samples) for name in SWARM_SERIES}
        self._agents: dict[str, dict[str, deque[float]]] = {}
        self._last_time: float | None = None
        self.latest: Frame | None = None

    def add(self, snapshot: SwarmSnapshot) -> Frame | None:
        """Record a snapshot; returns the new frame, or ``None`` for a repeat."""
        if self._last_time is not None and snapshot.time <= self._last_time:
            return None
        self._last_time = snapshot.time
        values = {
            "tasks_per_s": sum(a.tasks_per_s for a in snapshot.agents),
            "messages_per_s": snapshot.bus.messages_per_s,
            "bus_p50_us": snapshot.bus.latency_p50_us,
            "bus_p99_us": snapshot.bus.latency_p99_us,
            "cpu_percent": snapshot.machine.cpu_percent,
            "memory_percent": snapshot.machine.memory_percent,
        }
        for name, value in values.items():
            self._swarm[name].append(float(value))
        present = set()
        for agent in snapshot.agents:
            present.add(agent.id)
            series = self._agents.get(agent.id)
            if series is None:
                series = self._agents[agent.id] = {n: deque(maxlen=self.samples) for n in AGENT_SERIES}
            series["cpu_percent"].append(agent.cpu_percent)
            series["tasks_per_s"].append(agent.tasks_per_s)
            series["rss_bytes"].append(float(agent.rss_bytes))
        for gone in set(self._agents) - present:
            del self._agents[gone]
        self.latest = Frame(
            snapshot=snapshot,
            series={name: tuple(values) for name, values in self._swarm.items()},
            trends={aid: _last(s["tasks_per_s"], TREND_SAMPLES) for aid, s in self._agents.items()},
        )
        return self.latest

    def agent_series(self, agent_id: str) -> dict[str, tuple[float, ...]]:
        """The history of one agent (empty tuples if unknown), oldest first."""
        series = self._agents.get(agent_id)
        if series is None:
            return {name: () for name in AGENT_SERIES}
        return {name: tuple(values) for name, values in series.items()}


def _last(values: deque[float], n: int) -> tuple[float, ...]:
    """The last ``n`` values of a deque, without copying the rest."""
    return tuple(islice(values, max(0, len(values) - n), None))
