"""The optimization and learning agents as real processes in a swarm."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from engine import Orchestrator
from engine.dispatch import LearnedDispatch


class EventLog:
    """Collects events; lets a test wait for one."""

    def __init__(self, swarm: Orchestrator) -> None:
        self.events: list[Any] = []
        swarm.add_event_handler("*", self.events.append)

    def named(self, name: str) -> list[Any]:
        return [e for e in self.events if e.name == name]

    async def wait_for(self, name: str, *, count: int = 1, timeout: float = 60.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.named(name)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count}x {name} within {timeout}s; saw {[e.name for e in self.events]}")
            await asyncio.sleep(0.05)
        return self.named(name)


async def test_optimization_agent_tunes_by_measuring_stores_and_does_not_search_again(
        make_config: Any, tmp_path: Any) -> None:
    """It pins compute agents apart, tunes their kernel, applies and stores the result; a restart loads it."""
    cfg = make_config(
        optimization_interval=5.0, supervisor={"heartbeat_timeout": 10.0},  # the machine is shared
        agents={"optimization": {"count": 0, "cycle_interval": 0.2, "store_dir": str(tmp_path)},
                "compute": {"count": 0, "kernel": "montecarlo", "size": 262144}})
    async with Orchestrator(cfg) as swarm:
        log = EventLog(swarm)
        computes = [await swarm.create_agent("compute", background=False) for _ in range(2)]
        for cid in computes:
            await swarm.wait_ready(cid, timeout=60)
        aid = await swarm.create_agent("optimization")
        await swarm.wait_ready(aid, timeout=30)
        started = (await log.wait_for("optimizer_started"))[0]
        assert "hardware counters" in started.message and "wall-clock" in started.message
        tuned = (await log.wait_for("kernel_tuned"))[0]
        assert tuned.data["kernel"] == "montecarlo" and tuned.data["gain"] >= 1.0
        assert tuned.data["evaluations"] < tuned.data["exhaustive_evaluations"]
        files = list(tmp_path.glob("*/montecarlo.json"))
        assert len(files) == 1
        assert json.loads(files[0].read_text())["entries"]["n=262144,cores=1"]["params"] == tuned.data["params"]
        await asyncio.sleep(0.5)
        status = swarm.get_system_status()
        published = status.extra["optimization"][aid]
        assert published["kernels"]["montecarlo"]["source"] == "measured"
        assert published["objective"].startswith("wall-clock")
        assert status.agent(aid).gauges["tuned"] == 1.0
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) == 2:  # the plan for 2 cores and 2 compute agents: one core each
            assert sorted(tuple(swarm.agent_details(c)["affinity"]) for c in computes) == [(cores[0],), (cores[1],)]
            assert published["plan"]["cores_per_compute"] == 1
        for cid in computes:
            state = (await swarm.communicator.request(cid, "compute_status", timeout=10)).payload
            assert state["tuned"]["montecarlo"] == tuned.data["params"]
        await swarm.restart_agent(aid)
        await swarm.wait_ready(aid, timeout=30)
        loaded = (await log.wait_for("tuning_loaded"))[0]
        assert loaded.data["params"] == tuned.data["params"]
        await asyncio.sleep(2.0)  # past the time a search would start
        assert len(log.named("tuning_started")) == 1


async def test_learning_agent_learns_dispatch_shows_progress_and_keeps_it_across_restart(
        make_config: Any) -> None:
    """With load_balancing the orchestrator dispatches by the learner's model; state survives a restart."""
    cfg = make_config(
        load_balancing=True, supervisor={"heartbeat_timeout": 10.0},
        agents={"learning": {"count": 0, "cycle_interval": 0.1}},
        custom_agents={"bench_worker": {"import_path": "benchmarks.workers:BenchWorker"}},
        security={"allowed_agent_modules": ["tests", "benchmarks"]})
    async with Orchestrator(cfg) as swarm:
        assert isinstance(swarm.dispatcher.policy, LearnedDispatch)
        workers = [await swarm.create_agent("bench_worker", id=f"w{i}") for i in range(3)]
        learner = await swarm.create_agent("learning")
        for aid in (*workers, learner):
            await swarm.wait_ready(aid)
        for slow in workers[1:]:
            await swarm.throttle_agent(slow, 0.25)
        remaining = iter(range(240))

        async def client() -> None:
            for _ in remaining:
                await swarm.submit_task("light", {"units": 20_000}, agent_type="bench_worker",
                                        features={"units": 20_000.0}, timeout=10)

        await asyncio.gather(*(client() for _ in range(4)))
        per_agent = swarm.dispatcher.stats.per_agent
        assert per_agent["w0"] > per_agent["w1"] and per_agent["w0"] > per_agent["w2"]
        assert swarm.dispatcher.policy.name == "learning"
        swarm.dispatcher.policy.flush()
        await asyncio.sleep(1.0)
        before = (await swarm.communicator.request(learner, "learning_summary", timeout=5)).payload
        assert before["observations"] >= 200
        means = before["service_mean_s"]["light"]
        assert means["w1"] > means["w0"] and means["w2"] > means["w0"]
        status = swarm.get_system_status()
        assert {"reward_tps", "regret_ms", "explore_pct", "observations"} <= set(status.agent(learner).gauges)
        assert status.extra["learning"][learner]["observations"] > 0
        assert "dispatch_model" in status.to_dict()["extra"]
        await swarm.restart_agent(learner)
        await swarm.wait_ready(learner)
        after = (await swarm.communicator.request(learner, "learning_summary", timeout=5)).payload
        assert after["observations"] == before["observations"]
        assert after["service_mean_s"] == before["service_mean_s"]
