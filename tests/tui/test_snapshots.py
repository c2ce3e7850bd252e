"""Snapshot tests: the app built by ``make_app`` over the fixed sample swarm, at fixed sizes.

Run ``pytest tests/tui/test_snapshots.py --snapshot-update`` after a deliberate change
of the look, and review the SVGs in ``__snapshots__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarm_tui.app import SwarmApp
from tests.tui.helpers import ready, wait_for

SMALL = (80, 24)
LARGE = (160, 48)


async def _ready(pilot: Any) -> None:
    await ready(pilot)


def _then(*keys: str, until: Callable[[SwarmApp], bool] | None = None) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        await ready(pilot)
        await pilot.press(*keys)
        if until is not None:
            await wait_for(pilot, lambda: until(pilot.app))
        await pilot.pause()

    return run_before


# --- dashboard ------------------------------------------------------------------------------


def test_dashboard_small_terminal(snap_compare: Any, fixed_app: Any) -> None:
    """80x24 without sensors: header, agent table, machine/bus panels, the no-sensor sentence, events."""
    assert snap_compare(fixed_app(), terminal_size=SMALL, run_before=_ready)


def test_dashboard_large_terminal_with_sensors(snap_compare: Any, fixed_app: Any) -> None:
    """160x48 with sensors: every column, thermal gauges, a taller bus chart and log."""
    assert snap_compare(fixed_app(sensors=True), terminal_size=LARGE, run_before=_ready)


def test_dashboard_sorted_filtered_and_selected(snap_compare: Any, fixed_app: Any) -> None:
    """Sorted by cpu (descending), filtered to compute agents, one selected."""
    async def run_before(pilot: Any) -> None:
        app = await ready(pilot)
        app.dashboard.table.sort_by("cpu")
        await pilot.press("slash", *"compute", "enter", "space")
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=(100, 30), run_before=run_before)


# --- screens and dialogs ----------------------------------------------------------------------


def test_detail_screen_of_a_crashed_agent(snap_compare: Any, fixed_app: Any) -> None:
    """The crashed agent's detail: facts, empty graphs, its last traceback."""
    async def run_before(pilot: Any) -> None:
        app = await ready(pilot)
        app.open_detail("fault_tolerance-1")
        await pilot.pause()

    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=run_before)


def test_detail_screen_of_a_busy_agent(snap_compare: Any, fixed_app: Any) -> None:
    """compute-1's detail: cpu/tasks/rss history graphs, gauges and options."""
    assert snap_compare(fixed_app(), terminal_size=(100, 32), run_before=_then("enter"))


def test_help_screen(snap_compare: Any, fixed_app: Any) -> None:
    """``?`` lists every key."""
    assert snap_compare(fixed_app(), terminal_size=(100, 40), run_before=_then("question_mark"))


def test_spawn_dialog(snap_compare: Any, fixed_app: Any) -> None:
    """``s`` asks for a type (defaulting to the cursor agent's) and a count."""
    assert snap_compare(fixed_app(), terminal_size=SMALL, run_before=_then("s"))


def test_kill_confirmation(snap_compare: Any, fixed_app: Any) -> None:
    """``k`` on two selected agents asks before killing them."""
    assert snap_compare(fixed_app(), terminal_size=SMALL, run_before=_then("space", "space", "k"))
