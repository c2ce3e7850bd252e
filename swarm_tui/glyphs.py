"""ASCII mode: the UI on a terminal that cannot show Unicode.

Two parts.  The charts draw their own ASCII ramps (:func:`swarm_tui.charts.set_ascii`),
so a sparkline keeps its eight levels.  Everything else that is not ASCII -- Textual's
borders, scroll bars, buttons and footer, our marks and arrows -- is transliterated
cell for cell by :class:`AsciiFilter` on the way to the terminal, so the layout
does not move: box drawing becomes ``+ - |``, blocks ``#``, ``●`` ``*``, ``…`` ``~``,
and anything unknown ``?`` (as many as the cells it took).

:func:`unicode_terminal` decides when ``--ascii`` was not given.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

#: Terminals that draw no box or block characters.
ASCII_TERMS = frozenset({"dumb", "vt52", "vt100", "vt102", "vt220", "ansi"})

#: Characters the UI and Textual use, and their one-cell ASCII stand-ins.
_KNOWN = {
    **dict.fromkeys("─━═╌╍┄┅┈┉╴╶╸╺▔", "-"),
    **dict.fromkeys("▁", "_"),
    **dict.fromkeys("│┃║╎╏┆┇┊┋╵╷╹╻▏▎▍▌▋▊▉▐▕", "|"),
    **dict.fromkeys("╭╮╰╯┌┐└┘┏┓┗┛╔╗╚╝├┤┬┴┼┣┫┳┻╋╠╣╦╩╬┍┑┕┙┎┒┖┚", "+"),
    **dict.fromkeys("█▇▆▅▄▃▂▀■▪░▒▓", "#"),
    "●": "*", "○": "o", "•": "*", "·": ".", "…": "~", "—": "-", "–": "-",
    "▲": "^", "▼": "v", "▶": ">", "◀": "<", "⏸": "=", "×": "x", "°": "o", "µ": "u",
    "“": '"', "”": '"', "‘": "'", "’": "'", "≥": ">", "≤": "<", "→": ">", "←": "<",
    "✓": "v", "✔": "v", "✗": "x", "✕": "x", "⚠": "!",
}


class _AsciiTable(dict):  # type: ignore[type-arg]
    """``str.translate`` table that works out (and keeps) each character's stand-in."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if code < 128:
            value = char
        elif char in _KNOWN:
            value = _KNOWN[char]
        else:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            width = cell_len(char)
            value = plain if plain and cell_len(plain) == width else "?" * width
        self[code] = value
        return value


_TABLE = _AsciiTable()


def to_ascii(text: str) -> str:
    """``text`` with every non-ASCII character replaced, each by as many cells as it took."""
    return text if text.isascii() else text.translate(_TABLE)


class AsciiFilter(LineFilter):
    """A Textual line filter that makes every segment ASCII (see module docstring)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        """The segments with their text transliterated; styles and control codes kept."""
        return [
            segment if segment.control or segment.text.isascii() else Segment(_same_width(segment.text), segment.style)
            for segment in segments
        ]


def _same_width(text: str) -> str:
    """:func:`to_ascii`, padded or cut to the cells ``text`` took (sequences such as an
    emoji with a variation selector are one character of output for two cells)."""
    plain = to_ascii(text)
    width = cell_len(text)
    return plain if len(plain) == width else plain[:width].ljust(width)


def unicode_terminal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the terminal can be assumed to show Unicode.

    No when ``SWARM_TUI_ASCII`` is set (to anything but ``0``), when ``TERM`` names a
    terminal without line drawing, or when the locale's encoding (``LC_ALL``, else
    ``LC_CTYPE``, else ``LANG``) is not UTF-8 -- including ``LANG=C``, which Python
    itself turns into ``LC_CTYPE=C.UTF-8`` (PEP 538) although the terminal was never
    asked.  With no locale set at all, yes: modern terminals are UTF-8.
    """
    env = os.environ if environ is None else environ
    if env.get("SWARM_TUI_ASCII", "0") not in ("", "0"):
        return False
    if env.get("TERM", "") in ASCII_TERMS:
        return False
    lang = env.get("LANG", "")
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(name, "")
        if not value:
            continue
        if name == "LC_CTYPE" and value in ("C.UTF-8", "C.utf8", "UTF-8") and lang in ("C", "POSIX"):
            return False  # Python's coercion of the C locale (UTF-8 on macOS), not the terminal's
        return "utf8" in value.lower().replace("-", "").replace("_", "")
    return True
