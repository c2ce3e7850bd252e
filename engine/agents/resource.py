"""``ResourceAgent``: samples the machine, forecasts CPU load, raises performance alerts.

Every cycle (``agents.resource.cycle_interval``, by default equal to the default
``monitoring_interval`` of 1 s) it samples :class:`engine.telemetry.TelemetryHub`
(CPU per core and total, memory, disk and network rates, temperature sensors, GPUs,
RAPL power, and its own perf counters as the monitoring cost) and

* publishes a compact dict under the ``telemetry`` topic (see :meth:`ResourceAgent.summary`),
  so it appears in ``get_system_status().extra["telemetry"][agent_id]``;
* forecasts the next interval's whole-machine CPU utilisation with Holt's damped
  double exponential smoothing (:class:`engine.forecast.Holt`) and publishes the
  forecast with its measured one-step error next to the naive forecast's error;
* raises ``performance_alert`` events when CPU or memory reach
  ``performance_thresholds.cpu_critical`` / ``memory_critical``, with hysteresis: the
  next alert for the same metric needs the value to fall ``alert_hysteresis_pct``
  below the limit first, so a value hovering at the limit raises one alert.

Gauges: ``cpu_pct`` (%), ``forecast_cpu_pct`` (%, next interval), ``forecast_mae_pct``
(percentage points, mean absolute one-step error), ``mem_pct`` (%), ``load_1m``,
``disk_MBps`` and ``net_MBps`` (read+write / sent+received, MB/s = 1e6 B/s) and
``sample_ms`` (cost of one sample, ms).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.agents.base import BaseAgent
from engine.communicator import Message
from engine.errors import ChannelError
from engine.events import PERFORMANCE_ALERT
from engine.forecast import Holt


class AlertHysteresis:
    """One metric's alert state: fire on crossing ``limit``, re-arm below ``limit - hysteresis``.

    Args:
        limit: the critical level (the alert fires at ``value >= limit``).
        hysteresis: how far below ``limit`` the value must fall to re-arm.
    """

    def __init__(self, limit: float, hysteresis: float) -> None:
        self.limit = float(limit)
        self.hysteresis = float(hysteresis)
        self.armed = True
        self.raised = 0

    @property
    def active(self) -> bool:
        """True between an alert and the re-arming."""
        return not self.armed

    def update(self, value: float | None) -> bool:
        """Feed one reading; True when an alert should be raised now."""
        if value is None:
            return False
        if self.armed and value >= self.limit:
            self.armed = False
            self.raised += 1
            return True
        if not self.armed and value < self.limit - self.hysteresis:
            self.armed = True
        return False


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


class ResourceAgent(BaseAgent):
    """Samples telemetry, forecasts load, raises alerts (see the module docstring).

    Options (besides the config keys): ``telemetry`` -- a ready ``TelemetryHub``-like
    object (tests inject one); ``sysfs_root`` -- where sysfs is mounted (default
    ``/sys``); ``cpu_critical`` / ``memory_critical`` -- override the thresholds.
    """

    agent_type = "resource"
    key_metric = "forecast_cpu_pct"

    def __init__(self, agent_id: str = "", *, forecast_alpha: float = 0.5, forecast_beta: float = 0.2,
                 forecast_phi: float = 0.9, alert_hysteresis_pct: float = 5.0, telemetry: Any = None,
                 sysfs_root: str = "/sys", cpu_critical: float | None = None,
                 memory_critical: float | None = None, **options: Any) -> None:
        super().__init__(agent_id, forecast_alpha=forecast_alpha, forecast_beta=forecast_beta,
                         forecast_phi=forecast_phi, alert_hysteresis_pct=alert_hysteresis_pct,
                         sysfs_root=sysfs_root, **options)
        self.forecaster = Holt(forecast_alpha, forecast_beta, forecast_phi, lo=0.0, hi=100.0)
        self.hysteresis = float(alert_hysteresis_pct)
        self.hub = telemetry
        self.sysfs_root = Path(sysfs_root)
        self._cpu_critical = cpu_critical
        self._memory_critical = memory_critical
        self.alerts: dict[str, AlertHysteresis] = {}
        self.last_sample_t: float | None = None
        self.samples = 0
        self.latest: dict[str, Any] | None = None
        self.identity: dict[str, Any] = {}
        self._restored_alerts: tuple[dict[str, Any], dict[str, Any]] = ({}, {})

    def on_start(self) -> None:
        """Open the collectors (py-cpuinfo and NVML probing take a moment)."""
        self.context.heartbeat()
        if self.hub is None:
            from engine.telemetry import TelemetryHub

            self.hub = TelemetryHub(sysfs_root=self.sysfs_root)
        self.context.heartbeat()
        th = self.context.config.performance_thresholds
        cpu = th.cpu_critical if self._cpu_critical is None else float(self._cpu_critical)
        mem = th.memory_critical if self._memory_critical is None else float(self._memory_critical)
        self.alerts = {"cpu": AlertHysteresis(cpu, self.hysteresis),
                       "memory": AlertHysteresis(mem, self.hysteresis)}
        self._apply_restored_alerts()
        self.identity = self._identity()

    def _identity(self) -> dict[str, Any]:
        try:
            ident = self.hub.cpu_identity.sample()
        except Exception:  # noqa: BLE001  (a stand-in hub without identity)
            return {}
        return {"brand": ident.brand, "vendor": ident.vendor, "arch": ident.arch,
                "logical_cores": ident.logical_cores, "physical_cores": ident.physical_cores,
                "l2_bytes": ident.l2_bytes, "l3_bytes": ident.l3_bytes,
                "avx2": ident.has("avx2"), "avx512f": ident.has("avx512f")}

    def on_stop(self) -> None:
        """Release NVML and the perf counters."""
        close = getattr(self.hub, "close", None)
        if close is not None:
            close()

    # --- the cycle ----------------------------------------------------------------------

    def execute_cycle(self) -> None:
        """Sample, forecast, alert, publish."""
        t0 = time.perf_counter()
        reading = self.hub.sample()
        sample_ms = (time.perf_counter() - t0) * 1000.0
        now = time.monotonic()
        interval = None if self.last_sample_t is None else now - self.last_sample_t
        self.last_sample_t = now
        self.samples += 1
        cpu_pct = reading.cpu.total_percent
        mem_pct = reading.memory.mem_percent
        forecast = self.forecaster.update(cpu_pct) if cpu_pct is not None else self.forecaster.forecast()
        for metric, value in (("cpu", cpu_pct), ("memory", mem_pct)):
            if self.alerts[metric].update(value):
                self._alert(metric, float(value), forecast)  # type: ignore[arg-type]
        summary = self.summary(reading, interval, sample_ms)
        self.latest = summary
        self._gauges(summary)
        self.task_done()
        try:
            self.publish("telemetry", summary)
        except ChannelError as exc:  # the orchestrator's inbox is full: skip this sample
            self.context.log.warning("telemetry not published: %s", exc)

    def _alert(self, metric: str, value: float, forecast: float | None) -> None:
        alert = self.alerts[metric]
        fc = f"; forecast next interval {forecast:.1f}%" if metric == "cpu" and forecast is not None else ""
        self.emit_event(
            PERFORMANCE_ALERT,
            f"machine {metric} at {value:.1f}% (critical {alert.limit:g}%{fc})",
            severity="warning", metric=metric, value=round(value, 2), limit=alert.limit,
            rearm_below=alert.limit - alert.hysteresis, forecast=_r(forecast), source="resource_agent",
        )

    def _gauges(self, s: dict[str, Any]) -> None:
        fc = s["forecast"]
        io = s["io"]

        def mbps(*keys: str) -> float:
            values = [io[k] for k in keys if io.get(k) is not None]
            return round(sum(values) / 1e6, 3) if values else 0.0

        self.set_gauge("cpu_pct", s["cpu"]["total_pct"] or 0.0)
        self.set_gauge("forecast_cpu_pct", fc["next_cpu_pct"] if fc["next_cpu_pct"] is not None else 0.0)
        self.set_gauge("forecast_mae_pct", fc["mae_pct"] if fc["mae_pct"] is not None else 0.0)
        self.set_gauge("mem_pct", s["memory"]["percent"] or 0.0)
        self.set_gauge("load_1m", s["cpu"]["load"][0] or 0.0)
        self.set_gauge("disk_MBps", mbps("disk_read_Bps", "disk_write_Bps"))
        self.set_gauge("net_MBps", mbps("net_sent_Bps", "net_recv_Bps"))
        self.set_gauge("sample_ms", round(s["sample_ms"], 3))

    def summary(self, r: Any, interval: float | None, sample_ms: float) -> dict[str, Any]:
        """The compact ``telemetry`` dict (units in the key names: ``_pct``, ``_Bps``, ``_c``, ``_w``)."""
        cpu, mem, io = r.cpu, r.memory, r.io
        errors = self.forecaster.errors
        domains = [d for d in r.power_domains if d.parent is None]
        watts = [d.watts for d in domains if d.watts is not None]
        gpu_watts = [g.power_w for g in r.gpus if g.power_w is not None]
        perf = None
        if r.perf is not None and r.perf.available:
            tc = r.perf.counters.get("task-clock")
            perf = {"task_clock_ms": _r(tc.value / 1e6 if tc is not None and tc.value is not None else None, 3)}
        try:
            availability = self.hub.availability()
        except Exception:  # noqa: BLE001  (availability is informational)
            availability = {}
        return {
            "time": time.time(),
            "interval_s": _r(interval, 3),
            "sample_ms": sample_ms,
            "cpu": {
                "total_pct": _r(cpu.total_percent), "per_core_pct": [round(p, 1) for p in cpu.per_core_percent],
                "freq_mhz": _r(cpu.freq_current_mhz, 0), "load": [_r(cpu.load_1m), _r(cpu.load_5m), _r(cpu.load_15m)],
            },
            "memory": {
                "percent": _r(mem.mem_percent), "used_bytes": mem.mem_used_bytes,
                "available_bytes": mem.mem_available_bytes, "total_bytes": mem.mem_total_bytes,
                "swap_percent": _r(mem.swap_percent),
            },
            "io": {"disk_read_Bps": _r(io.disk_read_bps, 0), "disk_write_Bps": _r(io.disk_write_bps, 0),
                   "net_sent_Bps": _r(io.net_sent_bps, 0), "net_recv_Bps": _r(io.net_recv_bps, 0)},
            "sensors": [{"id": s.id, "label": s.label, "kind": s.kind, "temperature_c": s.temperature_c,
                         "critical_c": s.critical_c, "max_c": s.max_c} for s in r.sensors],
            "gpus": [{"index": g.index, "name": g.name, "util_pct": g.util_gpu_percent,
                      "mem_used_bytes": g.mem_used_bytes, "mem_total_bytes": g.mem_total_bytes,
                      "temperature_c": g.temperature_c, "power_w": g.power_w, "power_limit_w": g.power_limit_w,
                      "throttle_reasons": list(g.throttle_reasons or ())} for g in r.gpus],
            "power": [{"zone": d.zone, "name": d.name, "watts": _r(d.watts)} for d in r.power_domains],
            "power_w": _r(sum(watts) + sum(gpu_watts)) if (watts or gpu_watts) else None,
            "forecast": {
                "method": f"holt(alpha={self.forecaster.alpha:g}, beta={self.forecaster.beta:g}, "
                          f"phi={self.forecaster.phi:g})",
                "next_cpu_pct": _r(self.forecaster.forecast(1)), "horizon_s": _r(interval, 3),
                "mae_pct": _r(errors.mae), "rmse_pct": _r(errors.rmse), "naive_mae_pct": _r(errors.naive_mae),
                "scored": errors.n,
            },
            "alerts": {k: {"active": a.active, "limit_pct": a.limit, "raised": a.raised}
                       for k, a in self.alerts.items()},
            "monitor_cost": perf,
            "machine": self.identity,
            "availability": availability,
        }

    # --- messages and checkpoints ----------------------------------------------------------

    def handle_message(self, message: Message) -> Any:
        """``telemetry`` / ``forecast`` requests return the latest summary / forecast."""
        if message.message_type == "telemetry":
            return self.latest
        if message.message_type == "forecast":
            return None if self.latest is None else self.latest["forecast"]
        if message.expects_reply:
            return {"ok": False, "error": f"unknown message type {message.message_type!r}; "
                                          "this resource agent answers telemetry and forecast"}
        return None

    def snapshot(self) -> Any:
        """The forecaster's state and the alert states survive a restart."""
        return {"forecast": self.forecaster.state(),
                "armed": {k: a.armed for k, a in self.alerts.items()},
                "raised": {k: a.raised for k, a in self.alerts.items()}}

    def restore(self, state: Any) -> None:
        """Continue the forecast (its error statistics included) and the alert states."""
        if not isinstance(state, dict):
            return
        self.forecaster.load(state.get("forecast") or {})
        self._restored_alerts = (state.get("armed") or {}, state.get("raised") or {})

    def _apply_restored_alerts(self) -> None:
        armed, raised = self._restored_alerts
        for key, alert in self.alerts.items():
            if key in armed:
                alert.armed = bool(armed[key])
            alert.raised = int(raised.get(key, 0))
