"""The dashboard's widgets, one per module; each binds to data, none reaches into the engine."""

from __future__ import annotations

from swarm_tui.widgets.agent_table import AgentTable
from swarm_tui.widgets.bus_panel import BusPanel
from swarm_tui.widgets.event_log import EventLog
from swarm_tui.widgets.machine_panel import MachinePanel
from swarm_tui.widgets.series_graph import SeriesGraph
from swarm_tui.widgets.swarm_header import SwarmHeader
from swarm_tui.widgets.text_lines import TextLines
from swarm_tui.widgets.thermal_panel import ThermalPanel

__all__ = ["AgentTable", "BusPanel", "EventLog", "MachinePanel", "SeriesGraph", "SwarmHeader", "TextLines", "ThermalPanel"]
