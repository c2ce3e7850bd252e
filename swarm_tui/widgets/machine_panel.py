"""``MachinePanel``: CPU per core, memory and load of the machine."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from swarm_tui.history import Frame
from swarm_tui.panels import machine_text
from swarm_tui.widgets.text_lines import TextLines


class MachinePanel(TextLines):
    """Per-core CPU bars, memory and load average (see :func:`swarm_tui.panels.machine_text`)."""

    frame: reactive[Frame | None] = reactive(None, repaint=False)
    """The frame to draw (bound to the screen's)."""

    def watch_frame(self) -> None:
        self.update_lines()

    def build(self, width: int, height: int) -> Text:
        """The bars, sized to the panel."""
        if self.frame is None:
            return Text("waiting for data…", style="italic bright_black")
        return machine_text(self.frame.snapshot.machine, width, height)
