"""Every key and dialog against the fixed sample swarm: fast, no processes.

The same keys are tested against the real engine in ``test_keys_live.py``; here the
sample source checks the paths the live swarm rarely takes (a full swarm, a refused
priority, bad input in a dialog) and the table's sorting, filtering and selection.
"""

from __future__ import annotations

from textual.command import CommandList

from swarm_tui.fixed_source import FixedSource
from swarm_tui.keys import KEY_HELP
from swarm_tui.render import AGENT_COLUMNS
from swarm_tui.screens import (
    AgentDetailScreen,
    ConfirmDialog,
    HelpScreen,
    PinDialog,
    SpawnDialog,
)
from swarm_tui.widgets import AgentTable
from tests.tui.helpers import ready, record_notifications, wait_for


def _first_command(app: object) -> str:
    """The first hit shown by the command palette ("" while it searches)."""
    hits = app.screen.query(CommandList)  # type: ignore[attr-defined]
    if not hits or not hits.first().option_count:
        return ""
    return str(hits.first().get_option_at_index(0).prompt)


def _source(app: object) -> FixedSource:
    source = app.source  # type: ignore[attr-defined]
    assert isinstance(source, FixedSource)
    return source


async def test_space_selects_several_agents_and_kill_removes_them_all(fixed_app) -> None:
    """space, space, k, y: both selected agents are destroyed and the notification names them."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        seen = record_notifications(app)
        await pilot.press("space", "space")
        assert app.dashboard.table.target_ids() == ["compute-1", "compute-2"]
        await pilot.press("k")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("compute-1") is None)
        assert _source(app).get_system_status().agent("compute-2") is None
        assert ("killed compute-1, compute-2", "information") in seen
        assert app.dashboard.table.selected == set()


async def test_kill_can_be_cancelled(fixed_app) -> None:
    """k then escape: nothing is destroyed."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("k", "escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        assert ("destroy_agent", ("compute-1",)) not in _source(app).calls


async def test_spawn_dialog_creates_the_chosen_count(fixed_app) -> None:
    """s, count 2, enter: two agents of the cursor agent's type are created."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("s")
        assert isinstance(app.screen, SpawnDialog)
        await pilot.press("backspace", "2", "enter")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("compute-4") is not None)
        assert [c for c in _source(app).calls if c[0] == "create_agent"] == [("create_agent", ("compute", None))] * 2


async def test_spawn_dialog_refuses_more_than_fit(fixed_app) -> None:
    """Asking for more agents than max_agents allows keeps the dialog open with the reason."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("s", "backspace", "9", "9", "enter")
        await pilot.pause()
        assert isinstance(app.screen, SpawnDialog)
        assert "only 9 more" in str(app.screen.query_one("#spawn-error").render())
        await pilot.press("escape")
        assert not any(c[0] == "create_agent" for c in _source(app).calls)


async def test_engine_errors_become_notifications(fixed_app) -> None:
    """MaxAgentsReached while spawning is a warning that names max_agents; the app keeps running."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        seen = record_notifications(app)
        app.spawn("echo", 12)  # room for 9
        await wait_for(pilot, lambda: any("max_agents" in m for m, _ in seen))
        message, severity = seen[-1]
        assert severity == "warning" and message.startswith("spawned echo-2")
        app.spawn("no-such-type")
        await wait_for(pilot, lambda: seen[-1][1] == "error")
        assert "unknown agent type 'no-such-type'" in seen[-1][0]
        assert app.is_running


async def test_priority_keys_change_the_nice_value_and_a_refusal_is_reported(fixed_app) -> None:
    """- lowers the priority; + without privileges is a PermissionError shown as an error."""
    app = fixed_app(privileged=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        seen = record_notifications(app)
        await pilot.press("minus")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("compute-1").priority == 1)
        await pilot.press("plus")
        await wait_for(pilot, lambda: seen and seen[-1][1] == "error")
        assert "CAP_SYS_NICE" in seen[-1][0]
        assert _source(app).get_system_status().agent("compute-1").priority == 1


async def test_pause_toggles_and_resumes_when_all_are_paused(fixed_app) -> None:
    """p pauses a running agent; p on a paused agent resumes it."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("compute-1").state == "paused")
        await pilot.press("p")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("compute-1").state == "running")


async def test_restart_counts_a_restart(fixed_app) -> None:
    """r restarts the agent under the cursor."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("down", "r")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("compute-2").restarts == 1)


async def test_pin_dialog_rejects_missing_cores_then_pins(fixed_app) -> None:
    """c, a core the machine lacks: the dialog says so; 1-2: pinned."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("c")
        assert isinstance(app.screen, PinDialog)
        await pilot.press(*"9", "enter")
        assert "not available" in str(app.screen.query_one("#pin-error").render())
        await pilot.press("backspace", *"1-2", "enter")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("compute-1").affinity == (1, 2))


async def test_enter_opens_detail_and_actions_there_apply_to_its_agent(fixed_app) -> None:
    """enter opens the detail screen; p pauses that agent; k + y kills it and goes back."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("down", "down", "enter")
        assert isinstance(app.screen, AgentDetailScreen) and app.screen.agent_id == "resource-1"
        await pilot.press("p")
        await wait_for(pilot, lambda: app.history.latest.snapshot.agent("resource-1").state == "paused")
        await pilot.press("k", "y")
        await wait_for(pilot, lambda: app.history.latest.snapshot.agent("resource-1") is None)
        assert not isinstance(app.screen, AgentDetailScreen)


async def test_detail_escape_goes_back(fixed_app) -> None:
    """escape leaves the detail screen."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, AgentDetailScreen)
        await pilot.press("escape")
        assert app.screen is app.dashboard


async def test_clicking_a_header_sorts_by_it(fixed_app) -> None:
    """A click on the cpu header sorts by cpu, busiest first; a second click reverses."""
    app = fixed_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        table = app.dashboard.table
        x = sum(c.width + 2 for c in AGENT_COLUMNS[: [c.key for c in AGENT_COLUMNS].index("cpu")]) + 2
        await pilot.click(AgentTable, offset=(x, 1))  # line 0 is the table's top border
        assert (table.sort_key, table.sort_reverse) == ("cpu", True)
        await pilot.click(AgentTable, offset=(x, 1))
        assert (table.sort_key, table.sort_reverse) == ("cpu", False)


async def test_sort_keys(fixed_app) -> None:
    """o sorts by the next column, O reverses it; sorting the same column again reverses it."""
    app = fixed_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        table = app.dashboard.table
        await pilot.press("o")
        assert table.sort_key == "id"
        ids = [a.id for a in table.agents]
        assert ids == sorted(ids)
        await pilot.press("O")
        assert [a.id for a in table.agents] == sorted(ids, reverse=True)
        table.sort_by("cpu", toggle=True)
        cpus = [a.cpu_percent for a in table.agents]
        assert cpus == sorted(cpus, reverse=True)


async def test_filter_narrows_the_table_and_escape_clears_it(fixed_app) -> None:
    """/ type:compute shows two rows; escape brings all back."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        table: AgentTable = app.dashboard.table
        await pilot.press("slash", *"type:compute", "enter")
        assert [a.id for a in table.agents] == ["compute-1", "compute-2"]
        assert table.has_focus
        await pilot.press("escape")
        assert len(table.agents) == 7


async def test_event_filter_and_severity(fixed_app) -> None:
    """f filters the log by text; v shows warnings and worse only."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        log = app.dashboard.event_log
        await pilot.press("f", *"echo", "enter")
        assert log.query == "echo"
        assert len(log.lines) >= 1
        await pilot.press("escape", "v")
        assert log.query == "" and log.minimum == "warning"
        await pilot.press("v", "v")
        assert log.minimum == "debug"


async def test_help_opens_and_closes_and_lists_every_footer_key(fixed_app) -> None:
    """? shows the key map; escape closes it; every binding shown in a footer is documented."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.dashboard
    documented = " ".join(keys for _, section in KEY_HELP for keys, _ in section)
    for binding in [*app.BINDINGS, *app.dashboard.BINDINGS, *AgentTable.BINDINGS]:
        shown = binding.key_display or binding.key.split(",")[0]
        assert shown.replace("slash", "/") in documented, binding


async def test_command_palette_runs_swarm_commands(fixed_app) -> None:
    """ctrl+p, "spawn echo", enter: an echo agent is created."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"spawn echo")
        await wait_for(pilot, lambda: "Spawn echo" in _first_command(app), what="the palette's first hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.dashboard.frame.snapshot.agent("echo-2") is not None)


async def test_agent_keys_are_off_in_dialogs(fixed_app) -> None:
    """In a dialog, k does not open another dialog (the agent keys are disabled)."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("k")
        dialog = app.screen
        await pilot.press("k")
        assert app.screen is dialog
        assert sum(isinstance(s, ConfirmDialog) for s in app.screen_stack) == 1


async def test_quit_stops_the_source(fixed_app) -> None:
    """q stops the source and exits with status 0."""
    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert not app.source_running


class _BrokenSource(FixedSource):
    async def start(self) -> None:
        raise PermissionError("cannot create shared memory in /dev/shm: Permission denied")


async def test_an_engine_that_cannot_start_is_explained_not_crashed() -> None:
    """A source whose start fails: the header and a notification say why; q still quits."""
    from swarm_tui.app import make_app

    app = make_app(source=_BrokenSource(), refresh=0.05)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.source_error, what="the failure")
        assert "Permission denied" in app.dashboard.status
        assert app.check_action("kill", ()) is None  # greyed out: nothing to act on
        await pilot.press("q")
    assert app.return_code == 0


async def test_keys_typed_at_once_after_slash_go_to_the_filter(fixed_app) -> None:
    """"/echo" arriving in one read (a paste, a fast typist) filters; "c" does not open the pin dialog."""
    from textual import events

    app = fixed_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        for key, char in [("slash", "/"), *((c, c) for c in "echo")]:
            app.post_message(events.Key(key, char))
        await pilot.pause(0.2)
        assert not isinstance(app.screen, PinDialog)
        assert app.dashboard.table.query == "echo"
        assert [a.type for a in app.dashboard.table.agents] == ["echo"]
