"""Command-line parsing shared by ``swarm-tui`` and ``python -m engine`` (no UI imports)."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine import __version__

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("human", "json")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
CLI_ACTOR = "cli"

log = logging.getLogger("engine.cli")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level; choose one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(text: str) -> str:
    if text not in LOG_FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log format; choose one of {', '.join(LOG_FORMATS)}")
    return text


def _scenario(text: str) -> str:
    from engine.demo import DemoUnavailable, get_scenario

    try:
        return get_scenario(text).name
    except DemoUnavailable as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1..65535, got {text!r}")
    return value


def build_parser(prog: str = "swarm-tui", *, with_ui: bool = True) -> argparse.ArgumentParser:
    """The argument parser; ``with_ui`` adds the options that only the TUI has."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run and watch a supervised swarm of agent processes that talk over shared memory.",
        epilog=f"Also: '{prog.split()[0] if with_ui else prog} audit verify FILE' checks an audit log."
        if with_ui else None,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="PATH", help="swarm.toml or a JSON file with the same keys "
                        "(default: ./swarm.toml if present, else built-in defaults)")
    if with_ui:
        parser.add_argument("--run", action="store_true", help="run headless (no UI) and print status lines")
        parser.add_argument("--ascii", action="store_true",
                            help="draw with ASCII characters only (default when the locale is not UTF-8, "
                            "TERM is a vt100-like terminal, or SWARM_TUI_ASCII=1)")
    parser.add_argument("--duration", "--monitor-duration", dest="duration", type=_positive_float,
                        metavar="S", help="headless: stop after S seconds (default: until Ctrl-C/SIGTERM, "
                        "or the end of a demo scenario)")
    parser.add_argument("--demo", nargs="?", const="default", type=_scenario, metavar="SCENARIO",
                        help="start a demonstration scenario (default: 'default'); see --list-demos")
    parser.add_argument("--list-demos", action="store_true",
                        help="print the demo scenarios and bundled recordings, one per line, and exit")
    parser.add_argument("--json", action="store_true",
                        help="headless: one JSON object per line on stdout (status, event, summary)")
    parser.add_argument("--record", metavar="FILE", help="record events and snapshots to FILE (a session "
                        "recording, replayable with --replay)")
    parser.add_argument("--record-interval", type=_positive_float, metavar="S",
                        help="with --record: record a snapshot at most every S seconds "
                        "(default: every monitoring_interval)")
    parser.add_argument("--replay", metavar="FILE|NAME",
                        help="replay a recording, or a bundled demo by name (with --run: print its "
                        "events and a summary)")
    parser.add_argument("--metrics-port", type=_port, metavar="PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics (HOST = metrics_host "
                        "in swarm.toml, 127.0.0.1 by default)")
    parser.add_argument("--audit-log", metavar="FILE", help="append every action that changes the swarm "
                        "to FILE, hash-chained (overrides audit_log in swarm.toml)")
    parser.add_argument("--log-level", type=_log_level, default="WARNING", metavar="LEVEL",
                        help=f"log level ({', '.join(LOG_LEVELS)}; default WARNING)")
    parser.add_argument("--log-format", type=_log_format, default="human", metavar="FORMAT",
                        help="human (default) or json: one JSON object per log line")
    parser.add_argument("--log-file", metavar="PATH", help="write logs (and agents' stderr) to PATH "
                        "instead of stderr")
    return parser


def configure_logging(level: str, fmt: str = "human", log_file: str | None = None) -> None:
    """Logs go to stderr (or ``log_file``), never into the JSON stream on stdout.

    Raises:
        OSError: the log file cannot be opened.
    """
    from engine.logging_setup import configure_logging as setup

    setup(level, fmt, log_file)


def headless_main(argv: Sequence[str] | None = None, *, prog: str = "python -m engine") -> int:
    """Entry point of ``python -m engine``: parse, load config, run headless."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["audit"]:
        from engine.audit import main as audit_main

        return audit_main(args_list[1:], prog=f"{prog} audit")
    parser = build_parser(prog, with_ui=False)
    args = parser.parse_args(args_list)
    return run_from_args(args)


def list_demos(stream: Any = None) -> int:
    """Print one line per demo: its name, then what it shows (and its bundled recording)."""
    from engine.demo import SCENARIOS, bundled_recordings, scenario_names
    from engine.recording import RecordingError, open_recording

    out = stream or sys.stdout
    bundled = bundled_recordings()
    names = scenario_names() + sorted(n for n in bundled if n not in SCENARIOS)
    width = max(len(n) for n in names)
    for name in names:
        description = SCENARIOS[name].summary if name in SCENARIOS else "a bundled recording"
        if name in bundled:
            try:
                rec = open_recording(bundled[name])
                description += f" [recording: {rec.duration:.0f} s]"
            except RecordingError:
                description += " [recording unreadable]"
        elif name in SCENARIOS:
            description += " [live only]"
        out.write(f"{name:<{width}}  {description}\n")
    return EXIT_OK


def _error(message: str) -> None:
    print(f"swarm-tui: {message}", file=sys.stderr)


def run_from_args(args: argparse.Namespace) -> int:
    """Load the configuration named by ``args`` and run (or replay) headless; returns the exit status."""
    if getattr(args, "list_demos", False):
        return list_demos()
    usage = check_args(args)
    if usage:
        _error(usage)
        return EXIT_USAGE
    try:
        configure_logging(args.log_level, getattr(args, "log_format", "human"), getattr(args, "log_file", None))
    except OSError as exc:
        _error(str(exc))
        return EXIT_USAGE
    loaded = load_audited_config(args)
    if loaded is None:
        return EXIT_USAGE
    config, audit, audit_path = loaded
    if getattr(args, "replay", None):
        from engine.headless import run_replay

        return run_replay(args.replay, json_lines=args.json, audit=audit)
    return _run_live(args, config, audit_path)


def load_audited_config(args: argparse.Namespace) -> tuple[Any, Any, str | None] | None:
    """Load the configuration ``args`` names and, with an audit log, record the load.

    The audit log is ``--audit-log``, else ``audit_log`` in the configuration; the
    entry is ``config_load`` with the outcome (``ok`` with the file's SHA-256, or
    ``error`` with the reason -- a failed load is audited when ``--audit-log`` says
    where).  Used by the headless run and by the TUI alike.

    Returns:
        ``(config, audit_log_or_None, audit_path_or_None)``, or ``None`` after
        printing the error (bad configuration, audit log that cannot be opened).
    """
    from engine.config import load_config
    from engine.errors import ConfigError

    config_path = resolve_config_path(args.config)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        if getattr(args, "audit_log", None):
            _audit(_open_audit(args.audit_log), "config_load", config_path or "<defaults>", "error", error=str(exc))
        _error(f"configuration error: {exc}")
        return None
    audit = None
    audit_path = getattr(args, "audit_log", None) or config.audit_log or None
    if audit_path:
        audit = _open_audit(audit_path)
        if audit is None:
            return None
        _audit(audit, "config_load", config_path or "<defaults>", "ok", name=config.name,
               sha256=_sha256(config_path))
    return config, audit, audit_path


def check_args(args: argparse.Namespace) -> str:
    """A usage error for options that do not go together, or ``""``."""
    if getattr(args, "replay", None):
        clash = [flag for flag, value in (("--demo", args.demo), ("--record", args.record),
                                          ("--metrics-port", args.metrics_port)) if value]
        if clash:
            return f"{', '.join(clash)} cannot be combined with --replay"
    if getattr(args, "record_interval", None) and not getattr(args, "record", None):
        return "--record-interval needs --record FILE"
    return ""


def _run_live(args: argparse.Namespace, config: Any, audit_path: str | None) -> int:
    from engine.demo import (
        DemoUnavailable,
        check_available,
        get_scenario,
        prepare_config,
    )
    from engine.errors import ConfigError
    from engine.export import ObserverOptions
    from engine.headless import run_headless_sync
    from engine.orchestrator import Orchestrator

    scenario = args.demo
    if scenario:
        try:
            config = prepare_config(config, scenario)
            check_available(get_scenario(scenario), Orchestrator(config).available_types())
        except (ConfigError, DemoUnavailable) as exc:
            _error(str(exc))
            return EXIT_USAGE
    options = ObserverOptions(
        record=args.record, record_interval=args.record_interval,
        metrics_port=args.metrics_port or config.metrics_port, metrics_host=config.metrics_host,
        audit_log=audit_path, demo=scenario,
        description=get_scenario(scenario).summary if scenario else "",
    )  # fmt: skip
    if getattr(args, "log_file", None):
        from engine.logging_setup import redirect_agent_stderr

        redirect_agent_stderr(args.log_file)
    return run_headless_sync(config, duration=args.duration, demo=scenario, json_lines=args.json,
                             log_level=args.log_level, observers=options)


def _open_audit(path: str) -> Any:
    from engine.audit import AuditLog

    try:
        return AuditLog(path)
    except OSError as exc:
        _error(str(exc))
        return None


def _audit(audit: Any, action: str, target: str, outcome: str, **details: Any) -> None:
    if audit is None:
        return
    try:
        audit.append(CLI_ACTOR, action, target, outcome, user=_user(), **details)
    except OSError as exc:
        log.error("audit log %s not written: %s", audit.path, exc)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name (containers without passwd entries)
        return "?"


def _sha256(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def resolve_config_path(path: str | None) -> str | None:
    """The given path, or ``./swarm.toml`` when it exists, or ``None`` for defaults."""
    if path is not None:
        return path
    default = Path("swarm.toml")
    return str(default) if default.is_file() else None
