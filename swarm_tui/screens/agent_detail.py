"""``AgentDetailScreen``: one agent's history graphs, gauges, settings and last crash.

The facts come from two places: the frame (the agent's row of the snapshot, and its
history kept by the app) and ``source.agent_details(id)`` (supervisor-side: options,
restart policy, last exit and traceback), re-read with every frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine import AgentInfo
from swarm_tui.history import Frame
from swarm_tui.render import (
    DASH,
    fmt_bytes,
    fmt_cores,
    fmt_count,
    fmt_duration,
    fmt_latency_us,
    fmt_percent,
    key_metric,
    state_text,
)
from swarm_tui.widgets import SeriesGraph


def facts_table(agent: AgentInfo, details: Mapping[str, Any]) -> Table:
    """The agent's facts as a two-column grid (snapshot row plus supervisor details)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bright_black", no_wrap=True)
    table.add_column()
    metric = key_metric(agent)
    rows: list[tuple[str, Any]] = [
        ("state", state_text(agent.state)),
        ("type", agent.type),
        ("pid", str(agent.pid) if agent.pid else DASH),
        ("nice", f"{agent.priority:+d}" if agent.priority else "0"),
        ("restarts", f"{agent.restarts} (policy {details.get('restart', DASH)})"),
        ("uptime", fmt_duration(agent.uptime_s)),
        ("heartbeat", f"{fmt_duration(agent.heartbeat_age_s)} ago" if math.isfinite(agent.heartbeat_age_s) else DASH),
        ("cpu", fmt_percent(agent.cpu_percent)),
        ("rss", fmt_bytes(agent.rss_bytes) if agent.rss_bytes else DASH),
        ("tasks", f"{fmt_count(agent.tasks_done)} done, {fmt_count(agent.tasks_per_s)}/s"),
        ("messages", f"{fmt_count(agent.messages_in)} in, {fmt_count(agent.messages_out)} out"),
        ("errors", str(agent.errors)),
        ("latency", f"p50 {fmt_latency_us(agent.latency_p50_us)} p99 {fmt_latency_us(agent.latency_p99_us)}"),
        ("duty cycle", fmt_percent(agent.duty_cycle * 100)),
        ("cores", fmt_cores(agent.affinity)),
        ("key metric", f"{metric[0]} = {fmt_count(metric[1])}" if metric else DASH),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def gauges_table(gauges: Mapping[str, float]) -> Table | Text:
    """Every custom gauge of the agent."""
    if not gauges:
        return Text("no custom gauges", style="italic bright_black")
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right")
    for name, value in gauges.items():
        table.add_row(name, f"{value:,.3f}".rstrip("0").rstrip("."))
    return table


def options_table(details: Mapping[str, Any]) -> Table | Text:
    """The agent's options (from the configuration and ``create_agent`` keywords)."""
    options = details.get("options") or {}
    if not options:
        return Text("default options", style="italic bright_black")
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, value in sorted(options.items()):
        table.add_row(str(key), repr(value))
    return table


def crash_text(agent: AgentInfo, details: Mapping[str, Any]) -> Text:
    """The last exit, error and traceback, or a plain "no crash" line."""
    traceback = str(details.get("last_traceback") or "")
    error = str(details.get("last_error") or agent.last_error or "")
    last_exit = str(details.get("last_exit") or "")
    if not (traceback or error or last_exit):
        return Text("no crash recorded", style="italic bright_black")
    out = Text()
    if last_exit:
        out.append("last exit: ", style="bright_black")
        out.append(last_exit + "\n")
    if error:
        out.append("last error: ", style="bright_black")
        out.append(error + "\n", style="bold red")
    if traceback:
        out.append(traceback.rstrip(), style="red")
    return out


class AgentDetailScreen(Screen[None]):
    """Everything about one agent (see module docstring); escape goes back."""

    BINDINGS = [Binding("escape", "back", "Back")]

    frame: var[Frame | None] = var(None)  # no repaint of the whole screen: its widgets repaint
    """The latest frame (set by the app with every snapshot)."""

    def __init__(self, agent_id: str, *, details: Callable[[str], Mapping[str, Any]],
                 series: Callable[[str], Mapping[str, tuple[float, ...]]]) -> None:
        super().__init__()
        self.agent_id = agent_id
        self._details = details
        self._series = series
        self.gone = False

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="detail-facts"):
                yield Static(id="facts")
                yield Static("gauges", classes="section")
                yield Static(id="gauges")
                yield Static("options", classes="section")
                yield Static(id="options")
            with Vertical(id="detail-graphs"):
                yield SeriesGraph("cpu", fmt_percent, hi=100.0, style="green", id="graph-cpu")
                yield SeriesGraph("tasks/s", fmt_count, style="cyan", id="graph-tasks")
                yield SeriesGraph("rss", lambda v: fmt_bytes(v, compact=True), style="magenta", id="graph-rss")
        crash = VerticalScroll(Static(id="crash-text"), id="crash")
        crash.border_title = "last crash"
        yield crash
        yield Footer()

    def target_agent_ids(self) -> list[str]:
        """Actions on this screen apply to its agent (none once it is gone)."""
        return [] if self.gone else [self.agent_id]

    def on_mount(self) -> None:
        self._draw()

    def watch_frame(self) -> None:
        if self.is_mounted:
            self._draw()

    def _draw(self) -> None:
        frame = self.frame
        if frame is None:
            return
        agent = frame.snapshot.agent(self.agent_id)
        title = self.query_one("#detail-title", Static)
        if agent is None:
            self.gone = True
            title.update(Text.assemble((f" {self.agent_id} ", "bold reverse"), "  ",
                                       ("this agent no longer exists — escape goes back", "italic yellow")))
            return
        self.gone = False
        try:
            details = dict(self._details(self.agent_id))
        except Exception:  # the agent vanished between snapshot and query
            details = {}
        title.update(Text.assemble((f" {agent.id} ", "bold reverse"), "  ", (agent.type, "bold"), "  ",
                                   state_text(agent.state), ("  escape: back", "bright_black")))
        self.query_one("#facts", Static).update(facts_table(agent, details))
        self.query_one("#gauges", Static).update(gauges_table(agent.gauges))
        self.query_one("#options", Static).update(options_table(details))
        self.query_one("#crash-text", Static).update(crash_text(agent, details))
        series = self._series(self.agent_id)
        self.query_one("#graph-cpu", SeriesGraph).update(series.get("cpu_percent", ()))
        self.query_one("#graph-tasks", SeriesGraph).update(series.get("tasks_per_s", ()))
        self.query_one("#graph-rss", SeriesGraph).update(series.get("rss_bytes", ()))

    def action_back(self) -> None:
        """Back to the dashboard."""
        self.dismiss(None)
