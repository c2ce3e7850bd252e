"""The bridge: polls a source, posts coalescing snapshots and every event."""

from __future__ import annotations

import asyncio

from swarm_tui.bridge import SnapshotBridge
from swarm_tui.fixed_source import FixedSource, sample_events
from swarm_tui.messages import EventReceived, SnapshotUpdated


def test_a_queued_snapshot_is_replaced_by_a_newer_one_but_events_are_not() -> None:
    """``can_replace`` drops stale snapshots; events always get through."""
    source = FixedSource(history=2)
    old, new = (SnapshotUpdated(s) for s in source.recent_snapshots())
    assert old.can_replace(new)
    first, second = sample_events()[:2]
    event = EventReceived(first)
    assert not event.can_replace(EventReceived(second))
    assert not old.can_replace(event)


async def test_polls_wait_for_the_ui_to_draw() -> None:
    """After posting a snapshot the bridge waits for ``drawn()`` before it polls again."""
    posted: list[object] = []
    bridge = SnapshotBridge(FixedSource(history=2), posted.append, interval=0.01)
    task = asyncio.ensure_future(bridge.run())
    await asyncio.sleep(0.1)
    assert bridge.polls == 1  # not drawn yet: no second poll
    bridge.drawn()
    await asyncio.sleep(0.1)
    assert bridge.polls == 2
    task.cancel()
    assert all(isinstance(m, SnapshotUpdated) for m in posted)


async def test_events_before_start_are_history_and_after_are_live() -> None:
    """Events replayed when attaching are marked not live; later ones are live."""
    posted: list[EventReceived] = []
    source = FixedSource(history=2)
    bridge = SnapshotBridge(source, posted.append, interval=1.0)  # type: ignore[arg-type]
    bridge.attach()
    assert posted and not any(m.live for m in posted)
    bridge.live = True
    await source.pause_agent("compute-1")
    assert posted[-1].live and posted[-1].event.name == "agent_paused"


async def test_a_stopped_source_ends_the_bridge() -> None:
    """When the swarm is closed the poller returns instead of raising."""
    source = FixedSource(history=2)
    await source.stop()
    bridge = SnapshotBridge(source, lambda m: None, interval=0.01)
    await asyncio.wait_for(bridge.run(), 1.0)


class _Pushing(FixedSource):
    """A fixed source that pushes its snapshots like the orchestrator does."""

    def __init__(self) -> None:
        super().__init__(history=3)
        self.status_handlers: list = []

    def add_status_handler(self, handler) -> None:
        self.status_handlers.append(handler)


async def test_a_pushing_source_is_not_polled_after_the_first_snapshot() -> None:
    """With ``add_status_handler`` the bridge posts what is pushed and polls only once."""
    posted: list[object] = []
    source = _Pushing()
    bridge = SnapshotBridge(source, posted.append, interval=0.01)
    bridge.attach()
    assert bridge.push and source.status_handlers
    task = asyncio.ensure_future(bridge.run())
    await asyncio.sleep(0.1)
    bridge.drawn()
    await asyncio.sleep(0.1)
    assert bridge.polls == 1
    pushed = source.recent_snapshots()[0]
    source.status_handlers[0](pushed)
    assert isinstance(posted[-1], SnapshotUpdated) and posted[-1].snapshot is pushed
    task.cancel()
