"""Demonstration workloads for ``--demo``: traffic that makes the dashboard come alive.

The demo starts two echo agents (if none run) and a background task that keeps
request/reply traffic flowing between the orchestrator and them, so throughput,
latency and task counters move.  Richer scenarios (load burst, thermal, chaos,
learning) build on the same hook.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from engine.errors import SwarmError

if TYPE_CHECKING:  # pragma: no cover
    from engine.orchestrator import Orchestrator

log = logging.getLogger("engine.demo")


async def start_demo(swarm: "Orchestrator", *, rate_hz: float = 200.0) -> asyncio.Task[None]:
    """Start the demo traffic; returns the task (cancelled by the caller or at shutdown)."""
    echoes = [a for a in swarm.agent_ids() if a.startswith("echo")]
    while len(echoes) < 2:
        echoes.append(await swarm.create_agent("echo"))
    for agent_id in echoes:
        await swarm.wait_ready(agent_id)
    task = asyncio.ensure_future(_traffic(swarm, echoes, rate_hz))
    swarm.add_event_handler("swarm_stopped", lambda _e: task.cancel())
    return task


async def _traffic(swarm: "Orchestrator", targets: list[str], rate_hz: float) -> None:
    period = 1.0 / rate_hz
    i = 0
    while True:
        target = targets[i % len(targets)]
        i += 1
        try:
            if target in swarm.agent_ids():
                await swarm.communicator.request(target, "demo", {"n": i}, timeout=2.0)
        except SwarmError as exc:
            log.debug("demo request to %s failed: %s", target, exc)
        await asyncio.sleep(period)
