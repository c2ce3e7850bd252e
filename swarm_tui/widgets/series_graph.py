"""``SeriesGraph``: a titled column chart of one history series (detail screen)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from swarm_tui.panels import series_text


class SeriesGraph(Widget):
    """``title  now X  max Y`` over a column chart with a zero baseline."""

    DEFAULT_CSS = """
    SeriesGraph {
        height: 1fr;
        min-height: 3;
    }
    """

    values: reactive[tuple[float, ...]] = reactive(tuple)
    """The series, oldest first."""

    def __init__(self, title: str, fmt: Callable[[float], str], *, hi: float | None = None,
                 style: str = "green", id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.fmt = fmt
        self.hi = hi
        self.style = style

    def update(self, values: Sequence[float]) -> None:
        """Replace the series."""
        self.values = tuple(values)

    def render(self) -> Text:
        """The chart, sized to the widget."""
        size = self.content_size
        return series_text(self.title, self.values, size.width, size.height, self.fmt, hi=self.hi,
                           style=self.style)
