"""``EventLog``: the swarm's events, newest last, with a text and severity filter."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from textual.reactive import reactive
from textual.widgets import RichLog

from engine import Event
from swarm_tui.render import event_matches, event_text

#: Events kept for re-filtering (older ones are dropped).
EVENTS_KEPT = 2000


class EventLog(RichLog):
    """Time, severity (coloured), name, agent and message of each event.

    Every event is kept (up to ``EVENTS_KEPT``) so that changing the filter re-draws
    the log from the kept events, not just from what is on screen.
    """

    query: reactive[str] = reactive("")
    """Words every shown event must contain."""
    minimum: reactive[str] = reactive("debug")
    """Least severity shown (``debug`` shows all)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, max_lines=EVENTS_KEPT)
        self.events: deque[Event] = deque(maxlen=EVENTS_KEPT)

    def add(self, event: Event) -> None:
        """Keep an event and show it if it passes the filter."""
        self.events.append(event)
        if event_matches(event, query=self.query, minimum=self.minimum):
            self.write(event_text(event))

    def reset(self, events: Iterable[Event]) -> None:
        """Forget every event and show these instead (a replay jumped)."""
        self.events.clear()
        self.events.extend(events)
        self._redraw()

    def cycle_minimum(self) -> str:
        """Show only more serious events: all -> warning -> error -> all; returns the new minimum."""
        steps = ("debug", "warning", "error")
        self.minimum = steps[(steps.index(self.minimum) + 1) % len(steps)] if self.minimum in steps else "debug"
        return self.minimum

    def watch_query(self) -> None:
        self._redraw()

    def watch_minimum(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        self.clear()
        for event in self.events:
            if event_matches(event, query=self.query, minimum=self.minimum):
                self.write(event_text(event))
        self.border_subtitle = self.filter_label()

    def filter_label(self) -> str:
        """A short description of the active filter (empty when none)."""
        parts = []
        if self.minimum != "debug":
            parts.append(f"≥{self.minimum}")
        if self.query:
            parts.append(f"“{self.query}”")
        return " ".join(parts)

