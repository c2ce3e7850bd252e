"""Regenerate the SVG screenshots in ``screenshots/`` from the app itself.

Usage::

    python scripts/screenshots.py                 # the fixed sample swarm (deterministic)
    python scripts/screenshots.py --live 8        # also a real swarm with --demo traffic, after 8 s
    python scripts/screenshots.py --out /tmp/shots

Each screenshot is the production app (``swarm_tui.app.make_app``, as the CLI builds
it) driven by Textual's test pilot at a fixed terminal size, saved with
``App.save_screenshot``.  The sample-swarm shots are byte-for-byte reproducible (times
are shown in UTC); the live ones show this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from swarm_tui.app import SwarmApp, make_app  # noqa: E402
from swarm_tui.fixed_source import FixedSource  # noqa: E402

Step = Callable[[Any], Awaitable[None]]


async def _until(pilot: Any, predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.05)


async def shoot(app: SwarmApp, out: Path, name: str, size: tuple[int, int], step: Step | None = None,
                *, settle: float = 0.0) -> Path:
    """Run ``app`` at ``size``, wait for its first frame, apply ``step``, save ``name``.svg."""
    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: app.source_running and app.dashboard.frame is not None)
        log = app.dashboard.event_log
        await _until(pilot, lambda: log.lines or not log.events)
        await _until(pilot, lambda: app.dashboard.query("Footer FooterKey"))
        if settle:
            await pilot.pause(settle)
        if step is not None:
            await step(pilot)
        await pilot.pause(0.2)
        app.save_screenshot(f"{name}.svg", str(out))
    return out / f"{name}.svg"


def _keys(*keys: str) -> Step:
    async def press(pilot: Any) -> None:
        await pilot.press(*keys)

    return press


def _detail(agent_id: str) -> Step:
    async def open_detail(pilot: Any) -> None:
        pilot.app.open_detail(agent_id)
        await pilot.pause(0.2)

    return open_detail


async def sample_shots(out: Path) -> list[Path]:
    """The deterministic set, from the fixed sample swarm."""
    def fixed(**kwargs: Any) -> SwarmApp:
        return make_app(source=FixedSource(**kwargs), refresh=0.05)

    return [
        await shoot(fixed(), out, "dashboard-80x24", (80, 24)),
        await shoot(fixed(sensors=True), out, "dashboard-160x48-sensors", (160, 48)),
        await shoot(fixed(), out, "detail-compute", (120, 36), _detail("compute-1")),
        await shoot(fixed(), out, "detail-crashed", (120, 36), _detail("fault_tolerance-1")),
        await shoot(fixed(), out, "help", (100, 40), _keys("question_mark")),
        await shoot(fixed(), out, "spawn-dialog", (80, 24), _keys("s")),
        await shoot(fixed(), out, "kill-confirm", (80, 24), _keys("space", "space", "k")),
    ]


async def live_shots(out: Path, seconds: float) -> list[Path]:
    """A real swarm (configuration from ./swarm.toml or the defaults) with demo traffic."""
    from engine.cli import resolve_config_path
    from engine.config import load_config

    config = load_config(resolve_config_path(None))
    app = make_app(config=config, demo=True)
    return [await shoot(app, out, "live-dashboard-120x36", (120, 36), settle=seconds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="output folder")
    parser.add_argument("--live", type=float, metavar="S", help="also shoot a live swarm after S seconds")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["TZ"] = "UTC"
    time.tzset()
    paths = asyncio.run(sample_shots(args.out))
    if args.live:
        paths += asyncio.run(live_shots(args.out, args.live))
    for path in paths:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
