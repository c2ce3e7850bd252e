"""The thermal agent's decisions: duty cycle for compute agents, emergency pause, events.

:class:`ThermalGovernor` is pure (no clock of its own, no I/O): each call of
:meth:`ThermalGovernor.update` gets the hottest present temperature, the predicted
one, the measured or modelled power and the time, and returns a
:class:`Decision` -- the duty cycle every compute agent should run at, the mode,
which limit is binding, and the ``thermal_throttle`` events to emit.

* **Temperature loop**: PI (:class:`~engine.thermal.controller.PIController`) on
  the *predicted* temperature against ``critical_c - margin_c``.
* **Power loop** (only with a budget): PI on power against ``power_budget_w``.
  The more restrictive loop wins (``duty = min(thermal, power)``).  The duty may
  fall at once but rises by at most ``max_rise_per_s`` a second, so a release (or a
  resume after an emergency) ramps instead of stepping.
* **Emergency**: a present temperature at or above ``emergency_c`` pauses compute
  agents outright; they are resumed once it is below ``resume_below_c`` (default
  ``critical_c``), at the lowest duty, and the PI brings them back up smoothly.
* **Events, no storms**: an event is emitted when the duty moved by at least
  ``event_step`` since the last event (or returned to 1), at most one per
  ``event_min_interval_s`` and ``event_max_per_min`` a minute (so even a badly tuned,
  oscillating loop cannot flood the log); entering and leaving an emergency always
  report.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.thermal.controller import PIController

FREE, THROTTLE, EMERGENCY = "free", "throttle", "emergency"


@dataclass(frozen=True)
class GovernorConfig:
    """Limits and gains of :class:`ThermalGovernor` (see the module docstring)."""

    critical_c: float = 85.0
    emergency_c: float = 95.0
    kp: float = 0.05
    ki: float = 0.01
    margin_c: float = 2.0
    min_duty: float = 0.1
    power_budget_w: float = 0.0
    power_kp: float = 0.005
    power_ki: float = 0.01
    event_step: float = 0.1
    event_min_interval_s: float = 2.0
    event_max_per_min: int = 6
    resume_below_c: float | None = None
    deadzone_c: float = 0.25
    max_rise_per_s: float = 0.2
    deadzone_w: float = 0.5

    def __post_init__(self) -> None:
        if self.emergency_c <= self.critical_c:
            raise ValueError(f"emergency_c ({self.emergency_c}) must be above critical_c ({self.critical_c})")
        if not 0.01 <= self.min_duty < 1.0:
            raise ValueError(f"min_duty must be in [0.01, 1), got {self.min_duty}")

    @property
    def target_c(self) -> float:
        """The temperature setpoint: ``critical_c - margin_c``."""
        return self.critical_c - self.margin_c

    @property
    def resume_c(self) -> float:
        """Below this present temperature paused agents are resumed."""
        return self.critical_c if self.resume_below_c is None else self.resume_below_c


@dataclass(frozen=True)
class ThrottleEvent:
    """A ``thermal_throttle`` event to emit."""

    severity: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What the compute agents should do now.

    Attributes:
        duty: duty cycle for every compute agent, in ``[min_duty, 1]``.
        mode: ``"free"`` (duty 1), ``"throttle"`` or ``"emergency"`` (pause).
        limited_by: ``"thermal"``, ``"power"``, ``"ramp"`` (the rise limit), ``"emergency"``
            or ``None``.
        thermal_duty, power_duty: each loop's own wish (power is 1 without a budget).
        events: events to emit now.
    """

    duty: float
    mode: str
    limited_by: str | None
    thermal_duty: float
    power_duty: float
    events: tuple[ThrottleEvent, ...] = ()

    @property
    def level(self) -> float:
        """Throttle level: the share of compute taken away (0 = none, 1 = paused)."""
        return 1.0 if self.mode == EMERGENCY else round(1.0 - self.duty, 4)


class ThermalGovernor:
    """Decides the compute agents' duty cycle (see the module docstring)."""

    def __init__(self, config: GovernorConfig) -> None:
        self.config = config
        u_max = 1.0 - config.min_duty
        self.thermal = PIController(config.kp, config.ki, config.target_c, u_max, config.deadzone_c)
        self.power = PIController(config.power_kp, config.power_ki, config.power_budget_w, u_max,
                                  config.deadzone_w)
        self.emergency = False
        self.event_duty = 1.0  # duty at the last level event
        self.last_event_t = -float("inf")
        self.level_event_times: deque[float] = deque()
        self.last: Decision | None = None
        self.duty = 1.0  # last duty decided (the rise limit starts from it)

    def update(self, *, now: float, temp_c: float, predicted_c: float | None,
               power_w: float | None, dt: float) -> Decision:
        """One control step; ``dt`` is the time since the previous one."""
        cfg = self.config
        measured = temp_c if predicted_c is None else predicted_c
        thermal_duty = 1.0 - self.thermal.update(measured, dt)
        power_duty = 1.0
        if cfg.power_budget_w > 0 and power_w is not None:
            power_duty = 1.0 - self.power.update(power_w, dt)
        events: list[ThrottleEvent] = []
        info = {"temp_c": round(temp_c, 2), "predicted_c": None if predicted_c is None else round(predicted_c, 2),
                "limit_c": cfg.critical_c, "target_c": cfg.target_c, "emergency_c": cfg.emergency_c,
                "power_w": None if power_w is None else round(power_w, 2),
                "power_budget_w": cfg.power_budget_w or None}

        if not self.emergency and temp_c >= cfg.emergency_c:
            self.emergency = True
            self.thermal.preload(self.thermal.u_max)  # resume at the lowest duty
            events.append(ThrottleEvent(
                "critical", f"emergency: {temp_c:.1f} °C at or above {cfg.emergency_c:g} °C; "
                "pausing compute agents", {**info, "level": 1.0, "duty": 0.0, "mode": EMERGENCY}))
            self.last_event_t = now
        elif self.emergency and temp_c < cfg.resume_c:
            self.emergency = False
            duty = max(cfg.min_duty, min(thermal_duty, power_duty, cfg.min_duty + cfg.max_rise_per_s * dt))
            events.append(ThrottleEvent(
                "warning", f"cooled to {temp_c:.1f} °C (below {cfg.resume_c:g} °C); resuming compute "
                f"agents at duty {duty:.0%}", {**info, "level": round(1 - duty, 4), "duty": round(duty, 4),
                                                  "mode": THROTTLE}))
            self.event_duty = duty
            self.last_event_t = now

        if self.emergency:
            self.duty = cfg.min_duty
            decision = Decision(cfg.min_duty, EMERGENCY, "emergency", thermal_duty, power_duty, tuple(events))
            self.last = decision
            return decision

        duty = max(cfg.min_duty, min(1.0, thermal_duty, power_duty, self.duty + cfg.max_rise_per_s * dt))
        self.duty = duty
        if duty >= 0.999:
            duty, limited = 1.0, None
        elif duty < min(thermal_duty, power_duty) - 1e-9:
            limited = "ramp"
        else:
            limited = "thermal" if thermal_duty <= power_duty else "power"
        mode = FREE if duty == 1.0 else THROTTLE
        if not events:
            events.extend(self._level_event(now, duty, mode, limited, info))
        decision = Decision(duty, mode, limited, thermal_duty, power_duty, tuple(events))
        self.last = decision
        return decision

    def _level_event(self, now: float, duty: float, mode: str, limited: str | None,
                     info: dict[str, Any]) -> list[ThrottleEvent]:
        cfg = self.config
        released = duty == 1.0 and self.event_duty < 1.0
        moved = abs(duty - self.event_duty) >= cfg.event_step
        if not (released or moved) or now - self.last_event_t < cfg.event_min_interval_s:
            return []
        while self.level_event_times and self.level_event_times[0] <= now - 60.0:
            self.level_event_times.popleft()
        if len(self.level_event_times) >= cfg.event_max_per_min:
            return []
        self.level_event_times.append(now)
        data = {**info, "level": round(1.0 - duty, 4), "duty": round(duty, 4), "mode": mode, "limited_by": limited}
        if released:
            event = ThrottleEvent("info", f"released compute agents (duty 100%; predicted "
                                  f"{_fmt(info['predicted_c'])} °C, limit {cfg.critical_c:g} °C)", data)
        else:
            if limited == "power":
                why = f"power {_fmt(info['power_w'])} W vs budget {cfg.power_budget_w:g} W"
            else:
                why = f"predicted {_fmt(info['predicted_c'])} °C vs target {cfg.target_c:g} °C"
            verb = "throttling compute agents to" if self.event_duty == 1.0 else "compute agents now at"
            event = ThrottleEvent("warning", f"{verb} duty {duty:.0%} ({why})", data)
        self.event_duty = duty
        self.last_event_t = now
        return [event]

    def state(self) -> dict[str, Any]:
        """Plain-data state (for checkpoints)."""
        return {"thermal": self.thermal.state(), "power": self.power.state(),
                "emergency": self.emergency, "event_duty": self.event_duty, "duty": self.duty}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`."""
        self.thermal.load(state.get("thermal", {}))
        self.power.load(state.get("power", {}))
        self.emergency = bool(state.get("emergency", False))
        self.event_duty = float(state.get("event_duty", 1.0))
        self.duty = float(state.get("duty", 1.0))


def _fmt(value: Any) -> str:
    return "?" if value is None else f"{float(value):.1f}"
