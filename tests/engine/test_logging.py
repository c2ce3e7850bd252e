"""Structured logs: the JSON formatter, the human format, and ``--log-format`` / ``--log-file``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.quiet_config import write_quiet_config

from engine.logging_setup import (
    ENV_FORMAT,
    JsonFormatter,
    configure_logging,
    make_formatter,
)


def record(msg: str = "agent_crashed: %s died", *args: object, exc: bool = False,
           **extra: object) -> logging.LogRecord:
    logger = logging.getLogger("engine.orchestrator")
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            exc_info = sys.exc_info()
    rec = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, msg, args or ("echo-1",), exc_info,
                            extra=extra or None)
    rec.created = 1_700_000_000.25
    rec.msecs = 250.0
    return rec


def test_json_line_has_time_level_logger_message_agent_and_event() -> None:
    """One JSON object: ISO time in UTC, level, logger, message, agent id and event name."""
    line = JsonFormatter().format(record(agent_id="echo-1", event="agent_crashed", exitcode=-9))
    assert "\n" not in line
    out = json.loads(line)
    assert out["time"] == "2023-11-14T22:13:20.250Z"
    assert out["level"] == "ERROR" and out["logger"] == "engine.orchestrator"
    assert out["message"] == "agent_crashed: echo-1 died"
    assert out["agent_id"] == "echo-1" and out["event"] == "agent_crashed" and out["exitcode"] == -9
    assert isinstance(out["pid"], int)


def test_json_line_carries_the_traceback_and_survives_odd_extras() -> None:
    """An exception becomes an ``exception`` field; unserialisable extras become strings, NaN too."""
    out = json.loads(JsonFormatter().format(record(exc=True, thing=object(), value=float("nan"))))
    assert "RuntimeError: boom" in out["exception"]
    assert out["thing"].startswith("<object") and out["value"] == "nan"


def test_human_format_is_one_readable_line() -> None:
    """The default format: time, level, logger, message."""
    text = make_formatter("human").format(record())
    assert "ERROR engine.orchestrator: agent_crashed: echo-1 died" in text
    with pytest.raises(ValueError, match="human, json"):
        make_formatter("xml")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers = saved[0]
    root.setLevel(saved[1])


def test_configure_logging_to_a_file_in_json(tmp_path: Path, restore_logging: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``--log-file`` sends records there, and agents learn the format from the environment."""
    monkeypatch.delenv(ENV_FORMAT, raising=False)
    path = tmp_path / "logs" / "swarm.log"
    configure_logging("INFO", "json", path)
    logging.getLogger("engine.test").info("hello %s", "file", extra={"agent_id": "compute-1"})
    logging.getLogger().handlers[0].flush()
    out = json.loads(path.read_text().splitlines()[-1])
    assert out["message"] == "hello file" and out["agent_id"] == "compute-1"
    assert os.environ[ENV_FORMAT] == "json"


def test_unwritable_log_file_is_a_clear_error(tmp_path: Path, restore_logging: None) -> None:
    """A log file that cannot be opened raises OSError naming it."""
    blocker = tmp_path / "f"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot open log file"):
        configure_logging("INFO", "json", blocker / "x.log")




def test_cli_json_logs_go_to_the_log_file_and_not_to_stderr(tmp_path: Path) -> None:
    """``--log-format json --log-file F``: F holds JSON lines with event fields; stderr stays clean."""
    cfg = write_quiet_config(tmp_path)
    log_file = tmp_path / "swarm.log"
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "--config", str(cfg), "--demo", "--duration", "2", "--json",
         "--log-level", "INFO", "--log-format", "json", "--log-file", str(log_file)],
        capture_output=True, text=True, timeout=90, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "agent_created" not in proc.stderr
    records = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    created = [r for r in records if r.get("event") == "agent_created"]
    assert len(created) == 2 and {r["agent_id"] for r in created} == {"echo-1", "echo-2"}
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
