"""``HelpScreen``: every key, from :data:`swarm_tui.keys.KEY_HELP`."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from swarm_tui.keys import KEY_HELP


def help_table() -> Table:
    """The key map as a Rich table, one section after another."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for i, (section, keys) in enumerate(KEY_HELP):
        if i:
            table.add_row("", "")
        table.add_row(Text(section, style="bold underline"), "")
        for key, what in keys:
            table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """The key map; any of ``escape``, ``?`` or ``q`` closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label("swarm-tui keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(help_table())
            yield Label("escape closes", classes="dialog-label")

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
