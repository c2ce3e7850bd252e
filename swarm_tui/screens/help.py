"""``HelpScreen``: every key, from :data:`swarm_tui.keys.KEY_HELP`."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from swarm_tui.keys import KEY_HELP


def help_table() -> Group:
    """The key map: a bold title and a two-column grid per section."""
    parts: list[RenderableType] = []
    width = max(len(key) for _, keys in KEY_HELP for key, _ in keys)
    for i, (section, keys) in enumerate(KEY_HELP):
        parts.append(Text(("\n" if i else "") + section, style="bold underline"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan", no_wrap=True, min_width=width)
        grid.add_column(ratio=1)
        for key, what in keys:
            grid.add_row(key, what)
        parts.append(grid)
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """The key map; any of ``escape``, ``?`` or ``q`` closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("swarm-tui keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(help_table())
            yield Label("escape closes", classes="dialog-label")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
