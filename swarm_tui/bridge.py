"""The bridge from a source to the UI: snapshots and events become coalescing messages.

Two ways to get snapshots, chosen by what the source offers:

- **push** (the live orchestrator, a replay): the source calls the status handler
  with the snapshot it takes each ``monitoring_interval``; the bridge posts it.  The
  UI then never calls ``get_system_status()`` itself (except once at start), so it
  cannot shorten the windows the engine measures CPU % and tasks/s over.
- **poll** (a source without ``add_status_handler``, e.g. the fixed sample): one
  asyncio task takes a snapshot every ``interval`` seconds.  Polls never overlap
  and never pile up: after posting, the bridge waits until the UI says the snapshot
  was drawn (:meth:`SnapshotBridge.drawn`, with a timeout so a stalled UI cannot
  stall it forever) and only then sleeps for the next interval.

Either way a snapshot still queued is replaced by a newer one (``can_replace``), and
every event is posted as an :class:`~swarm_tui.messages.EventReceived`.  The bridge
knows nothing of widgets: it gets a ``post`` callable (``app.post_message``, which
is also safe to call from another thread).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from textual.message import Message

from engine import Event, OrchestratorClosed, SwarmSnapshot
from swarm_tui.messages import EventReceived, SnapshotUpdated
from swarm_tui.source import SwarmSource

log = logging.getLogger("swarm_tui.bridge")

Post = Callable[[Message], object]


class SnapshotBridge:
    """Forwards a source's snapshots and events to the UI (see module docstring)."""

    def __init__(self, source: SwarmSource, post: Post, *, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"refresh interval must be > 0 s, got {interval!r}")
        self.source = source
        self.post = post
        self.interval = interval
        self.polls = 0
        self.push = False
        """The source pushes its snapshots (set by :meth:`attach`)."""
        self.live = False
        """Set once the source has started: later events are news, earlier ones history."""
        self._drawn = asyncio.Event()
        self._wake = asyncio.Event()

    def attach(self) -> None:
        """Subscribe to the source's events (and snapshots, if it pushes them).

        Call before the source starts, so that no event is missed.
        """
        self.source.add_event_handler("*", self._on_event)
        add_status_handler = getattr(self.source, "add_status_handler", None)
        if callable(add_status_handler):
            add_status_handler(self._on_status)
            self.push = True

    def _on_event(self, event: Event) -> None:
        self.post(EventReceived(event, live=self.live))

    def _on_status(self, snapshot: SwarmSnapshot) -> None:
        self.post(SnapshotUpdated(snapshot))

    def drawn(self) -> None:
        """The UI has drawn the last snapshot: the next poll may be scheduled."""
        self._drawn.set()

    def poll_now(self) -> None:
        """Poll without waiting for the interval (after a command); pushed sources need not."""
        self._wake.set()

    def _poll(self) -> bool:
        """Take and post one snapshot; ``False`` when the source is closed."""
        try:
            snapshot = self.source.get_system_status()
        except OrchestratorClosed:
            return False
        except Exception:  # a bad snapshot must not kill the dashboard
            log.exception("taking a snapshot failed; retrying in %.1f s", self.interval)
            return True
        self.polls += 1
        self._drawn.clear()
        self.post(SnapshotUpdated(snapshot))
        return True

    async def run(self) -> None:
        """Show a first snapshot at once; then poll until the source closes (push: just wait)."""
        if not self._poll():
            return
        if self.push:
            await asyncio.Event().wait()  # snapshots arrive through _on_status until cancelled
        while True:
            try:
                await asyncio.wait_for(self._drawn.wait(), timeout=max(1.0, 5 * self.interval))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            if not self._poll():
                return
