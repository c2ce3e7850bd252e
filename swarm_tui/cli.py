"""The ``swarm-tui`` command: the interactive TUI, or ``--run`` for headless mode.

Headless mode never imports Textual: the UI modules are imported only when the TUI
is actually started.
"""

from __future__ import annotations

import sys
from typing import Sequence

from engine.cli import EXIT_USAGE, build_parser, configure_logging, resolve_config_path, run_from_args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swarm-tui`` console script."""
    parser = build_parser("swarm-tui", with_ui=True)
    args = parser.parse_args(argv)
    if args.run:
        return run_from_args(args)
    if args.json:
        parser.error("--json only applies to headless mode; add --run")
    from engine.config import load_config
    from engine.errors import ConfigError

    configure_logging(args.log_level)
    try:
        config = load_config(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"swarm-tui: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not sys.stdout.isatty() or not sys.stdin.isatty():
        print("swarm-tui: the interactive UI needs a terminal; use 'swarm-tui --run' for headless mode",
              file=sys.stderr)
        return EXIT_USAGE
    from swarm_tui.app import make_app

    app = make_app(config=config, demo=args.demo, duration=args.duration, log_level=args.log_level)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
