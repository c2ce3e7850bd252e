"""Headless mode as a user runs it: real subprocesses, signals, exit codes, /dev/shm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine._shm.segments import list_segments
from tests.quiet_config import write_quiet_config



def write_config(tmp_path: Path, extra: str = "") -> Path:
    return write_quiet_config(tmp_path, extra)


def engine_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def segments_of(pid: int) -> list[str]:
    return list_segments(f"swarm-{pid}-")


def read_json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_engine_modules_do_not_import_textual() -> None:
    """The headless path never loads Textual (or Rich)."""
    code = (
        "import sys, engine, engine.cli, engine.headless, engine.orchestrator, engine.__main__;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'swarm_tui')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_exits_zero() -> None:
    """``python -m engine --help`` describes the options."""
    out = subprocess.run(engine_cmd("--help"), capture_output=True, text=True)
    assert out.returncode == 0
    assert "--duration" in out.stdout and "--json" in out.stdout


def test_bad_config_exits_2_naming_the_key_and_starts_nothing(tmp_path: Path) -> None:
    """A bad value stops the run before anything starts, with a message naming file and key."""
    bad = tmp_path / "bad.toml"
    bad.write_text("max_agents = 0\n")
    proc = subprocess.run(engine_cmd("--config", str(bad), "--duration", "5"), capture_output=True, text=True)
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and "max_agents" in proc.stderr
    assert proc.stdout == ""


def test_bad_usage_exits_2() -> None:
    """A malformed option value is a usage error with exit status 2."""
    proc = subprocess.run(engine_cmd("--duration", "soon"), capture_output=True, text=True)
    assert proc.returncode == 2
    assert "--duration" in proc.stderr


def test_json_run_prints_status_events_and_summary(tmp_path: Path) -> None:
    """``--json`` gives one JSON object per line: status lines, events and a final summary."""
    cfg = write_config(tmp_path)
    proc = subprocess.run(
        engine_cmd("--config", str(cfg), "--demo", "--json", "--duration", "2", "--log-level", "INFO"),
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    records = read_json_lines(proc.stdout)  # every stdout line is JSON
    kinds = {r["type"] for r in records}
    assert kinds == {"status", "event", "summary"}
    statuses = [r for r in records if r["type"] == "status"]
    last = statuses[-1]
    assert {a["type"] for a in last["agents"]} == {"echo"}
    agent = last["agents"][0]
    for key in ("id", "type", "pid", "state", "priority", "restarts", "cpu_percent", "rss_bytes",
                "tasks_done", "messages_in", "messages_out"):
        assert key in agent
    assert agent["pid"] > 0 and agent["rss_bytes"] > 0
    assert sum(a["tasks_done"] for a in last["agents"]) > 0  # the demo traffic was handled
    assert "cpu_percent" in last["machine"] and "memory_percent" in last["machine"]
    events = [r["event"] for r in records if r["type"] == "event"]
    assert events.count("agent_created") == 2
    assert records[-1]["type"] == "summary" and records[-1]["exit_status"] == 0
    assert "agent_created" in proc.stderr  # logs went to stderr ...
    assert "agent_created" not in "".join(line for line in proc.stdout.splitlines() if not line.startswith("{"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_leaves_no_shared_memory(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGINT and SIGTERM stop the swarm with exit 0, no agent left running, nothing in /dev/shm."""
    cfg = write_config(tmp_path)
    proc = subprocess.Popen(engine_cmd("--config", str(cfg), "--demo", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        agent_pids: list[int] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            record = json.loads(line)
            if record["type"] == "status" and len(record["agents"]) == 2 and all(a["pid"] for a in record["agents"]):
                agent_pids = [a["pid"] for a in record["agents"]]
                break
        assert agent_pids, "no status line with two running agents"
        assert segments_of(proc.pid)
        proc.send_signal(sig)
        rest, _err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    summary = read_json_lines(rest)[-1]
    assert summary["type"] == "summary" and summary["stopped_by"] == sig.name
    assert segments_of(proc.pid) == []
    for pid in agent_pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_segments_of_a_killed_swarm_are_removed_on_next_start(tmp_path: Path) -> None:
    """After SIGKILL of a swarm, its agents die too and the next start removes its segments."""
    cfg = write_config(tmp_path)
    proc = subprocess.Popen(engine_cmd("--config", str(cfg), "--demo", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        agent_pids: list[int] = []
        for line in proc.stdout:
            record = json.loads(line)
            if record["type"] == "status" and record["agents"] and all(a["pid"] for a in record["agents"]):
                agent_pids = [a["pid"] for a in record["agents"]]
                break
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    stale = segments_of(proc.pid)
    assert stale, "a SIGKILLed swarm cannot clean up: its segments must still be there"
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in agent_pids):
        assert time.monotonic() < deadline, "agents outlived their killed orchestrator"
        time.sleep(0.05)
    out = subprocess.run(engine_cmd("--config", str(cfg), "--duration", "0.5", "--log-level", "WARNING"),
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert "removed" in out.stderr and stale[0] in out.stderr
    assert segments_of(proc.pid) == []
    assert os.path.exists("/dev/shm")
