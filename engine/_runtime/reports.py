"""What agents send the orchestrator: replies, reports, publications, action requests.

Frames arrive in the orchestrator's inbox and are handled on its event loop:

* ``REPLY`` resolves the future of a pending request;
* ``STARTED``/``CRASH``/``CHECKPOINT`` update the supervisor's record of the child;
* ``EVENT`` becomes a swarm event;
* ``DATA`` is a publication (``publish:<topic>``, kept as the latest value per
  agent), an action request (``swarm_action``, carried out with the sender as the
  audited actor), or goes to the registered message handlers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from engine._runtime import protocol
from engine._runtime.protocol import Kind
from engine._runtime.supervisor import Child
from engine.communicator import Message, decode_message
from engine.errors import SwarmError
from engine.events import Event, Severity

if TYPE_CHECKING:  # pragma: no cover
    from engine.orchestrator import Orchestrator

log = logging.getLogger("engine.reports")

#: Agents publish named values with this message-type prefix; the latest value per topic
#: and agent appears in ``snapshot.extra[topic][agent_id]``.
PUBLISH_PREFIX = "publish:"
#: Message type by which an agent asks the orchestrator to act on an agent.
ACTION_MESSAGE = "swarm_action"


class ReportRouter:
    """Handles every frame in the orchestrator's inbox."""

    def __init__(self, orchestrator: "Orchestrator") -> None:
        self.orch = orchestrator
        self.pending_replies: dict[int, asyncio.Future[Message]] = {}
        self.published: dict[str, dict[str, Any]] = {}
        self.message_handlers: list[Callable[[Message], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, frame: Any) -> None:
        """Route one frame (called on the event loop)."""
        kind = frame.msg_type
        if kind == Kind.REPLY:
            msg = decode_message(frame)
            fut = self.pending_replies.pop(frame.correlation_id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif kind == Kind.DATA:
            self._data(decode_message(frame))
        else:
            child = self.orch.child_in_slot(frame.sender)
            if child is None:
                log.debug("report kind %s from unknown slot %s ignored", kind, frame.sender)
            else:
                self._report(kind, frame, child)

    def _data(self, msg: Message) -> None:
        if msg.message_type.startswith(PUBLISH_PREFIX):
            topic = msg.message_type[len(PUBLISH_PREFIX):]
            self.published.setdefault(topic, {})[msg.sender_id] = msg.payload
        elif msg.message_type == ACTION_MESSAGE:
            task = asyncio.ensure_future(self._agent_action(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            for handler in self.message_handlers:
                try:
                    handler(msg)
                except Exception:
                    log.exception("message handler %r failed", handler)

    def _report(self, kind: int, frame: Any, child: Child) -> None:
        if kind == Kind.STARTED:
            report = protocol.decode_started(frame.payload)
            if report.incarnation == child.incarnation:
                child.ready.set()
                child.state = "paused" if child.paused else "running"
                child.last_error = ""
                child.last_traceback = ""
        elif kind == Kind.CRASH:
            crash = protocol.decode_crash(frame.payload)
            child.last_error = crash.error
            child.last_traceback = crash.traceback
        elif kind == Kind.CHECKPOINT:
            child.checkpoint = bytes(frame.payload)
        elif kind == Kind.EVENT:
            report = protocol.decode_event(frame.payload)
            try:
                severity = Severity(report.severity)
            except ValueError:
                severity = Severity.INFO
            self.orch.emit(Event(report.name, time.time(), severity, child.agent_id, report.message,
                                 dict(report.data)))

    async def _agent_action(self, msg: Message) -> None:
        payload = msg.payload if isinstance(msg.payload, dict) else {}
        result: dict[str, Any]
        try:
            await self.orch.perform_action(str(payload.get("action", "")), str(payload.get("agent_id", "")),
                                           payload.get("value"), actor=msg.sender_id)
            result = {"ok": True}
        except (SwarmError, ValueError, PermissionError) as exc:
            result = {"ok": False, "error": str(exc)}
        if msg.expects_reply:
            try:
                self.orch.communicator.reply(msg, result)
            except SwarmError as exc:  # channel full/closed, or the swarm is shutting down
                log.warning("reply to action from %s not delivered: %s", msg.sender_id, exc)

    def channel_faults(self, faults: list[Any]) -> None:
        """Report corrupt frames found in the orchestrator's inbox as events."""
        for fault in faults:
            child = self.orch.child_in_slot(fault.producer)
            self.orch.emit(Event(
                "channel_fault", time.time(), Severity.ERROR, child.agent_id if child else None,
                f"corrupt frame from slot {fault.producer} to the orchestrator on lane "
                f"{fault.lane.name.lower()}: {fault.reason}; {fault.bytes_lost} bytes skipped",
                {"producer": fault.producer, "lane": fault.lane.name.lower(), "reason": fault.reason,
                 "bytes_lost": fault.bytes_lost},
            ))

    def forget_agent(self, agent_id: str) -> None:
        """Drop the publications of a destroyed agent."""
        for by_agent in self.published.values():
            by_agent.pop(agent_id, None)

    def cancel_pending(self) -> None:
        """Cancel every pending request (at shutdown)."""
        for fut in self.pending_replies.values():
            if not fut.done():
                fut.cancel()
        self.pending_replies.clear()
