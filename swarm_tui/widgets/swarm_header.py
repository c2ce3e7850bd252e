"""``SwarmHeader``: two lines of swarm identity, agent counts, throughput and latency."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive

from swarm_tui.history import Frame
from swarm_tui.render import header_text
from swarm_tui.widgets.text_lines import TextLines


class SwarmHeader(TextLines):
    """The dashboard header (see :func:`swarm_tui.render.header_text`)."""

    DEFAULT_CSS = """
    SwarmHeader {
        height: 2;
        background: $panel;
    }
    """

    frame: reactive[Frame | None] = reactive(None, repaint=False)
    """The frame to describe (bound to the screen's)."""
    status: reactive[str] = reactive("", repaint=False)
    """A short status shown beside the numbers (engine starting, failed, stopping)."""
    replay: reactive[Any] = reactive(None, repaint=False)
    """A replay's ``ReplayState`` (position, speed, playing), or ``None`` when live."""

    def __init__(self, *, mode: str, name: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = mode
        self.swarm_name = name

    def watch_frame(self) -> None:
        self.update_lines()

    def watch_status(self) -> None:
        self.update_lines()

    def watch_replay(self) -> None:
        self.update_lines()

    def build(self, width: int, height: int) -> Text:
        """The two header lines."""
        snapshot = self.frame.snapshot if self.frame is not None else None
        return header_text(snapshot, mode=self.mode, name=self.swarm_name, status=self.status,
                           width=width, replay=self.replay)
