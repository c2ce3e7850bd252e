"""Keeping log output off the screen while the TUI runs.

Textual draws on the terminal through stderr, so anything else written there
corrupts the screen.  Two writers must be redirected:

- **Python logging in this process** (the engine logs every event, warnings about
  stale segments...): :class:`LogCapture` swaps the root handlers for one that posts
  records to the event log (as ``log`` events) and, optionally, a log file; the old
  handlers come back when the app ends.  Records that only echo a swarm event
  (they carry an ``event`` attribute) are not posted twice.
- **Agent processes**, which inherit stderr from the multiprocessing forkserver:
  :func:`start_forkserver` starts the forkserver with stderr pointing at the
  log file, before the app takes over the terminal, so every agent started later
  writes there too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from engine import Event, Severity
from swarm_tui.messages import EventReceived

_LEVEL_SEVERITY = (
    (logging.CRITICAL, Severity.CRITICAL),
    (logging.ERROR, Severity.ERROR),
    (logging.WARNING, Severity.WARNING),
    (logging.INFO, Severity.INFO),
)


def severity_of(levelno: int) -> Severity:
    """The event severity of a logging level."""
    for level, severity in _LEVEL_SEVERITY:
        if levelno >= level:
            return severity
    return Severity.DEBUG


def default_log_path() -> Path:
    """``$XDG_STATE_HOME/swarm-tui/swarm-tui.log`` (``~/.local/state`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "swarm-tui" / "swarm-tui.log"


class UILogHandler(logging.Handler):
    """Posts each log record to the app as an ``EventReceived`` of a ``log`` event."""

    def __init__(self, post: Callable[[EventReceived], object], level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.post = post

    def emit(self, record: logging.LogRecord) -> None:
        """Post the record (skipped when it merely echoes a swarm event)."""
        if getattr(record, "event", None):
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                message += f" ({type(exc).__name__}: {exc}; traceback in the log file)"
            self.post(EventReceived(Event("log", record.created, severity_of(record.levelno), None,
                                          f"{record.name}: {message}")))
        except Exception:  # never let logging break the app
            self.handleError(record)


class LogCapture:
    """Replaces the root logger's handlers while the app runs (see module docstring)."""

    def __init__(self, post: Callable[[EventReceived], object], *, level: str = "WARNING",
                 log_file: str | os.PathLike[str] | None = None) -> None:
        self.post = post
        self.level = logging.getLevelName(level.upper()) if isinstance(level, str) else int(level)
        self.log_file = log_file
        self._saved: tuple[list[logging.Handler], int] | None = None
        self._installed: list[logging.Handler] = []

    def install(self) -> None:
        """Take over the root logger (idempotent)."""
        if self._saved is not None:
            return
        root = logging.getLogger()
        self._saved = (list(root.handlers), root.level)
        handlers: list[logging.Handler] = [UILogHandler(self.post, max(self.level, logging.INFO))]
        if self.log_file is not None:
            try:
                Path(self.log_file).parent.mkdir(parents=True, exist_ok=True)
                file_handler = logging.FileHandler(self.log_file, encoding="utf-8")
                file_handler.setLevel(self.level)
                file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
                handlers.append(file_handler)
            except OSError as exc:
                self.post(EventReceived(Event("log", 0.0, Severity.WARNING, None,
                                              f"cannot write the log file {self.log_file}: {exc.strerror}")))
        root.handlers = handlers
        root.setLevel(self.level)
        self._installed = handlers

    def restore(self) -> None:
        """Give the root logger its handlers back (idempotent)."""
        if self._saved is None:
            return
        root = logging.getLogger()
        root.handlers, level = self._saved
        root.setLevel(level)
        for handler in self._installed:
            if isinstance(handler, logging.FileHandler):
                handler.close()
        self._saved = None
        self._installed = []


def start_forkserver(log_file: str | os.PathLike[str] | None = None) -> bool:
    """Start multiprocessing's resource tracker and the engine's forkserver, if not running.

    Two reasons to do this before the orchestrator does:

    - While Textual runs, ``sys.stderr`` is its capture object, whose ``fileno()``
      is not a real descriptor, and the resource tracker cannot start with it
      ("bad value(s) in fds_to_keep").  Here ``sys.stderr`` is the real one for the
      duration of the call.
    - With ``log_file`` (before the app takes the terminal), file descriptor 2 points
      at the log file while the helpers start, so they -- and every agent forked
      later -- write their stderr there instead of over the screen.

    Returns ``False`` (leaving things as they were) if it could not; the orchestrator
    then tries itself.  Idempotent: running helpers are left alone.
    """
    import multiprocessing
    from multiprocessing import forkserver, resource_tracker

    from engine.orchestrator import PRELOAD

    real_stderr = sys.__stderr__
    if real_stderr is None:
        return False
    fd = saved = -1
    if log_file is not None:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            return False
    previous = sys.stderr
    try:
        real_stderr.flush()
        if fd >= 0:
            saved = os.dup(2)
            os.dup2(fd, 2)
        sys.stderr = real_stderr
        resource_tracker.ensure_running()
        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        forkserver.ensure_running()
        return True
    except Exception:
        return False
    finally:
        sys.stderr = previous
        if saved >= 0:
            os.dup2(saved, 2)
            os.close(saved)
        if fd >= 0:
            os.close(fd)
