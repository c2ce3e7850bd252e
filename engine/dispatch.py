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


# --- adaptive policies (issue 5): baselines, the oracle, and the learned policy -----------------


class RandomChoice:
    """A uniformly random candidate (seeded), ignoring load and speed."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        import random

        self._rng = random.Random(seed)

    def choose(self, kind: str, features: Mapping[str, float], candidates: Sequence[str],
               outstanding: Mapping[str, int]) -> str:
        """Any candidate, uniformly."""
        return self._rng.choice(list(candidates))

    def observe(self, agent_id: str, kind: str, features: Mapping[str, float],
                latency_s: float, ok: bool) -> None:
        """Random learns nothing."""


class PowerOfTwoChoices:
    """Two random candidates; the one with fewer tasks in flight (Mitzenmacher, 2001)."""

    name = "p2c"

    def __init__(self, seed: int | None = None) -> None:
        import random

        self._rng = random.Random(seed)

    def choose(self, kind: str, features: Mapping[str, float], candidates: Sequence[str],
               outstanding: Mapping[str, int]) -> str:
        """The less loaded of two distinct random candidates (ties: either, at random)."""
        if len(candidates) == 1:
            return candidates[0]
        a, b = self._rng.sample(list(candidates), 2)
        qa, qb = outstanding.get(a, 0), outstanding.get(b, 0)
        return a if qa < qb or (qa == qb and self._rng.random() < 0.5) else b

    def observe(self, agent_id: str, kind: str, features: Mapping[str, float],
                latency_s: float, ok: bool) -> None:
        """P2C learns nothing."""


class ShortestExpectedDelay:
    """The agent that would finish this task first, with speeds given, not learned.

    Expected delay of agent ``a``: ``(work in flight at a + this task's work) /
    speed[a]``.  A task's work is ``work(features)`` (default 1 per task, i.e. the
    classic ``(in flight + 1) / speed``).  With the true speeds this is the oracle
    of ``benchmarks/dispatch.py``.  ``speeds`` is a mapping (or a callable returning
    one) agent -> relative speed, read at every choice so the caller can change it
    while tasks run; unknown agents get speed 1.
    """

    name = "sed"

    def __init__(self, speeds: Mapping[str, float] | Callable[[], Mapping[str, float]], *,
                 work: Callable[[Mapping[str, float]], float] | None = None, name: str = "sed") -> None:
        self._speeds = speeds
        self._work = work
        self.name = name
        self._inflight: dict[str, float] = defaultdict(float)
        self._pending: dict[int, float] = {}

    def choose(self, kind: str, features: Mapping[str, float], candidates: Sequence[str],
               outstanding: Mapping[str, int]) -> str:
        """The candidate with the shortest expected delay."""
        speeds = self._speeds() if callable(self._speeds) else self._speeds
        if self._work is None:
            return min(candidates, key=lambda a: (outstanding.get(a, 0) + 1) / max(speeds.get(a, 1.0), 1e-9))
        work = float(self._work(features))
        chosen = min(candidates, key=lambda a: (self._inflight[a] + work) / max(speeds.get(a, 1.0), 1e-9))
        self._inflight[chosen] += work
        self._pending[id(features)] = work  # the dispatcher passes the same dict to observe
        return chosen

    def observe(self, agent_id: str, kind: str, features: Mapping[str, float],
                latency_s: float, ok: bool) -> None:
        """Take the finished task's work off its agent's books."""
        work = self._pending.pop(id(features), None)
        if work is not None:
            self._inflight[agent_id] = max(self._inflight[agent_id] - work, 0.0)


#: Topic under which the learning agent publishes the model LearnedDispatch samples from.
LEARNED_MODEL_TOPIC = "dispatch_model"
#: Message type of the completed-task batches LearnedDispatch sends the learning agent.
TASK_RESULTS_MESSAGE = "task_results"


class LearnedDispatch:
    """Shortest expected delay on service times learned by the learning agent.

    Decisions are made here, in the orchestrator, in microseconds; learning happens
    in the learning agent.  For each candidate the expected delay is the work already
    in flight to it (each task counted at its kind's mean service time there, as
    estimated now) plus this task's mean service time, scaled by a Thompson
    draw from the posterior the learning agent last published
    (:func:`engine.learning.service.choose_sed`, discounted Thompson sampling); the
    smallest wins.  Each completion's service time is
    measured here (:func:`engine.learning.service.service_time`) and sent, in batches,
    to the learning agent through ``sink``.  Until a model for the task's kind is
    published (no learning agent, or it has seen nothing yet) the choice is
    join-shortest-queue.

    Args:
        model: returns the latest published ``{"version", "kinds": {kind: {agent:
            [weight, mean_s, sd_s]}}}`` or ``None``.
        sink: sends a list of completion records to the learning agent; returns False
            if there is none (the batch is then dropped).  ``None``: nothing is sent.
        batch_size: records per batch at most.
        max_batch_age_s: a batch is sent once its oldest record is this old (checked
            at each completion).
        seed: for the Thompson draws.
        clock: monotonic seconds (shared with the agents' clock).
    """

    def __init__(self, model: Callable[[], Mapping[str, Any] | None],
                 sink: Callable[[list[dict[str, Any]]], bool] | None = None, *,
                 batch_size: int = 32, max_batch_age_s: float = 0.05, seed: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import random

        self._model = model
        self._sink = sink
        self._rng = random.Random(seed)
        self._clock = clock
        self.batch_size = batch_size
        self.max_batch_age_s = max_batch_age_s
        self._fallback = JoinShortestQueue()
        self._version: Any = None
        self._params: dict[str, dict[str, Any]] = {}
        self._pending: dict[int, tuple[dict[str, int], bool, str]] = {}
        self._inflight: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # agent -> kind -> n
        self._last_done: dict[str, float] = {}
        self._batch: list[dict[str, Any]] = []
        self._batch_started = 0.0
        self.decisions = 0
        self.explorations = 0
        self.fallbacks = 0
        self.dropped_batches = 0

    @property
    def name(self) -> str:  # type: ignore[override]
        """``"learning"`` (``"learning (jsq until a model is published)"`` before that)."""
        return "learning" if self._params else "learning (jsq until a model is published)"

    def _kind_params(self, kind: str) -> dict[str, Any]:
        from engine.learning.service import parse_params

        published = self._model()
        if published is not None and isinstance(published, Mapping):
            version = published.get("version")
            if version != self._version:
                self._version = version
                kinds = published.get("kinds")
                self._params = {str(k): parse_params(v) for k, v in kinds.items()
                                if isinstance(v, Mapping)} if isinstance(kinds, Mapping) else {}
        return self._params.get(kind, {})

    def choose(self, kind: str, features: Mapping[str, float], candidates: Sequence[str],
               outstanding: Mapping[str, int]) -> str:
        """Thompson-sampled shortest expected delay (JSQ until a model exists)."""
        from engine.learning.service import choose_sed

        params = self._kind_params(kind)
        if not params:
            chosen, explored = self._fallback.choose(kind, features, candidates, outstanding), False
            self.fallbacks += 1
        else:
            ahead = {a: self._work_ahead(a) for a in candidates}
            chosen, greedy = choose_sed(candidates, outstanding, params, self._rng, ahead)
            explored = chosen != greedy
        self._inflight[chosen][kind] += 1
        self.decisions += 1
        self.explorations += explored
        # The dispatcher hands the same features dict to choose and observe.
        self._pending[id(features)] = ({a: int(outstanding.get(a, 0)) for a in candidates}, explored, chosen)
        return chosen

    def _work_ahead(self, agent: str) -> float:
        """Seconds of work in flight to ``agent``, at the current estimates of its speed."""
        total = 0.0
        for kind, count in self._inflight[agent].items():
            if count:
                params = self._params.get(kind, {})
                p = params.get(agent)
                mean = p.mean if p is not None else (min(q.mean for q in params.values()) if params else 0.0)
                total += count * mean
        return total

    def observe(self, agent_id: str, kind: str, features: Mapping[str, float],
                latency_s: float, ok: bool) -> None:
        """Measure the service time and queue the record for the learning agent."""
        from engine.learning.service import service_time

        now = self._clock()
        queue, explored, chosen = self._pending.pop(id(features), ({}, False, agent_id))
        if self._inflight[chosen][kind] > 0:
            self._inflight[chosen][kind] -= 1
        service = service_time(now, latency_s, self._last_done.get(agent_id))
        self._last_done[agent_id] = now
        if self._sink is None:
            return
        if not self._batch:
            self._batch_started = now
        self._batch.append({
            "agent": agent_id, "kind": kind, "service_s": service, "latency_s": latency_s,
            "queue": queue, "features": dict(features), "explored": explored, "ok": ok, "t": now,
        })  # fmt: skip
        if len(self._batch) >= self.batch_size or now - self._batch_started >= self.max_batch_age_s:
            self.flush()

    def flush(self) -> None:
        """Send the records gathered so far to the learning agent."""
        if not self._batch or self._sink is None:
            return
        batch, self._batch = self._batch, []
        try:
            delivered = self._sink(batch)
        except SwarmError:  # the bus refused (lane full, learner gone): learning waits, dispatch goes on
            delivered = False
        if not delivered:
            self.dropped_batches += 1
