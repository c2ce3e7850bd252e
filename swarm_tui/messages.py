"""Messages from the engine side to the UI: snapshots, events and log records.

They are immutable and carry engine values only.  ``SnapshotUpdated`` coalesces:
when the UI falls behind, a queued snapshot is replaced by the newer one instead of
being drawn late, so a slow terminal never builds a backlog.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from engine import Event, SwarmSnapshot


class SnapshotUpdated(Message):
    """A new snapshot of the swarm."""

    def __init__(self, snapshot: SwarmSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        """A queued snapshot is superseded by a newer one."""
        return isinstance(message, SnapshotUpdated)


class EventReceived(Message):
    """A swarm event (never coalesced: every event reaches the log).

    ``live`` is false for events the source replays from before the UI started
    (they are logged, but do not pop up).
    """

    def __init__(self, event: Event, *, live: bool = True) -> None:
        super().__init__()
        self.event = event
        self.live = live


class SourceFailed(Message):
    """The source could not start, or stopped producing snapshots."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class ReplayMoved(Message):
    """A replay was played, paused, sped up or slowed down, or jumped (``state.jumped``)."""

    def __init__(self, state: Any) -> None:
        super().__init__()
        self.state = state

    def can_replace(self, message: Message) -> bool:
        """Only a jump must be seen (history is rebuilt); other moves coalesce."""
        return isinstance(message, ReplayMoved) and not getattr(self.state, "jumped", False)
