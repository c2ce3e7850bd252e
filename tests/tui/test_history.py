"""History: bounded series from successive snapshots, and immutable frames."""

from __future__ import annotations

import dataclasses

from swarm_tui.fixed_source import sample_snapshot
from swarm_tui.history import TREND_SAMPLES, History


def test_each_new_snapshot_adds_one_sample_and_repeats_add_none() -> None:
    """A snapshot no newer than the last one (paused replay, fixed data) changes nothing."""
    history = History(samples=5)
    first = history.add(sample_snapshot(0))
    assert first is not None and len(first.series["tasks_per_s"]) == 1
    assert history.add(sample_snapshot(0)) is None
    for i in range(1, 9):
        frame = history.add(sample_snapshot(i))
    assert frame is not None and len(frame.series["messages_per_s"]) == 5
    assert frame.series["messages_per_s"][-1] == sample_snapshot(8).bus.messages_per_s


def test_agent_series_and_trends_follow_agents() -> None:
    """Each agent has its own series; an agent that is gone is forgotten."""
    history = History()
    for i in range(TREND_SAMPLES + 4):
        frame = history.add(sample_snapshot(i))
    assert frame is not None
    assert len(frame.trends["compute-1"]) == TREND_SAMPLES
    assert len(history.agent_series("compute-1")["cpu_percent"]) == TREND_SAMPLES + 4
    last = sample_snapshot(100)
    history.add(dataclasses.replace(last, agents=last.agents[1:]))
    assert history.agent_series("compute-1") == {"cpu_percent": (), "tasks_per_s": (), "rss_bytes": ()}


def test_frames_hold_tuples() -> None:
    """Readers get immutable series, so a frame can be kept while history moves on."""
    history = History()
    frame = history.add(sample_snapshot(0))
    assert frame is not None
    assert all(isinstance(v, tuple) for v in frame.series.values())
    history.add(sample_snapshot(1))
    assert len(frame.series["tasks_per_s"]) == 1
