"""The orchestrator's agent-control API: priority, pause, throttle, pin, restart, quarantine.

A mixin of :class:`engine.orchestrator.Orchestrator` (kept in its own module so the
orchestrator's file stays about lifecycle, creation and wiring).  Every method checks
the guard first (``authorize``), acts through the supervisor or the agent's control
lane, then audits and emits an event.  ``perform_action`` maps action names used by
agents over the bus (``BaseAgent.request_action``) to these methods.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from engine import events as ev
from engine.events import Event, Severity

if TYPE_CHECKING:  # pragma: no cover
    from engine._runtime.guard import Guard
    from engine._runtime.supervisor import Child, Supervisor

ACTIONS = ("throttle", "pause", "resume", "restart", "priority", "pin", "destroy", "create",
           "quarantine", "release")  # quarantine/release: used by the fault-tolerance agent


class AgentControl:
    """Control of running agents (mixed into the orchestrator)."""

    _guard: "Guard"
    _supervisor: "Supervisor | None"
    _quarantined: dict[str, tuple[str, bool]]

    def _child(self, agent_id: str) -> "Child":  # pragma: no cover - provided by the orchestrator
        raise NotImplementedError

    def _send_control_to(self, child: "Child", command: str, value: Any = None) -> bool:  # pragma: no cover
        raise NotImplementedError

    def emit(self, event: Event) -> None:  # pragma: no cover - provided by the orchestrator
        raise NotImplementedError

    async def set_priority(self, agent_id: str, priority: int, *, actor: str = "api") -> None:
        """Set an agent's nice value (-20 = most CPU .. 19 = least) and scheduling weight.

        Raises:
            ValueError: priority outside -20..19.
            PermissionError: lowering the nice value needs privileges this user lacks.
        """
        if not isinstance(priority, int) or isinstance(priority, bool) or not -20 <= priority <= 19:
            raise ValueError(f"priority must be an integer from -20 (highest) to 19 (lowest), got {priority!r}")
        child = self._child(agent_id)
        self._guard.authorize(actor, "priority", agent_id)
        if child.pid and child.alive:
            try:
                os.setpriority(os.PRIO_PROCESS, child.pid, priority)
            except PermissionError as exc:
                raise PermissionError(
                    f"cannot set priority {priority} on {agent_id}: raising priority (a lower nice "
                    f"value) needs root or CAP_SYS_NICE ({exc.strerror})"
                ) from None
            except ProcessLookupError:
                pass
        old = child.priority
        child.priority = priority
        self._send_control_to(child, "priority", priority)
        self._guard.audit(actor, "priority", agent_id, "ok", old=old, new=priority)
        self.emit(Event(ev.PRIORITY_CHANGED, time.time(), Severity.INFO, agent_id,
                         f"{agent_id} priority {old} -> {priority}", {"old": old, "new": priority}))

    async def pause_agent(self, agent_id: str, *, actor: str = "api") -> None:
        """Stop running the agent's cycles and handling data (control commands still work)."""
        self._set_paused(agent_id, True, actor)

    async def resume_agent(self, agent_id: str, *, actor: str = "api") -> None:
        """Resume a paused agent."""
        self._set_paused(agent_id, False, actor)

    def _set_paused(self, agent_id: str, paused: bool, actor: str) -> None:
        child = self._child(agent_id)
        action, name, word = ("pause", ev.AGENT_PAUSED, "paused") if paused else (
            "resume", ev.AGENT_RESUMED, "resumed")
        self._guard.authorize(actor, action, agent_id)
        child.paused = paused
        self._guard.audit(actor, action, agent_id, "ok")
        self._send_control_to(child, action)
        self.emit(Event(name, time.time(), Severity.INFO, agent_id, f"{agent_id} {word}"))

    async def throttle_agent(self, agent_id: str, duty_cycle: float, *, actor: str = "api") -> None:
        """Let the agent compute only ``duty_cycle`` (0.01..1) of the time."""
        if not 0.01 <= duty_cycle <= 1.0:
            raise ValueError(f"duty cycle must be within 0.01..1, got {duty_cycle}")
        child = self._child(agent_id)
        self._guard.authorize(actor, "throttle", agent_id)
        old = child.duty_cycle
        child.duty_cycle = duty_cycle
        if abs(old - duty_cycle) > 1e-9:
            self._guard.audit(actor, "throttle", agent_id, "ok", old=old, new=duty_cycle)
        self._send_control_to(child, "throttle", duty_cycle)

    async def pin_agent(self, agent_id: str, cpus: list[int] | tuple[int, ...], *,
                        actor: str = "api") -> None:
        """Pin the agent's process to the given CPU cores (empty = all cores).

        Raises:
            ValueError: a core this process may not use.
        """
        child = self._child(agent_id)
        self._guard.authorize(actor, "pin", agent_id)
        allowed = sorted(os.sched_getaffinity(0))
        chosen = tuple(sorted(set(cpus))) or tuple(allowed)
        bad = [c for c in chosen if c not in allowed]
        if bad:
            raise ValueError(f"cores {bad} are not available; this process may use {allowed}")
        child.affinity = chosen
        if child.pid and child.alive:
            try:
                os.sched_setaffinity(child.pid, chosen)
            except ProcessLookupError:
                pass
        self._guard.audit(actor, "pin", agent_id, "ok", cpus=list(chosen))
        self.emit(Event(ev.AGENT_PINNED, time.time(), Severity.INFO, agent_id,
                        f"{agent_id} pinned to cores {', '.join(map(str, chosen))}", {"cpus": list(chosen)}))

    async def restart_agent(self, agent_id: str, *, actor: str = "api") -> None:
        """Stop the agent gracefully and start it again (not counted as a crash)."""
        child = self._child(agent_id)
        assert self._supervisor is not None
        self._guard.authorize(actor, "restart", agent_id)
        self._guard.audit(actor, "restart", agent_id, "ok")
        await self._supervisor.stop(child, restarting=True)
        if agent_id not in self._supervisor.children:
            return
        child.incarnation += 1
        child.restarts += 1
        self._supervisor.start(child)
        self.emit(Event(ev.AGENT_RESTARTED, time.time(), Severity.INFO, agent_id,
                         f"{agent_id} restarted on request", {"reason": "requested", "restarts": child.restarts}))

    async def inject_hang(self, agent_id: str, *, actor: str = "api") -> None:
        """Fault injection: make the agent stop heartbeating (the supervisor will kill it)."""
        child = self._child(agent_id)
        self._guard.authorize(actor, "hang", agent_id)
        self._send_control_to(child, "hang")
        self._guard.audit(actor, "hang", agent_id, "ok")

    # --- quarantine (added for the fault-tolerance agent) ----------------------------------

    async def quarantine_agent(self, agent_id: str, reason: str = "", *, pause: bool = False,
                               actor: str = "api") -> None:
        """Take an agent out of task dispatch (and pause it if ``pause``) until released.

        Tasks already in its inbox stay there, unacknowledged: a paused agent handles
        them after ``release``; a running one finishes them.  Emits ``agent_quarantined``.
        """
        child = self._child(agent_id)
        self._guard.authorize(actor, "quarantine", agent_id)
        paused_now = pause and not child.paused
        was_paused_by_quarantine = self._quarantined.get(agent_id, ("", False))[1]
        self._quarantined[agent_id] = (reason, paused_now or was_paused_by_quarantine)
        if paused_now:
            await self.pause_agent(agent_id, actor=actor)
        self._guard.audit(actor, "quarantine", agent_id, "ok", reason=reason, pause=pause)
        self.emit(Event(ev.AGENT_QUARANTINED, time.time(), Severity.WARNING, agent_id,
                         f"{agent_id} quarantined by {actor}: {reason}",
                         {"reason": reason, "paused": child.paused, "actor": actor}))

    async def release_agent(self, agent_id: str, reason: str = "", *, actor: str = "api") -> None:
        """Lift a quarantine (resuming the agent if the quarantine paused it)."""
        child = self._child(agent_id)
        self._guard.authorize(actor, "release", agent_id)
        entry = self._quarantined.pop(agent_id, None)
        if entry is None:
            return
        if entry[1] and child.paused:
            await self.resume_agent(agent_id, actor=actor)
        self._guard.audit(actor, "release", agent_id, "ok", reason=reason)
        self.emit(Event(ev.AGENT_RELEASED, time.time(), Severity.INFO, agent_id,
                         f"{agent_id} released from quarantine by {actor}"
                         + (f": {reason}" if reason else ""),
                         {"reason": reason, "quarantine_reason": entry[0], "actor": actor}))

    async def perform_action(self, action: str, agent_id: str, value: Any = None, *,
                             actor: str = "api") -> None:
        """Run a named action: throttle, pause, resume, restart, priority, pin, destroy, create,
        quarantine, release.

        Used for actions that agents request over the bus (``BaseAgent.request_action``)
        and by front ends that prefer one entry point.

        Raises:
            ValueError: an unknown action or a bad value.
        """
        if action == "throttle":
            await self.throttle_agent(agent_id, float(value), actor=actor)
        elif action == "pause":
            await self.pause_agent(agent_id, actor=actor)
        elif action == "resume":
            await self.resume_agent(agent_id, actor=actor)
        elif action == "restart":
            await self.restart_agent(agent_id, actor=actor)
        elif action == "priority":
            await self.set_priority(agent_id, int(value), actor=actor)
        elif action == "pin":
            await self.pin_agent(agent_id, list(value or ()), actor=actor)
        elif action == "destroy":
            await self.destroy_agent(agent_id, actor=actor)
        elif action == "create":
            await self.create_agent(str(value), id=agent_id or None, actor=actor)
        elif action == "quarantine":  # value: reason, or {"reason": str, "pause": bool}
            opts = value if isinstance(value, dict) else {"reason": str(value or "")}
            await self.quarantine_agent(agent_id, str(opts.get("reason", "")),
                                        pause=bool(opts.get("pause", False)), actor=actor)
        elif action == "release":
            await self.release_agent(agent_id, str(value or ""), actor=actor)
        else:
            raise ValueError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")

