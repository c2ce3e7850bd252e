"""``TextLines``: a widget drawn from Rich ``Text``, repainting only the lines that changed.

The dashboard's panels change a little every second: the uptime in the header, one
core's bar, the newest column of a chart.  A plain ``Widget.render()`` returning
``Text`` makes Textual re-render every line of the widget through Rich whenever
anything in it changes.  A ``TextLines`` subclass builds its ``Text`` once per new
value (:meth:`TextLines.build`), compares it line by line with what is on screen,
and marks only the changed lines dirty; each line's ``Strip`` is cached by its text
and spans, so a line that comes back (a bar at the same level) is not drawn again.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class TextLines(Widget):
    """Base of the dashboard's panels (see module docstring).

    Subclasses implement :meth:`build` and call :meth:`update_lines` when what they
    show changes (their reactive watchers do).
    """

    WRAP: ClassVar[bool] = False
    """Wrap long lines at the width (else they are cut, ending in ``…``)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lines: list[Text] = []
        self._keys: list[tuple[object, ...]] = []
        self._strips: LRUCache[tuple[object, ...], Strip] = LRUCache(256)
        self._built_for: tuple[int, int] = (0, 0)

    def build(self, width: int, height: int) -> Text:
        """The whole content for a ``width`` x ``height`` area, lines separated by ``\\n``."""
        raise NotImplementedError

    def render(self) -> Text:
        """The whole content for the current size (what the lines show)."""
        width, height = self.content_size
        return self.build(width, height)

    def update_lines(self) -> None:
        """Build the content again and mark the lines that differ from the drawn ones dirty."""
        if not self.is_mounted:
            return
        width, height = self.content_size
        self._built_for = (width, height)
        if width <= 0 or height <= 0:  # nothing to draw, and nothing stale either
            self._lines, self._keys = [], []
            return
        text = self.build(width, height)
        lines = list(text.wrap(self.app.console, width) if self.WRAP else text.split("\n", allow_blank=True))
        lines = lines[:height]
        for line in lines:
            if line.cell_len > width:  # cut, and say so
                line.truncate(width, overflow="ellipsis")
        keys = [(line.plain, tuple(line.spans), line.style) for line in lines]
        drawn = self._keys
        self._lines, self._keys = lines, keys
        changed = [Region(0, y, width, 1) for y in range(max(len(keys), len(drawn)))
                   if y >= len(keys) or y >= len(drawn) or keys[y] != drawn[y]]
        if changed:  # one call: each refresh() costs
            self.refresh(*changed)

    def render_line(self, y: int) -> Strip:
        """Content line ``y``, from the cache when its text and spans were drawn before."""
        width, height = self.content_size
        if (width, height) != self._built_for:  # e.g. new padding: the widget's size stayed, its content's did not
            self._keys = []
            self.update_lines()
        base = self.rich_style
        if y >= len(self._lines):
            return Strip.blank(width, base)
        key = (self._keys[y], width)
        strip = self._strips.get(key)
        if strip is None:
            segments = Segment.apply_style(self._lines[y].render(self.app.console), base)
            strip = Strip(segments).crop_extend(0, width, base)
            self._strips[key] = strip
        return strip

    def on_resize(self, event: events.Resize) -> None:
        """A new size: build for it (every line is repainted anyway)."""
        self._keys = []
        self.update_lines()

    def on_mount(self) -> None:
        """Draw the first content."""
        self.update_lines()

    def notify_style_update(self) -> None:
        """The theme or a style changed: draw every line anew."""
        self._strips.clear()
        super().notify_style_update()
