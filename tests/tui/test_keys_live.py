"""The keys and dialogs against the real engine: real echo agents, real processes.

Each test starts a small swarm (``live_app`` in conftest, max 4 agents), acts through
the UI exactly as a user would, and checks the engine's resulting state -- in
``get_system_status()`` and, where it matters, in the OS (the process is gone, its
nice value and CPU affinity changed).  The fixture checks that no shared memory is
left behind.
"""

from __future__ import annotations

import io
import os

import psutil
import pytest
from rich.console import Console

from swarm_tui.screens import AgentDetailScreen, ConfirmDialog, PinDialog, SpawnDialog
from swarm_tui.screens.agent_detail import facts_table
from tests.tui.helpers import ready, record_notifications, wait_for

pytestmark = pytest.mark.timeout(90)


def _plain(renderable) -> str:
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _status(app):
    return app.source.get_system_status()


def _agent(app, agent_id):
    return _status(app).agent(agent_id)


async def _echoes(pilot, n: int) -> list[str]:
    """Start ``n`` echo agents through the source and wait until they serve and are shown."""
    app = pilot.app
    ids = [await app.source.create_agent("echo") for _ in range(n)]
    for agent_id in ids:
        await app.source.orchestrator.wait_ready(agent_id)
    await wait_for(pilot, lambda: all(app.dashboard.frame.snapshot.agent(i) for i in ids), what="agents shown")
    return ids


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_spawn_dialog_starts_real_agents_and_detail_shows_one(live_app) -> None:
    """s, type echo, count 2: two echo processes run; enter opens the detail of the first."""
    app = live_app
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        assert "echo" in app.agent_types()
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, SpawnDialog)
        dialog.query_one("#spawn-type").value = "echo"
        await pilot.press("backspace", "2", "enter")
        await wait_for(pilot, lambda: len([a for a in _status(app).agents if a.state == "running"]) == 2,
                       what="two running echo agents")
        pids = [a.pid for a in _status(app).agents]
        assert all(psutil.pid_exists(p) for p in pids)
        await wait_for(pilot, lambda: app.dashboard.table.cursor_agent_id == "echo-1")
        await pilot.press("enter")
        assert isinstance(app.screen, AgentDetailScreen) and app.screen.agent_id == "echo-1"
        await wait_for(pilot, lambda: app.screen.frame is not None)
        assert not app.screen.gone
        facts = _plain(facts_table(_agent(app, "echo-1"), app.source.agent_details("echo-1")))
        assert "running" in facts and "policy permanent" in facts
        await pilot.press("escape")
        assert app.screen is app.dashboard


async def test_kill_selected_agents_really_stops_them(live_app) -> None:
    """space, space, k, y: both agents leave the snapshot and their processes exit."""
    app = live_app
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        ids = await _echoes(pilot, 3)
        pids = {i: _agent(app, i).pid for i in ids}
        seen = record_notifications(app)
        await pilot.press("space", "space", "k")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await wait_for(pilot, lambda: [a.id for a in _status(app).agents] == [ids[2]], what="two agents gone")
        await wait_for(pilot, lambda: _gone(pids[ids[0]]) and _gone(pids[ids[1]]), what="processes gone")
        assert psutil.pid_exists(pids[ids[2]])
        await wait_for(pilot, lambda: any(m.startswith("killed") for m, _ in seen))


async def test_pause_resume_restart_and_priority_on_the_real_engine(live_app) -> None:
    """p pauses (and p resumes), r restarts with a new process, - raises the nice value of the process."""
    app = live_app
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        (agent_id,) = await _echoes(pilot, 1)
        await pilot.press("p")
        await wait_for(pilot, lambda: _agent(app, agent_id).state == "paused", what="paused")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent(agent_id).state == "paused")
        await pilot.press("p")
        await wait_for(pilot, lambda: _agent(app, agent_id).state == "running", what="resumed")

        old_pid = _agent(app, agent_id).pid
        await pilot.press("r")
        await wait_for(pilot, lambda: _agent(app, agent_id).restarts == 1 and _agent(app, agent_id).pid != old_pid,
                       what="restarted")
        await wait_for(pilot, lambda: _agent(app, agent_id).state == "running" and _agent(app, agent_id).pid,
                       what="running again")

        await pilot.press("minus")
        await wait_for(pilot, lambda: _agent(app, agent_id).priority == 1, what="priority 1")
        assert os.getpriority(os.PRIO_PROCESS, _agent(app, agent_id).pid) == 1


async def test_priority_up_is_done_or_refused_with_a_notification(live_app) -> None:
    """+ needs privileges: as root the nice value drops; otherwise an error notification, no traceback."""
    app = live_app
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        (agent_id,) = await _echoes(pilot, 1)
        seen = record_notifications(app)
        await pilot.press("plus")
        outcome = await wait_for(pilot, lambda: [n for n in seen if agent_id in n[0]], what="the outcome")
        message, severity = outcome[0]
        if severity == "error":
            assert "CAP_SYS_NICE" in message and _agent(app, agent_id).priority == 0
        else:
            assert _agent(app, agent_id).priority == -1
            assert os.getpriority(os.PRIO_PROCESS, _agent(app, agent_id).pid) == -1


async def test_pin_dialog_sets_the_process_affinity(live_app) -> None:
    """c, 0, enter: the agent's process may only run on core 0."""
    app = live_app
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        (agent_id,) = await _echoes(pilot, 1)
        core = min(os.sched_getaffinity(0))
        await pilot.press("c")
        assert isinstance(app.screen, PinDialog)
        await pilot.press(*str(core), "enter")
        await wait_for(pilot, lambda: _agent(app, agent_id).affinity == (core,), what="pinned")
        assert os.sched_getaffinity(_agent(app, agent_id).pid) == {core}


async def test_a_full_swarm_is_a_warning_and_quit_stops_everything(live_app) -> None:
    """Spawning past max_agents is a notification naming max_agents; q stops every agent."""
    app = live_app
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        seen = record_notifications(app)
        app.spawn("echo", 5)  # max_agents is 4
        outcome = await wait_for(pilot, lambda: [n for n in seen if n[0].startswith("spawned")], what="the outcome")
        message, severity = outcome[0]  # (a busy machine may add performance alerts to `seen`)
        assert severity == "warning" and "max_agents=4" in message
        pids = [a.pid for a in _status(app).agents]
        assert len(pids) == 4
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert all(_gone(p) for p in pids)
