"""``python -m engine``: the headless swarm, with no UI module loaded."""

from __future__ import annotations

import sys

from engine.cli import headless_main

if __name__ == "__main__":
    sys.exit(headless_main())
