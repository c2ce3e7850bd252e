"""``DashboardScreen``: header, agent table, machine/bus/thermal panels, event log.

The screen owns one reactive ``frame``; every child binds to it (or to ``thermal``,
derived from it), so a new snapshot is one assignment and no widget asks the engine
anything.  Agent actions (spawn, kill, ...) are the app's; the screen says which
agents they apply to (:meth:`target_agent_ids`).
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Input

from engine import Event
from swarm_tui.history import Frame
from swarm_tui.sensors import NO_SENSORS, ThermalView, thermal_view
from swarm_tui.widgets import (
    AgentTable,
    BusPanel,
    EventLog,
    MachinePanel,
    SwarmHeader,
    ThermalPanel,
)


class DashboardScreen(Screen[None]):
    """The main screen (see module docstring)."""

    BINDINGS = [
        # priority: handled as the key arrives, so the box has focus before the next key
        # (a paste, a fast typist); check_action passes them through while a box has focus.
        Binding("slash", "filter_agents", "Filter", key_display="/", priority=True),
        Binding("f", "filter_events", "Filter events", show=False, priority=True),
        Binding("v", "cycle_severity", "Severity", show=False),
        Binding("o", "sort_next", "Sort", show=False),
        Binding("O", "sort_reverse", "Reverse", show=False),
        Binding("escape", "clear", "Clear", show=False),
    ]

    # ``var``, not ``reactive``: the screen draws nothing itself, so a new value must not
    # repaint the whole screen (a full-screen update per snapshot); the bound widgets
    # repaint themselves.
    frame: var[Frame | None] = var(None)
    """The latest frame (snapshot plus history)."""
    thermal: var[ThermalView] = var(ThermalView((), NO_SENSORS))
    """Temperature readings derived from ``frame``."""
    status: var[str] = var("")
    """What the header says about the engine (starting, failed, stopping)."""
    replay: var[Any] = var(None)
    """Where a replay is (``ReplayState``), or ``None`` when live."""

    def __init__(self, *, mode: str, name: str, thermal_critical: float = 95.0) -> None:
        super().__init__()
        self.mode = mode
        self.swarm_name = name
        self.thermal_critical = thermal_critical
        self._early_events: list[Event] = []

    def compose(self) -> ComposeResult:
        yield SwarmHeader(mode=self.mode, name=self.swarm_name, id="header").data_bind(
            DashboardScreen.frame, DashboardScreen.status, DashboardScreen.replay)
        yield Input(placeholder="filter agents: words, type:NAME, state:NAME — enter keeps, escape clears",
                    id="agent-filter", classes="filter")
        table = AgentTable(id="agents").data_bind(DashboardScreen.frame)
        table.border_title = "agents"
        yield table
        with Horizontal(id="panels"):
            machine = MachinePanel(id="machine").data_bind(DashboardScreen.frame)
            machine.border_title = "machine"
            yield machine
            bus = BusPanel(id="bus").data_bind(DashboardScreen.frame)
            bus.border_title = "bus"
            yield bus
            thermal = ThermalPanel(id="thermal").data_bind(view=DashboardScreen.thermal)
            thermal.border_title = "thermal"
            yield thermal
        yield Input(placeholder="filter events — enter keeps, escape clears", id="event-filter", classes="filter")
        log = EventLog(id="events")
        log.border_title = "events"
        yield log
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(AgentTable).focus()
        for event in self._early_events:
            self.event_log.add(event)
        self._early_events.clear()

    def log_event(self, event: Event) -> None:
        """Add an event to the log (kept until the log exists)."""
        if self.is_mounted:
            self.event_log.add(event)
        else:
            self._early_events.append(event)

    def watch_frame(self, frame: Frame | None) -> None:
        self.thermal = thermal_view(frame.snapshot if frame else None, critical_c=self.thermal_critical)

    # --- what the app asks -----------------------------------------------------------------

    @property
    def table(self) -> AgentTable:
        """The agent table."""
        return self.query_one(AgentTable)

    @property
    def event_log(self) -> EventLog:
        """The event log."""
        return self.query_one(EventLog)

    @property
    def header(self) -> SwarmHeader:
        """The header."""
        return self.query_one(SwarmHeader)

    def target_agent_ids(self) -> list[str]:
        """The agents an action applies to: the selection, else the cursor's agent."""
        return self.table.target_ids()

    # --- table and filters -----------------------------------------------------------------

    def on_agent_table_agent_chosen(self, event: AgentTable.AgentChosen) -> None:
        """Enter (or a click on the highlighted row) opens the detail screen."""
        event.stop()
        self.app.open_detail(event.agent_id)  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``/`` and ``f`` are text while a filter box has focus."""
        if action in ("filter_agents", "filter_events") and isinstance(self.focused, Input):
            return False
        return True

    def action_filter_agents(self) -> None:
        """Show the agent filter."""
        self._open_filter("#agent-filter")

    def action_filter_events(self) -> None:
        """Show the event filter."""
        self._open_filter("#event-filter")

    def _open_filter(self, selector: str) -> None:
        box = self.query_one(selector, Input)
        box.add_class("-open")
        # Now, not at the next idle (``focus()``): keys typed right after / (a fast
        # typist, a paste) must reach the box, not the table's bindings.
        self.set_focus(box)

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as the user types."""
        if event.input.id == "agent-filter":
            self.table.query = event.value
            self.table.border_subtitle = f"filter “{event.value}”" if event.value else ""
        elif event.input.id == "event-filter":
            self.event_log.query = event.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter keeps the filter and goes back to the table."""
        event.stop()
        if not event.value:
            event.input.remove_class("-open")
        self.table.focus()

    def action_clear(self) -> None:
        """Escape: close and clear an open filter, else clear the agent filter, else the selection."""
        focused = self.focused
        if isinstance(focused, Input):
            focused.value = ""
            focused.remove_class("-open")
            self.table.focus()
            return
        agent_filter = self.query_one("#agent-filter", Input)
        if agent_filter.value:
            agent_filter.value = ""
            agent_filter.remove_class("-open")
            return
        event_filter = self.query_one("#event-filter", Input)
        if event_filter.value:
            event_filter.value = ""
            event_filter.remove_class("-open")
            return
        self.table.clear_selection()

    def action_sort_next(self) -> None:
        """Sort by the next column."""
        self.table.cycle_sort()
        self.notify(f"sorted by {self.table.sort_key or 'start order'}", timeout=1.5)

    def action_sort_reverse(self) -> None:
        """Reverse the sort order."""
        self.table.sort_by(self.table.sort_key, toggle=True)

    def action_cycle_severity(self) -> None:
        """Show only more serious events."""
        minimum = self.event_log.cycle_minimum()
        self.notify("events: all" if minimum == "debug" else f"events: {minimum} and worse", timeout=1.5)
