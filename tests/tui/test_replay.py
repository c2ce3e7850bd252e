"""A recorded session in the UI: the same dashboard, transport keys instead of agent actions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.recording import Recorder
from engine.replay import ReplaySource
from swarm_tui.app import SwarmApp, make_app
from swarm_tui.fixed_source import FixedSource, sample_events
from tests.tui.helpers import ready, record_notifications, wait_for


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """The sample swarm's events and 60 s of its snapshots, recorded like a live session."""
    source = FixedSource(history=60)
    path = tmp_path / "sample.rec"
    recorder = Recorder.create(path, config=source.config, available_types=source.available_types())
    for event in sample_events():  # moved into the snapshots' minute
        recorder.on_event(dataclasses.replace(event, time=event.time + 60))
    for snapshot in source.recent_snapshots():
        recorder.on_status(snapshot)
    recorder.close()
    return path


def _app(path: Path) -> SwarmApp:
    return make_app(source=ReplaySource(path, autoplay=False), refresh=0.05)


async def test_a_replay_shows_its_position_and_hides_live_actions(recording: Path) -> None:
    """Header says REPLAY and where it is; spawn/kill/priority are off, detail stays on."""
    app = _app(recording)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        header = app.dashboard.header.render().plain
        assert "REPLAY" in header and "⏸" in header
        for action in ("spawn", "kill", "restart", "priority_up", "pin"):
            assert app.check_action(action, ()) is False, action
        assert app.check_action("detail", ()) and app.check_action("replay_faster", ())
        seen = record_notifications(app)
        await pilot.press("k")
        await pilot.pause()
        assert app.screen is app.dashboard and not seen


async def test_transport_keys_play_speed_and_jump(recording: Path) -> None:
    """p plays, ] doubles the speed, N jumps back to an alert and rebuilds the history."""
    app = _app(recording)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        replay = app.replay
        await pilot.press("right_square_bracket")
        assert replay.speed == 2.0
        await pilot.press("p")
        assert replay.playing
        await wait_for(pilot, lambda: replay.position > 1.0, what="the replay to advance")
        await pilot.press("p", "full_stop")
        assert not replay.playing
        before = replay.position
        await pilot.press("comma")
        await wait_for(pilot, lambda: replay.position < before, what="a step back")
        await wait_for(pilot, lambda: app.dashboard.replay is not None and app.dashboard.replay.position < before)
        assert app.history.latest is not None
        assert app.history.latest.snapshot.time <= replay.recording.start_time + before


async def test_next_alert_jumps_there_and_the_log_shows_what_was_recorded_until_then(recording: Path) -> None:
    """n jumps to the first alert; the event log then ends with that alert."""
    app = _app(recording)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(pilot)
        replay = app.replay
        first_alert = replay.markers(alerts_only=True)[0]
        await pilot.press("n")
        await wait_for(pilot, lambda: abs(replay.position - first_alert.position) < 1e-6, what="the jump")
        log = app.dashboard.event_log
        await wait_for(pilot, lambda: log.events and log.events[-1].name == first_alert.name, what="the log rebuilt")
        assert all(e.time <= replay.recording.start_time + first_alert.position for e in log.events)
