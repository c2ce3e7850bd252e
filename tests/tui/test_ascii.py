"""ASCII mode: a terminal without Unicode gets a legible screen made of ASCII only."""

from __future__ import annotations

import html
import re

import pytest

from swarm_tui import charts
from swarm_tui.app import make_app
from swarm_tui.fixed_source import FixedSource
from swarm_tui.glyphs import to_ascii, unicode_terminal
from swarm_tui.screens import HelpScreen
from tests.tui.helpers import ready


def _screen_text(app: object) -> list[str]:
    """The lines of the app's current screen, from its own SVG screenshot."""
    svg = app.export_screenshot()  # type: ignore[attr-defined]
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in re.findall(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    return ["".join(t for _, t in sorted(parts)) for _, parts in sorted(rows.items())]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "en_GB.UTF-8", "TERM": "xterm-256color"}, True),
        ({}, True),
        ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, False),  # Python's own coercion of LANG=C
        ({"LC_CTYPE": "C.UTF-8"}, True),
        ({"LANG": "C", "LC_CTYPE": "UTF-8"}, False),  # the same coercion on macOS
        ({"LANG": "en_US.ISO-8859-1"}, False),
        ({"LC_ALL": "de_DE.utf8", "LANG": "C"}, True),
        ({"LANG": "en_US.UTF-8", "TERM": "vt100"}, False),
        ({"LANG": "en_US.UTF-8", "SWARM_TUI_ASCII": "1"}, False),
        ({"LANG": "en_US.UTF-8", "SWARM_TUI_ASCII": "0"}, True),
    ],
)
def test_unicode_terminal_reads_the_locale_term_and_override(environ: dict[str, str], expected: bool) -> None:
    """UTF-8 locales are Unicode; C, Latin-1, vt100 and SWARM_TUI_ASCII=1 are not."""
    assert unicode_terminal(environ) is expected


def test_to_ascii_keeps_every_cell() -> None:
    """Box drawing, blocks and marks become one ASCII character each; wide characters keep their width."""
    assert to_ascii("╭─ bus ─╮") == "+- bus -+"
    assert to_ascii("│● ▲▼ 12µs 40°C…│") == "|* ^v 12us 40oC~|"
    assert to_ascii("🔎x") == "??x"
    assert to_ascii("plain") == "plain"


def test_the_filter_keeps_each_segment_width() -> None:
    """An emoji with a variation selector (two cells, two code points) stays two cells wide."""
    from rich.cells import cell_len
    from rich.segment import Segment
    from textual.color import Color

    from swarm_tui.glyphs import AsciiFilter

    for text in ("⚠️ hot", "👨‍👩‍👧 x", "╭─●─╮"):
        out = AsciiFilter().apply([Segment(text)], Color(0, 0, 0))
        assert out[0].text.isascii() and len(out[0].text) == cell_len(text), text


def test_ascii_charts_keep_their_levels() -> None:
    """An ASCII sparkline still has a distinct character per level, lowest to full."""
    charts.set_ascii(True)
    line = charts.spark([1, 2, 3, 4, 5, 6, 7, 8], 8, hi=8)
    assert line == charts.ASCII_BLOCKS[1:]
    assert line.isascii() and len(set(line)) == 8
    assert charts.gauge_bar(0.5, 4) == "##  "


@pytest.mark.parametrize("size", [(80, 24), (130, 40)])
async def test_ascii_dashboard_and_help_are_all_ascii(size: tuple[int, int]) -> None:
    """Every cell of the dashboard and of the help screen is ASCII, and the content is still there."""
    app = make_app(source=FixedSource(sensors=True), refresh=0.05, ascii=True)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        await pilot.pause(0.2)
        lines = _screen_text(app)
        text = "\n".join(lines)
        assert text.isascii(), [ch for ch in text if not ch.isascii()][:10]
        assert "compute-1" in text and "agents" in text and "machine" in text
        assert "+-" in text and "#" in text  # panel corners and bars
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause(0.2)
        help_text = "\n".join(_screen_text(app))
        assert help_text.isascii() and "spawn agents" in help_text


async def test_unicode_app_is_unchanged() -> None:
    """Without ascii the dashboard keeps its Unicode borders and blocks."""
    app = make_app(source=FixedSource(sensors=True), refresh=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        text = "\n".join(_screen_text(app))
        assert "╭" in text and "█" in text
