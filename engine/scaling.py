"""Auto-scaling policies: how many agents of a scalable type the swarm should run.

The orchestrator calls ``policy.decide(snapshot)`` every ``optimization_interval``
when ``auto_scaling`` is on and applies the decision (emitting a ``scaled`` event).
The default, :class:`ThresholdScaling`, is a plain rule with hysteresis; the
learning agent can install a learned policy through the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import SwarmConfig
    from engine.model import SwarmSnapshot


@dataclass(frozen=True)
class ScalingDecision:
    """Add (``delta > 0``) or retire (``delta < 0``) agents of ``agent_type``, and why."""

    agent_type: str
    delta: int
    reason: str


class ScalingPolicy(Protocol):
    """Anything that turns a snapshot into a scaling decision (or ``None``)."""

    def decide(self, snapshot: "SwarmSnapshot") -> ScalingDecision | None:
        """The decision for this snapshot, or ``None`` to leave things as they are."""
        ...


class ThresholdScaling:
    """Scale compute agents on their mean busy CPU, within the machine's limits.

    Add one when compute agents average above ``high`` % CPU and the machine is below
    ``cpu_critical`` and ``memory_critical``; retire one when they average below ``low``
    % and there are more than the configured ``count``.  One step per decision, so a
    burst cannot overshoot.
    """

    def __init__(self, config: "SwarmConfig", *, agent_type: str = "compute",
                 high: float = 75.0, low: float = 15.0) -> None:
        self.config = config
        self.agent_type = agent_type
        self.high = high
        self.low = low
        section = config.agents.get(agent_type)
        self.minimum = section.count if section is not None else 0

    def decide(self, snapshot: "SwarmSnapshot") -> ScalingDecision | None:
        """One step up, one step down, or ``None``."""
        workers = [a for a in snapshot.agents if a.type == self.agent_type and a.state in ("running", "throttled")]
        if not workers:
            return None
        mean_cpu = sum(a.cpu_percent for a in workers) / len(workers)
        th = self.config.performance_thresholds
        machine = snapshot.machine
        room = len(snapshot.agents) < self.config.max_agents
        if (mean_cpu > self.high and room and machine.cpu_percent < th.cpu_critical
                and machine.memory_percent < th.memory_critical):
            return ScalingDecision(self.agent_type, +1,
                                   f"{self.agent_type} agents busy ({mean_cpu:.0f}% CPU > {self.high:g}%)")
        if mean_cpu < self.low and len(workers) > self.minimum:
            return ScalingDecision(self.agent_type, -1,
                                   f"{self.agent_type} agents idle ({mean_cpu:.0f}% CPU < {self.low:g}%)")
        return None
