"""A deterministic source: a made-up swarm for snapshot tests, screenshots and docs.

:class:`FixedSource` has the same interface as the live source, but its data is
fixed -- no clocks, no pids, no randomness -- so two runs draw the same picture.  Its
commands really change its state (a killed agent disappears, a priority changes,
an unknown type raises ``UnknownAgentType``) and emit the same events the engine
does, so dialogs and error paths can be tested without processes.

``recent_snapshots()`` hands the UI a pre-built history so that graphs are not empty.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from engine import (
    AgentInfo,
    BusInfo,
    DuplicateAgentId,
    Event,
    MachineInfo,
    MaxAgentsReached,
    OrchestratorClosed,
    Severity,
    SwarmConfig,
    SwarmSnapshot,
    UnknownAgent,
    UnknownAgentType,
    default_config,
)

#: Wall-clock origin of the sample data (2023-11-14 22:13:20 UTC).
EPOCH = 1_700_000_000.0
GIB = 1024**3
MIB = 1024**2

_TRACEBACK = """Traceback (most recent call last):
  File "engine/_runtime/agent_process.py", line 212, in run_cycles
    agent.execute_cycle()
  File "engine/agents/fault_tolerance.py", line 88, in execute_cycle
    score = self.detector.update(window)
  File "engine/anomaly/zscore.py", line 41, in update
    return (x - self.mean) / self.std
ZeroDivisionError: float division by zero"""


def _wave(i: int, base: float, amp: float, period: float, phase: float = 0.0) -> float:
    return round(max(0.0, base + amp * math.sin(i / period + phase)), 3)


def _agents_at(i: int, *, sensors: bool) -> list[AgentInfo]:
    """The sample agents at step ``i`` of the history."""
    common = dict(errors=0, heartbeat_age_s=0.1, duty_cycle=1.0, latency_p50_us=12.0, latency_p99_us=60.0)
    agents = [
        AgentInfo(id="compute-1", type="compute", slot=1, pid=4101, state="running", priority=0, restarts=0,
                  cpu_percent=_wave(i, 90, 8, 7), rss_bytes=182 * MIB, tasks_done=50_000 + 41 * i,
                  tasks_per_s=_wave(i, 41, 6, 5), messages_in=12_000 + 40 * i, messages_out=11_990 + 40 * i,
                  uptime_s=3700.0 + i, gauges={"gflops": _wave(i, 38, 4, 6), "gbps": 12.1}, **common),
        AgentInfo(id="compute-2", type="compute", slot=2, pid=4102, state="throttled", priority=5, restarts=0,
                  cpu_percent=_wave(i, 60, 10, 9, 1.0), rss_bytes=176 * MIB, tasks_done=31_000 + 25 * i,
                  tasks_per_s=_wave(i, 25, 5, 8, 1.0), messages_in=9_000 + 25 * i, messages_out=8_990 + 25 * i,
                  uptime_s=3700.0 + i, gauges={"gflops": _wave(i, 22, 3, 6, 2.0), "gbps": 7.4},
                  **{**common, "duty_cycle": 0.6}),
        AgentInfo(id="resource-1", type="resource", slot=3, pid=4103, state="running", priority=0, restarts=0,
                  cpu_percent=_wave(i, 2, 1, 4), rss_bytes=48 * MIB, tasks_done=3_700 + i, tasks_per_s=1.0,
                  messages_in=120, messages_out=3_700 + i, uptime_s=3700.0 + i,
                  gauges={"forecast_cpu_pct": _wave(i, 64, 12, 11)}, **common),
        AgentInfo(id="echo-1", type="echo", slot=5, pid=4105, state="paused", priority=-5, restarts=0,
                  cpu_percent=0.0, rss_bytes=31 * MIB, tasks_done=5_120, tasks_per_s=0.0, messages_in=5_120,
                  messages_out=5_120, uptime_s=1800.0 + i, gauges={"handled": 5_120}, **common),
        AgentInfo(id="fault_tolerance-1", type="fault_tolerance", slot=6, pid=0, state="crashed", priority=0,
                  restarts=2, cpu_percent=0.0, rss_bytes=0, tasks_done=0, tasks_per_s=0.0, messages_in=0,
                  messages_out=0, uptime_s=0.0, last_error="ZeroDivisionError: float division by zero",
                  **{**common, "heartbeat_age_s": float("inf")}),
        AgentInfo(id="learning-1", type="learning", slot=7, pid=4107, state="restarting", priority=10, restarts=1,
                  cpu_percent=_wave(i, 12, 6, 3), rss_bytes=95 * MIB, tasks_done=800 + i, tasks_per_s=_wave(i, 3, 2, 4),
                  messages_in=800 + i, messages_out=790 + i, uptime_s=2.5, gauges={"reward": 0.82}, **common),
    ]
    agents.insert(3, AgentInfo(
        id="thermal-1", type="thermal", slot=4, pid=4104, state="running", priority=-10, restarts=0,
        cpu_percent=_wave(i, 1.5, 0.5, 5), rss_bytes=52 * MIB, tasks_done=7_400 + 2 * i, tasks_per_s=2.0,
        messages_in=7_400 + 2 * i, messages_out=200, uptime_s=3700.0 + i,
        gauges={"temp_c": _hottest(i, sensors), "predicted_c": _wave(i, 78, 4, 10), "duty_target_pct": 60.0},
        affinity=(3,), **common))
    return agents


def _hottest(i: int, sensors: bool) -> float:
    return _wave(i, 88, 3, 9, 1.0) if sensors else _wave(i, 64, 5, 10)


def _thermal_extra(i: int, sensors: bool) -> dict[str, Any]:
    """What a thermal agent publishes: real sensors, or a labelled model when there are none."""
    report: dict[str, Any] = {
        "source": "sensor" if sensors else "modelled", "available": True,
        "reason": "" if sensors else "no thermal zone or hwmon sensor is readable; RC model driven by CPU load",
        "sensors": [], "hottest_c": _hottest(i, sensors), "predicted_c": _wave(i, 78, 4, 10), "horizon_s": 5.0,
        "limit_c": 90.0, "target_c": 85.0, "mode": "throttle", "duty": 0.6,
    }  # fmt: skip
    if sensors:
        report["sensors"] = [
            {"id": "hwmon1/temp1", "label": "Package id 0", "kind": "cpu_package",
             "temperature_c": _wave(i, 71, 4, 10), "critical_c": 100.0, "max_c": 85.0},
            {"id": "hwmon1/temp2", "label": "Core 0", "kind": "cpu_core",
             "temperature_c": _wave(i, 69, 5, 9), "critical_c": 100.0, "max_c": 85.0},
            {"id": "hwmon1/temp3", "label": "Core 1", "kind": "cpu_core",
             "temperature_c": _hottest(i, sensors), "critical_c": 100.0, "max_c": 85.0},
            {"id": "hwmon2/temp1", "label": "edge (amdgpu)", "kind": "gpu",
             "temperature_c": 54.0, "critical_c": 110.0, "max_c": 95.0},
        ]
    return {"thermal": {"thermal-1": report}}


def sample_snapshot(i: int, *, name: str = "sample-swarm", max_agents: int = 16,
                    sensors: bool = False) -> SwarmSnapshot:
    """Step ``i`` of the sample swarm's history (``i`` seconds after the first)."""
    agents = tuple(_agents_at(i, sensors=sensors))
    return SwarmSnapshot(
        name=name,
        time=EPOCH + i,
        uptime_s=3600.0 + i,
        agents=agents,
        bus=BusInfo(sent=1_200_000 + 4_200 * i, received=1_199_000 + 4_200 * i, bytes=310_000_000 + 1_000_000 * i,
                    full_events=3, rejected=0, redeliveries=1, latency_p50_us=_wave(i, 14, 3, 9),
                    latency_p99_us=_wave(i, 80, 25, 6), latency_p999_us=_wave(i, 240, 60, 6),
                    messages_per_s=_wave(i, 4_200, 900, 12)),
        machine=MachineInfo(cpu_percent=_wave(i, 58, 10, 7),
                            per_cpu_percent=(_wave(i, 92, 6, 5), _wave(i, 61, 12, 7), _wave(i, 40, 20, 9),
                                             _wave(i, 8, 4, 3)),
                            memory_percent=61.3, memory_used_bytes=int(9.8 * GIB), memory_total_bytes=16 * GIB,
                            load_average=(2.1, 1.8, 1.5)),
        events_total=14,
        alerts_total=2,
        max_agents=max_agents,
        extra=_thermal_extra(i, sensors),
    )


def sample_events() -> list[Event]:
    """The sample swarm's event log."""
    t = EPOCH - 60.0
    return [
        Event("swarm_started", t, Severity.INFO, None, "swarm 'sample-swarm' started (max 16 agents)"),
        Event("agent_created", t + 1, Severity.INFO, "compute-1", "created compute agent compute-1 (pid 4101)"),
        Event("agent_created", t + 1, Severity.INFO, "compute-2", "created compute agent compute-2 (pid 4102)"),
        Event("agent_created", t + 2, Severity.INFO, "resource-1", "created resource agent resource-1 (pid 4103)"),
        Event("agent_crashed", t + 20, Severity.ERROR, "fault_tolerance-1",
              "fault_tolerance-1 crashed: ZeroDivisionError: float division by zero"),
        Event("performance_alert", t + 31, Severity.WARNING, None, "machine cpu at 91.2% (critical 90%)"),
        Event("thermal_throttle", t + 32, Severity.WARNING, "compute-2", "compute-2 duty cycle 100% -> 60% (88 °C)"),
        Event("agent_paused", t + 40, Severity.INFO, "echo-1", "echo-1 paused"),
        Event("agent_restarted", t + 55, Severity.INFO, "learning-1", "learning-1 restarted (backoff 0.5 s)"),
        Event("agent_gave_up", t + 58, Severity.CRITICAL, "fault_tolerance-1",
              "fault_tolerance-1 crashed 3 times in 60 s; not restarting"),
    ]


class FixedSource:
    """A fixed sample swarm with the source interface (see module docstring).

    Args:
        sensors: include temperature sensors (else the thermal panel says there are none).
        privileged: when ``False``, raising a priority raises ``PermissionError`` like
            an unprivileged live swarm.
        history: how many steps of history ``recent_snapshots()`` returns.
    """

    mode = "sample"

    def __init__(self, *, sensors: bool = False, privileged: bool = True, history: int = 120,
                 config: SwarmConfig | None = None) -> None:
        self.config = config or default_config().with_overrides(name="sample-swarm", max_agents=16)
        self.sensors = sensors
        self.privileged = privileged
        self._history = [sample_snapshot(i, name=self.config.name, max_agents=self.config.max_agents,
                                         sensors=sensors) for i in range(history)]
        last = self._history[-1]
        self._snapshot = last
        self._agents: dict[str, AgentInfo] = {a.id: a for a in last.agents}
        self._handlers: list[tuple[str, Callable[[Event], Any]]] = []
        self._events = sample_events()
        self._next_pid = 4200
        self._started = False
        self._stopped = False
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to start; the data is already there."""
        self._started = True

    async def stop(self) -> None:
        """Stop answering (like a shut-down swarm)."""
        self._stopped = True

    def recent_snapshots(self) -> list[SwarmSnapshot]:
        """The pre-built history, oldest first (the last one is the current snapshot)."""
        return list(self._history)

    # --- queries ---------------------------------------------------------------------------

    def get_system_status(self) -> SwarmSnapshot:
        """The current sample snapshot (the same object until a command changes it)."""
        if self._stopped:
            raise OrchestratorClosed("the sample swarm is stopped")
        return self._snapshot

    def add_event_handler(self, event: str, handler: Callable[[Event], Any]) -> None:
        """Register a handler; it is called at once with the sample's past events."""
        self._handlers.append((event, handler))
        for past in self._events:
            if event in ("*", past.name):
                handler(past)

    def available_types(self) -> list[str]:
        """The seven built-in types of the design."""
        return ["compute", "echo", "fault_tolerance", "learning", "optimization", "resource", "thermal"]

    def agent_details(self, agent_id: str) -> dict[str, Any]:
        """Supervisor-side facts, shaped like the orchestrator's."""
        agent = self._agent(agent_id)
        crashed = agent.state == "crashed"
        return {
            "id": agent.id, "type": agent.type, "slot": agent.slot, "pid": agent.pid, "state": agent.state,
            "restart": "permanent", "restarts": agent.restarts, "incarnation": agent.restarts + 1,
            "priority": agent.priority, "duty_cycle": agent.duty_cycle, "affinity": list(agent.affinity),
            "options": {"kernel": "triad", "size": 4_000_000} if agent.type == "compute" else {},
            "last_exit": "exit code 1" if crashed else "", "last_error": agent.last_error,
            "last_traceback": _TRACEBACK if crashed else "", "has_checkpoint": agent.type == "echo",
        }  # fmt: skip

    # --- commands --------------------------------------------------------------------------

    def _agent(self, agent_id: str) -> AgentInfo:
        if self._stopped:
            raise OrchestratorClosed("the sample swarm is stopped")
        try:
            return self._agents[agent_id]
        except KeyError:
            raise UnknownAgent(f"no agent with id {agent_id!r}") from None

    def _commit(self, name: str, agent_id: str | None, message: str, severity: Severity = Severity.INFO) -> None:
        """Publish the changed agents as a new snapshot (one second later) and emit an event."""
        snap = self._snapshot
        self._snapshot = dataclasses.replace(
            snap, time=snap.time + 1, uptime_s=snap.uptime_s + 1, agents=tuple(self._agents.values()),
            events_total=snap.events_total + 1,
        )
        event = Event(name, self._snapshot.time, severity, agent_id, message)
        self._events.append(event)
        for wanted, handler in self._handlers:
            if wanted in ("*", name):
                handler(event)

    def _update(self, agent_id: str, **changes: Any) -> AgentInfo:
        agent = dataclasses.replace(self._agent(agent_id), **changes)
        self._agents[agent_id] = agent
        return agent

    async def create_agent(self, agent_type: str, id: str | None = None, **kwargs: Any) -> str:
        """Add a running agent of ``agent_type``."""
        self.calls.append(("create_agent", (agent_type, id)))
        if self._stopped:
            raise OrchestratorClosed("the sample swarm is stopped")
        if agent_type not in self.available_types():
            raise UnknownAgentType(f"unknown agent type {agent_type!r}; available: "
                                   f"{', '.join(self.available_types())}")
        if id is not None and id in self._agents:
            raise DuplicateAgentId(f"an agent with id {id!r} already exists")
        if len(self._agents) >= self.config.max_agents:
            raise MaxAgentsReached(f"cannot create {agent_type!r}: the swarm has max_agents="
                                   f"{self.config.max_agents} agents already (raise max_agents in swarm.toml "
                                   "or destroy one)")
        n = 1
        while id is None:
            candidate = f"{agent_type}-{n}"
            id = None if candidate in self._agents else candidate
            n += 1
        self._next_pid += 1
        used = {a.slot for a in self._agents.values()}
        slot = next(s for s in range(1, self.config.max_agents + 1) if s not in used)
        self._agents[id] = AgentInfo(
            id=id, type=agent_type, slot=slot, pid=self._next_pid, state="running",
            priority=int(kwargs.get("priority", 0)), restarts=0, cpu_percent=0.0, rss_bytes=30 * MIB,
            tasks_done=0, tasks_per_s=0.0, messages_in=0, messages_out=0, errors=0, heartbeat_age_s=0.0,
            uptime_s=0.0, duty_cycle=1.0, latency_p50_us=0.0, latency_p99_us=0.0,
        )  # fmt: skip
        self._commit("agent_created", id, f"created {agent_type} agent {id} (pid {self._next_pid})")
        return id

    async def destroy_agent(self, agent_id: str) -> None:
        """Remove the agent."""
        self.calls.append(("destroy_agent", (agent_id,)))
        agent = self._agent(agent_id)
        del self._agents[agent_id]
        self._commit("agent_destroyed", agent_id, f"destroyed {agent.type} agent {agent_id}")

    async def set_priority(self, agent_id: str, priority: int) -> None:
        """Change the nice value (validated like the engine)."""
        self.calls.append(("set_priority", (agent_id, priority)))
        if not isinstance(priority, int) or isinstance(priority, bool) or not -20 <= priority <= 19:
            raise ValueError(f"priority must be an integer from -20 (highest) to 19 (lowest), got {priority!r}")
        agent = self._agent(agent_id)
        if priority < agent.priority and not self.privileged:
            raise PermissionError(f"cannot set priority {priority} on {agent_id}: raising priority (a lower nice "
                                  "value) needs root or CAP_SYS_NICE (Permission denied)")
        self._update(agent_id, priority=priority)
        self._commit("priority_changed", agent_id, f"{agent_id} priority {agent.priority} -> {priority}")

    async def pause_agent(self, agent_id: str) -> None:
        """Mark the agent paused."""
        self.calls.append(("pause_agent", (agent_id,)))
        self._update(agent_id, state="paused", tasks_per_s=0.0, cpu_percent=0.0)
        self._commit("agent_paused", agent_id, f"{agent_id} paused")

    async def resume_agent(self, agent_id: str) -> None:
        """Mark the agent running."""
        self.calls.append(("resume_agent", (agent_id,)))
        self._update(agent_id, state="running")
        self._commit("agent_resumed", agent_id, f"{agent_id} resumed")

    async def restart_agent(self, agent_id: str) -> None:
        """Count a restart and mark the agent running."""
        self.calls.append(("restart_agent", (agent_id,)))
        agent = self._agent(agent_id)
        self._next_pid += 1
        self._update(agent_id, state="running", restarts=agent.restarts + 1, pid=self._next_pid, uptime_s=0.0,
                     last_error="")
        self._commit("agent_restarted", agent_id, f"{agent_id} restarted on request")

    async def pin_agent(self, agent_id: str, cpus: Sequence[int]) -> None:
        """Record the affinity (cores must exist on the sample machine)."""
        self.calls.append(("pin_agent", (agent_id, tuple(cpus))))
        allowed = list(range(len(self._snapshot.machine.per_cpu_percent)))
        chosen = tuple(sorted(set(cpus))) or tuple(allowed)
        bad = [c for c in chosen if c not in allowed]
        if bad:
            raise ValueError(f"cores {bad} are not available; this process may use {allowed}")
        self._update(agent_id, affinity=chosen)
        self._commit("agent_pinned", agent_id, f"{agent_id} pinned to cores {list(chosen)}")
