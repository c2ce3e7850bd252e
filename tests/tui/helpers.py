"""Helpers of the UI tests: waiting for a condition, recording notifications."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from swarm_tui.app import SwarmApp


async def wait_for(pilot: Any, predicate: Callable[[], Any], *, timeout: float = 15.0, what: str = "") -> Any:
    """Let the app run until ``predicate()`` is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        await pilot.pause(0.05)


async def ready(pilot: Any) -> SwarmApp:
    """Wait until the app shows its first frame and its event log."""
    app = pilot.app
    await wait_for(pilot, lambda: app.source_running and app.dashboard.frame is not None, what="the first frame")
    log = app.dashboard.event_log
    await wait_for(pilot, lambda: log.lines or not log.events, what="the event log drawn")
    await wait_for(pilot, lambda: app.dashboard.query("Footer FooterKey"), what="the footer's keys")
    return app


def record_notifications(app: SwarmApp) -> list[tuple[str, str]]:
    """From now on, record ``(message, severity)`` of every notification the app shows."""
    seen: list[tuple[str, str]] = []
    original = app.notify

    def notify(message: str, *args: Any, severity: str = "information", **kwargs: Any) -> None:
        seen.append((str(message), severity))
        original(message, *args, severity=severity, **kwargs)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    return seen
