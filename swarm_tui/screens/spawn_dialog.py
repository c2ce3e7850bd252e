"""``SpawnDialog``: choose an agent type and a count; dismisses with a ``SpawnRequest``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select


@dataclass(frozen=True)
class SpawnRequest:
    """What to spawn."""

    agent_type: str
    count: int


class SpawnDialog(ModalScreen["SpawnRequest | None"]):
    """Pick a type (from the source's ``available_types()``) and how many (1..``room``)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, types: Sequence[str], *, room: int, default: str | None = None) -> None:
        super().__init__()
        self.types = list(types)
        self.room = room
        self.default = default if default in self.types else (self.types[0] if self.types else None)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Spawn agents", classes="dialog-title")
            yield Label("Type", classes="dialog-label")
            yield Select([(t, t) for t in self.types], value=self.default or Select.BLANK, allow_blank=False,
                         id="spawn-type") if self.types else Label("no agent types available", classes="error")
            yield Label(f"Count (room for {self.room})", classes="dialog-label")
            yield Input("1", type="integer", id="spawn-count", placeholder="1")
            yield Label("", id="spawn-error", classes="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Spawn", variant="primary", id="spawn")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#spawn-count", Input).focus()

    def _request(self) -> SpawnRequest | None:
        """The request, or ``None`` with the reason shown in the dialog."""
        error = self.query_one("#spawn-error", Label)
        if not self.types:
            error.update("nothing to spawn")
            return None
        agent_type = self.query_one("#spawn-type", Select).value
        text = self.query_one("#spawn-count", Input).value.strip()
        try:
            count = int(text)
        except ValueError:
            error.update(f"count must be a whole number, got {text!r}")
            return None
        if count < 1:
            error.update("count must be at least 1")
            return None
        if count > self.room:
            error.update(f"only {self.room} more agent(s) fit (max_agents)" if self.room else
                         "the swarm is full (max_agents); kill an agent first")
            return None
        return SpawnRequest(str(agent_type), count)

    def _submit(self) -> None:
        request = self._request()
        if request is not None:
            self.dismiss(request)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the count field spawns."""
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Spawn or Cancel."""
        event.stop()
        if event.button.id == "spawn":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        """Close without spawning."""
        self.dismiss(None)
