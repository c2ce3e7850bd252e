"""``MachinePanel``: CPU per core, memory and load of the machine."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from swarm_tui.history import Frame
from swarm_tui.panels import machine_text


class MachinePanel(Widget):
    """Per-core CPU bars, memory and load average (see :func:`swarm_tui.panels.machine_text`)."""

    frame: reactive[Frame | None] = reactive(None)
    """The frame to draw (bound to the screen's)."""

    def render(self) -> Text:
        """The bars, sized to the panel."""
        if self.frame is None:
            return Text("waiting for data…", style="italic bright_black")
        size = self.content_size
        return machine_text(self.frame.snapshot.machine, size.width, size.height)
