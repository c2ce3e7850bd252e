"""A discrete-event simulation of task dispatch to parallel in-order servers.

The same policies the orchestrator uses (anything with ``choose``/``observe``) are run
against agents whose speed follows a script, with a fixed number of tasks in flight
(as ``benchmarks/dispatch.py`` does on real processes).  It is deterministic for a
seed, takes milliseconds, and is what the unit tests use to check that the learned
policy follows a slowed agent and lands near the oracle -- without a timed assertion.

:func:`learned_policy` wires a :class:`~engine.dispatch.LearnedDispatch` to an
in-process :class:`~engine.learning.learner.DispatchLearner` on the simulated clock,
with the model republished every ``publish_lag`` simulated seconds, as the learning
agent does over the bus.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.learning.learner import DispatchLearner

Task = tuple[str, float, dict[str, float]]
"""(kind, seconds of work at speed 1, features)."""


@dataclass
class SimResult:
    """Outcome of one simulated run."""

    throughput: float
    p99_s: float
    makespan_s: float
    per_agent: dict[str, int] = field(default_factory=dict)


class SimClock:
    """The simulated time, callable like ``time.monotonic``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate_dispatch(
    policy: Any,
    tasks: Sequence[Task],
    speeds: Callable[[int], Mapping[str, float]],
    *,
    window: int,
    noise: float = 0.05,
    seed: int = 0,
    clock: SimClock | None = None,
    on_complete: Callable[[], None] | None = None,
) -> SimResult:
    """Run ``tasks`` through ``policy`` with ``window`` in flight.

    Args:
        policy: a dispatch policy (``choose``/``observe``).
        tasks: the stream, in order.
        speeds: ``speeds(submitted) -> {agent: speed}``: the agents and their speeds
            once ``submitted`` tasks have been sent (read at each task's service start).
        window: tasks in flight.
        noise: standard deviation of the log-normal service-time noise.
        seed: for the noise.
        clock: the simulated clock shared with the policy (a new one if ``None``).
        on_complete: called after each completion (e.g. to republish a model).
    """
    rng = random.Random(seed)
    clock = clock or SimClock()
    agents = list(speeds(0))
    queues: dict[str, deque[tuple[int, float]]] = {a: deque() for a in agents}
    busy: dict[str, bool] = {a: False for a in agents}
    outstanding: dict[str, int] = {a: 0 for a in agents}
    events: list[tuple[float, int, str, int]] = []  # (time, seq, agent, task index)
    submit_time: dict[int, float] = {}
    feats: dict[int, dict[str, float]] = {}
    latencies: list[float] = []
    per_agent: dict[str, int] = {a: 0 for a in agents}
    seq = 0
    submitted = 0

    def start(agent: str) -> None:
        nonlocal seq
        if busy[agent] or not queues[agent]:
            return
        index, work = queues[agent].popleft()
        speed = max(speeds(submitted).get(agent, 1.0), 1e-9)
        service = work / speed * math.exp(rng.gauss(0.0, noise))
        busy[agent] = True
        seq += 1
        heapq.heappush(events, (clock.now + service, seq, agent, index))

    def submit() -> None:
        nonlocal submitted
        index = submitted
        kind, work, features = tasks[index]
        submitted += 1
        feats[index] = dict(features)
        agent = policy.choose(kind, feats[index], agents, outstanding)
        outstanding[agent] += 1
        submit_time[index] = clock.now
        queues[agent].append((index, work))
        start(agent)

    for _ in range(min(window, len(tasks))):
        submit()
    while events:
        t, _, agent, index = heapq.heappop(events)
        clock.now = t
        busy[agent] = False
        outstanding[agent] -= 1
        latency = t - submit_time.pop(index)
        latencies.append(latency)
        per_agent[agent] += 1
        policy.observe(agent, tasks[index][0], feats.pop(index), latency, True)
        if on_complete is not None:
            on_complete()
        start(agent)
        if submitted < len(tasks):
            submit()
    makespan = clock.now
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * (len(latencies) - 1) + 0.5))] if latencies else 0.0
    return SimResult(len(tasks) / makespan if makespan > 0 else 0.0, p99, makespan, per_agent)


def learned_policy(clock: SimClock, *, publish_lag: float = 0.1, seed: int = 0,
                   discount: float = 0.98) -> tuple[Any, DispatchLearner, Callable[[], None]]:
    """A LearnedDispatch fed by an in-process learner, model republished every ``publish_lag`` s.

    Returns ``(policy, learner, tick)``; pass ``tick`` as ``on_complete``.
    """
    from engine.dispatch import LearnedDispatch

    learner = DispatchLearner(discount=discount)
    published: dict[str, Any] = {"model": None, "at": -math.inf}

    def tick() -> None:
        if clock.now - published["at"] >= publish_lag:
            published["model"] = learner.model_payload()
            published["at"] = clock.now

    def sink(batch: list[dict[str, Any]]) -> bool:
        learner.observe_many(batch)
        return True

    policy = LearnedDispatch(lambda: published["model"], sink, seed=seed, clock=clock,
                             max_batch_age_s=publish_lag / 2)
    return policy, learner, tick


def task_stream(n: int, *, seed: int = 0, light_s: float = 0.008, heavy_share: float = 0.3) -> list[Task]:
    """A stream like the dispatch benchmark's: light and (twice as long) heavy tasks, +-25 %."""
    rng = random.Random(seed)
    out: list[Task] = []
    for _ in range(n):
        heavy = rng.random() < heavy_share
        work = light_s * (2.0 if heavy else 1.0) * rng.uniform(0.75, 1.25)
        out.append(("heavy" if heavy else "light", work, {"units": work * 1e6}))
    return out
