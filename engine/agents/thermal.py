"""``ThermalAgent``: keeps the machine under its thermal and power limits by throttling compute agents.

Every cycle (``agents.thermal.cycle_interval``, 0.5 s by default):

1. **Temperature.** Where the machine has CPU or GPU temperature sensors (sysfs
   thermal zones / hwmon: kinds ``cpu_package``, ``cpu_core``, ``gpu``; NVML GPUs) the
   hottest one is used and the prediction ``horizon_s`` ahead extrapolates its recent
   trajectory (:class:`~engine.thermal.TrajectoryPredictor`: least-squares slope over
   the last ``max(horizon_s, 5)`` s, decaying with the model's R*C as the assumed time
   constant); the controller acts on ``max(present, predicted)`` -- throttle on the
   prediction, release on the present reading.  Where
   there is none (VMs, like the one this was written on) a first-order RC model per
   CPU package (:class:`~engine.thermal.PackageModels`) is driven by the measured
   per-core utilisation, and its constant-load prediction is used.  Every reading says
   where it came from: ``source`` is ``"sensor"`` or ``"modelled"`` (and ``modelled``
   true/false) in the published ``thermal`` topic, whose ``sensors`` list holds only
   real sensors (each with ``source: "sensor"``) while the model's packages are under
   ``model_packages`` (each with ``source: "modelled"``); the ``modelled`` gauge is 1 or
   0, and event messages end in ``[modelled]`` when they are about the model.
2. **Power.** RAPL package domains (plus NVML GPU power) where readable, else the model.
3. **Control.** :class:`~engine.thermal.ThermalGovernor`: PI with anti-windup on the
   predicted temperature against ``thermal_critical - margin_c``, and (with
   ``power_budget_w``) on power; the result is one duty cycle for every compute agent,
   applied with ``request_action("throttle", id, duty)`` when it moved by at least
   0.02 (a difference of 0.003 or more is sent once it has lasted 3 s, so the loop settles
   on the exact duty instead of cycling around a dead band).  At ``emergency_c`` compute agents are paused (``request_action("pause")``);
   they are resumed at the lowest duty once the temperature is below
   ``thermal_critical``.  ``thermal_throttle`` events report the level (share of
   compute taken away) only when it changes by ``event_step`` or more.

Gauges: ``temp_c`` (hottest present, °C), ``predicted_c`` (°C, ``horizon_s`` ahead),
``modelled`` (1 = model, 0 = sensor), ``duty_target_pct`` (%), ``power_w`` (W),
``throttled`` (compute agents now throttled or paused), ``pred_err_K`` (mean absolute
error of past predictions, K).

On a clean stop the agent releases what it throttled or paused (a destroyed thermal
agent must not leave compute agents paused forever).  Options besides the config
keys: ``sysfs_root`` (default ``/sys``), ``thermal_critical`` (overrides
``performance_thresholds.thermal_critical``), ``clock`` and ``collectors`` (tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.agents.base import BaseAgent
from engine.communicator import Message
from engine.errors import ChannelError, RequestTimeout
from engine.events import THERMAL_THROTTLE
from engine.thermal import (
    GovernorConfig,
    PackageModels,
    PredictionScorer,
    RCParams,
    ThermalGovernor,
    TrajectoryPredictor,
    cpu_packages,
    gain_scale,
)
from engine.thermal.governor import EMERGENCY, Decision

#: Kinds of sysfs sensors the controller watches (others, e.g. NVMe, are shown only).
CONTROLLED_KINDS = ("cpu_package", "cpu_core", "gpu")
#: Smallest duty change worth a throttle command at once.
DUTY_DEADBAND = 0.02
#: A smaller difference between the wanted and the commanded duty is sent once it has
#: lasted this long, so the loop settles on the exact duty instead of cycling around it.
DUTY_SETTLE_S = 3.0
DUTY_FINE = 0.003
#: Time allowed for each action request to the orchestrator.
ACTION_TIMEOUT_S = 2.0


class ThermalAgent(BaseAgent):
    """Thermal model / sensors, prediction and PI throttling (see the module docstring)."""

    agent_type = "thermal"
    key_metric = "temp_c"

    def __init__(self, agent_id: str = "", *, ambient_c: float = 35.0, resistance_c_per_w: float = 0.5,
                 capacitance_j_per_c: float = 40.0, watts_per_util: float = 0.65, idle_watts: float = 10.0,
                 horizon_s: float = 10.0, emergency_c: float = 95.0, power_budget_w: float = 0.0,
                 kp: float = 0.05, ki: float = 0.01, margin_c: float = 2.0, min_duty: float = 0.1,
                 power_kp: float = 0.005, power_ki: float = 0.01, event_step: float = 0.1,
                 sysfs_root: str = "/sys", thermal_critical: float | None = None,
                 clock: Callable[[], float] | None = None, collectors: dict[str, Any] | None = None,
                 **options: Any) -> None:
        super().__init__(agent_id, sysfs_root=sysfs_root, **options)
        self.params = RCParams(ambient_c, resistance_c_per_w, capacitance_j_per_c, watts_per_util, idle_watts)
        self.horizon_s = float(horizon_s)
        self.sysfs_root = Path(sysfs_root)
        self._critical_override = thermal_critical
        self._gains: dict[str, float] = {
            "emergency_c": float(emergency_c), "power_budget_w": float(power_budget_w), "kp": kp, "ki": ki,
            "margin_c": margin_c, "min_duty": min_duty, "power_kp": power_kp, "power_ki": power_ki,
            "event_step": event_step}
        self.clock = clock or time.monotonic
        self.collectors = collectors
        self.sent: dict[str, float] = {}  # duty last commanded per compute agent (this incarnation)
        self.paused: set[str] = set()  # compute agents this agent paused
        self.owed: set[str] = set()  # throttled by an earlier incarnation: must be re-commanded
        self.action_error: str | None = None
        self._differs_since: dict[str, float] = {}
        self.latest: dict[str, Any] | None = None
        self._restored: dict[str, Any] | None = None
        self._last_t: float | None = None
        self.gain_scale = 1.0

    # --- start-up -----------------------------------------------------------------------

    def on_start(self) -> None:
        """Open the collectors, learn the package topology, build model and governor."""
        self.context.heartbeat()
        if self.collectors is None:
            from engine.telemetry import (
                NvmlCollector,
                PsutilCollector,
                RaplCollector,
                ThermalCollector,
            )

            self.collectors = {
                "psutil": PsutilCollector(),
                "thermal": ThermalCollector(sysfs_root=self.sysfs_root),
                "rapl": RaplCollector(sysfs_root=self.sysfs_root),
                "nvml": NvmlCollector(),
            }
        self.context.heartbeat()
        critical = (self.context.config.performance_thresholds.thermal_critical
                    if self._critical_override is None else float(self._critical_override))
        gains = dict(self._gains)
        has_sensors = any(s.kind in CONTROLLED_KINDS for s in self.collectors["thermal"].sample().sensors)
        # Model only: scale the temperature gains down for a model more sensitive than the
        # default (see engine.thermal.model.gain_scale); real sensors use them as given.
        self.gain_scale = 1.0 if has_sensors else gain_scale(self.params, self.horizon_s)
        gains["kp"] = float(gains["kp"]) * self.gain_scale
        gains["ki"] = float(gains["ki"]) * self.gain_scale
        self.governor = ThermalGovernor(GovernorConfig(critical_c=critical, **gains))
        cores = self._per_core()
        self.models = PackageModels(self.params, cpu_packages(self.sysfs_root, len(cores) or None))
        self.predictor = TrajectoryPredictor(window_s=max(self.horizon_s, 5.0))
        self.scorer = PredictionScorer(tolerance_s=0.05)
        if self._restored is not None:
            self.governor.load(self._restored.get("governor") or {})
            self.models.load_temperatures(self._restored.get("temps") or {})
            self.paused = set(self._restored.get("paused") or ())
            self.owed = {aid for aid, duty in (self._restored.get("sent") or {}).items() if duty < 1.0}
        self._last_t = self.clock()

    def _per_core(self) -> tuple[float, ...]:
        cpu = self.collectors["psutil"].sample().cpu  # type: ignore[index]
        return tuple(cpu.per_core_percent) if cpu.available else ()

    # --- the cycle ----------------------------------------------------------------------

    def execute_cycle(self) -> None:
        """Read or model the temperature, predict, decide, act, report."""
        now = self.clock()
        dt = 0.0 if self._last_t is None else max(0.0, now - self._last_t)
        self._last_t = now
        per_core = self._per_core()
        self.models.step(per_core, dt)
        gpus = self.collectors["nvml"].sample().gpus  # type: ignore[index]
        reading = self._temperature(now, gpus)
        power_w, power_source = self._power(gpus)
        predicted = reading["predicted_c"]
        if reading["source"] == "sensor" and predicted is not None:
            # a fitted trajectory can swing far either way: throttle on it, release on the present
            predicted = max(predicted, reading["hottest_c"])
        decision = self.governor.update(now=now, temp_c=reading["hottest_c"], predicted_c=predicted,
                                        power_w=power_w, dt=dt)
        computes = self._compute_agents()
        self._actuate(decision, computes, now)
        for event in decision.events:
            label = " [modelled]" if reading["source"] == "modelled" else ""
            self.emit_event(THERMAL_THROTTLE, event.message + label, severity=event.severity,
                            **event.data, source=reading["source"], agents=computes)
        util = sum(per_core) / len(per_core) if per_core else None
        self.latest = self._report(reading, decision, power_w, power_source, util)
        self.task_done()
        try:
            self.publish("thermal", self.latest)
        except ChannelError as exc:
            self.context.log.warning("thermal reading not published: %s", exc)

    def _temperature(self, now: float, gpus: Any) -> dict[str, Any]:
        th = self.collectors["thermal"].sample()  # type: ignore[index]
        controlled = [s for s in th.sensors if s.kind in CONTROLLED_KINDS]
        gpu_temps = [(f"gpu{g.index}", g.temperature_c) for g in gpus if g.temperature_c is not None]
        sensors: list[dict[str, Any]] = [
            {"id": s.id, "label": s.label, "kind": s.kind, "temperature_c": s.temperature_c,
             "critical_c": s.critical_c, "max_c": s.max_c, "source": "sensor", "modelled": False}
            for s in th.sensors
        ]
        sensors += [{"id": gid, "label": f"GPU {gid[3:]}", "kind": "gpu", "temperature_c": t, "critical_c": None,
                     "max_c": None, "source": "sensor", "modelled": False} for gid, t in gpu_temps]
        crit = self.governor.config.critical_c
        packages: list[dict[str, Any]] = []
        if controlled or gpu_temps:
            candidates = [(s.id, s.temperature_c) for s in controlled] + gpu_temps
            hottest_id, hottest = max(candidates, key=lambda item: item[1])
            self.predictor.add(now, hottest)
            predicted = self.predictor.predict(self.horizon_s, tau_s=self.params.tau_s)
            source, predictor, why = "sensor", "trajectory", ""
        else:
            pkg, hottest = self.models.hottest()
            hottest_id = f"model/package{pkg}"
            predicted = self.models.predict_hottest(self.horizon_s)
            source, predictor = "modelled", "model"
            why = th.reason or "no CPU or GPU temperature sensor"
            for pkg_id, model in self.models.models.items():
                packages.append({
                    "id": f"model/package{pkg_id}", "label": f"CPU package {pkg_id} (modelled)",
                    "kind": "cpu_package", "temperature_c": round(model.temperature_c, 2),
                    "critical_c": crit, "max_c": self.governor.config.target_c, "source": "modelled",
                    "modelled": True, "util_pct": round(model.util_percent, 1), "power_w": round(model.power_w, 2),
                })
        self.scorer.observed(now, hottest)
        if predicted is not None:
            self.scorer.predicted(now + self.horizon_s, predicted)
        return {"source": source, "hottest_c": hottest, "hottest_id": hottest_id, "predicted_c": predicted,
                "predictor": predictor, "sensors": sensors, "model_packages": packages, "why_modelled": why}

    def _power(self, gpus: Any) -> tuple[float | None, str]:
        rapl = self.collectors["rapl"].sample()  # type: ignore[index]
        package = [d.watts for d in rapl.domains if d.parent is None and d.watts is not None]
        gpu = [g.power_w for g in gpus if g.power_w is not None]
        if package or gpu:
            names = [n for n, vals in (("rapl", package), ("nvml", gpu)) if vals]
            return sum(package) + sum(gpu), "+".join(names)
        return self.models.total_power_w(), "modelled"

    # --- acting on compute agents ----------------------------------------------------------

    def _compute_agents(self) -> list[str]:
        try:
            entries = self.communicator.directory.live_entries()
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - shared memory
            self.context.log.warning("cannot read the agent directory: %s", exc)
            return []
        return [e.agent_id for e in entries if e.agent_type == "compute"]

    def _act(self, action: str, agent_id: str, value: Any = None, timeout: float = ACTION_TIMEOUT_S) -> bool:
        try:
            reply = self.request_action(action, agent_id, value, timeout=timeout)
        except (RequestTimeout, ChannelError) as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if reply.get("ok"):
            return True
        error = f"{action} {agent_id}: {reply.get('error')}"
        if error != self.action_error:
            self.context.log.warning("action refused: %s", error)
        self.action_error = error
        return False

    def _needs_command(self, aid: str, target: float, now: float) -> bool:
        sent = self.sent.get(aid)
        if sent is None:
            return target < 1.0 or aid in self.owed
        gap = abs(target - sent)
        if gap < DUTY_FINE:
            self._differs_since.pop(aid, None)
            return False
        since = self._differs_since.setdefault(aid, now)
        return gap >= DUTY_DEADBAND or target == 1.0 or now - since >= DUTY_SETTLE_S

    def _actuate(self, decision: Decision, computes: list[str], now: float) -> None:
        live = set(computes)
        self.sent = {a: d for a, d in self.sent.items() if a in live}
        self.paused &= live
        self.owed &= live
        for aid in computes:
            if decision.mode == EMERGENCY:
                if aid not in self.paused:
                    if self.sent.get(aid) != decision.duty and self._act("throttle", aid, decision.duty):
                        self.sent[aid] = decision.duty
                    if self._act("pause", aid):
                        self.paused.add(aid)
                continue
            if aid in self.paused and self._act("resume", aid):
                self.paused.discard(aid)
            target = round(decision.duty, 3)
            if self._needs_command(aid, target, now) and self._act("throttle", aid, target):
                self.sent[aid] = target
                self.owed.discard(aid)
                self._differs_since.pop(aid, None)

    def on_stop(self) -> None:
        """Give back what this agent took: resume paused and un-throttle throttled agents.

        Short timeouts, and the first refusal ends it: when the whole swarm is shutting
        down the orchestrator refuses (or does not answer) and there is nothing to give back.
        """
        todo = [("resume", aid, None) for aid in sorted(self.paused)]
        todo += [("throttle", aid, 1.0) for aid, duty in sorted(self.sent.items()) if duty < 1.0]
        for action, aid, value in todo:
            if not self._act(action, aid, value, timeout=0.5):
                break

    # --- reporting -----------------------------------------------------------------------

    def _report(self, reading: dict[str, Any], decision: Decision, power_w: float | None, power_source: str,
                util: float | None) -> dict[str, Any]:
        cfg = self.governor.config
        modelled = reading["source"] == "modelled"
        predicted = reading["predicted_c"]
        throttled = {a: d for a, d in self.sent.items() if d < 1.0}
        self.set_gauge("temp_c", round(reading["hottest_c"], 2))
        self.set_gauge("predicted_c", round(predicted, 2) if predicted is not None else reading["hottest_c"])
        self.set_gauge("modelled", 1.0 if modelled else 0.0)
        self.set_gauge("duty_target_pct", round(100.0 * (0.0 if decision.mode == EMERGENCY else decision.duty), 1))
        self.set_gauge("power_w", round(power_w, 2) if power_w is not None else 0.0)
        self.set_gauge("throttled", float(len(set(throttled) | self.paused)))
        self.set_gauge("pred_err_K", round(self.scorer.mae, 3) if self.scorer.mae is not None else 0.0)
        return {
            "source": reading["source"], "modelled": modelled, "available": True,
            "reason": reading["why_modelled"] if modelled else "",
            "sensors": reading["sensors"], "model_packages": reading["model_packages"],
            "hottest_c": round(reading["hottest_c"], 2), "hottest_id": reading["hottest_id"],
            "predicted_c": None if predicted is None else round(predicted, 2), "horizon_s": self.horizon_s,
            "predictor": reading["predictor"],
            "prediction_mae_K": None if self.scorer.mae is None else round(self.scorer.mae, 3),
            "predictions_scored": self.scorer.n,
            "limit_c": cfg.critical_c, "target_c": cfg.target_c, "emergency_c": cfg.emergency_c,
            "power_w": None if power_w is None else round(power_w, 2), "power_source": power_source,
            "power_budget_w": cfg.power_budget_w or None,
            "mode": decision.mode, "duty": round(decision.duty, 4), "level": decision.level,
            "limited_by": decision.limited_by,
            "thermal_duty": round(decision.thermal_duty, 4), "power_duty": round(decision.power_duty, 4),
            "gains": {"kp": cfg.kp, "ki": cfg.ki, "scale": round(self.gain_scale, 4),
                      "power_kp": cfg.power_kp, "power_ki": cfg.power_ki},
            "throttled": throttled, "paused": sorted(self.paused), "action_error": self.action_error,
            "util_pct": None if util is None else round(util, 1),
            "model": {"ambient_c": self.params.ambient_c, "resistance_c_per_w": self.params.resistance_c_per_w,
                      "capacitance_j_per_c": self.params.capacitance_j_per_c, "tau_s": self.params.tau_s,
                      "watts_per_util": self.params.watts_per_util, "idle_watts": self.params.idle_watts,
                      "packages": {p: len(c) for p, c in self.models.packages.items()}},
        }

    def handle_message(self, message: Message) -> Any:
        """``thermal_status`` returns the latest published reading."""
        if message.message_type == "thermal_status":
            return self.latest
        if message.expects_reply:
            return {"ok": False, "error": f"unknown message type {message.message_type!r}; "
                                          "this thermal agent answers thermal_status"}
        return None

    # --- checkpoints -----------------------------------------------------------------------

    def snapshot(self) -> Any:
        """Controller state, model temperatures and what this agent throttled or paused."""
        if not hasattr(self, "governor"):
            return self._restored
        return {"governor": self.governor.state(), "temps": self.models.temperatures(),
                "sent": dict(self.sent), "paused": sorted(self.paused)}

    def restore(self, state: Any) -> None:
        """Continue warm: the model does not restart from ambient, throttles are re-commanded."""
        if isinstance(state, dict):
            self._restored = state
