"""The ``swarm-tui`` command: the interactive TUI, or ``--run`` for headless mode.

Headless mode never imports Textual: the UI modules are imported only when the TUI
is actually started.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from engine.cli import (
    EXIT_FAILURE,
    EXIT_USAGE,
    build_parser,
    configure_logging,
    load_audited_config,
    run_from_args,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swarm-tui`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["audit"]:  # `swarm-tui audit verify FILE`
        from engine.audit import main as audit_main

        return audit_main(words[1:], prog="swarm-tui audit")
    if "--list-demos" in words:
        from engine.cli import list_demos

        return list_demos()
    parser = build_parser("swarm-tui", with_ui=True)
    args = parser.parse_args(words)
    if args.run:
        return run_from_args(args)
    if args.json:
        parser.error("--json only applies to headless mode; add --run")
    return run_tui(args)


def run_tui(args: argparse.Namespace) -> int:
    """The interactive UI: a live swarm, or ``--replay`` of a recording; returns the exit status.

    Bad options, configuration, recording or demo scenario are refused here, on
    stderr, before the app takes the terminal; a swarm that then fails to start (a
    metrics port taken, no shared memory) is explained in the app and again on
    stderr when it closes (exit status 1).  While the app runs, logs go to the event
    log and to the log file (``--log-file``, else
    ``~/.local/state/swarm-tui/swarm-tui.log``), never to the screen.
    """
    from engine.cli import check_args
    from engine.errors import SwarmError

    usage = check_args(args)
    if usage:
        print(f"swarm-tui: {usage}", file=sys.stderr)
        return EXIT_USAGE
    try:
        configure_logging(args.log_level, args.log_format, args.log_file)  # until the app takes over
    except OSError as exc:
        print(f"swarm-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    loaded = load_audited_config(args)  # says what is wrong; audits the load (config_load)
    if loaded is None:
        return EXIT_USAGE
    config = loaded[0]  # the swarm's audit observer appends to the same hash chain
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        print("swarm-tui: the interactive UI needs a terminal; use 'swarm-tui --run' for headless mode",
              file=sys.stderr)
        return EXIT_USAGE
    from engine.export import ObserverOptions
    from swarm_tui.app import make_app
    from swarm_tui.glyphs import unicode_terminal

    try:
        source = _replay_source(args.replay) if args.replay else None
        observers = None if source is not None else ObserverOptions(
            record=args.record, record_interval=args.record_interval,
            metrics_port=args.metrics_port or config.metrics_port, metrics_host=config.metrics_host,
            audit_log=args.audit_log or config.audit_log or None, demo=args.demo,
        )  # fmt: skip
        ascii_only = args.ascii or not unicode_terminal()
        app = make_app(config=config, demo=args.demo, duration=args.duration, log_level=args.log_level,
                       source=source, observers=observers, log_file=args.log_file, ascii=ascii_only)
    except (SwarmError, OSError) as exc:
        print(f"swarm-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    app.run()
    if app.source_error:
        print(f"swarm-tui: {app.source_error}", file=sys.stderr)
        return EXIT_FAILURE
    return app.return_code or 0


def _replay_source(name_or_path: str) -> object:
    """A replay of a recording file or of a bundled demo recording (by name)."""
    from engine.headless import resolve_recording
    from engine.replay import ReplaySource

    return ReplaySource(resolve_recording(name_or_path))

if __name__ == "__main__":
    sys.exit(main())
