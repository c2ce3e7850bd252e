"""The agent table as a user drives it: cursor keys, mouse, sideways scrolling, partial repaints."""

from __future__ import annotations

import dataclasses

from swarm_tui.render import AGENT_COLUMNS
from swarm_tui.screens import AgentDetailScreen
from swarm_tui.widgets import AgentTable
from swarm_tui.widgets.agent_table import COLUMN_STARTS, FIXED_WIDTH, fit_cell
from tests.tui.helpers import ready, wait_for


def _x_of(key: str) -> int:
    """A cell inside column ``key`` (unscrolled)."""
    return COLUMN_STARTS[[c.key for c in AGENT_COLUMNS].index(key)] + 2


def test_fit_cell_cuts_long_text_with_an_ellipsis() -> None:
    """Text wider than the column keeps its first cells and ends in …; short text is untouched."""
    assert fit_cell((("abc", "red"),), 5) == [("abc", "red")]
    assert fit_cell((("abcdef", "red"),), 4) == [("abc", "red"), ("…", "red")]
    cut = fit_cell((("ab", "green"), ("cdef", "")), 4)
    assert "".join(t for t, _ in cut) == "abc…"


async def test_cursor_keys_move_the_cursor_and_keep_it_in_view(fixed_app) -> None:
    """down, end, home and pagedown move the cursor; end scrolls the last row into view."""
    app = fixed_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await ready(pilot)
        table = app.dashboard.table
        ids = [a.id for a in table.agents]
        await pilot.press("down")
        assert table.cursor_agent_id == ids[1]
        await pilot.press("end")
        assert table.cursor_agent_id == ids[-1]
        visible = table.scrollable_content_region.height - 1
        assert table.scroll_offset.y <= len(ids) - 1 < table.scroll_offset.y + visible
        await pilot.press("home")
        assert table.cursor_agent_id == ids[0] and table.scroll_offset.y == 0
        await pilot.press("pagedown")
        assert table.cursor_row == min(visible, len(ids) - 1)


async def test_clicking_a_row_moves_the_cursor_and_a_second_click_opens_it(fixed_app) -> None:
    """The first click puts the cursor on the row; clicking that row again opens the detail screen."""
    app = fixed_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        table = app.dashboard.table
        third = table.agents[2].id
        await pilot.click(AgentTable, offset=(_x_of("type"), 4))  # border, header, rows 0 and 1
        assert table.cursor_agent_id == third
        assert app.screen is app.dashboard
        await pilot.click(AgentTable, offset=(_x_of("type"), 4))
        await wait_for(pilot, lambda: isinstance(app.screen, AgentDetailScreen), what="the detail screen")
        assert app.screen.agent_id == third  # type: ignore[attr-defined]


async def test_clicking_the_mark_column_or_ctrl_click_selects(fixed_app) -> None:
    """A click on the ● column selects an agent, ctrl+click another; a second click unselects."""
    app = fixed_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        table = app.dashboard.table
        first, second = (a.id for a in table.agents[:2])
        await pilot.click(AgentTable, offset=(1, 2))
        assert table.selected == {first}
        await pilot.click(AgentTable, offset=(_x_of("state"), 3), control=True)
        assert table.selected == {first, second}
        assert table.target_ids() == [first, second]
        await pilot.click(AgentTable, offset=(1, 2))
        assert table.selected == {second}


async def test_right_scrolls_by_whole_columns_and_keeps_the_ids(fixed_app) -> None:
    """right scrolls to the next column's start; the id column stays on screen; left goes back."""
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        table = app.dashboard.table
        await pilot.press("right")
        assert table.scroll_offset.x == COLUMN_STARTS[3] - FIXED_WIDTH
        first_row = table.render_line(1).text
        assert table.agents[0].id in first_row
        assert "type" not in table.render_line(0).text
        await pilot.press("left")
        assert table.scroll_offset.x == 0
        assert "type" in table.render_line(0).text


async def test_a_new_frame_repaints_only_the_rows_that_changed(fixed_app) -> None:
    """One agent's cpu changes: only its line is drawn again, and it shows the new value."""
    app = fixed_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await ready(pilot)
        app.bridge.interval = 3600.0  # no more frames from the source during the test
        table = app.dashboard.table
        await pilot.pause(0.2)
        snapshot = table.frame.snapshot
        target = table.agents[3]
        agents = [dataclasses.replace(a, cpu_percent=77.7) if a.id == target.id else a for a in snapshot.agents]
        drawn: list[int] = []
        render_line = table.render_line

        def spy(y: int):  # type: ignore[no-untyped-def]
            drawn.append(y)
            return render_line(y)

        table.render_line = spy  # type: ignore[method-assign]
        table.frame = dataclasses.replace(table.frame, snapshot=dataclasses.replace(snapshot, agents=tuple(agents)))
        await wait_for(pilot, lambda: drawn, what="a repaint")
        await pilot.pause(0.1)
        assert sorted(set(drawn)) == [1 + table.agents.index(next(a for a in table.agents if a.id == target.id))]
        assert "77.7%" in render_line(drawn[0]).text


async def test_cursor_stays_in_view_when_a_filter_is_cleared() -> None:
    """Cursor on row 40 of 47, filter to that agent, clear: the table scrolls back to the cursor."""
    from engine import default_config
    from swarm_tui.app import make_app
    from swarm_tui.fixed_source import FixedSource

    source = FixedSource(config=default_config().with_overrides(name="sample-swarm", max_agents=64))
    app = make_app(source=source, refresh=0.05)
    async with app.run_test(size=(100, 24)) as pilot:
        await ready(pilot)
        for _ in range(40):
            await source.create_agent("echo")
        table = app.dashboard.table
        await wait_for(pilot, lambda: table.row_count >= 47, what="47 rows")
        target = table.agents[40].id
        table.move_to(target)
        await pilot.press("slash", *f"id:{target}", "enter")
        await wait_for(pilot, lambda: table.row_count == 1, what="one row")
        assert table.scroll_offset.y == 0
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count >= 47, what="all rows again")
        await pilot.pause(0.2)
        top, visible = table.scroll_offset.y, table.scrollable_content_region.height - 1
        assert table.cursor_agent_id == target
        assert top <= table.cursor_row < top + visible


async def test_the_sort_arrow_shows_on_a_full_width_label(fixed_app) -> None:
    """Sorting by tasks/s (a label as wide as its column) still shows the direction."""
    app = fixed_app()
    async with app.run_test(size=(160, 30)) as pilot:
        await ready(pilot)
        table = app.dashboard.table
        table.sort_by("tasks")
        await pilot.pause()
        header = table.render_line(0).text
        assert ("tasks/▼" if table.sort_reverse else "tasks/▲") in header
