"""A cancelled request or demo stays cancelled, even when its answer arrives at the same moment.

Before Python 3.12, ``asyncio.wait_for`` returns the inner result when the result and
a cancellation arrive together, and the cancellation is lost: a headless ``--demo
--duration 2`` run went on sending requests for ever after its duration.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from engine import Orchestrator
from engine.demo import stop_demo


async def test_a_request_cancelled_as_its_reply_is_handled_is_cancelled(make_config: Any) -> None:
    """The reply is handled and the request cancelled in the same loop step: the request ends cancelled."""
    async with Orchestrator(make_config()) as swarm:
        aid = await swarm.create_agent("echo")
        await swarm.wait_ready(aid)
        lost = 0
        for _ in range(5):
            task = asyncio.ensure_future(swarm.communicator.request(aid, "ping", {"n": 1}, timeout=10.0))
            for _ in range(3):
                await asyncio.sleep(0)  # sent; the request waits for its reply
            time.sleep(0.3)  # the loop is blocked: the echo's reply waits in the inbox
            swarm.get_system_status()  # drains the inbox: the reply resolves the waiter...
            task.cancel()  # ...and the cancellation comes in the same step
            await asyncio.wait((task,))
            lost += not task.cancelled()
        assert lost == 0


async def test_stop_demo_cancels_again_when_a_cancellation_is_lost() -> None:
    """A task that swallows its first cancellation is cancelled again until it ends."""
    swallowed = []

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            swallowed.append(True)  # what wait_for's race does
        await asyncio.sleep(30)

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop_demo(task), 10)
    assert swallowed == [True] and task.cancelled()
