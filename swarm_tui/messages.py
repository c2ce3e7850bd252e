"""Messages from the engine side to the UI: snapshots, events and log records.

They are immutable and carry engine values only.  ``SnapshotUpdated`` coalesces:
when the UI falls behind, a queued snapshot is replaced by the newer one instead of
being drawn late, so a slow terminal never builds a backlog.
"""

from __future__ import annotations

from textual.message import Message

from engine.events import Event
from engine.model import SwarmSnapshot


class SnapshotUpdated(Message):
    """A new snapshot of the swarm."""

    def __init__(self, snapshot: SwarmSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        """A queued snapshot is superseded by a newer one."""
        return isinstance(message, SnapshotUpdated)


class EventReceived(Message):
    """A swarm event (never coalesced: every event reaches the log)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class SourceFailed(Message):
    """The source could not start, or stopped producing snapshots."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
