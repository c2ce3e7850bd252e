"""The compute agent: requests, tuned parameters, throttling, CUDA plumbing (in-process),
and the agent in a real swarm (results, gauges, topic, restart from the disk cache)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import numpy as np
import pytest

from engine import Orchestrator
from engine.agents.compute import ComputeAgent
from engine.agents.context import AgentContext
from engine.communicator import Message
from engine.config import default_config
from engine.kernels import KERNELS, get_inputs, run_workload


class FakeComm:
    def __init__(self) -> None:
        self.published: dict[str, Any] = {}

    def send_message(self, **fields: Any) -> int:
        self.published[fields["message_type"].removeprefix("publish:")] = fields["payload"]
        return 1


def bound(agent: ComputeAgent) -> tuple[AgentContext, FakeComm, list[tuple[str, str]]]:
    comm = FakeComm()
    events: list[tuple[str, str]] = []
    ctx = AgentContext(agent_id=agent.agent_id, agent_type="compute", slot=1, incarnation=0,
                       config=default_config(), communicator=comm, log=logging.getLogger("test.compute"),  # type: ignore[arg-type]
                       _emit=lambda name, msg, sev, data: events.append((name, msg)))
    agent.bind(ctx)
    return ctx, comm, events


def request(agent: ComputeAgent, kind: str, payload: Any) -> Any:
    return agent.handle_message(Message(recipient_id=agent.agent_id, message_type=kind, payload=payload,
                                        sender_id="tester", expects_reply=True))


@pytest.fixture(scope="module")
def started() -> Any:
    """One warmed-up agent for the in-process tests (warm-up loads the disk cache once)."""
    agent = ComputeAgent("compute-t", kernel="triad", size=200_000, threads=1, slice_s=0.02)
    ctx, comm, events = bound(agent)
    agent.on_start()
    return agent, ctx, comm, events


def test_warm_up_reports_progress_and_an_event(started: Any) -> None:
    agent, ctx, comm, events = started
    assert ctx.gauges["warmup"] == 100.0
    assert [name for name, _ in events].count("kernel_warmup") == 1
    assert set(agent.warmup["sources"]) == set(KERNELS)
    assert set(agent.warmup["sources"].values()) <= {"cache", "compiled", "memory", "none"}
    topic = comm.published["compute"]
    assert topic["warmup"]["sources"] == agent.warmup["sources"]
    ok, reason = topic["cuda"]["available"], topic["cuda"]["reason"]
    assert ok or reason.startswith("unavailable")  # this VM: no driver, and it says so
    assert topic["device"] == ("cuda" if topic["cuda"]["used"] else "cpu")


def test_execute_workload_replies_with_the_measured_result(started: Any) -> None:
    agent, ctx, _, _ = started
    reply = request(agent, "execute_workload", {"kernel": "jacobi", "n": 64, "repeats": 2,
                                                 "params": {"iters": 3}})
    assert reply["ok"] and reply["agent_id"] == "compute-t" and reply["device"] == "cpu"
    assert reply["name"] == "jacobi" and reply["n"] == 64 and reply["params"]["iters"] == 3
    assert reply["params"]["threads"] == 1  # the configured thread count applies
    assert reply["seconds"] > 0 and reply["gflops"] > 0 and reply["gbps"] > 0 and reply["repeats"] == 2
    assert reply["checksum"] == run_workload("jacobi", 64, {"iters": 3}, repeats=1).checksum
    assert ctx.gauges["requests"] == 1.0 and ctx.gauges["gflops"] == pytest.approx(reply["gflops"], rel=1e-3)
    # its own kernel needs no n
    own = request(agent, "execute_workload", {"repeats": 1})
    assert own["ok"] and own["name"] == "triad" and own["n"] == 200_000


@pytest.mark.parametrize(("payload", "words"), [
    ({"kernel": "fft", "n": 8}, ["unknown kernel 'fft'", "triad"]),
    ({"kernel": "nbody"}, ["'n' is required", "nbody"]),
    ({"n": 0}, ["positive integer"]),
    ({"n": 8, "params": {"tile": 8}}, ["has no parameter 'tile'"]),
    ({"n": 8, "colour": "red"}, ["unknown keys ['colour']"]),
    ({"n": 8, "device": "tpu"}, ["device must be"]),
    ("triad", ["dict payload"]),
])
def test_bad_requests_get_an_error_reply_not_a_crash(started: Any, payload: Any, words: list[str]) -> None:
    agent, *_ = started
    reply = request(agent, "execute_workload", payload)
    assert reply["ok"] is False and reply["agent_id"] == "compute-t"
    for word in words:
        assert word in reply["error"]


def test_cuda_request_without_a_gpu_says_why(started: Any) -> None:
    agent, *_ = started
    if agent.cuda_ok:
        pytest.skip("this machine has CUDA")
    reply = request(agent, "execute_workload", {"n": 1000, "device": "cuda"})
    assert reply["ok"] is False and agent.cuda_reason in reply["error"]


def test_apply_config_is_checked_used_and_checkpointed(started: Any) -> None:
    agent, _, comm, _ = started
    bad = request(agent, "apply_config", {"kernel": "triad", "params": {"tile": 4}})
    assert bad["ok"] is False and "tile" in bad["error"]
    good = request(agent, "apply_config", {"kernel": "triad", "params": {"chunk": 65536}})
    assert good["ok"] and good["params"]["chunk"] == 65536 and good["trial"]["params"]["chunk"] == 65536
    assert comm.published["compute"]["params"]["chunk"] == 65536
    agent.execute_cycle()  # the requests above were the last cycle's work ...
    agent.execute_cycle()  # ... this one runs the background kernel
    assert agent.last["source"] == "background" and agent.last["params"]["chunk"] == 65536  # type: ignore[index]
    other = request(agent, "apply_config", {"kernel": "matmul", "params": {"variant": "blocked", "tile": 32}})
    assert other["ok"] and other["trial"] is None  # not the background kernel: names checked only
    reply = request(agent, "execute_workload", {"kernel": "matmul", "n": 64, "repeats": 1})
    assert reply["params"]["variant"] == "blocked" and reply["params"]["tile"] == 32
    again = ComputeAgent("compute-t", kernel="triad", size=200_000)
    again.restore(agent.snapshot())
    assert again.tuned == {"triad": {"chunk": 65536}, "matmul": {"variant": "blocked", "tile": 32}}
    request(agent, "apply_config", {"kernel": "triad", "params": {}})  # back to defaults


def test_a_throttled_request_leaves_a_rest_and_background_waits(started: Any) -> None:
    """Duty d: a request that computed for t seconds leaves a rest of t (1-d)/d."""
    agent, ctx, *_ = started
    ctx.duty_cycle = 0.25
    try:
        before = time.monotonic()
        reply = request(agent, "execute_workload", {"n": 200_000, "repeats": 5})
        after = time.monotonic()
        busy = reply["seconds"] * reply["repeats"]
        assert before + 3 * busy <= agent._rest_until <= after + 3 * busy
        cycles = agent.cycles_done
        agent.execute_cycle()  # the request was this cycle's work
        agent.execute_cycle()  # resting: no background run
        assert agent.cycles_done == cycles or time.monotonic() >= agent._rest_until
    finally:
        ctx.duty_cycle = 1.0
        agent.on_throttle(1.0)
    assert agent._rest_until == 0.0


def test_background_size_is_halved_until_a_run_fits_the_slice() -> None:
    agent = ComputeAgent("compute-m", kernel="matmul", size=1024, slice_s=0.002, threads=1)
    bound(agent)
    agent.on_start()
    assert agent.background_n < 1024 and "background work uses" in agent.size_note
    result = run_workload("matmul", agent.background_n, {"threads": 1}, repeats=3)
    assert result.seconds < 0.05  # sized for the slice (generous: the machine is shared)


def test_cuda_path_is_used_when_available(started: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The offload plumbing, with the GPU functions replaced by numpy (no GPU here)."""
    from engine.kernels import cuda

    agent, *_ = started
    calls = []

    def fake_triad(b: np.ndarray, c: np.ndarray, s: float) -> np.ndarray:
        calls.append(len(b))
        return b + s * c

    monkeypatch.setattr(cuda, "cuda_available", lambda: (True, "available: FakeGPU"))
    monkeypatch.setattr(cuda, "triad_cuda", fake_triad)
    saved = agent.cuda_ok, agent.cuda_reason
    try:
        agent._probe_cuda()
        assert agent.cuda_ok and agent.status()["device"] == "cuda"
        reply = request(agent, "execute_workload", {"n": 4096, "repeats": 2})
        assert reply["ok"] and reply["device"] == "cuda" and calls
        inputs = get_inputs("triad", 4096)
        assert reply["checksum"] == KERNELS["triad"].checksum(inputs["b"] + inputs["s"] * inputs["c"])
        cpu = request(agent, "execute_workload", {"kernel": "nbody", "n": 64, "repeats": 1})
        assert cpu["device"] == "cpu"  # no CUDA version of n-body
    finally:
        agent.cuda_ok, agent.cuda_reason = saved


# --- real processes -----------------------------------------------------------------------


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_compute_agent_in_a_real_swarm(make_config: Any) -> None:
    """Requests through submit_task, gauges and topic in get_system_status(), tuned
    parameters and a fast (cached) warm-up after a SIGKILL restart."""
    cfg = make_config(supervisor={"heartbeat_timeout": 5.0},
                      agents={"compute": {"count": 0, "size": 100_000, "threads": 1, "slice_s": 0.02}})
    async with Orchestrator(cfg) as swarm:
        events: list[Any] = []
        swarm.add_event_handler("*", events.append)
        aid = await swarm.create_agent("compute")
        await swarm.wait_ready(aid, timeout=30)
        result = await swarm.submit_task("execute_workload", {"kernel": "montecarlo", "n": 100_000, "repeats": 2})
        payload = result.result
        assert result.agent_id == aid and payload["ok"], payload
        assert payload["agent_id"] == aid and payload["name"] == "montecarlo"
        assert payload["checksum"] == run_workload("montecarlo", 100_000, repeats=1).checksum
        tuned = await swarm.communicator.request(aid, "apply_config",
                                                 {"kernel": "triad", "params": {"chunk": 16384}}, timeout=10)
        assert tuned.payload["ok"]
        await _wait(lambda: swarm.get_system_status().agent(aid).gauges.get("gbps", 0) > 0, 10, "gauges")  # type: ignore[union-attr]
        gauges = swarm.get_system_status().agent(aid).gauges  # type: ignore[union-attr]
        assert gauges["warmup"] == 100.0 and gauges["gflops"] > 0 and gauges["requests"] >= 1
        await _wait(lambda: aid in swarm.get_system_status().extra.get("compute", {}), 5, "compute topic")
        topic = swarm.get_system_status().extra["compute"][aid]
        assert topic["cuda"]["reason"] and topic["background_n"] == 100_000
        await asyncio.sleep(0.3)  # > checkpoint_interval: the tuned parameters are checkpointed
        os.kill(swarm.get_system_status().agent(aid).pid, signal.SIGKILL)  # type: ignore[union-attr]
        await _wait(lambda: len([e for e in events if e.name == "kernel_warmup" and e.agent_id == aid]) == 2,
                    30, "the second warm-up")
        second = [e for e in events if e.name == "kernel_warmup" and e.agent_id == aid][1]
        assert "compiled" not in second.data["sources"].values()  # numba's disk cache served it
        await swarm.wait_ready(aid, timeout=30)
        status = await swarm.communicator.request(aid, "compute_status", timeout=10)
        assert status.payload["tuned"] == {"triad": {"chunk": 16384}}
