"""Log output: a readable human format or one JSON object per line, to stderr or a file.

JSON lines carry ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``,
``message``, ``pid``, then ``agent_id`` and ``event`` when the record has them (the
orchestrator logs every swarm event with both), every other ``extra=`` field, and
``exception`` (the formatted traceback) when there is one::

    {"time": "2026-05-09T07:35:25.123Z", "level": "ERROR", "logger": "engine.orchestrator",
     "message": "agent_crashed: echo-1 killed by SIGKILL", "pid": 4242,
     "agent_id": "echo-1", "event": "agent_crashed"}

Agent processes inherit the format through the ``SWARM_TUI_LOG_FORMAT`` environment
variable (set by :func:`configure_logging` before the forkserver starts; an agent
process applies it with :func:`configure_agent_logging`), and their stderr through
the forkserver (:func:`redirect_agent_stderr` points it at ``--log-file``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

LOG_FORMATS = ("human", "json")
ENV_FORMAT = "SWARM_TUI_LOG_FORMAT"
HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (see module docstring)."""

    def __init__(self, *, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (never raises on odd ``extra`` values)."""
        t = record.created
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        out.update(self.static)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _plain(value)
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def make_formatter(fmt: str, *, agent_id: str | None = None) -> logging.Formatter:
    """The formatter for ``fmt`` (``human`` or ``json``)."""
    if fmt == "json":
        return JsonFormatter(static={"agent_id": agent_id} if agent_id else None)
    if fmt == "human":
        pattern = HUMAN_FORMAT if agent_id is None else f"%(asctime)s %(levelname)s [{agent_id}] %(name)s: %(message)s"
        return logging.Formatter(pattern)
    raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")


def configure_logging(level: str = "WARNING", fmt: str = "human",
                      log_file: str | os.PathLike[str] | None = None) -> logging.Handler:
    """Send this process's logs to stderr (or ``log_file``) in ``fmt``; returns the handler.

    Also sets ``SWARM_TUI_LOG_FORMAT`` so agent processes started later log alike.

    Raises:
        ValueError: an unknown format.
        OSError: the log file cannot be opened (with the reason).
    """
    formatter = make_formatter(fmt)
    handler: logging.Handler
    if log_file is not None:
        path = Path(log_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as exc:
            raise OSError(f"cannot open log file {str(path)!r}: {exc.strerror or exc}") from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, logging.FileHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(level)
    os.environ[ENV_FORMAT] = fmt
    return handler


def configure_agent_logging(agent_id: str, level: str) -> None:
    """For an agent process: log to stderr in the format named by ``SWARM_TUI_LOG_FORMAT``."""
    fmt = os.environ.get(ENV_FORMAT, "human")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt if fmt in LOG_FORMATS else "human", agent_id=agent_id))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def redirect_agent_stderr(log_file: str | os.PathLike[str]) -> bool:
    """Start the forkserver with its stderr -- and so every agent's -- on ``log_file``.

    Call before the orchestrator starts.  This process's own stderr is left as it
    was.  Returns ``False`` (changing nothing) if the file or the forkserver fails;
    the orchestrator then starts the forkserver itself.
    """
    import multiprocessing
    from multiprocessing import forkserver

    from engine.orchestrator import PRELOAD

    try:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return False
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(fd, 2)
        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        forkserver.ensure_running()
        return True
    except Exception:
        return False
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
