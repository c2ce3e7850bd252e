"""Builds immutable swarm snapshots from the status table and supervisor records.

CPU percentages and task rates are derived from deltas of each agent's own
counters (CPU seconds, tasks done) between two snapshots, so reading the swarm
costs no system call per agent.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

import psutil

from engine._runtime.supervisor import Child
from engine._shm.status_table import StatusTable
from engine.bus_meter import BusMeter
from engine.model import AgentInfo, BusInfo, MachineInfo, SwarmSnapshot


def machine_info() -> MachineInfo:
    """CPU per core, memory and load, sampled without blocking."""
    per_cpu = tuple(psutil.cpu_percent(percpu=True))
    vm = psutil.virtual_memory()
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return MachineInfo(
        cpu_percent=round(sum(per_cpu) / len(per_cpu), 2) if per_cpu else 0.0,
        per_cpu_percent=per_cpu,
        memory_percent=vm.percent,
        memory_used_bytes=vm.total - vm.available,
        memory_total_bytes=vm.total,
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        allowed_cpus=tuple(sorted(os.sched_getaffinity(0))),
    )


class SnapshotBuilder:
    """Turns status rows + supervisor state into :class:`SwarmSnapshot` values."""

    def __init__(self, table: StatusTable) -> None:
        self.table = table
        self.bus_meter = BusMeter()
        # agent id -> (monotonic time, cpu seconds, pid, tasks done) at the last snapshot
        self._prev: dict[str, tuple[float, float, int, int]] = {}
        psutil.cpu_percent(percpu=True)  # prime the non-blocking sampler

    def forget(self, agent_id: str) -> None:
        """Drop rate history of a destroyed agent."""
        self._prev.pop(agent_id, None)

    def agent_info(self, child: Child, now: float, now_ns: int) -> AgentInfo:
        """One agent's view, merging its status row with the supervisor's record."""
        row = self.table.read(child.slot)
        current = row.pid == child.pid and row.agent_id == child.agent_id
        cpu_pct, tasks_rate = 0.0, 0.0
        prev = self._prev.get(child.agent_id)
        if current and prev is not None and prev[2] == row.pid and now > prev[0]:
            dt = now - prev[0]
            cpu_pct = max(0.0, (row.cpu_time_s - prev[1]) / dt * 100.0)
            tasks_rate = max(0.0, (row.tasks_done - prev[3]) / dt)
        if current:
            self._prev[child.agent_id] = (now, row.cpu_time_s, row.pid, row.tasks_done)
        state = child.state
        if current and child.alive and state not in ("stopping", "restarting"):
            if row.state.label not in ("empty", "stopped"):
                state = row.state.label
        return AgentInfo(
            id=child.agent_id, type=child.spec.agent_type, slot=child.slot,
            pid=child.pid if child.alive else 0, state=state, priority=child.priority,
            restarts=child.restarts, cpu_percent=round(cpu_pct, 2),
            rss_bytes=row.rss_bytes if current else 0,
            tasks_done=row.tasks_done if current else 0, tasks_per_s=round(tasks_rate, 3),
            messages_in=row.msgs_in if current else 0,
            messages_out=row.msgs_out if current else 0,
            errors=row.errors if current else 0,
            heartbeat_age_s=round(row.heartbeat_age_s(now_ns), 3) if current else float("inf"),
            uptime_s=round(now - child.started_at, 3) if child.alive else 0.0,
            duty_cycle=child.duty_cycle, latency_p50_us=row.latency_p50_us,
            latency_p99_us=row.latency_p99_us, last_error=child.last_error,
            affinity=child.affinity, gauges=dict(row.gauges) if current else {},
        )  # fmt: skip

    def build(
        self,
        *,
        name: str,
        children: Iterable[Child],
        started_at: float,
        mailboxes: Iterable[Any],
        events_total: int,
        alerts_total: int,
        max_agents: int,
        extra: dict[str, Any],
    ) -> SwarmSnapshot:
        """The snapshot for now."""
        from engine.bus_meter import totals_of

        now = time.monotonic()
        now_ns = time.monotonic_ns()
        agents = tuple(self.agent_info(child, now, now_ns) for child in children)
        bus: BusInfo = self.bus_meter.update(totals_of(mailboxes))
        return SwarmSnapshot(
            name=name, time=time.time(), uptime_s=round(now - started_at, 3), agents=agents,
            bus=bus, machine=machine_info(), events_total=events_total,
            alerts_total=alerts_total, max_agents=max_agents, extra=extra,
        )  # fmt: skip
