"""Per-agent service times that forget, and the dispatch choice made from them.

Design note
-----------
*What is learned.* For every task kind and every agent, how long the agent takes to
serve one task (its service time, not the queueing delay in front of it).  The
dispatcher measures it from completions alone: an agent handles its inbox in order,
so a task's service began when it was sent or when the agent's previous task
finished, whichever is later (:func:`service_time`).

*Forgetting.* Agents change speed (throttled by the thermal agent, a core taken by
another process), so the estimates must follow.  As in discounted Thompson sampling
(Raj & Kalyani, 2017) and discounted UCB (Garivier & Moulines, 2011), every
observation of a kind first multiplies the statistics of *all* that kind's agents by
``discount`` and then adds the new sample to its agent: the memory is about
``1 / (1 - discount)`` observations, and an agent that stops being chosen loses
weight, so its posterior widens and it gets re-explored -- which is how a recovered
agent is noticed.

*Change detection.*  Discounting alone needs about ``1 / (1 - discount)`` tasks to
move an estimate after an abrupt change.  So, as in monitored bandits (Cao et al.,
2019, M-UCB: discard an arm's history when a change detector fires), three
successive samples of an agent that all miss its mean on the same side by more than
four standard deviations and 30 % replace its history: the agent that was just
throttled is judged on those three samples at once.

*The choice.* Sending every task to the fastest agent would overload it; the right
greedy rule for parallel servers with known speeds is *shortest expected delay*:
pick the agent minimising ``(tasks in flight + 1) * mean service time``.  The learned
policy does the same with each agent's mean service time *drawn from its posterior*
(Thompson sampling): a Normal around the discounted mean whose spread shrinks as
``1 / sqrt(weight)`` and widens again as the weight decays (:meth:`ArmParams.posterior`).  Uncertain agents sometimes win the draw
and get measured; well-known ones are chosen on their merits.  An agent never seen
gets the best known mean as an optimistic prior, so a new agent is tried at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PRIOR_WEIGHT = 0.5
"""Pseudo-observations of the prior added to every agent's posterior."""
REL_SIGMA_FLOOR = 0.05
"""Smallest per-sample spread assumed, as a fraction of the mean (guards overconfidence)."""
ABS_SIGMA_FLOOR = 1e-6
CHANGE_RUN = 3
"""Consecutive surprising samples (same side) that reset an agent's estimate."""
CHANGE_REL = 0.3
"""A sample is surprising if it is off the mean by more than 4 sd and this fraction."""


@dataclass(frozen=True)
class ArmParams:
    """What the dispatcher needs of one agent: discounted weight, mean and spread (s)."""

    weight: float
    mean: float
    sd: float

    def posterior(self) -> tuple[float, float]:
        """Mean and standard deviation of the posterior of the mean service time.

        The per-sample spread mixes the measured one (weight ``weight``) with a wide
        prior one, ``sd = mean`` (weight :data:`PRIOR_WEIGHT`): a well-measured agent
        is judged on its data, one whose weight has decayed is uncertain again.
        """
        w = self.weight + PRIOR_WEIGHT
        sample_sd = max(self.sd, REL_SIGMA_FLOOR * self.mean, ABS_SIGMA_FLOOR)
        var = (self.weight * sample_sd**2 + PRIOR_WEIGHT * self.mean**2) / w
        return self.mean, math.sqrt(var / w)


class _Arm:
    __slots__ = ("count", "surprises", "total", "total_sq", "weight")

    def __init__(self, weight: float = 0.0, total: float = 0.0, total_sq: float = 0.0, count: int = 0) -> None:
        self.weight = weight
        self.total = total
        self.total_sq = total_sq
        self.count = count
        self.surprises: list[float] = []

    def reset(self, samples: list[float]) -> None:
        """Forget the past: the arm is these samples only (after a detected change)."""
        self.weight = float(len(samples))
        self.total = sum(samples)
        self.total_sq = sum(x * x for x in samples)
        self.surprises = []

    @property
    def mean(self) -> float:
        return self.total / self.weight if self.weight > 0 else math.nan

    @property
    def sd(self) -> float:
        if self.weight <= 0:
            return math.nan
        mean = self.mean
        return math.sqrt(max(self.total_sq / self.weight - mean * mean, 0.0))


class ServiceTimeModel:
    """Discounted mean and spread of service time per (task kind, agent).

    Args:
        discount: factor applied to every agent of a kind at each observation of that
            kind (0 < discount <= 1; 1 = never forget).
    """

    def __init__(self, discount: float = 0.98) -> None:
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be within (0, 1], got {discount}")
        self.discount = discount
        self.changes = 0
        self._arms: dict[str, dict[str, _Arm]] = {}

    def update(self, kind: str, agent: str, seconds: float) -> None:
        """Fold in one measured service time of ``agent`` for a ``kind`` task."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        arms = self._arms.setdefault(kind, {})
        for arm in arms.values():
            arm.weight *= self.discount
            arm.total *= self.discount
            arm.total_sq *= self.discount
        arm = arms.get(agent)
        if arm is None:
            arm = arms[agent] = _Arm()
        arm.count += 1
        verdict = self._surprise(arm, seconds)
        if verdict == "reset":
            self.changes += 1
            return
        if verdict == "held":
            return
        _release(arm)  # held samples were outliers after all
        arm.weight += 1.0
        arm.total += seconds
        arm.total_sq += seconds * seconds

    @staticmethod
    def _surprise(arm: _Arm, seconds: float) -> str:
        """Change detection: ``"held"`` a surprising sample, ``"reset"`` the arm, or ``"normal"``.

        A sample off the mean by more than 4 sd and :data:`CHANGE_REL` is held back
        (not yet folded in, so it cannot widen the spread it is judged by);
        :data:`CHANGE_RUN` held samples in a row on the same side replace the arm's
        history.  An unsurprising sample releases the held ones as outliers, clipped
        to the surprise threshold (one wild sample must not blind the detector).
        """
        if arm.weight < CHANGE_RUN:
            return "normal"
        mean = arm.mean
        if abs(seconds - mean) <= _threshold(arm):
            return "normal"
        if arm.surprises and (arm.surprises[-1] > mean) != (seconds > mean):
            _release(arm)
        arm.surprises.append(seconds)
        if len(arm.surprises) < CHANGE_RUN:
            return "held"
        arm.reset(arm.surprises)
        return "reset"

    def params(self, kind: str, agent: str) -> ArmParams | None:
        """The agent's current estimate for ``kind``, or ``None`` if never observed."""
        arm = self._arms.get(kind, {}).get(agent)
        if arm is None or arm.weight <= 0:
            return None
        return ArmParams(arm.weight, arm.mean, arm.sd)

    def mean(self, kind: str, agent: str) -> float | None:
        """The discounted mean service time, or ``None``."""
        p = self.params(kind, agent)
        return None if p is None else p.mean

    def kinds(self) -> list[str]:
        """Task kinds seen."""
        return sorted(self._arms)

    def agents(self, kind: str | None = None) -> list[str]:
        """Agents seen (for one kind, or any)."""
        if kind is not None:
            return sorted(self._arms.get(kind, {}))
        return sorted({a for arms in self._arms.values() for a in arms})

    def forget(self, agent: str) -> None:
        """Drop an agent (destroyed)."""
        for arms in self._arms.values():
            arms.pop(agent, None)

    def export(self) -> dict[str, dict[str, list[float]]]:
        """``{kind: {agent: [weight, mean_s, sd_s]}}`` -- what the learning agent publishes."""
        return {kind: {agent: [round(arm.weight, 4), arm.mean, arm.sd]
                       for agent, arm in arms.items() if arm.weight > 0}
                for kind, arms in self._arms.items()}

    def state(self) -> dict[str, Any]:
        """Checkpointable state."""
        return {"discount": self.discount,
                "arms": {kind: {agent: [a.weight, a.total, a.total_sq, a.count] for agent, a in arms.items()}
                         for kind, arms in self._arms.items()}}

    def load(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state` (the current ``discount`` setting is kept)."""
        self._arms = {str(kind): {str(agent): _Arm(float(v[0]), float(v[1]), float(v[2]), int(v[3]))
                                  for agent, v in arms.items()}
                      for kind, arms in dict(state.get("arms", {})).items()}


def _threshold(arm: _Arm) -> float:
    return max(4.0 * arm.sd, CHANGE_REL * arm.mean)


def _release(arm: _Arm) -> None:
    """Fold held samples in as outliers, clipped to the surprise threshold around the mean."""
    if not arm.surprises:
        return
    mean, limit = arm.mean, _threshold(arm)
    for x in arm.surprises:
        x = min(max(x, mean - limit), mean + limit)
        arm.weight += 1.0
        arm.total += x
        arm.total_sq += x * x
    arm.surprises = []


def parse_params(raw: Mapping[str, Any]) -> dict[str, ArmParams]:
    """``{agent: [weight, mean, sd]}`` (as published) to :class:`ArmParams`; bad rows skipped."""
    out = {}
    for agent, row in raw.items():
        try:
            weight, mean, sd = (float(x) for x in row)
        except (TypeError, ValueError):
            continue
        if weight > 0 and math.isfinite(mean) and mean > 0 and math.isfinite(sd):
            out[str(agent)] = ArmParams(weight, mean, sd)
    return out


def choose_sed(
    candidates: Sequence[str],
    outstanding: Mapping[str, int],
    params: Mapping[str, ArmParams],
    rng: random.Random | None,
    ahead: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """Shortest expected delay, with Thompson-sampled service times; returns ``(chosen, greedy)``.

    An agent's expected delay for this task is the work already waiting for it plus
    this task's service: ``ahead[agent] + mean`` when ``ahead`` (seconds of work in
    flight, by the same model) is given, else ``(outstanding + 1) * mean``.  The
    Thompson draw scales the whole delay by ``draw / mean`` (one draw of the agent's
    speed).  ``greedy`` is what the posterior means alone would pick;
    ``chosen != greedy`` marks an exploring decision.  With ``rng=None`` the choice
    is greedy.  Agents without parameters get the best known mean as an optimistic
    prior (and the prior's wide spread).  Ties go to the earlier candidate.

    Raises:
        ValueError: no candidates.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    known = [params[a].mean for a in candidates if a in params]
    prior_mean = min(known) if known else 1.0
    best = greedy = candidates[0]
    best_score = greedy_score = math.inf
    for agent in candidates:
        p = params.get(agent) or ArmParams(0.0, prior_mean, prior_mean)
        mean, spread = p.posterior()
        if ahead is not None:
            delay = ahead.get(agent, 0.0) + mean
        else:
            delay = (outstanding.get(agent, 0) + 1) * mean
        if delay < greedy_score:
            greedy, greedy_score = agent, delay
        factor = 1.0 if rng is None else max(rng.gauss(mean, spread), 0.02 * mean) / mean
        if delay * factor < best_score:
            best, best_score = agent, delay * factor
    return best, greedy


def service_time(now: float, latency_s: float, previous_completion: float | None) -> float:
    """Service time of a task on an in-order agent, from the dispatcher's clock alone.

    The task was sent at ``now - latency_s``; it started when it was sent or when the
    same agent's previous task completed, whichever is later.
    """
    sent = now - latency_s
    start = sent if previous_completion is None else max(sent, previous_completion)
    return max(now - start, 0.0)
