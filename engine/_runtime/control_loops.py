"""The orchestrator's periodic loops: hang detection, monitoring, alerts, auto-scaling.

Each loop sleeps for an interval from the configuration; nothing here polls faster
than configured.  Alerts use hysteresis (raised when a value crosses its critical
level, re-armed only once it is 5 points below) so a value hovering at the limit
cannot cause an alert storm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from engine import events as ev
from engine.errors import SwarmError
from engine.events import Event, Severity
from engine.model import SwarmSnapshot
from engine.scaling import ScalingDecision

if TYPE_CHECKING:  # pragma: no cover
    from engine.orchestrator import Orchestrator

log = logging.getLogger("engine.control")

ALERT_HYSTERESIS = 5.0


class AlertState:
    """Raises ``performance_alert`` events for machine CPU and memory, with hysteresis."""

    def __init__(self) -> None:
        self.armed = {"cpu": True, "memory": True}

    def check(self, snapshot: SwarmSnapshot, cpu_critical: float, memory_critical: float,
              emit: Callable[[Event], None]) -> None:
        """Emit an alert for each metric that just crossed its critical level."""
        for key, value, limit in (
            ("cpu", snapshot.machine.cpu_percent, cpu_critical),
            ("memory", snapshot.machine.memory_percent, memory_critical),
        ):
            if value >= limit and self.armed[key]:
                self.armed[key] = False
                emit(Event(ev.PERFORMANCE_ALERT, time.time(), Severity.WARNING, None,
                           f"machine {key} at {value:.1f}% (critical {limit:g}%)",
                           {"metric": key, "value": value, "limit": limit}))
            elif value < limit - ALERT_HYSTERESIS:
                self.armed[key] = True


class ControlLoops:
    """Runs the orchestrator's periodic work as asyncio tasks."""

    def __init__(self, orchestrator: "Orchestrator") -> None:
        self.orch = orchestrator
        self.alerts = AlertState()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the loops."""
        self.tasks = [asyncio.ensure_future(self._heartbeats()), asyncio.ensure_future(self._monitor())]

    async def stop(self) -> None:
        """Cancel the loops and wait for them."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self.tasks = []

    async def _heartbeats(self) -> None:
        interval = self.orch.config.supervisor.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            self.orch.check_heartbeats()

    async def _monitor(self) -> None:
        orch = self.orch
        cfg = orch.config
        th = cfg.performance_thresholds
        last_scale = time.monotonic()
        while True:
            await asyncio.sleep(cfg.monitoring_interval)
            snapshot = orch.get_system_status()
            if not any(a.type == "resource" and a.pid for a in snapshot.agents):
                # A running resource agent raises these alerts itself (with its own telemetry).
                self.alerts.check(snapshot, th.cpu_critical, th.memory_critical, orch.emit)
            orch.notify_status(snapshot)
            if cfg.auto_scaling and time.monotonic() - last_scale >= cfg.optimization_interval:
                last_scale = time.monotonic()
                await self.apply_scaling(orch.scaling_policy.decide(snapshot))

    async def apply_scaling(self, decision: ScalingDecision | None) -> None:
        """Create or destroy agents as decided, and emit a ``scaled`` event."""
        if decision is None or decision.delta == 0:
            return
        orch = self.orch
        created: list[str] = []
        removed: list[str] = []
        try:
            if decision.delta > 0:
                for _ in range(decision.delta):
                    created.append(await orch.create_agent(decision.agent_type, actor="autoscaler"))
            else:
                snapshot = orch.get_system_status()
                victims = [a.id for a in reversed(snapshot.agents) if a.type == decision.agent_type]
                for agent_id in victims[: -decision.delta]:
                    await orch.destroy_agent(agent_id, actor="autoscaler")
                    removed.append(agent_id)
        except SwarmError as exc:
            log.warning("scaling %s by %+d stopped: %s", decision.agent_type, decision.delta, exc)
        if created or removed:
            details: dict[str, Any] = {"agent_type": decision.agent_type, "created": created,
                                       "removed": removed, "reason": decision.reason}
            orch.emit(Event(ev.SCALED, time.time(), Severity.INFO, None,
                            f"scaled {decision.agent_type} by {len(created) - len(removed):+d}: "
                            f"{decision.reason}", details))
