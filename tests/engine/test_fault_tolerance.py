"""The fault-tolerance agent: recovery decisions (fake clock), prediction on synthetic
series, anomaly events without storms, bounded persistence, and real swarms where a
leaking agent is restarted before its RSS limit and a crash-looping one is quarantined."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

import numpy as np
import pytest

from engine import Orchestrator
from engine.agents.context import AgentContext
from engine.agents.fault_tolerance import FaultToleranceAgent
from engine.anomaly import make_detector
from engine.anomaly.health_signals import Trend
from engine.config import default_config
from engine.dispatch import NoAgentAvailable
from engine.recovery import AgentHealth, RecoveryPlanner, RecoveryPolicy

MiB = 2**20


def health(**kw: Any) -> AgentHealth:
    base: dict[str, Any] = dict(agent_id="a", agent_type="worker", incarnation=0, state="running",
                                heartbeat_age_s=0.1, rss_bytes=100 * MiB, rss_limit_bytes=500 * MiB)
    base.update(kw)
    return AgentHealth(**base)


POLICY = RecoveryPolicy(heartbeat_timeout_s=5.0, restart_lead_s=30.0, drain_lead_s=60.0, cooldown_s=10.0,
                        crash_loop_restarts=3, crash_loop_window_s=300.0, max_restarts=2,
                        restart_window_s=600.0)


# --- recovery decisions (pure, fake clock) ----------------------------------------------


def test_leaking_agent_is_restarted_once_the_limit_is_near_and_not_before() -> None:
    p = RecoveryPlanner(POLICY)
    assert p.observe(health(rss_eta_s=200.0, rss_sustained=True), now=0.0) == []
    assert p.observe(health(rss_eta_s=45.0, rss_sustained=True), now=1.0) == []  # not a drain type
    acts = p.observe(health(rss_eta_s=25.0, rss_sustained=True, rss_bytes=420 * MiB), now=2.0)
    assert [(a.kind, a.cause) for a in acts] == [("restart", "leak")]
    assert "420 MiB" in acts[0].reason and "500 MiB" in acts[0].reason and "25 s" in acts[0].reason
    # the request takes effect: the next incarnation is ours, not a crash
    assert p.observe(health(incarnation=1, rss_eta_s=20.0, rss_sustained=True), now=3.0) == []  # cooldown
    assert p.recent_crashes("a") == 0
    acts = p.observe(health(incarnation=1, rss_eta_s=20.0, rss_sustained=True), now=13.0)
    assert [a.kind for a in acts] == ["restart"]
    # max_restarts=2 within the window: the third time it is quarantined (paused) instead
    acts = p.observe(health(incarnation=2, rss_eta_s=20.0, rss_sustained=True), now=24.0)
    assert [(a.kind, a.cause, a.pause) for a in acts] == [("quarantine", "recurring", True)]
    assert p.quarantined() == {"a": "recurring"}


def test_growth_that_is_not_sustained_or_has_no_limit_causes_no_restart() -> None:
    p = RecoveryPlanner(POLICY)
    assert p.observe(health(rss_eta_s=5.0, rss_sustained=False), now=0.0) == []
    assert p.observe(health(rss_eta_s=5.0, rss_sustained=True, rss_limit_bytes=0), now=1.0) == []


def test_failing_compute_agent_is_drained_then_restarted_then_released() -> None:
    p = RecoveryPlanner(POLICY)
    obs = dict(agent_type="compute", rss_sustained=True)
    acts = p.observe(health(rss_eta_s=50.0, queue_fill=0.3, **obs), now=0.0)
    assert [(a.kind, a.cause, a.pause) for a in acts] == [("quarantine", "leak", False)]
    assert p.observe(health(rss_eta_s=45.0, queue_fill=0.1, **obs), now=1.0) == []  # still draining
    acts = p.observe(health(rss_eta_s=40.0, queue_fill=0.0, **obs), now=2.0)  # drained: restart now
    assert [(a.kind, a.cause) for a in acts] == [("restart", "leak")]
    assert "inbox is empty" in acts[0].reason
    acts = p.observe(health(incarnation=1, rss_eta_s=None, agent_type="compute"), now=3.0)
    assert [(a.kind, a.cause) for a in acts] == [("release", "leak")]
    assert p.quarantined() == {}


def test_crash_loop_is_quarantined_but_own_restarts_and_slow_crashes_are_not_counted() -> None:
    p = RecoveryPlanner(POLICY)
    assert p.observe(health(), now=0.0) == []
    # two crashes, then the planner's own restart: no crash loop
    p.observe(health(incarnation=2), now=10.0)
    p.observe(health(incarnation=2, rss_eta_s=5.0, rss_sustained=True), now=11.0)  # -> restart (ours)
    assert p.observe(health(incarnation=3), now=12.0) == []
    assert p.recent_crashes("a") == 2
    acts = p.observe(health(incarnation=4, state="starting"), now=13.0)  # third crash
    assert [(a.kind, a.cause, a.pause) for a in acts] == [("quarantine", "crash_loop", True)]
    assert "3 crashes within 300 s" in acts[0].reason
    assert p.observe(health(incarnation=5, state="paused"), now=14.0) == []  # once only

    slow = RecoveryPlanner(POLICY)
    for i in range(6):  # one crash every 200 s: never 3 within 300 s
        assert slow.observe(health(incarnation=i), now=200.0 * i) == []


def test_agent_resumed_by_an_operator_starts_with_a_clean_record() -> None:
    p = RecoveryPlanner(POLICY)
    p.observe(health(), now=0.0)
    acts = p.observe(health(incarnation=3), now=1.0)
    assert acts[0].cause == "crash_loop"
    assert p.observe(health(incarnation=3, state="running"), now=2.0) == []  # pause still on its way
    assert p.quarantined() == {"a": "crash_loop"}
    assert p.observe(health(incarnation=3, state="running"), now=20.0) == []  # released by someone
    assert p.quarantined() == {} and p.recent_crashes("a") == 0


def test_hang_needs_two_growing_late_heartbeats_and_respects_long_cycles() -> None:
    p = RecoveryPlanner(POLICY)
    assert p.observe(health(heartbeat_age_s=2.6), now=0.0) == []  # over 0.5 * 5 s once
    acts = p.observe(health(heartbeat_age_s=3.1), now=0.5)
    assert [(a.kind, a.cause) for a in acts] == [("restart", "hang")]
    # an agent whose cycles take 3 s is not hung at 4 s
    q = RecoveryPlanner(POLICY)
    for i, age in enumerate((3.5, 4.0, 4.5)):
        assert q.observe(health(agent_id="b", heartbeat_age_s=age, cycle_s=3.0), now=float(i)) == []
    # a paused agent is never restarted for a late heartbeat
    r = RecoveryPlanner(POLICY)
    for i, age in enumerate((3.0, 3.5, 4.0)):
        assert r.observe(health(heartbeat_age_s=age, state="paused"), now=float(i)) == []


def test_filling_inbox_of_compute_agent_moves_work_away_until_it_drains() -> None:
    p = RecoveryPlanner(POLICY)
    assert p.observe(health(agent_type="compute", queue_fill=0.5), now=0.0) == []
    acts = p.observe(health(agent_type="compute", queue_fill=0.5, queue_eta_s=20.0), now=1.0)
    assert [(a.kind, a.cause, a.pause) for a in acts] == [("quarantine", "queue", False)]
    assert p.observe(health(agent_type="compute", queue_fill=0.4), now=2.0) == []
    acts = p.observe(health(agent_type="compute", queue_fill=0.1), now=3.0)
    assert [(a.kind, a.cause) for a in acts] == [("release", "queue")]
    # other agent types: predicted, not moved
    assert p.observe(health(agent_id="w", queue_fill=0.95, queue_eta_s=1.0), now=4.0) == []


def test_machine_memory_pressure_restarts_the_fastest_grower() -> None:
    p = RecoveryPlanner(POLICY)
    for aid in ("x", "y"):
        p.observe(health(agent_id=aid), now=0.0)
    assert p.observe_machine_memory(100.0, [("x", 1e6), ("y", 5e6)], now=1.0) == []
    acts = p.observe_machine_memory(10.0, [("x", 1e6), ("y", 5e6)], now=1.0)
    assert [(a.kind, a.agent_id, a.cause) for a in acts] == [("restart", "y", "machine_memory")]
    acts = p.observe_machine_memory(10.0, [("x", 1e6), ("y", 5e6)], now=2.0)  # y cools down
    assert [a.agent_id for a in acts] == ["x"]


def test_failed_action_is_undone_and_state_round_trips() -> None:
    p = RecoveryPlanner(POLICY)
    p.observe(health(), now=0.0)
    p.observe(health(incarnation=2), now=1.0)
    acts = p.observe(health(incarnation=2, rss_eta_s=5.0, rss_sustained=True), now=2.0)
    p.completed(acts[0], ok=False, now=2.0)  # refused: no pending own restart, and a back-off
    assert p.observe(health(incarnation=2, rss_eta_s=5.0, rss_sustained=True), now=30.0) == []
    state = json.loads(json.dumps(p.state()))
    q = RecoveryPlanner.from_state(state, POLICY)
    assert q.recent_crashes("a") == 2
    assert q.observe(health(incarnation=3, state="starting"), now=40.0) == []  # 3rd crash, backing off
    acts = q.observe(health(incarnation=3, state="starting"), now=63.0)
    assert [a.cause for a in acts] == ["crash_loop"]
    assert "3 crashes" in acts[0].reason  # the third crash was ours to count: the restart never happened
    with pytest.raises(ValueError):
        RecoveryPlanner.from_state({"version": 99})


# --- prediction on synthetic series ----------------------------------------------------------


def test_trend_predicts_time_to_rss_limit_of_a_noisy_leak() -> None:
    rng = np.random.default_rng(1)
    tr = Trend(halflife=60.0)
    rate = 2.0 * MiB  # bytes per second
    t = 0.0
    for i in range(60):
        t = 0.5 * i
        tr.update(200 * MiB + rate * t + rng.integers(0, 64) * 4096, t)
    limit = 400 * MiB
    truth = (limit - (200 * MiB + rate * t)) / rate
    eta = tr.time_to(limit)
    assert tr.sustained and tr.settling() is None
    assert eta is not None and abs(eta - truth) < 0.1 * truth


def test_warm_up_that_levels_off_below_the_limit_is_not_a_predicted_failure() -> None:
    below, above = Trend(halflife=60.0), Trend(halflife=60.0)
    rng = np.random.default_rng(5)
    for i in range(20):  # 10 s of a first-order warm-up, tau = 20 s
        t = 0.5 * i
        below.update(72.5 - 37.5 * math.exp(-t / 20) + float(rng.normal(0, 0.02)), t)
        above.update(95.0 - 60.0 * math.exp(-t / 20) + float(rng.normal(0, 0.02)), t)
    assert below.tp.time_to_threshold(85.0) is not None  # a straight line would cross 85
    assert below.time_to(85.0) is None  # but it settles near 72.5
    x_inf, tau = below.settling() or (0.0, 0.0)
    assert abs(x_inf - 72.5) < 2.0 and abs(tau - 20.0) < 4.0
    truth = 20.0 * math.log(6.0) - 9.5  # 95 - 60 exp(-t/20) = 85 at t = 20 ln 6
    eta = above.time_to(85.0)
    assert eta is not None and abs(eta - truth) < 0.15 * truth


def test_one_allocation_or_noise_is_not_a_sustained_leak() -> None:
    step = Trend(halflife=60.0)
    for i in range(40):
        step.update(100 * MiB if i < 20 else 300 * MiB, 0.5 * i)
    assert not step.sustained
    rng = np.random.default_rng(2)
    noise = Trend(halflife=60.0)
    rises = []
    for i in range(400):
        noise.update(100 * MiB + float(rng.normal(0, MiB)), 0.5 * i)
        rises.append(noise.sustained)
    assert sum(rises) < 0.05 * len(rises)


# --- the agent without processes: anomaly events, storms, persistence --------------------------


class FakeComm:
    pass


def bound_agent(**options: Any) -> tuple[FaultToleranceAgent, list[tuple[str, str, str, dict[str, Any]]]]:
    events: list[tuple[str, str, str, dict[str, Any]]] = []
    agent = FaultToleranceAgent("ft", **options)
    ctx = AgentContext(agent_id="ft", agent_type="fault_tolerance", slot=1, incarnation=0,
                       config=default_config(), communicator=FakeComm(),  # type: ignore[arg-type]
                       log=logging.getLogger("test.ft"),
                       _emit=lambda name, msg, sev, data: events.append((name, msg, sev, data)))
    agent.bind(ctx)
    return agent, events


def test_anomaly_event_has_series_value_score_and_hold_off_prevents_a_storm() -> None:
    agent, events = bound_agent(holdoff_s=60.0, max_events_per_min=20)
    rng = np.random.default_rng(3)
    t = 1000.0
    for i in range(400):
        t = 1000.0 + 0.5 * i
        agent._feed("w/cpu", "cpu", "w", 20.0 + float(rng.normal(0, 2)), now=t, wall=t)
    assert events == []
    agent._feed("w/cpu", "cpu", "w", 95.0, now=t + 0.5, wall=t + 0.5)
    assert [e[0] for e in events] == ["anomaly_detected"]
    data = events[0][3]
    assert data["series"] == "w/cpu" and data["target"] == "w" and data["value"] == 95.0
    assert 0.5 <= data["score"] <= 1.0
    for k in range(1, 40):  # the series stays wild inside the hold-off: no more events
        agent._feed("w/cpu", "cpu", "w", 95.0 - 60.0 * (k % 2), now=t + 0.5 + 0.5 * k, wall=t + 0.5 + 0.5 * k)
    assert len(events) == 1


def test_break_of_a_flat_series_is_reported_only_when_it_matters() -> None:
    agent, events = bound_agent()
    for i in range(400):
        agent._feed("w/rss", "mib", "w", 50.0, now=float(i), wall=float(i))
        agent._feed("v/rss", "mib", "v", 50.0, now=float(i), wall=float(i))
    agent._feed("w/rss", "mib", "w", 51.0, now=400.0, wall=400.0)  # 1 MiB: below the 16 MiB floor
    assert agent.series["w/rss"].last_score == 1.0 and events == []
    agent._feed("v/rss", "mib", "v", 80.0, now=400.0, wall=400.0)
    assert [(e[0], e[3]["series"], e[3]["score"]) for e in events] == [("anomaly_detected", "v/rss", 1.0)]


def test_global_rate_limit_caps_events_across_series() -> None:
    agent, events = bound_agent(max_events_per_min=5)
    for i in range(300):
        for k in range(20):
            agent._feed(f"s{k}", "cpu", "m", 10.0, now=float(i), wall=float(i))
    for k in range(20):
        agent._feed(f"s{k}", "cpu", "m", 90.0, now=300.0, wall=300.0)
    assert len(events) == 5


def test_detector_state_survives_a_restart_and_stays_within_its_budget() -> None:
    agent, _ = bound_agent(snapshot_interval_s=0.0, state_budget_kb=16)
    rng = np.random.default_rng(4)
    values = 50 + 10 * np.sin(np.arange(900) / 20) + rng.normal(0, 1, 900)
    for k in range(12):
        for i, v in enumerate(values[:600]):
            agent._feed(f"s{k}", "cpu", "m", float(v) + k, now=float(i), wall=1e9 + i)
    snap = agent.snapshot()
    import msgspec

    raw = msgspec.msgpack.encode(snap)
    assert len(raw) < 16 * 1024 + 4096  # detectors within the budget, plus small trend/planner data
    kept = list(snap["detectors"])
    assert 0 < len(kept) < 12 and agent._snapshot_info["dropped"] == 12 - len(kept)
    again, _ = bound_agent()
    again.restore(msgspec.msgpack.decode(raw))
    name = kept[0]
    k = int(name[1:])
    for i, v in enumerate(values[600:], start=600):
        a = agent.series[name].det.update(float(v) + k, 1e9 + i)
        b = again._series(name, "cpu", "m").det.update(float(v) + k, 1e9 + i)
        assert a == b
    fresh = make_detector("sentinel", table_bits=8).state()["arrays"]["counts"]
    dropped = next(f"s{k}" for k in range(12) if f"s{k}" not in kept)
    assert again._series(dropped, "cpu", "m").det.state()["arrays"]["counts"] == fresh
    assert agent.series[dropped].det.state()["arrays"]["counts"] != fresh


# --- real swarms -------------------------------------------------------------------------------------

class EventLog:
    def __init__(self, swarm: Orchestrator) -> None:
        self.events: list[Any] = []
        swarm.add_event_handler("*", self.events.append)

    def named(self, name: str, **data: Any) -> list[Any]:
        return [e for e in self.events if e.name == name and all(e.data.get(k) == v for k, v in data.items())]

    async def wait_for(self, name: str, *, timeout: float = 20.0, **data: Any) -> list[Any]:
        deadline = time.monotonic() + timeout
        while not self.named(name, **data):
            if time.monotonic() > deadline:
                seen = [(e.name, e.agent_id, e.message[:80]) for e in self.events]
                raise AssertionError(f"no {name} {data} within {timeout}s; saw {seen}")
            await asyncio.sleep(0.02)
        return self.named(name, **data)


LEAK_LIMIT_MB = 400


@pytest.mark.asyncio
async def test_leaking_agent_is_predicted_and_restarted_before_its_rss_limit(make_config: Any) -> None:
    cfg = make_config(
        custom_agents={"leaker": {"import_path": "tests.swarm_test_agents:LeakAgent", "cycle_interval": 0.05,
                                  "rss_limit_mb": LEAK_LIMIT_MB}},
        agents={"fault_tolerance": {"count": 0, "cycle_interval": 0.1, "restart_lead_s": 30.0}},
    )
    async with Orchestrator(cfg) as swarm:
        log = EventLog(swarm)
        ft = await swarm.create_agent("fault_tolerance")
        await swarm.wait_ready(ft)
        leaker = await swarm.create_agent("leaker", leak_mb=1.0, max_leak_mb=2 * LEAK_LIMIT_MB)
        predicted = await log.wait_for("failure_predicted", target=leaker)
        action = await log.wait_for("recovery_action", target=leaker, action="restart")
        await log.wait_for("agent_restarted", timeout=10.0)
        p = predicted[0].data
        assert predicted[0].agent_id == ft and p["series"] == f"{leaker}/rss"
        assert 0 < p["eta_s"] < 900 and p["limit"] == LEAK_LIMIT_MB and p["value"] < LEAK_LIMIT_MB
        assert action[0].data["ok"] is True and action[0].data["cause"] == "leak"
        assert "limit 400 MiB" in action[0].data["reason"]
        restarted = [e for e in log.events if e.name == "agent_restarted" and e.agent_id == leaker]
        assert restarted and swarm.agent_details(leaker)["restarts"] >= 1
        # it never reached the limit: the supervisor did not have to kill it
        assert not [e for e in log.events if e.name in ("limit_exceeded", "agent_crashed")]

        def summary() -> dict[str, Any]:
            return dict(swarm.get_system_status().extra.get("fault_tolerance", {}).get(ft) or {})

        deadline = time.monotonic() + 10.0  # published about once a second
        while summary().get("actions", 0) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert summary()["actions"] >= 1 and summary()["series"] > 10


@pytest.mark.asyncio
async def test_crash_looping_agent_is_quarantined_and_gets_no_work(make_config: Any) -> None:
    cfg = make_config(
        custom_agents={"cycle_crash": {"import_path": "tests.swarm_test_agents:CycleCrashAgent",
                                       "cycle_interval": 0.1}},
        agents={"fault_tolerance": {"count": 0, "cycle_interval": 0.1, "crash_loop_restarts": 3}},
        supervisor={"max_restarts": 50, "backoff_max": 0.05},
    )
    async with Orchestrator(cfg) as swarm:
        log = EventLog(swarm)
        ft = await swarm.create_agent("fault_tolerance")
        await swarm.wait_ready(ft)
        bad = await swarm.create_agent("cycle_crash")
        quarantined = await log.wait_for("agent_quarantined")
        q = quarantined[0]
        assert q.agent_id == bad and q.data["actor"] == ft and q.data["paused"] is True
        assert "crash loop" in q.data["reason"]
        action = await log.wait_for("recovery_action", target=bad, action="quarantine")
        assert action[0].data["ok"] is True and action[0].data["cause"] == "crash_loop"
        await swarm.wait_ready(bad)
        with pytest.raises(NoAgentAvailable):
            await swarm.submit_task("anything", agent_type="cycle_crash", timeout=2.0)
        assert swarm.get_system_status().extra["quarantined"] == {bad: q.data["reason"]}
        assert not log.named("agent_gave_up")
        assert not [e for e in log.events if e.name == "agent_crashed" and e.agent_id == ft]


@pytest.mark.asyncio
async def test_quarantine_and_release_steer_the_dispatcher(make_config: Any) -> None:
    async with Orchestrator(make_config()) as swarm:
        log = EventLog(swarm)
        a = await swarm.create_agent("counter")
        b = await swarm.create_agent("counter")
        await swarm.wait_ready(a)
        await swarm.wait_ready(b)
        await swarm.perform_action("quarantine", a, {"reason": "test"}, actor="tester")
        done = [await swarm.submit_task("get", agent_type="counter", timeout=5.0) for _ in range(4)]
        assert {r.agent_id for r in done} == {b}
        assert swarm.get_system_status().agent(a).state == "running"  # drained, not paused
        await swarm.perform_action("release", a, "done", actor="tester")
        done = [await swarm.submit_task("get", agent_type="counter", timeout=5.0) for _ in range(4)]
        assert a in {r.agent_id for r in done}
        assert [e.name for e in log.events if e.name in ("agent_quarantined", "agent_released")] == \
            ["agent_quarantined", "agent_released"]


@pytest.mark.asyncio
async def test_hung_agent_is_restarted_gracefully_before_the_supervisor_kills_it(make_config: Any) -> None:
    cfg = make_config(
        supervisor={"heartbeat_timeout": 5.0},
        agents={"fault_tolerance": {"count": 0, "cycle_interval": 0.1, "hang_fraction": 0.3}},
    )
    async with Orchestrator(cfg) as swarm:
        log = EventLog(swarm)
        ft = await swarm.create_agent("fault_tolerance")
        await swarm.wait_ready(ft)
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        for _ in range(3):
            await swarm.communicator.request(aid, "inc", 1)
        await swarm.inject_hang(aid)
        action = await log.wait_for("recovery_action", target=aid, action="restart")
        assert action[0].data["ok"] is True and action[0].data["cause"] == "hang"
        assert "no heartbeat for" in action[0].data["reason"]
        await swarm.wait_ready(aid)
        reply = await swarm.communicator.request(aid, "get", timeout=5)
        assert reply.payload["count"] == 3 and reply.payload["restored"] is True
        assert not log.named("agent_hung") and not log.named("agent_crashed")
