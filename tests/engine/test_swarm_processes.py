"""The engine with real agent processes: crash, hang, intensity, strategies, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

import psutil
import pytest

from engine import (
    DuplicateAgentId,
    MaxAgentsReached,
    Orchestrator,
    UnknownAgent,
    UnknownAgentType,
)
from engine._shm.segments import list_segments

pytestmark = pytest.mark.asyncio


class EventLog:
    """Collects events and lets a test wait for one."""

    def __init__(self, swarm: Orchestrator) -> None:
        self.events: list[Any] = []
        swarm.add_event_handler("*", self.events.append)

    def named(self, name: str, agent_id: str | None = None) -> list[Any]:
        return [e for e in self.events if e.name == name and (agent_id is None or e.agent_id == agent_id)]

    async def wait_for(self, name: str, agent_id: str | None = None, *, count: int = 1,
                       timeout: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.named(name, agent_id)) < count:
            if time.monotonic() > deadline:
                seen = [(e.name, e.agent_id) for e in self.events]
                raise AssertionError(f"no {count}x {name} for {agent_id} within {timeout}s; saw {seen}")
            await asyncio.sleep(0.02)
        return self.named(name, agent_id)


async def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_sigkilled_agent_is_restarted_serving_with_restored_state(make_config: Any) -> None:
    """A SIGKILLed agent comes back, answers messages, and continues from its checkpoint."""
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        for _ in range(5):
            await swarm.communicator.request(aid, "inc", 1)
        await asyncio.sleep(0.4)  # > checkpoint_interval: a checkpoint with count=5 exists
        old_pid = swarm.get_system_status().agent(aid).pid
        os.kill(old_pid, signal.SIGKILL)
        crashed = await log.wait_for("agent_crashed", aid)
        assert "SIGKILL" in crashed[0].message
        await log.wait_for("agent_restarted", aid)
        await swarm.wait_ready(aid)
        reply = await swarm.communicator.request(aid, "get", timeout=5)
        assert reply.payload["restored"] is True
        assert reply.payload["count"] == 5
        assert reply.payload["pid"] != old_pid
        assert swarm.get_system_status().agent(aid).restarts == 1


async def test_message_in_flight_during_crash_is_redelivered(make_config: Any) -> None:
    """Messages sent while an agent is down are delivered after its restart (none lost)."""
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        await swarm.pause_agent(aid)  # messages now wait unacknowledged in its inbox
        await asyncio.sleep(0.1)
        for _ in range(3):
            swarm.communicator.send_message(recipient_id=aid, message_type="inc", payload=1)
        await asyncio.sleep(0.1)
        os.kill(swarm.get_system_status().agent(aid).pid, signal.SIGKILL)
        await log.wait_for("agent_restarted", aid)
        await swarm.wait_ready(aid)
        await swarm.resume_agent(aid)
        reply = await swarm.communicator.request(aid, "get", timeout=5)
        assert reply.payload["count"] == 3


async def test_traceback_of_crash_reaches_the_event(make_config: Any) -> None:
    """An exception in execute_cycle crashes the agent; the event carries its traceback."""
    cfg = make_config(custom_agents={"cycle_crash": {"import_path": "tests.swarm_test_agents:CycleCrashAgent",
                                                     "cycle_interval": 0.01}})
    async with Orchestrator(cfg) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("cycle_crash")
        events = await log.wait_for("agent_crashed", aid)
        assert "ZeroDivisionError: cycle three divides by zero" in events[0].data["traceback"]
        assert "execute_cycle" in events[0].data["traceback"]
        assert "ZeroDivisionError" in events[0].message


async def test_hung_agent_is_detected_and_restarted(make_config: Any) -> None:
    """An agent that stops heartbeating is killed after heartbeat_timeout and restarted."""
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        await swarm.inject_hang(aid)
        hung = await log.wait_for("agent_hung", aid, timeout=10)
        assert "no heartbeat" in hung[0].message
        await log.wait_for("agent_restarted", aid)
        await swarm.wait_ready(aid)
        assert (await swarm.communicator.request(aid, "get", timeout=5)).payload["count"] == 0


async def test_crash_loop_exhausts_intensity_and_gives_up(make_config: Any) -> None:
    """An agent that always crashes is restarted max_restarts times, then given up on."""
    cfg = make_config(supervisor={"max_restarts": 2, "max_seconds": 60.0})
    async with Orchestrator(cfg) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("crash_on_start")
        gave_up = await log.wait_for("agent_gave_up", aid)
        assert len(log.named("agent_restarted", aid)) == 2
        assert len(log.named("agent_crashed", aid)) == 3
        assert "ValueError: cannot start" in log.named("agent_crashed", aid)[0].data["traceback"]
        assert gave_up[0].severity.value == "critical"
        await asyncio.sleep(0.3)
        assert swarm.get_system_status().agent(aid).state == "failed"
        assert len(log.named("agent_restarted", aid)) == 2  # no further restarts


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [("one_for_one", {"b"}), ("one_for_all", {"a", "b", "c"}), ("rest_for_one", {"b", "c"})],
)
async def test_restart_strategies(make_config: Any, strategy: str, restarted: set[str]) -> None:
    """Killing the middle of three agents restarts exactly the agents the strategy names."""
    async with Orchestrator(make_config(supervisor={"strategy": strategy})) as swarm:
        log = EventLog(swarm)
        for name in ("a", "b", "c"):
            await swarm.create_agent("counter", id=name)
        for name in ("a", "b", "c"):
            await swarm.wait_ready(name)
        before = {a.id: a.pid for a in swarm.get_system_status().agents}
        os.kill(before["b"], signal.SIGKILL)
        for name in sorted(restarted):
            await log.wait_for("agent_restarted", name)
        for name in ("a", "b", "c"):
            await swarm.wait_ready(name)
        await asyncio.sleep(0.2)
        after = {a.id: a.pid for a in swarm.get_system_status().agents}
        changed = {name for name in before if before[name] != after[name]}
        assert changed == restarted
        for name in ("a", "b", "c"):
            assert (await swarm.communicator.request(name, "get", timeout=5)).payload["pid"] == after[name]


async def test_temporary_agent_is_not_restarted(make_config: Any) -> None:
    """A temporary agent that dies stays dead."""
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("counter", restart="temporary")
        await swarm.wait_ready(aid)
        os.kill(swarm.get_system_status().agent(aid).pid, signal.SIGKILL)
        await log.wait_for("agent_crashed", aid)
        await asyncio.sleep(0.3)
        assert not log.named("agent_restarted", aid)
        assert swarm.get_system_status().agent(aid).pid == 0


async def test_poison_message_is_dropped_after_crashing_twice(make_config: Any) -> None:
    """A message that crashes its handler is redelivered once, then dropped with an event."""
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        swarm.communicator.send_message(recipient_id=aid, message_type="crash", payload="poison")
        dropped = await log.wait_for("message_dropped", aid)
        assert "'crash'" in dropped[0].message and "twice" in dropped[0].message
        await log.wait_for("agent_restarted", aid, count=2)
        await swarm.wait_ready(aid)
        assert (await swarm.communicator.request(aid, "inc", 1, timeout=5)).payload == 1
        assert len(log.named("agent_crashed", aid)) == 2


async def test_transient_agent_restarts_only_after_abnormal_exit(make_config: Any) -> None:
    """A transient agent is restarted after a crash but not after stopping normally."""
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("counter", restart="transient")
        await swarm.wait_ready(aid)
        os.kill(swarm.get_system_status().agent(aid).pid, signal.SIGKILL)
        await log.wait_for("agent_restarted", aid)
        await swarm.wait_ready(aid)
        await swarm.communicator.request(aid, "exit", timeout=5)
        await wait_until(lambda: swarm.get_system_status().agent(aid).pid == 0, what="normal exit")
        await asyncio.sleep(0.3)
        assert len(log.named("agent_restarted", aid)) == 1
        assert len(log.named("agent_crashed", aid)) == 1


async def test_native_crash_reports_the_signal(make_config: Any) -> None:
    """A segfaulting agent is reported as such and restarted."""
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        aid = await swarm.create_agent("segfault")
        await swarm.wait_ready(aid)
        swarm.communicator.send_message(recipient_id=aid, message_type="segv")
        crashed = await log.wait_for("agent_crashed", aid)
        assert "SIGSEGV" in crashed[0].message
        await log.wait_for("agent_restarted", aid)


async def test_async_hooks_from_the_original_spec_run(make_config: Any) -> None:
    """``async def execute_cycle`` and ``_agent_specific_optimization`` are called."""
    cfg = make_config(optimization_interval=1.0,
                      custom_agents={"async_cycle": {"import_path": "tests.swarm_test_agents:AsyncCycleAgent",
                                                     "cycle_interval": 0.02}})
    async with Orchestrator(cfg) as swarm:
        aid = await swarm.create_agent("async_cycle")
        await swarm.wait_ready(aid)
        await asyncio.sleep(1.3)
        reply = await swarm.communicator.request(aid, "status", timeout=5)
        assert reply.payload["cycles"] > 5
        assert reply.payload["optimized"] >= 1
        await wait_until(lambda: (swarm.get_system_status().agent(aid).gauges.get("cycles") or 0) > 5,
                         what="cycles gauge")


async def test_api_errors_change_nothing(make_config: Any) -> None:
    """Unknown type, duplicate id, unknown id and max_agents give clear errors."""
    async with Orchestrator(make_config(max_agents=2)) as swarm:
        await swarm.create_agent("counter", id="one")
        with pytest.raises(UnknownAgentType, match="'nope'.*available"):
            await swarm.create_agent("nope")
        with pytest.raises(DuplicateAgentId, match="'one'"):
            await swarm.create_agent("counter", id="one")
        with pytest.raises(UnknownAgent, match="'ghost'"):
            await swarm.destroy_agent("ghost")
        await swarm.create_agent("counter", id="two")
        with pytest.raises(MaxAgentsReached, match="max_agents=2"):
            await swarm.create_agent("counter")
        assert sorted(a.id for a in swarm.get_system_status().agents) == ["one", "two"]
        with pytest.raises(ValueError, match="-20"):
            await swarm.set_priority("one", 42)


async def test_destroy_priority_pause_and_resume(make_config: Any) -> None:
    """destroy stops the process; set_priority changes its nice value; pause stops cycles."""
    cfg = make_config(custom_agents={"async_cycle": {"import_path": "tests.swarm_test_agents:AsyncCycleAgent",
                                                     "cycle_interval": 0.01}})
    async with Orchestrator(cfg) as swarm:
        aid = await swarm.create_agent("async_cycle")
        other = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        await swarm.wait_ready(other)
        pid = swarm.get_system_status().agent(aid).pid
        await swarm.set_priority(aid, 7)
        assert psutil.Process(pid).nice() == 7
        await wait_until(lambda: swarm.get_system_status().agent(aid).priority == 7, what="priority row")
        await wait_until(lambda: "cycles" in swarm.get_system_status().agent(aid).gauges, what="first cycle")
        await swarm.pause_agent(aid)
        await wait_until(lambda: swarm.get_system_status().agent(aid).state == "paused", what="paused")
        frozen = swarm.get_system_status().agent(aid).gauges["cycles"]
        await asyncio.sleep(0.3)
        assert swarm.get_system_status().agent(aid).gauges["cycles"] == frozen
        await swarm.resume_agent(aid)
        await wait_until(lambda: swarm.get_system_status().agent(aid).state == "running", what="running")
        await wait_until(lambda: swarm.get_system_status().agent(aid).gauges["cycles"] > frozen, what="cycles")
        other_pid = swarm.get_system_status().agent(other).pid
        await swarm.destroy_agent(other)
        assert swarm.get_system_status().agent(other) is None
        assert not psutil.pid_exists(other_pid) or psutil.Process(other_pid).status() == psutil.STATUS_ZOMBIE


async def test_exception_inside_the_swarm_block_cleans_everything(make_config: Any) -> None:
    """An error in the orchestrator's user leaves no process and no segment behind."""
    pids = []
    prefix = ""
    with pytest.raises(RuntimeError, match="boom"):
        async with Orchestrator(make_config()) as swarm:
            prefix = swarm.prefix
            for _ in range(3):
                aid = await swarm.create_agent("counter")
                await swarm.wait_ready(aid)
            pids = [a.pid for a in swarm.get_system_status().agents]
            assert list_segments(prefix)
            raise RuntimeError("boom")
    assert prefix and list_segments(prefix) == []
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_bus_statistics_count_messages_per_channel(make_config: Any) -> None:
    """Statistics are kept per channel and in total, from any endpoint, with latencies."""
    async with Orchestrator(make_config()) as swarm:
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        for _ in range(20):
            await swarm.communicator.request(aid, "inc", 1)
        stats = swarm.get_bus_statistics()
        to_agent = stats["channels"][f"orchestrator->{aid}"]
        from_agent = stats["channels"][f"{aid}->orchestrator"]
        assert to_agent["sent"] >= 20 and to_agent["received"] >= 20
        assert from_agent["received"] >= 20  # 20 replies (plus reports)
        assert to_agent["latency_p50_us"] is not None and to_agent["latency_p50_us"] > 0
        assert stats["total"]["sent"] >= to_agent["sent"] + from_agent["sent"]
        mine = swarm.communicator.get_statistics()
        assert mine["channels"][f"orchestrator->{aid}"]["sent"] == to_agent["sent"]
        assert mine["total"]["rejected"] == 0 and mine["total"]["full_events"] == 0


async def test_agent_publication_reaches_the_snapshot(make_config: Any) -> None:
    """Publications are sent quietly (no doorbell) yet reach ``snapshot.extra``: with the
    next waking frame of the same agent, or by the snapshot's own inbox drain."""
    async with Orchestrator(make_config()) as swarm:
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        await swarm.communicator.request(aid, "inc", 2)
        # The publication is written before the reply, so the reply's wake-up brings it in.
        assert (await swarm.communicator.request(aid, "publish", "a")).payload == "published"
        assert swarm.get_system_status().extra["counter"][aid] == {"count": 2, "tag": "a"}
        # A publication followed by nothing else still arrives (snapshot drain / safety net).
        swarm.communicator.send_message(recipient_id=aid, message_type="publish", payload="b")
        await wait_until(lambda: swarm.get_system_status().extra["counter"][aid]["tag"] == "b",
                         what="the quiet publication")


async def test_snapshot_drains_quiet_frames_first(make_config: Any) -> None:
    """``get_system_status`` drains the inbox before building, so a quiet publication
    sitting in a ring (the watcher thread not woken) is in the very next snapshot;
    off the event loop, ``InboxPump.refresh`` does nothing (single consumer)."""
    async with Orchestrator(make_config()) as swarm:
        swarm.communicator.send_message(recipient_id="orchestrator", message_type="publish:probe",
                                        payload={"v": 1}, wake=False)
        # No await in between: the pump's drain callback cannot have run on this loop.
        assert swarm.get_system_status().extra["probe"] == {"orchestrator": {"v": 1}}
        swarm.communicator.send_message(recipient_id="orchestrator", message_type="publish:probe",
                                        payload={"v": 2}, wake=False)
        pump = swarm._pump
        assert pump is not None
        off_loop: list[int] = []
        thread = threading.Thread(target=lambda: off_loop.append(pump.refresh()))
        thread.start()
        thread.join()  # blocks the loop on purpose: nothing else drains meanwhile
        assert off_loop == [0]
        assert pump.refresh() == 1
        assert swarm.get_system_status().extra["probe"] == {"orchestrator": {"v": 2}}


async def test_send_message_with_timeout_zero_refuses_a_full_lane_at_once(make_config: Any) -> None:
    """timeout=0 raises ChannelFull as soon as the stopped recipient's lane is full (no send_timeout wait)."""
    from engine.channels import ChannelFull

    cfg = make_config(channel_size=4096, bus={"send_timeout": 60.0})
    async with Orchestrator(cfg) as swarm:
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        pid = swarm.get_system_status().agent(aid).pid
        os.kill(pid, signal.SIGSTOP)  # it reads nothing now
        try:
            started = time.monotonic()
            with pytest.raises(ChannelFull):
                for _ in range(64):  # 1 KiB each: a 4 KiB lane is full after a few
                    swarm.communicator.send_message(recipient_id=aid, message_type="inc", payload=bytes(1024),
                                                    timeout=0)
            assert time.monotonic() - started < 30.0  # far from the 60 s send_timeout
        finally:
            os.kill(pid, signal.SIGCONT)
