"""Frozen value types that cross boundaries: what the UI, recorder and exporters read.

Everything here is immutable and JSON-friendly through ``to_dict()``, so a snapshot
can be handed to another thread or written to a file without copying or locking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class AgentInfo:
    """One agent as seen at one instant.

    ``state`` is the agent's own state (from its status row) unless the supervisor
    knows better (``restarting``, ``failed``, ``crashed``).
    """

    id: str
    type: str
    slot: int
    pid: int
    state: str
    priority: int
    restarts: int
    cpu_percent: float
    rss_bytes: int
    tasks_done: int
    tasks_per_s: float
    messages_in: int
    messages_out: int
    errors: int
    heartbeat_age_s: float
    uptime_s: float
    duty_cycle: float
    latency_p50_us: float
    latency_p99_us: float
    last_error: str = ""
    affinity: tuple[int, ...] = ()
    gauges: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["affinity"] = list(self.affinity)
        return out


@dataclass(frozen=True)
class BusInfo:
    """Totals over every channel of the bus."""

    sent: int = 0
    received: int = 0
    bytes: int = 0
    full_events: int = 0
    rejected: int = 0
    redeliveries: int = 0
    latency_p50_us: float = 0.0
    latency_p99_us: float = 0.0
    latency_p999_us: float = 0.0
    messages_per_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class MachineInfo:
    """The machine, sampled cheaply by the orchestrator each monitoring interval."""

    cpu_percent: float = 0.0
    per_cpu_percent: tuple[float, ...] = ()
    memory_percent: float = 0.0
    memory_used_bytes: int = 0
    memory_total_bytes: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: CPU cores this swarm may use (its affinity mask; cgroups may hide some).
    allowed_cpus: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["per_cpu_percent"] = list(self.per_cpu_percent)
        out["load_average"] = list(self.load_average)
        out["allowed_cpus"] = list(self.allowed_cpus)
        return out


@dataclass(frozen=True)
class SwarmSnapshot:
    """The whole swarm at one instant: what ``get_system_status()`` returns."""

    name: str
    time: float
    uptime_s: float
    agents: tuple[AgentInfo, ...]
    bus: BusInfo
    machine: MachineInfo
    events_total: int = 0
    alerts_total: int = 0
    max_agents: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def agent(self, agent_id: str) -> AgentInfo | None:
        """The agent with ``agent_id``, or ``None``."""
        for info in self.agents:
            if info.id == agent_id:
                return info
        return None

    def count_by_state(self) -> dict[str, int]:
        """Number of agents in each state."""
        counts: dict[str, int] = {}
        for info in self.agents:
            counts[info.state] = counts.get(info.state, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "time": self.time,
            "uptime_s": self.uptime_s,
            "agents": [a.to_dict() for a in self.agents],
            "bus": self.bus.to_dict(),
            "machine": self.machine.to_dict(),
            "events_total": self.events_total,
            "alerts_total": self.alerts_total,
            "max_agents": self.max_agents,
            **({"extra": self.extra} if self.extra else {}),
        }
