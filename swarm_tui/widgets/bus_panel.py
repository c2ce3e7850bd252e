"""``BusPanel``: bus throughput (msgs/s) and latency (p50/p99) over recent minutes."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from swarm_tui.history import Frame
from swarm_tui.panels import bus_text


class BusPanel(Widget):
    """A msgs/s column chart and p50/p99 latency sparklines (see :func:`swarm_tui.panels.bus_text`)."""

    frame: reactive[Frame | None] = reactive(None)
    """The frame to draw (bound to the screen's)."""

    def render(self) -> Text:
        """The chart, sized to the panel."""
        if self.frame is None:
            return Text("waiting for data…", style="italic bright_black")
        size = self.content_size
        return bus_text(self.frame.series, size.width, size.height)
