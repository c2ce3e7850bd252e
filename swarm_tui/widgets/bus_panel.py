"""``BusPanel``: bus throughput (msgs/s) and latency (p50/p99) over recent minutes."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from swarm_tui.history import Frame
from swarm_tui.panels import bus_text
from swarm_tui.widgets.text_lines import TextLines


class BusPanel(TextLines):
    """A msgs/s column chart and p50/p99 latency sparklines (see :func:`swarm_tui.panels.bus_text`)."""

    frame: reactive[Frame | None] = reactive(None, repaint=False)
    """The frame to draw (bound to the screen's)."""

    def watch_frame(self) -> None:
        self.update_lines()

    def build(self, width: int, height: int) -> Text:
        """The chart, sized to the panel."""
        if self.frame is None:
            return Text("waiting for data…", style="italic bright_black")
        return bus_text(self.frame.series, width, height)
