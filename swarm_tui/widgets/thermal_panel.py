"""``ThermalPanel``: one gauge per temperature reading, or why there are none."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from swarm_tui.panels import thermal_text
from swarm_tui.sensors import NO_SENSORS, SensorReading, ThermalView


class ThermalPanel(Widget):
    """Temperature gauges coloured against each sensor's warning and critical levels.

    It takes a list of :class:`~swarm_tui.sensors.SensorReading` (through a
    :class:`~swarm_tui.sensors.ThermalView`), so it does not care whether a
    temperature came from a sysfs sensor or a thermal agent's model (marked ``~``).
    """

    view: reactive[ThermalView] = reactive(ThermalView((), NO_SENSORS))
    """The readings to draw, or the reason there are none."""

    def __init__(self, readings: tuple[SensorReading, ...] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        if readings:
            self.set_reactive(ThermalPanel.view, ThermalView(tuple(readings)))

    def render(self) -> Text:
        """The gauges, sized to the panel."""
        size = self.content_size
        return thermal_text(self.view.readings, self.view.note, size.width, size.height, self.view.detail)
