"""Frame kinds and the small structs the runtime exchanges over the bus.

Every frame on the bus carries a ``msg_type`` (u16).  Application messages from the
Communicator are ``DATA``/``REPLY``; the rest is the runtime talking to itself:
control commands (orchestrator -> agent, on the CONTROL lane) and reports
(agent -> orchestrator: events, checkpoints, crash tracebacks).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import msgspec


class Kind(IntEnum):
    """The ``msg_type`` of a frame."""

    DATA = 1
    REPLY = 2
    CONTROL = 3
    EVENT = 4
    CHECKPOINT = 5
    CRASH = 6
    STARTED = 7


class Control(msgspec.Struct, frozen=True):
    """A command from the supervisor to an agent."""

    command: str  # stop | pause | resume | priority | throttle | checkpoint | affinity | hang
    value: Any = None


class EventReport(msgspec.Struct, frozen=True):
    """An event raised inside an agent."""

    name: str
    message: str = ""
    severity: str = "info"
    data: dict[str, Any] = {}


class CrashReport(msgspec.Struct, frozen=True):
    """Why an agent is about to die: the exception and its formatted traceback."""

    error: str
    traceback: str


class StartedReport(msgspec.Struct, frozen=True):
    """Sent once an agent is ready to serve (after restore and ``on_start``)."""

    pid: int
    incarnation: int
    warm_s: float = 0.0


CONTROL_COMMANDS = ("stop", "pause", "resume", "priority", "throttle", "checkpoint", "affinity", "hang")

_encoder = msgspec.msgpack.Encoder()
_control_decoder = msgspec.msgpack.Decoder(Control)
_event_decoder = msgspec.msgpack.Decoder(EventReport)
_crash_decoder = msgspec.msgpack.Decoder(CrashReport)
_started_decoder = msgspec.msgpack.Decoder(StartedReport)


def encode(obj: Any) -> bytes:
    """Encode a protocol struct (or any msgspec-serialisable value) as MessagePack."""
    return _encoder.encode(obj)


def decode_control(raw: bytes) -> Control:
    """Decode a control command."""
    return _control_decoder.decode(raw)


def decode_event(raw: bytes) -> EventReport:
    """Decode an event report."""
    return _event_decoder.decode(raw)


def decode_crash(raw: bytes) -> CrashReport:
    """Decode a crash report."""
    return _crash_decoder.decode(raw)


def decode_started(raw: bytes) -> StartedReport:
    """Decode a started report."""
    return _started_decoder.decode(raw)


def decode_any(raw: bytes) -> Any:
    """Decode an untyped MessagePack value (checkpoints)."""
    return msgspec.msgpack.decode(raw)
