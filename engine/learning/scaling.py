"""A learned scaling policy, the threshold rule it competes with, and the measurement.

Why learn anything here
-----------------------
:class:`engine.scaling.ThresholdScaling` adds a compute agent while the compute agents'
mean CPU is above 75 % and retires one below 15 %.  CPU busy is a proxy for "another
agent would help", and on a small machine it misleads in two common cases:

* more agents than free cores: each agent still looks busy (its share of a core),
  so the rule keeps agents that add no throughput;
* memory-bound kernels (the triad): a core stalled on DRAM shows 100 % CPU, so the
  rule scales up although the memory bus is already saturated.

:class:`ThroughputScaling` measures what an extra agent is worth instead.  It keeps
an exponentially weighted estimate of the type's throughput (tasks/s, summed over
its agents) for each agent count it has run at -- sampled only while the agents are
saturated (tasks waiting, or CPU above ``high``), since otherwise throughput shows
demand, not capacity -- and climbs the measured curve:

* saturated and the next count is unmeasured, or measured at least ``min_gain``
  better: add one (the machine-wide CPU and memory limits still apply);
* the count below is measured within ``min_gain`` of the current one (the last
  agent adds nothing), or its measured capacity covers the present demand with
  ``headroom`` to spare, or nothing is waiting and CPU is low: retire one;
* estimates fade (``forget`` per decision), so a count is re-probed after the
  machine's conditions may have changed.

Measured in simulation, not on real processes (``python -m engine.learning.scaling``;
:func:`simulate_scaling` is a fluid model of the machine: 100 tasks/s per agent on a
free core, agents beyond the free cores share them, memory-bound work capped at some
cores' worth; 400 decisions per scenario, seeds 0-4, medians;
``tests/engine/test_learning.py`` checks the direction of these results)::

    scenario                                          work done          mean agents
                                                      threshold learned  threshold learned
    2 cores, CPU-bound, demand 180/s                  100 %     100 %    2.00      2.00
    2 cores, memory-bound (1.3 cores' worth), 120/s   100 %     100 %    2.97      2.00
    2 cores, another process holds one, 90/s          100 %     100 %    1.00      1.00
    2 cores, demand 60/s -> 180/s -> 60/s             100 %     100 %    2.33      1.67
    8 cores, CPU-bound, demand 450/s                  100 %     100 %    7.93      5.98
    8 cores, memory-bound (2.5 cores' worth), 240/s   100 %     100 %    8.69      3.15

Both serve all the demand; the learned policy does it with as many or fewer agents
(up to 64 % fewer on memory-bound work on 8 cores), because it sheds agents the
measured curve says are useless.  On a CPU-bound 2-core machine the two behave the
same: the rule's machine-wide CPU guard already stops it at the core count.

Decision: the orchestrator keeps :class:`ThresholdScaling` as the default policy
(wiring the policy is the orchestrator's business, and the learned one is only as
good as the throughput signal: agents must count their work with ``task_done``;
without any, :class:`ThroughputScaling` defers to the threshold rule).  Install it
with ``swarm.scaling_policy = ThroughputScaling(config)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.scaling import ScalingDecision, ThresholdScaling

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import SwarmConfig
    from engine.model import SwarmSnapshot


class ThroughputScaling:
    """Scale a type on its measured throughput curve (see the module docstring).

    Args:
        config: the swarm configuration (limits, the type's configured count).
        agent_type: the type to scale.
        min_gain: relative throughput an extra agent must add to be kept.
        high: CPU % above which agents count as saturated when no backlog is known.
        low: CPU % below which idle agents are retired.
        smoothing: weight of a new throughput sample in its count's estimate.
        forget: per-decision decay of an estimate's confidence (re-probing).
        headroom: spare capacity kept when shedding agents the demand does not need.
    """

    def __init__(self, config: SwarmConfig, *, agent_type: str = "compute", min_gain: float = 0.1,
                 high: float = 75.0, low: float = 15.0, smoothing: float = 0.5, forget: float = 0.98,
                 headroom: float = 0.15) -> None:
        self.config = config
        self.agent_type = agent_type
        self.min_gain = min_gain
        self.high = high
        self.low = low
        self.smoothing = smoothing
        self.forget = forget
        self.headroom = headroom
        section = config.agents.get(agent_type) if agent_type in config.agents else None
        custom = config.custom_agents.get(agent_type)
        self.minimum = max(1, (section or custom).count if (section or custom) is not None else 1)
        self.curve: dict[int, list[float]] = {}  # agents -> [throughput, confidence]
        self._fallback = ThresholdScaling(config, agent_type=agent_type, high=high, low=low)

    def known(self, n: int) -> float | None:
        """The throughput estimate at ``n`` agents, if still trusted."""
        entry = self.curve.get(n)
        return entry[0] if entry is not None and entry[1] >= 0.25 else None

    def decide(self, snapshot: SwarmSnapshot) -> ScalingDecision | None:
        """One step up, one step down, or ``None``."""
        workers = [a for a in snapshot.agents if a.type == self.agent_type and a.state in ("running", "throttled")]
        n = len(workers)
        for entry in self.curve.values():
            entry[1] *= self.forget
        if n == 0:
            return None
        throughput = sum(a.tasks_per_s for a in workers)
        if throughput <= 0 and not self.curve:  # no throughput signal at all: the CPU rule decides
            return self._fallback.decide(snapshot)
        cpu = sum(a.cpu_percent for a in workers) / n
        backlog = _backlog(snapshot)
        saturated = backlog > n if backlog is not None else cpu > self.high
        if saturated:
            entry = self.curve.setdefault(n, [throughput, 0.0])
            entry[0] += self.smoothing * (throughput - entry[0]) if entry[1] > 0 else throughput - entry[0]
            entry[1] = 1.0
        here = self.known(n)
        below = self.known(n - 1)
        above = self.known(n + 1)
        th = self.config.performance_thresholds
        machine = snapshot.machine
        room = (len(snapshot.agents) < self.config.max_agents and machine.cpu_percent < th.cpu_critical
                and machine.memory_percent < th.memory_critical)
        if n > self.minimum and here is not None and below is not None and below >= here * (1 - self.min_gain):
            return ScalingDecision(self.agent_type, -1, f"{n} {self.agent_type} agents do {here:.1f} tasks/s, "
                                   f"{n - 1} did {below:.1f}: the last one adds nothing")
        if (not saturated and n > self.minimum and below is not None
                and below >= throughput * (1 + self.headroom)):
            return ScalingDecision(self.agent_type, -1, f"demand {throughput:.1f} tasks/s fits in {n - 1} "
                                   f"agents (measured capacity {below:.1f})")
        idle = (backlog == 0 if backlog is not None else True) and cpu < self.low
        if idle and n > self.minimum:
            return ScalingDecision(self.agent_type, -1, f"{self.agent_type} agents idle ({cpu:.0f}% CPU)")
        if saturated and room and (above is None or (here is not None and above > here * (1 + self.min_gain))):
            what = "unmeasured" if above is None else f"measured {above:.1f} tasks/s"
            return ScalingDecision(self.agent_type, +1, f"{self.agent_type} agents saturated at "
                                   f"{throughput:.1f} tasks/s; {n + 1} agents {what}")
        return None


def _backlog(snapshot: SwarmSnapshot) -> float | None:
    d = snapshot.extra.get("dispatch") if isinstance(snapshot.extra, Mapping) else None
    if not isinstance(d, Mapping) or "submitted" not in d:
        return None
    return float(d.get("submitted", 0) - d.get("completed", 0) - d.get("failed", 0))


# --- the measurement -------------------------------------------------------------------------


@dataclass
class Scenario:
    """A synthetic 2-core machine for :func:`simulate_scaling`.

    Attributes:
        name: label.
        demand: tasks/s offered (per step index) -- a callable ``step -> tasks/s``.
        per_agent: tasks/s one agent does on a free core.
        saturation: the most cores' worth of throughput the work can use (memory
            bandwidth); ``inf`` for CPU-bound work.
        external: cores held by other processes.
        cores: the machine's cores.
    """

    name: str
    demand: Callable[[int], float]
    per_agent: float = 100.0
    saturation: float = math.inf
    external: float = 0.0
    cores: int = 2


@dataclass
class ScalingRun:
    """What one simulated policy achieved."""

    completed: float
    offered: float
    mean_agents: float
    mean_backlog: float
    decisions: list[int] = field(default_factory=list)


def simulate_scaling(policy: Any, scenario: Scenario, config: SwarmConfig, *, steps: int = 400,
                     dt: float = 5.0, start: int = 1, seed: int = 0, noise: float = 0.03) -> ScalingRun:
    """Run ``policy.decide`` every ``dt`` simulated seconds against ``scenario``'s machine."""
    from engine.model import AgentInfo, BusInfo, MachineInfo, SwarmSnapshot

    rng = random.Random(seed)
    n, backlog = start, 0.0
    completed = offered = agents_total = backlog_total = 0.0
    submitted = done = 0.0
    history = []
    for step in range(steps):
        free = max(scenario.cores - scenario.external, 0.05)
        share = min(1.0, free / n)
        capacity = scenario.per_agent * min(n * share, scenario.saturation) * math.exp(rng.gauss(0, noise))
        capacity *= 1.0 - 0.02 * max(n - free, 0)  # context-switch cost of oversubscription
        demand = scenario.demand(step)
        offered += demand * dt
        x = min(capacity, demand + backlog / dt)
        backlog = max(0.0, backlog + (demand - x) * dt)
        completed += x * dt
        submitted += demand * dt
        done += x * dt
        busy = x / capacity if capacity > 0 else 0.0
        busy = 1.0 if backlog > 0 else busy
        cpu_each = 100.0 * share * busy
        machine_cpu = 100.0 * min(1.0, (n * share * busy + scenario.external) / scenario.cores)
        agents = tuple(AgentInfo(
            id=f"c{i}", type="compute", slot=i + 1, pid=0, state="running", priority=0, restarts=0,
            cpu_percent=cpu_each, rss_bytes=0, tasks_done=0, tasks_per_s=x / n, messages_in=0,
            messages_out=0, errors=0, heartbeat_age_s=0.0, uptime_s=0.0, duty_cycle=1.0,
            latency_p50_us=0.0, latency_p99_us=0.0) for i in range(n))  # fmt: skip
        snap = SwarmSnapshot(name="sim", time=step * dt, uptime_s=step * dt, agents=agents, bus=BusInfo(),
                             machine=MachineInfo(cpu_percent=machine_cpu, memory_percent=30.0),
                             max_agents=config.max_agents,
                             extra={"dispatch": {"submitted": int(submitted), "completed": int(done), "failed": 0}})
        agents_total += n
        backlog_total += backlog
        decision = policy.decide(snap)
        if decision is not None:
            n = max(1, n + decision.delta)
        history.append(n)
    return ScalingRun(completed, offered, agents_total / steps, backlog_total / steps, history)


def scenarios() -> list[Scenario]:
    """The scenarios quoted in the module docstring (demand below capacity: queues stay bounded)."""
    return [
        Scenario("2 cores, CPU-bound, demand 180/s", lambda s: 180.0),
        Scenario("2 cores, memory-bound (1.3 cores' worth), demand 120/s", lambda s: 120.0, saturation=1.3),
        Scenario("2 cores, another process holds one, demand 90/s", lambda s: 90.0, external=1.0),
        Scenario("2 cores, demand 60/s then 180/s then 60/s",
                 lambda s: 180.0 if 130 <= s < 270 else 60.0),
        Scenario("8 cores, CPU-bound, demand 450/s", lambda s: 450.0, cores=8),
        Scenario("8 cores, memory-bound (2.5 cores' worth), demand 240/s", lambda s: 240.0, saturation=2.5,
                 cores=8),
    ]


def compare(config: SwarmConfig, seeds: range = range(5)) -> dict[str, dict[str, dict[str, float]]]:
    """Both policies on every scenario: median completed share and mean agents over ``seeds``."""
    import statistics

    out: dict[str, dict[str, dict[str, float]]] = {}
    for sc in scenarios():
        row: dict[str, dict[str, float]] = {}
        for label, make in (("threshold", lambda: ThresholdScaling(config)),
                            ("learned", lambda: ThroughputScaling(config))):
            runs = [simulate_scaling(make(), sc, config, seed=s) for s in seeds]
            row[label] = {"completed_share": statistics.median(r.completed / r.offered for r in runs),
                          "mean_agents": statistics.median(r.mean_agents for r in runs),
                          "mean_backlog": statistics.median(r.mean_backlog for r in runs)}
        out[sc.name] = row
    return out


if __name__ == "__main__":  # pragma: no cover - prints the table of the docstring
    from engine.config import default_config

    for name, row in compare(default_config().with_overrides(**{"agents.compute.count": 1})).items():
        print(f"{name:40s} " + "  ".join(f"{k}: {v['completed_share']:.3f} done, {v['mean_agents']:.2f} agents, "
                                         f"backlog {v['mean_backlog']:.0f}" for k, v in row.items()))
