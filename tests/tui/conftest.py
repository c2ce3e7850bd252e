"""Shared fixtures of the UI tests: fixed-data apps and a small live swarm (helpers in helpers.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import SwarmConfig, default_config
from swarm_tui.app import SwarmApp, make_app
from swarm_tui.fixed_source import FixedSource

SHM = Path("/dev/shm")


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Event-log times are local time: pin the zone so snapshots match on every machine."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.fixture(autouse=True)
def unicode_charts() -> Iterator[None]:
    """An ASCII app switches the chart glyphs for the process: switch back after each test."""
    yield
    from swarm_tui import charts

    charts.set_ascii(False)


@pytest.fixture
def fixed_app() -> Callable[..., SwarmApp]:
    """``fixed_app(**FixedSource kwargs)``: the production app over the sample swarm."""

    def build(**kwargs: Any) -> SwarmApp:
        return make_app(source=FixedSource(**kwargs), refresh=0.05)

    return build


@pytest.fixture
def live_config() -> SwarmConfig:
    """A small, quick swarm that starts no agents by itself and never scales."""
    base = default_config()
    counts = {f"agents.{name}.count": 0 for name in base.agents}
    return base.with_overrides(name="tui-test", max_agents=4, monitoring_interval=0.1, auto_scaling=False, **counts)


@pytest.fixture
def live_app(live_config: SwarmConfig) -> Iterator[SwarmApp]:
    """The production app over a real orchestrator; after the test, no shared memory is left."""
    app = make_app(config=live_config, refresh=0.1)
    yield app
    prefix = app.source.orchestrator.prefix  # type: ignore[attr-defined]
    if prefix:
        left = [p.name for p in SHM.glob(f"{prefix}*")]
        assert not left, f"shared memory left behind: {left}"
