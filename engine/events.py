"""Swarm events: names, the immutable ``Event`` value, and the dispatcher.

Handlers are registered per event name (or ``"*"`` for every event) and may be
plain functions or coroutine functions.  A handler that raises is logged and
counted; it never stops the swarm or other handlers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Awaitable, Callable, Union

log = logging.getLogger("engine.events")

# Event names (strings, so that JSON output and handlers use the same words).
AGENT_CREATED = "agent_created"
AGENT_STARTED = "agent_started"
AGENT_DESTROYED = "agent_destroyed"
AGENT_CRASHED = "agent_crashed"
AGENT_RESTARTED = "agent_restarted"
AGENT_GAVE_UP = "agent_gave_up"
AGENT_HUNG = "agent_hung"
AGENT_PAUSED = "agent_paused"
AGENT_RESUMED = "agent_resumed"
PRIORITY_CHANGED = "priority_changed"
AGENT_PINNED = "agent_pinned"
PERFORMANCE_ALERT = "performance_alert"
THERMAL_THROTTLE = "thermal_throttle"
ANOMALY_DETECTED = "anomaly_detected"
FAILURE_PREDICTED = "failure_predicted"
SCALED = "scaled"
CHANNEL_FAULT = "channel_fault"
MESSAGE_DROPPED = "message_dropped"
AGENT_EVENT = "agent_event"
LIMIT_EXCEEDED = "limit_exceeded"
SWARM_STARTED = "swarm_started"
SWARM_STOPPED = "swarm_stopped"
AGENT_QUARANTINED = "agent_quarantined"  # taken out of dispatch (fault tolerance)
AGENT_RELEASED = "agent_released"  # quarantine lifted

ALL_EVENTS = (
    AGENT_CREATED, AGENT_STARTED, AGENT_DESTROYED, AGENT_CRASHED, AGENT_RESTARTED,
    AGENT_GAVE_UP, AGENT_HUNG, AGENT_PAUSED, AGENT_RESUMED, PRIORITY_CHANGED, AGENT_PINNED,
    PERFORMANCE_ALERT, THERMAL_THROTTLE, ANOMALY_DETECTED, FAILURE_PREDICTED, SCALED,
    CHANNEL_FAULT, MESSAGE_DROPPED, AGENT_EVENT, LIMIT_EXCEEDED, SWARM_STARTED, SWARM_STOPPED,
    AGENT_QUARANTINED, AGENT_RELEASED,
)  # fmt: skip


class Severity(str, Enum):
    """How much attention an event deserves."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Event:
    """Something that happened in the swarm.

    Attributes:
        name: one of the event names above (or an agent-defined name).
        time: wall-clock seconds since the epoch.
        severity: how serious it is.
        agent_id: the agent it concerns, if any.
        message: one human-readable sentence.
        data: extra fields (JSON-serialisable).
    """

    name: str
    time: float
    severity: Severity = Severity.INFO
    agent_id: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``event`` holds the name)."""
        out: dict[str, Any] = {
            "event": self.name,
            "time": self.time,
            "severity": self.severity.value,
            "agent_id": self.agent_id,
            "message": self.message,
        }
        out.update(self.data)
        return out


Handler = Callable[[Event], Union[None, Awaitable[None]]]


class EventDispatcher:
    """Calls registered handlers for each emitted event, in registration order."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self.handler_errors = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, name: str, handler: Handler) -> None:
        """Register ``handler`` for events called ``name`` (``"*"`` for all)."""
        if not callable(handler):
            raise TypeError(f"event handler for {name!r} must be callable, got {handler!r}")
        self._handlers[name].append(handler)

    def remove(self, name: str, handler: Handler) -> None:
        """Unregister a handler (no error if it was not registered)."""
        try:
            self._handlers[name].remove(handler)
        except ValueError:
            pass

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to its handlers; coroutine handlers run as tasks."""
        for handler in (*self._handlers.get(event.name, ()), *self._handlers.get("*", ())):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            except Exception:
                self.handler_errors += 1
                log.exception("event handler %r failed on %s", handler, event.name)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.handler_errors += 1
            log.error("async event handler failed", exc_info=task.exception())
