"""Task dispatch: which agent of a type gets each task, and what came of it.

``Orchestrator.submit_task`` hands a task to the :class:`TaskDispatcher`, which asks
its :class:`DispatchPolicy` to choose among the live agents of the wanted type,
sends the task as a request over the bus, and reports the measured outcome back to
the policy (``observe``), so that a learning policy can improve from completions.
The default policy is round robin; ``load_balancing = true`` lets the orchestrator
install a smarter one (join-shortest-queue here; the learning agent's later).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Protocol, Sequence

from engine.errors import SwarmError, UnknownAgent


class NoAgentAvailable(SwarmError):
    """No live agent of the requested type can take the task."""


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one dispatched task.

    Attributes:
        task_id: the dispatcher's id for the task.
        agent_id: the agent that handled it.
        kind: the task kind (its message type).
        result: the agent's reply payload.
        latency_s: submit-to-reply time measured by the dispatcher.
    """

    task_id: int
    agent_id: str
    kind: str
    result: Any
    latency_s: float


class DispatchPolicy(Protocol):
    """Chooses an agent for a task and learns from outcomes."""

    name: str

    def choose(self, kind: str, features: Mapping[str, float], candidates: Sequence[str],
               outstanding: Mapping[str, int]) -> str:
        """One of ``candidates`` (``outstanding`` = tasks in flight per agent)."""
        ...

    def observe(self, agent_id: str, kind: str, features: Mapping[str, float],
                latency_s: float, ok: bool) -> None:
        """Learn from one completed (or failed) task."""
        ...


class RoundRobin:
    """Each agent in turn, ignoring load and speed."""

    name = "round_robin"

    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(self, kind: str, features: Mapping[str, float], candidates: Sequence[str],
               outstanding: Mapping[str, int]) -> str:
        """The next candidate in turn."""
        return candidates[next(self._counter) % len(candidates)]

    def observe(self, agent_id: str, kind: str, features: Mapping[str, float],
                latency_s: float, ok: bool) -> None:
        """Round robin learns nothing."""


class JoinShortestQueue:
    """The agent with the fewest tasks in flight (ties: the first)."""

    name = "jsq"

    def choose(self, kind: str, features: Mapping[str, float], candidates: Sequence[str],
               outstanding: Mapping[str, int]) -> str:
        """The least-loaded candidate."""
        return min(candidates, key=lambda a: outstanding.get(a, 0))

    def observe(self, agent_id: str, kind: str, features: Mapping[str, float],
                latency_s: float, ok: bool) -> None:
        """JSQ learns nothing."""


@dataclass
class DispatchStats:
    """Counters kept by the dispatcher."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    per_agent: dict[str, int] = field(default_factory=lambda: defaultdict(int))


Request = Callable[[str, str, Any, float | None], Awaitable[Any]]


class TaskDispatcher:
    """Sends tasks to agents chosen by a policy and feeds outcomes back to it."""

    def __init__(self, request: Request, candidates: Callable[[str], list[str]],
                 policy: DispatchPolicy | None = None) -> None:
        self._request = request
        self._candidates = candidates
        self.policy: DispatchPolicy = policy or RoundRobin()
        self.outstanding: dict[str, int] = defaultdict(int)
        self.stats = DispatchStats()
        self._ids = itertools.count(1)
        self._observers: list[Callable[[TaskResult], None]] = []

    def add_observer(self, fn: Callable[[TaskResult], None]) -> None:
        """Call ``fn(result)`` after each completed task."""
        self._observers.append(fn)

    async def submit(self, kind: str, payload: Any = None, *, agent_type: str = "compute",
                     features: Mapping[str, float] | None = None, timeout: float | None = None,
                     exclude: Sequence[str] = ()) -> TaskResult:
        """Run one task on an agent of ``agent_type`` chosen by the policy.

        Raises:
            NoAgentAvailable: no live agent of that type (or all excluded).
            RequestTimeout: the chosen agent did not answer in time.
        """
        candidates = [a for a in self._candidates(agent_type) if a not in exclude]
        if not candidates:
            raise NoAgentAvailable(f"no running {agent_type!r} agent to take a {kind!r} task")
        feats = dict(features or {})
        agent_id = self.policy.choose(kind, feats, candidates, self.outstanding)
        if agent_id not in candidates:
            raise UnknownAgent(f"policy {self.policy.name} chose {agent_id!r}, not a candidate")
        task_id = next(self._ids)
        self.stats.submitted += 1
        self.outstanding[agent_id] += 1
        t0 = time.perf_counter()
        ok = False
        try:
            reply = await self._request(agent_id, kind, {"task_id": task_id, **_as_mapping(payload)}, timeout)
            ok = True
        finally:
            latency = time.perf_counter() - t0
            self.outstanding[agent_id] -= 1
            self.policy.observe(agent_id, kind, feats, latency, ok)
            if ok:
                self.stats.completed += 1
                self.stats.per_agent[agent_id] += 1
            else:
                self.stats.failed += 1
        result = TaskResult(task_id, agent_id, kind, reply, latency)
        for fn in self._observers:
            fn(result)
        return result


def _as_mapping(payload: Any) -> dict[str, Any]:
    if payload is None:
        return {}
    if isinstance(payload, Mapping):
        return dict(payload)
    return {"data": payload}
