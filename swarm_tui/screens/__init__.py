"""Screens: the dashboard, the agent detail screen, help, and the action dialogs."""

from __future__ import annotations

from swarm_tui.screens.agent_detail import AgentDetailScreen
from swarm_tui.screens.confirm_dialog import ConfirmDialog
from swarm_tui.screens.dashboard import DashboardScreen
from swarm_tui.screens.help import HelpScreen
from swarm_tui.screens.pin_dialog import PinDialog
from swarm_tui.screens.spawn_dialog import SpawnDialog, SpawnRequest

__all__ = ["AgentDetailScreen", "ConfirmDialog", "DashboardScreen", "HelpScreen", "PinDialog", "SpawnDialog",
           "SpawnRequest"]
