"""Pure chart maths: sparklines, bar charts and gauge bars as plain strings.

Nothing here knows Textual or the engine; widgets call these functions with a width
and a series and draw the result, and the unit tests call them directly.

Every chart has a zero baseline (a flat line of zeros stays at the bottom) and an
optional fixed top (``hi``), because a history graph whose scale follows its own
minimum makes 1 % noise look like a spike.  Series are drawn right-aligned: the
newest sample is the last column, and older samples scroll off to the left, as in
``top``-style tools.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Eighth blocks, from empty to full, for the vertical resolution of one cell.
UNICODE_BLOCKS = " ▁▂▃▄▅▆▇█"
#: Horizontal eighth blocks for gauge bars.
UNICODE_HBLOCKS = " ▏▎▍▌▋▊▉█"
#: The same nine levels in ASCII (``--ascii``): a ramp from low marks to full.
ASCII_BLOCKS = " _.-:=+*#"
#: Gauge bars in ASCII: ``#`` per full cell, ``-`` or ``=`` for a part of one.
ASCII_HBLOCKS = " ----===#"

BLOCKS = UNICODE_BLOCKS
HBLOCKS = UNICODE_HBLOCKS


def set_ascii(enabled: bool) -> None:
    """Draw every chart with ASCII levels from now on (or Unicode blocks again)."""
    global BLOCKS, HBLOCKS
    BLOCKS, HBLOCKS = (ASCII_BLOCKS, ASCII_HBLOCKS) if enabled else (UNICODE_BLOCKS, UNICODE_HBLOCKS)


def _clean(value: float) -> float:
    """A finite, non-negative number (NaN, inf and negatives become 0)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return 0.0
    return float(value)


def tail(values: Sequence[float], width: int) -> list[float]:
    """The last ``width`` values, cleaned (see :func:`_clean`)."""
    if width <= 0:
        return []
    return [_clean(v) for v in values[-width:]]


def scale_top(values: Sequence[float], hi: float | None = None) -> float:
    """The value drawn as a full cell: ``hi`` if given, else the series maximum (>0)."""
    if hi is not None and hi > 0:
        return float(hi)
    top = max((_clean(v) for v in values), default=0.0)
    return top if top > 0 else 1.0


def spark(values: Sequence[float], width: int, hi: float | None = None) -> str:
    """One line of ``width`` cells, newest sample right-most, padded left with spaces.

    A zero is drawn as the lowest bar (``▁``) so that an idle series is visible;
    missing history (fewer samples than cells) is blank.
    """
    data = tail(values, width)
    if not data:
        return " " * max(width, 0)
    top = scale_top(data, hi)
    cells = []
    for v in data:
        level = min(8, max(1, round(v / top * 8))) if v > 0 else 1
        cells.append(BLOCKS[level])
    return " " * (width - len(cells)) + "".join(cells)


def bar_chart(values: Sequence[float], width: int, height: int, hi: float | None = None) -> list[str]:
    """``height`` lines of ``width`` cells: a column chart with eighth-cell resolution.

    Lines are returned top first.  Columns are right-aligned like :func:`spark`;
    a zero value leaves its column empty except for the bottom line's ``▁`` mark.
    """
    if width <= 0 or height <= 0:
        return []
    data = tail(values, width)
    pad = width - len(data)
    top = scale_top(data, hi)
    rows = [[" "] * width for _ in range(height)]
    for i, v in enumerate(data):
        eighths = min(height * 8, round(v / top * height * 8))
        col = pad + i
        if eighths <= 0:
            rows[height - 1][col] = BLOCKS[1]
            continue
        for line in range(height):  # line 0 is the bottom
            fill = min(8, max(0, eighths - line * 8))
            rows[height - 1 - line][col] = BLOCKS[fill]
    return ["".join(r) for r in rows]


def gauge_bar(fraction: float, width: int) -> str:
    """A horizontal bar ``width`` cells wide filled to ``fraction`` (clamped to 0..1)."""
    if width <= 0:
        return ""
    frac = _clean(fraction)
    frac = min(frac, 1.0)
    eighths = round(frac * width * 8)
    full, part = divmod(eighths, 8)
    bar = HBLOCKS[8] * full
    if part and full < width:
        bar += HBLOCKS[part]
    return bar + " " * (width - len(bar))


def level(value: float, warn: float, crit: float) -> str:
    """``"ok"``, ``"warn"`` or ``"crit"`` for a value against two thresholds."""
    if value >= crit:
        return "crit"
    if value >= warn:
        return "warn"
    return "ok"
