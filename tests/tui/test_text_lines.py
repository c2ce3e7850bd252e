"""The dashboard's panels repaint only the lines that changed, and follow their content size."""

from __future__ import annotations

import dataclasses

from swarm_tui.widgets import MachinePanel, ThermalPanel
from tests.tui.helpers import ready, wait_for


async def test_one_core_changing_repaints_only_its_bar(fixed_app) -> None:
    """A new frame where one core's CPU changed draws that core's line again, and no other."""
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.bridge.interval = 3600.0  # no more frames from the source during the test
        panel = app.dashboard.query_one(MachinePanel)
        await pilot.pause(0.2)
        frame = panel.frame
        machine = frame.snapshot.machine
        cores = list(machine.per_cpu_percent)
        cores[1] = 3.0 if cores[1] > 50 else 97.0
        changed = dataclasses.replace(frame.snapshot, machine=dataclasses.replace(machine, per_cpu_percent=tuple(cores)))
        drawn: list[int] = []
        render_line = panel.render_line

        def spy(y: int):  # type: ignore[no-untyped-def]
            drawn.append(y)
            return render_line(y)

        panel.render_line = spy  # type: ignore[method-assign]
        panel.frame = dataclasses.replace(frame, snapshot=changed)
        await wait_for(pilot, lambda: drawn, what="a repaint")
        await pilot.pause(0.1)
        assert set(drawn) == {1}
        assert f"{cores[1]:.1f}%" in render_line(1).text


async def test_a_padding_change_rebuilds_the_lines_for_the_new_width(fixed_app) -> None:
    """The narrow layout removes the panels' padding (same widget size): the lines are built for the new width."""
    app = fixed_app(sensors=True)
    async with app.run_test(size=(130, 40)) as pilot:
        await ready(pilot)
        panel = app.dashboard.query_one(ThermalPanel)
        wide = panel.content_size.width
        app.dashboard.add_class("-narrow")
        await wait_for(pilot, lambda: panel.content_size.width != wide, what="the new layout")
        await pilot.pause(0.2)
        width, height = panel.content_size
        shown = [panel.render_line(y).text.rstrip() for y in range(height)]
        expected = [line.plain.rstrip() for line in panel.build(width, height).split("\n")][:height]
        assert shown[: len(expected)] == expected


async def test_a_terminal_too_narrow_for_the_panels_does_not_crash(fixed_app) -> None:
    """At 14 columns the panels have no room; the app keeps running and redraws when widened."""
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.resize_terminal(14, 40)
        await pilot.pause(0.3)
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.3)
        assert app.is_running
        panel = app.dashboard.query_one(MachinePanel)
        assert "mem" in "".join(panel.render_line(y).text for y in range(panel.content_size.height))
