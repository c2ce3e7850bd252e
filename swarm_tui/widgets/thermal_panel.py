"""``ThermalPanel``: one gauge per temperature reading, or why there are none."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from swarm_tui.panels import thermal_text
from swarm_tui.sensors import NO_SENSORS, SensorReading, ThermalView
from swarm_tui.widgets.text_lines import TextLines


class ThermalPanel(TextLines):
    """Temperature gauges coloured against each sensor's warning and critical levels.

    It takes a list of :class:`~swarm_tui.sensors.SensorReading` (through a
    :class:`~swarm_tui.sensors.ThermalView`), so it does not care whether a
    temperature came from a sysfs sensor or a thermal agent's model (marked ``~``).
    """

    WRAP = True  # the notes (why there are no sensors) are sentences

    view: reactive[ThermalView] = reactive(ThermalView((), NO_SENSORS), repaint=False)
    """The readings to draw, or the reason there are none."""

    def __init__(self, readings: tuple[SensorReading, ...] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        if readings:
            self.set_reactive(ThermalPanel.view, ThermalView(tuple(readings)))

    def watch_view(self) -> None:
        self.update_lines()

    def build(self, width: int, height: int) -> Text:
        """The gauges, sized to the panel."""
        return thermal_text(self.view.readings, self.view.note, width, height, self.view.detail)
