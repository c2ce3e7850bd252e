"""``SwarmHeader``: two lines of swarm identity, agent counts, throughput and latency."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from swarm_tui.history import Frame
from swarm_tui.render import header_text


class SwarmHeader(Widget):
    """The dashboard header (see :func:`swarm_tui.render.header_text`)."""

    DEFAULT_CSS = """
    SwarmHeader {
        height: 2;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    frame: reactive[Frame | None] = reactive(None)
    """The frame to describe (bound to the screen's)."""
    status: reactive[str] = reactive("")
    """A short status shown beside the numbers (engine starting, failed, stopping)."""
    replay: reactive[Any] = reactive(None)
    """A replay's ``ReplayState`` (position, speed, playing), or ``None`` when live."""

    def __init__(self, *, mode: str, name: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = mode
        self.swarm_name = name

    def render(self) -> Text:
        """The two header lines."""
        snapshot = self.frame.snapshot if self.frame is not None else None
        return header_text(snapshot, mode=self.mode, name=self.swarm_name, status=self.status,
                           width=self.content_size.width, replay=self.replay)
