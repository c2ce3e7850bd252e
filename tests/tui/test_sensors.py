"""Temperature readings from a snapshot, for the thermal panel."""

from __future__ import annotations

import dataclasses

from swarm_tui.fixed_source import sample_snapshot
from swarm_tui.panels import thermal_text
from swarm_tui.sensors import NO_SENSORS, SensorReading, thermal_view


def test_no_sensors_says_so_plainly_and_shows_the_labelled_model() -> None:
    """A machine without sensors: the plain sentence with the agent's reason, then modelled gauges."""
    view = thermal_view(sample_snapshot(0, sensors=False), critical_c=90.0)
    assert view.note == NO_SENSORS and "RC model" in view.detail
    assert [r.label for r in view.readings] == ["thermal-1 model", "thermal-1 in 5s"]
    assert all(r.modelled for r in view.readings)
    text = thermal_text(view.readings, view.note, 40, 6, view.detail).plain
    assert text.startswith(NO_SENSORS) and "thermal-1 model ~" in text and "RC model" in text
    short = thermal_text(view.readings, view.note, 40, 3, view.detail).plain
    assert "thermal-1 model ~" in short and "RC model" not in short


def test_nothing_at_all_is_still_the_plain_sentence() -> None:
    """No thermal report and no temperature gauge: just the sentence."""
    snap = sample_snapshot(0)
    bare = dataclasses.replace(snap, extra={}, agents=tuple(a for a in snap.agents if a.type != "thermal"))
    view = thermal_view(bare)
    assert view == type(view)((), NO_SENSORS)
    assert thermal_text(view.readings, view.note, 40, 4).plain == NO_SENSORS


def test_real_sensors_keep_their_limits_and_come_first() -> None:
    """Sysfs sensors keep their own high/critical levels; the model is not shown beside them."""
    view = thermal_view(sample_snapshot(0, sensors=True), critical_c=90.0)
    assert view.note == ""
    labels = [r.label for r in view.readings]
    assert labels == ["Package id 0", "Core 0", "Core 1", "edge (amdgpu)"]
    package = view.readings[0]
    assert (package.warn_c, package.crit_c, package.modelled) == (85.0, 100.0, False)


def test_a_machine_reading_and_agent_gauges_are_understood_too() -> None:
    """``extra["thermal"]`` as a bare collector reading; ``*_c`` gauges of an agent that published nothing."""
    snap = sample_snapshot(0, sensors=False)
    machine = dataclasses.replace(snap, extra={"thermal": {"sensors": [{"label": "x", "temperature_c": 50.0}]}})
    view = thermal_view(machine, critical_c=90.0)
    assert [(r.label, r.modelled) for r in view.readings] == [("x", False), ("thermal-1 temp", True),
                                                              ("thermal-1 predicted", True)]


def test_malformed_thermal_data_is_skipped() -> None:
    """Missing temperatures, strings and non-mappings never raise."""
    snap = sample_snapshot(0, sensors=False)
    bad = dataclasses.replace(snap, agents=(), extra={"thermal": {"a": {"sensors": [{"label": "x"}, 7,
                                                                  {"temperature_c": "hot"},
                                                                  {"temperature_c": 50.0}]}, "b": 42}})
    assert [r.celsius for r in thermal_view(bad).readings] == [50.0]
    assert thermal_view(dataclasses.replace(snap, agents=(), extra={"thermal": 42})).readings == ()
    assert thermal_view(None).readings == ()


def test_duplicate_sensors_from_two_thermal_agents_are_shown_once() -> None:
    """Two thermal agents report the same machine sensors."""
    snap = sample_snapshot(0, sensors=True)
    report = snap.extra["thermal"]["thermal-1"]
    twice = dataclasses.replace(snap, extra={"thermal": {"thermal-1": report, "thermal-2": report}})
    assert len(thermal_view(twice).readings) == 4


def test_gauges_hottest_first_when_short() -> None:
    """Too many sensors for the panel: the hottest are shown."""
    readings = [SensorReading(f"s{i}", 40.0 + i) for i in range(6)]
    text = thermal_text(readings, "", 30, 2)
    assert text.plain.splitlines()[0].startswith("s5")
    assert len(text.plain.splitlines()) == 2
