"""The bundled demo recordings: each one replays headless and through ReplaySource, and shows its story.

The recordings are real runs (``scripts/make_demo_recordings.py``), so the checks are
about what each scenario is for, not about exact numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.demo import (
    SCENARIOS,
    bundled_recordings,
    get_scenario,
    prepare_config,
    scenario_names,
)
from engine.events import Event
from engine.headless import run_replay
from engine.recording import open_recording
from engine.replay import ReplaySource
from tests.recording_fixtures import FakeClock

BUNDLED = bundled_recordings()


def named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.name == name]


def _burst(events: list[Event], last: Any) -> None:
    scaled = named(events, "scaled")
    assert any(e.data.get("created") for e in scaled), "the burst added no agent"
    assert any(e.data.get("removed") for e in scaled), "the calm retired no agent"


def _thermal(events: list[Event], last: Any) -> None:
    assert named(events, "thermal_throttle"), "no throttling"
    assert any(a.type == "compute" and a.duty_cycle < 1.0 for a in last.agents)


def _chaos(events: list[Event], last: Any) -> None:
    assert len(named(events, "agent_crashed")) >= 3 and len(named(events, "agent_restarted")) >= 3
    assert named(events, "agent_hung")
    assert all(a.state == "running" for a in last.agents), "every agent recovered"


def _learning(events: list[Event], last: Any) -> None:
    phases = [e.message for e in named(events, "demo_phase")]
    assert any("slow-down" in m for m in phases)
    slowed = min(last.agents, key=lambda a: a.duty_cycle if a.type == "compute" else 2.0)
    others = [a for a in last.agents if a.type == "compute" and a.id != slowed.id]
    assert slowed.duty_cycle < 1.0 and all(slowed.tasks_done < o.tasks_done for o in others)


def _default(events: list[Event], last: Any) -> None:
    echoes = [a for a in last.agents if a.type == "echo"]
    assert len(echoes) == 2 and all(a.tasks_done > 0 for a in echoes)


STORY: dict[str, Callable[[list[Event], Any], None]] = {
    "burst": _burst, "thermal": _thermal, "chaos": _chaos, "learning": _learning, "default": _default,
}


def test_every_scenario_has_a_bundled_recording() -> None:
    """The package ships one recording per scenario."""
    assert sorted(BUNDLED) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_recording_is_whole_and_tells_its_story(name: str) -> None:
    """Complete (not truncated, no warnings), made by its scenario, and showing what the scenario is for."""
    rec = open_recording(BUNDLED[name])
    assert not rec.truncated and rec.warnings == [] and rec.end is not None
    assert rec.header["demo"] == name and rec.header["machine"]["identity_key"]
    assert BUNDLED[name].stat().st_size < 200_000  # small enough for git
    last = rec.snapshot(len(rec.snapshot_times) - 1)
    STORY[name](rec.events, last)


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_recording_replays_headless(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--run --replay NAME --json``: a header line, every event, a summary; exit 0."""
    assert run_replay(name, json_lines=True) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    rec = open_recording(BUNDLED[name])
    assert lines[0]["type"] == "recording" and lines[0]["demo"] == name
    assert len([r for r in lines if r["type"] == "event"]) == len(rec.events)
    assert lines[-1]["type"] == "summary" and lines[-1]["stopped_by"] == "end of recording"
    assert err == ""


@pytest.mark.parametrize("name", sorted(BUNDLED))
async def test_bundled_recording_plays_through_replay_source(name: str) -> None:
    """Played to the end through ReplaySource, every recorded event reaches the handlers."""
    clock = FakeClock()
    source = ReplaySource(BUNDLED[name], clock=clock, speed=16.0)
    seen: list[Event] = []
    source.add_event_handler("*", seen.append)
    await source.start()
    clock.advance(source.duration / 16.0 + 1.0)
    last = source.get_system_status()
    await source.stop()
    assert source.at_end
    assert len([e for e in seen if not e.name.startswith("replay_")]) == len(source.recording.events)
    assert last.agents and last == source.recording.snapshot(len(source.recording.snapshot_times) - 1)


def test_list_demos_prints_name_first_then_description() -> None:
    """``swarm-tui --list-demos``: one line per demo, its name first."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from swarm_tui.cli import main; sys.exit(main())",
                           "--list-demos"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert [row.split()[0] for row in rows] == scenario_names()
    for row in rows:
        name, description = row.split(maxsplit=1)
        assert description == description.strip() and len(description) > 20
        assert ("[recording:" in description) == (name in BUNDLED)


def test_replay_by_name_from_the_command_line(tmp_path: Path) -> None:
    """``python -m engine --replay chaos`` finds the bundled recording from any directory."""
    proc = subprocess.run([sys.executable, "-m", "engine", "--replay", "chaos"], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("recording: swarm ") and "agent_crashed" in proc.stdout
    assert "summary: ran" in proc.stdout


def test_unknown_replay_name_lists_the_bundled_demos(tmp_path: Path) -> None:
    """A name that is neither a file nor a bundled demo: exit 2, one line naming the choices."""
    proc = subprocess.run([sys.executable, "-m", "engine", "--replay", "nosuch"], capture_output=True,
                          text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a bundled demo" in proc.stderr and "chaos" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_demo_scenario_is_a_usage_error(tmp_path: Path) -> None:
    """``--demo nosuch`` exits 2 before anything starts, naming the scenarios."""
    proc = subprocess.run([sys.executable, "-m", "engine", "--demo", "nosuch", "--duration", "1"],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown demo 'nosuch'" in proc.stderr and "burst" in proc.stderr


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_overlays_are_valid_configurations(name: str) -> None:
    """Every scenario's overlay passes the configuration's validation on the defaults."""
    from engine.config import default_config

    config = prepare_config(default_config(), name)
    for key, value in get_scenario(name).overrides.items():
        section: Any = config
        for part in key.split("."):
            section = section[part] if isinstance(section, dict) else getattr(section, part)
        assert section == value, key
