"""The bridge from a source to the UI: a poller that posts coalescing messages.

Design: one asyncio task (on the app's loop, like the live orchestrator) takes a
snapshot every ``interval`` seconds and posts an immutable
:class:`~swarm_tui.messages.SnapshotUpdated`; the source's events are posted as
:class:`~swarm_tui.messages.EventReceived` as they happen.  Polls never overlap and
never pile up: after posting, the bridge waits until the UI says the snapshot was
drawn (:meth:`SnapshotBridge.drawn`, with a timeout so a stalled UI cannot stall the
bridge forever) and only then sleeps for the next interval; and a snapshot still in
the queue is replaced by a newer one (``can_replace``).

The bridge knows nothing of widgets: it gets a ``post`` callable (``app.post_message``,
which is also safe to call from another thread).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from textual.message import Message

from engine import Event, OrchestratorClosed

from swarm_tui.messages import EventReceived, SnapshotUpdated
from swarm_tui.source import SwarmSource

log = logging.getLogger("swarm_tui.bridge")

Post = Callable[[Message], object]


class SnapshotBridge:
    """Polls ``source`` every ``interval`` seconds and posts snapshots and events."""

    def __init__(self, source: SwarmSource, post: Post, *, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"refresh interval must be > 0 s, got {interval!r}")
        self.source = source
        self.post = post
        self.interval = interval
        self.polls = 0
        self._drawn = asyncio.Event()
        self._wake = asyncio.Event()

    def attach_events(self) -> None:
        """Forward every event of the source (call before the source starts, to see them all)."""
        self.source.add_event_handler("*", self._on_event)

    def _on_event(self, event: Event) -> None:
        self.post(EventReceived(event))

    def drawn(self) -> None:
        """The UI has drawn the last snapshot: the next poll may be scheduled."""
        self._drawn.set()

    def poll_now(self) -> None:
        """Take the next snapshot without waiting for the interval (after a command)."""
        self._wake.set()

    async def run(self) -> None:
        """Poll until the source closes or the task is cancelled."""
        while True:
            try:
                snapshot = self.source.get_system_status()
            except OrchestratorClosed:
                return
            except Exception:  # a bad snapshot must not kill the dashboard
                log.exception("taking a snapshot failed; retrying in %.1f s", self.interval)
            else:
                self.polls += 1
                self._drawn.clear()
                self.post(SnapshotUpdated(snapshot))
                try:
                    await asyncio.wait_for(self._drawn.wait(), timeout=max(1.0, 5 * self.interval))
                except asyncio.TimeoutError:
                    pass
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
