"""``AgentContext``: what the runtime gives an agent (bus endpoint, config, gauges, events)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from engine._shm.status_table import StatusTable
    from engine.communicator import Communicator
    from engine.config import SwarmConfig


@dataclass
class AgentContext:
    """The runtime services available to an agent inside its process.

    Attributes:
        agent_id: this agent's id.
        agent_type: this agent's type name.
        slot: the status-table slot (also its producer index on the bus).
        incarnation: how many times this agent has been (re)started before.
        config: the whole swarm configuration.
        communicator: the agent's bus endpoint.
        log: a logger named after the agent.
        duty_cycle: the fraction of time the agent may compute (throttling).
        priority: the current nice-style priority.
    """

    agent_id: str
    agent_type: str
    slot: int
    incarnation: int
    config: "SwarmConfig"
    communicator: "Communicator"
    log: logging.Logger
    duty_cycle: float = 1.0
    priority: int = 0
    gauges: dict[str, float] = field(default_factory=dict)
    tasks_done: int = 0
    _emit: Callable[..., None] | None = None
    _stop: Callable[[], None] | None = None
    _beat: Callable[[], None] | None = None
    # Read-only views of the swarm's shared memory (added for the fault-tolerance agent).
    _table: "StatusTable | None" = None
    _prefix: str = ""

    @property
    def status_table(self) -> "StatusTable":
        """The swarm's status table, attached in this process: read any agent's row
        (``read(slot)``, ``read_all()``) without a round trip.  Never write to it."""
        if self._table is None:
            raise RuntimeError("the status table is only available inside the swarm runtime")
        return self._table

    def mailbox_name(self, slot: int, generation: int) -> str:
        """Segment name of the inbox of ``slot`` at ``generation`` (slot 0 generation 0 is
        the orchestrator's), for reading its statistics with ``Mailbox.attach``."""
        if not self._prefix:
            raise RuntimeError("mailbox names are only available inside the swarm runtime")
        from engine._runtime.launch import mailbox_name

        return mailbox_name(self._prefix, slot, generation)

    def set_gauge(self, name: str, value: float) -> None:
        """Publish a named number in the agent's status row at the next heartbeat."""
        if name not in self.gauges and len(self.gauges) >= 8:
            raise ValueError(f"agent {self.agent_id}: at most 8 gauges; cannot add {name!r}")
        self.gauges[name] = float(value)

    def task_done(self, count: int = 1) -> None:
        """Count completed units of work."""
        self.tasks_done += count

    def emit_event(self, name: str, message: str = "", *, severity: str = "info", **data: Any) -> None:
        """Send an event to the orchestrator."""
        if self._emit is None:
            raise RuntimeError("events can only be emitted inside the swarm runtime")
        self._emit(name, message, severity, data)

    def request_stop(self) -> None:
        """Stop this agent cleanly after the current call (exit status 0).

        A ``transient`` or ``temporary`` agent that stops itself is not restarted.
        """
        if self._stop is None:
            raise RuntimeError("request_stop only works inside the swarm runtime")
        self._stop()

    def heartbeat(self) -> None:
        """Publish a heartbeat now: call it during long work (e.g. JIT warm-up in on_start)."""
        if self._beat is not None:
            self._beat()

    def publish(self, topic: str, value: Any) -> None:
        """Send ``value`` to the orchestrator under ``topic`` (latest value wins).

        Sent quietly: the orchestrator is not woken for it and takes it at its next
        inbox drain -- before its next snapshot, and at the latest after its inbox
        watcher's safety-net sleep (``engine.orchestrator.INBOX_SAFETY_SLEEP_S``).
        """
        self.communicator.send_message(
            recipient_id="orchestrator", message_type=f"publish:{topic}", payload=value, priority="low",
            wake=False,
        )

    def request_action(self, action: str, agent_id: str, value: Any = None, *, timeout: float = 5.0) -> dict[str, Any]:
        """Ask the orchestrator to act on an agent and wait for the outcome."""
        reply = self.communicator.request_sync(
            "orchestrator", "swarm_action", {"action": action, "agent_id": agent_id, "value": value},
            priority="high", timeout=timeout,
        )
        return dict(reply.payload) if isinstance(reply.payload, dict) else {"ok": False, "error": "bad reply"}
