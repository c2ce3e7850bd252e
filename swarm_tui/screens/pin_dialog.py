"""``PinDialog``: choose CPU cores for an agent; dismisses with the core list."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from swarm_tui.render import fmt_cores, parse_cores


class PinDialog(ModalScreen["list[int] | None"]):
    """Cores as ``0,2-3``; empty means every core (unpin)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, agent_ids: Sequence[str], *, cores: Sequence[int], current: Sequence[int] = ()) -> None:
        super().__init__()
        self.agent_ids = list(agent_ids)
        self.cores = list(cores)
        self.current = list(current)

    def compose(self) -> ComposeResult:
        who = ", ".join(self.agent_ids)
        with Vertical(classes="dialog"):
            yield Label(f"Pin {who} to cores", classes="dialog-title")
            yield Label(f"Cores {fmt_cores(self.cores)} exist; empty = all cores.", classes="dialog-label")
            yield Input(fmt_cores(self.current) if self.current else "", placeholder="e.g. 0,2-3", id="pin-cores")
            yield Label("", id="pin-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Pin", variant="primary", id="pin")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#pin-cores", Input).focus()

    def _submit(self) -> None:
        text = self.query_one("#pin-cores", Input).value
        try:
            cores = parse_cores(text, self.cores)
        except ValueError as exc:
            self.query_one("#pin-error", Label).update(str(exc))
            return
        self.dismiss(cores)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter pins."""
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Pin or Cancel."""
        event.stop()
        if event.button.id == "pin":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without pinning."""
        self.dismiss(None)
