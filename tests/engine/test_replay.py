"""ReplaySource: the orchestrator's read interface over a recording, with transport controls.

Time is a fake clock moved by hand: no test waits on the wall clock, except the one
that checks the asyncio task delivers everything (it waits for the end, not a time).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine.errors import SwarmError, UnknownAgent
from engine.events import Event, Severity
from engine.recording import RecordingSettings, RecordingWriter, open_recording
from engine.replay import (
    MAX_SPEED,
    MIN_SPEED,
    ReplayReadOnly,
    ReplaySource,
    ReplayState,
)
from tests.recording_fixtures import (
    T0,
    FakeClock,
    event,
    header,
    snapshot,
    write_recording,
)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Ten one-second snapshots; events at 0.5 s (created), 4.5 s (alert) and 7.5 s (crash)."""
    path = tmp_path / "run.swrec"
    write_recording(path, seconds=10)
    return path


def make_source(path: Path, **kwargs: Any) -> tuple[ReplaySource, FakeClock, list[Event], list[ReplayState]]:
    clock = FakeClock(100.0)
    source = ReplaySource(path, clock=clock, **kwargs)
    events: list[Event] = []
    states: list[ReplayState] = []
    source.add_event_handler("*", events.append)
    source.add_position_handler(states.append)
    return source, clock, events, states


def recorded(events: list[Event]) -> list[str]:
    return [e.name for e in events if not e.name.startswith("replay_")]


async def test_looks_like_the_orchestrator_to_the_ui(recording: Path) -> None:
    """mode, config, available_types, status and the SwarmSource protocol the UI relies on."""
    from swarm_tui.source import SwarmSource

    source, _clock, _events, _states = make_source(recording)
    assert source.mode == "replay"
    assert source.config.name == "test-swarm"
    assert source.available_types() == ["echo", "compute"]
    assert isinstance(source, SwarmSource)
    assert source.get_system_status() == snapshot(0)  # position 0 = the first snapshot
    await source.start()
    assert source.get_system_status() == snapshot(0)
    await source.stop()


async def test_playing_delivers_events_and_snapshots_in_recorded_order_at_the_clock(recording: Path) -> None:
    """As the clock advances, the events and snapshots crossed are delivered, in order."""
    source, clock, events, _states = make_source(recording)
    statuses: list[Any] = []
    source.add_status_handler(statuses.append)
    await source.start()
    assert [e.name for e in events][:1] == ["replay_started"]
    clock.advance(5.0)
    assert source.get_system_status() == snapshot(5)
    assert recorded(events) == ["agent_created", "performance_alert"]
    assert [s.time - T0 for s in statuses] == [0, 1, 2, 3, 4, 5]
    clock.advance(100.0)
    assert source.get_system_status() == snapshot(9)
    assert recorded(events) == ["agent_created", "performance_alert", "agent_crashed"]
    assert source.at_end and not source.playing
    await source.stop()


async def test_speed_scales_playback_and_is_bounded(recording: Path) -> None:
    """At 4x, one clock second is four recorded seconds; outside 0.25..16 is refused."""
    source, clock, _events, _states = make_source(recording, speed=4.0)
    await source.start()
    clock.advance(1.0)
    assert source.position == pytest.approx(4.0)
    for bad in (0.1, 17.0, 0.0, -1.0):
        with pytest.raises(ValueError, match="0.25x to 16x"):
            source.set_speed(bad)
    source.set_speed(MIN_SPEED)
    clock.advance(4.0)
    assert source.position == pytest.approx(5.0)
    assert source.faster() == 0.5 and source.slower() == 0.25 and source.slower() == 0.25
    source.set_speed(MAX_SPEED)
    assert source.faster() == MAX_SPEED
    await source.stop()


async def test_pause_stops_the_position_and_play_resumes(recording: Path) -> None:
    """Paused, the clock moves but the replay does not."""
    source, clock, _events, states = make_source(recording)
    await source.start()
    clock.advance(2.0)
    source.pause()
    clock.advance(50.0)
    assert source.position == pytest.approx(2.0) and not source.playing
    source.toggle()
    clock.advance(1.0)
    assert source.position == pytest.approx(3.0) and source.playing
    assert [s.playing for s in states] == [True, False, True]
    await source.stop()


async def test_step_forward_delivers_and_step_back_is_a_jump(recording: Path) -> None:
    """step(+1) moves one snapshot and delivers what it crosses; step(-1) jumps back without delivering."""
    source, _clock, events, states = make_source(recording, autoplay=False)
    await source.start()
    source.step(+1)
    assert source.get_system_status() == snapshot(1)
    assert recorded(events) == ["agent_created"]
    source.step(+4)
    assert source.get_system_status() == snapshot(5) and recorded(events)[-1] == "performance_alert"
    source.step(-2)
    assert source.get_system_status() == snapshot(3)
    assert states[-1].jumped and not states[-1].playing
    assert recorded(events) == ["agent_created", "performance_alert"]  # nothing re-delivered
    assert [s.time - T0 for s in source.recent_snapshots()] == [0, 1, 2, 3]
    assert [e.name for e in source.recent_events()] == ["agent_created"]
    await source.stop()


async def test_seek_is_clamped_and_rebuilds_from_the_backlog(recording: Path) -> None:
    """seek() and seek_fraction() jump; the backlog is what was recorded up to the new position."""
    source, _clock, events, states = make_source(recording, autoplay=False)
    await source.start()
    source.seek(7.9)
    assert source.get_system_status() == snapshot(7)
    assert states[-1].jumped and recorded(events) == []
    assert [e.name for e in source.recent_events()] == ["agent_created", "performance_alert", "agent_crashed"]
    source.seek(-5)
    assert source.position == 0.0
    source.seek_fraction(2.0)
    assert source.position == pytest.approx(source.duration) and source.at_end
    source.seek_fraction(0.5)
    assert source.position == pytest.approx(4.5)
    with pytest.raises(ValueError):
        source.seek(float("nan"))
    await source.stop()


async def test_next_and_previous_event_and_alert(recording: Path) -> None:
    """Jumps land on events; alert jumps skip events that are not alerts."""
    source, _clock, _events, _states = make_source(recording, autoplay=False)
    await source.start()
    assert source.next_event() and source.position == pytest.approx(0.5)
    assert source.next_event() and source.position == pytest.approx(4.5)
    assert source.prev_event() and source.position == pytest.approx(0.5)
    assert not source.prev_event()
    assert source.next_alert() and source.position == pytest.approx(4.5)
    assert source.next_alert() and source.position == pytest.approx(7.5)
    assert not source.next_alert() and source.position == pytest.approx(7.5)
    assert source.prev_alert() and source.position == pytest.approx(4.5)
    markers = source.markers(alerts_only=True)
    assert [(m.position, m.name) for m in markers] == [(4.5, "performance_alert"), (7.5, "agent_crashed")]
    await source.stop()


async def test_play_at_the_end_starts_over(recording: Path) -> None:
    """Play after the end rewinds to the start (a jump)."""
    source, clock, _events, states = make_source(recording)
    await source.start()
    clock.advance(60.0)
    assert source.get_system_status() == snapshot(9) and source.at_end
    source.play()
    assert states[-1].jumped and states[-1].playing and source.position == pytest.approx(0.0)
    await source.stop()


@pytest.mark.parametrize("call, action", [
    (lambda s: s.create_agent("echo"), "spawn"),
    (lambda s: s.destroy_agent("echo-1"), "kill"),
    (lambda s: s.set_priority("echo-1", 5), "set priority"),
    (lambda s: s.pause_agent("echo-1"), "pause agent"),
    (lambda s: s.resume_agent("echo-1"), "resume agent"),
    (lambda s: s.restart_agent("echo-1"), "restart"),
    (lambda s: s.pin_agent("echo-1", [0]), "pin"),
    (lambda s: s.throttle_agent("echo-1", 0.5), "throttle"),
])  # fmt: skip
async def test_live_only_actions_raise_replay_read_only_naming_the_action(recording: Path, call: Any,
                                                                         action: str) -> None:
    """Spawn, kill, priority... raise ReplayReadOnly (a SwarmError) whose message names the action."""
    source, _clock, _events, _states = make_source(recording)
    with pytest.raises(ReplayReadOnly) as info:
        await call(source)
    assert isinstance(info.value, SwarmError) and info.value.action == action
    assert str(info.value).startswith(f"{action} is not available in replay")


def test_communicator_is_read_only(recording: Path) -> None:
    """There is no bus to send on in a replay."""
    source, _clock, _events, _states = make_source(recording)
    with pytest.raises(ReplayReadOnly, match="send message"):
        _ = source.communicator


async def test_agent_details_come_from_the_recording_at_the_position(tmp_path: Path) -> None:
    """Recorded supervisor details, updated with the agent's row at the position; unknown ids raise."""
    path = tmp_path / "details.swrec"
    clock = FakeClock()
    writer = RecordingWriter(path, header=header(), clock=clock, settings=RecordingSettings(fsync=False))
    writer.open()
    writer.add_details(T0, {"id": "echo-1", "type": "echo", "options": {"a": 1}, "restart": "permanent",
                            "last_traceback": ""})
    writer.add_snapshot(snapshot(0))
    writer.add_details(T0 + 1.5, {"id": "echo-1", "type": "echo", "options": {"a": 1}, "restart": "permanent",
                                  "last_traceback": "Traceback: boom"})
    writer.add_snapshot(snapshot(2))
    writer.close()
    source, _clock, _events, _states = make_source(path, autoplay=False)
    await source.start()
    details = source.agent_details("echo-1")
    assert details["options"] == {"a": 1} and details["last_traceback"] == "" and details["replay"] is True
    assert details["pid"] == snapshot(0).agents[0].pid
    source.seek(2.0)
    assert source.agent_details("echo-1")["last_traceback"] == "Traceback: boom"
    with pytest.raises(UnknownAgent):
        source.agent_details("nobody")
    await source.stop()


async def test_truncated_recording_says_so_when_replay_starts(recording: Path) -> None:
    """A cut-off recording plays, and the replay reports it (state and a replay_warning event)."""
    data = recording.read_bytes()
    recording.write_bytes(data[: len(data) - 200])  # lose the end frame and part of the last chunk
    source, _clock, events, _states = make_source(recording)
    await source.start()
    assert source.state().truncated
    warnings = [e for e in events if e.name == "replay_warning"]
    assert warnings and "cut off" in warnings[0].message and warnings[0].severity is Severity.WARNING
    await source.stop()


async def test_the_task_plays_a_recording_to_its_end_on_the_loop(tmp_path: Path) -> None:
    """With the real clock at 16x, start() alone delivers every recorded event and reaches the end."""
    path = tmp_path / "short.swrec"
    write_recording(path, seconds=3, events=[event("agent_created", T0 + 0.5), event("scaled", T0 + 1.5)])
    source = ReplaySource(open_recording(path), speed=16.0)
    events: list[str] = []
    ended = asyncio.Event()
    source.add_event_handler("*", lambda e: events.append(e.name))
    source.add_position_handler(lambda state: ended.set() if state.at_end else None)
    await source.start()
    await asyncio.wait_for(ended.wait(), timeout=30)
    assert [e for e in events if not e.startswith("replay_")] == ["agent_created", "scaled"]
    assert source.get_system_status() == snapshot(2)
    await source.stop()
    await source.stop()  # idempotent
