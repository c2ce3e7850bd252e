"""Command-line parsing shared by ``swarm-tui`` and ``python -m engine`` (no UI imports)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from engine import __version__

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


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


def build_parser(prog: str = "swarm-tui", *, with_ui: bool = True) -> argparse.ArgumentParser:
    """The argument parser; ``with_ui`` adds the options that only the TUI has."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run and watch a supervised swarm of agent processes that talk over shared memory.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", metavar="PATH", help="swarm.toml or a JSON file with the same keys "
                        "(default: ./swarm.toml if present, else built-in defaults)")
    if with_ui:
        parser.add_argument("--run", action="store_true", help="run headless (no UI) and print status lines")
    parser.add_argument("--duration", "--monitor-duration", dest="duration", type=_positive_float,
                        metavar="S", help="headless: stop after S seconds (default: until Ctrl-C/SIGTERM)")
    parser.add_argument("--demo", action="store_true", help="start demonstration workloads")
    parser.add_argument("--json", action="store_true",
                        help="headless: one JSON object per line on stdout (status, event, summary)")
    parser.add_argument("--log-level", type=_log_level, default="WARNING", metavar="LEVEL",
                        help=f"log level for stderr ({', '.join(LOG_LEVELS)}; default WARNING)")
    return parser


def configure_logging(level: str) -> None:
    """Logs go to stderr, never into the JSON stream on stdout."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def headless_main(argv: Sequence[str] | None = None, *, prog: str = "python -m engine") -> int:
    """Entry point of ``python -m engine``: parse, load config, run headless."""
    parser = build_parser(prog, with_ui=False)
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    """Load the configuration named by ``args`` and run headless; returns the exit status."""
    from engine.config import load_config
    from engine.errors import ConfigError
    from engine.headless import run_headless_sync

    configure_logging(args.log_level)
    try:
        config = load_config(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"swarm-tui: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_headless_sync(config, duration=args.duration, demo=args.demo, json_lines=args.json,
                             log_level=args.log_level)


def resolve_config_path(path: str | None) -> str | None:
    """The given path, or ``./swarm.toml`` when it exists, or ``None`` for defaults."""
    if path is not None:
        return path
    from pathlib import Path

    default = Path("swarm.toml")
    return str(default) if default.is_file() else None
