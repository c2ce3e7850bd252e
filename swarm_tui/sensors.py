"""Temperature readings for the thermal panel, extracted from a snapshot.

Where temperatures appear in a snapshot (the same places the Prometheus exporter
reads, :func:`engine.export.prometheus.thermal_readings`):

- ``snapshot.extra["thermal"]`` is either one machine reading ``{"sensors": [...]}``
  or, as thermal agents publish it, ``{agent_id: report}`` where a report has
  ``sensors`` (real sensors: ``label``/``id``, ``temperature_c``, ``critical_c``,
  ``max_c``), ``source`` (``"sensor"`` or ``"modelled"``), ``hottest_c``,
  ``predicted_c``, ``limit_c``, ``target_c`` and ``reason`` (why it is modelled);
- thermal agents' gauges whose names end in ``_c`` (``temp_c``, ``predicted_c``),
  used only for agents that published no report.

Everything is read tolerantly: missing or malformed values are skipped, never an
error, because a dashboard must draw whatever arrives.  Several thermal agents
report the same machine sensors; each sensor is shown once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine import SwarmSnapshot

#: Critical level used when neither the sensor nor the configuration says one.
DEFAULT_CRIT_C = 95.0
#: How far below critical a gauge turns yellow when the sensor has no "high" level.
WARN_MARGIN_C = 10.0

NO_SENSORS = "no temperature sensors on this machine"


@dataclass(frozen=True)
class SensorReading:
    """One temperature to draw as a gauge.

    Attributes:
        label: what the user sees (``"Package id 0"``, ``"thermal-1 model"``).
        celsius: the temperature.
        warn_c: where the gauge turns yellow.
        crit_c: where it turns red (and the gauge's full scale).
        modelled: the value comes from a model, not a sensor (marked ``~``).
    """

    label: str
    celsius: float
    warn_c: float = DEFAULT_CRIT_C - WARN_MARGIN_C
    crit_c: float = DEFAULT_CRIT_C
    modelled: bool = False


@dataclass(frozen=True)
class ThermalView:
    """What the thermal panel shows.

    Attributes:
        readings: the gauges, real sensors first.
        note: a sentence shown above them (that there are no sensors), or ``""``.
        detail: why (e.g. the thermal agent's reason for modelling), shown if there is room.
    """

    readings: tuple[SensorReading, ...]
    note: str = ""
    detail: str = ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _sensors(report: Mapping[str, Any], critical_c: float) -> Iterator[tuple[str, SensorReading]]:
    """(key, reading) for each real sensor listed in a reading or report."""
    for sensor in report.get("sensors") or ():
        if not isinstance(sensor, Mapping):
            continue
        celsius = _number(sensor.get("temperature_c"))
        if celsius is None:
            continue
        crit = _number(sensor.get("critical_c")) or critical_c
        warn = _number(sensor.get("max_c")) or crit - WARN_MARGIN_C
        label = str(sensor.get("label") or sensor.get("id") or "sensor")
        key = str(sensor.get("id") or label)
        yield key, SensorReading(label, celsius, min(warn, crit), crit, bool(sensor.get("modelled", False)))


def _model(agent_id: str, report: Mapping[str, Any], critical_c: float) -> Iterator[SensorReading]:
    """A thermal agent's modelled temperature (and its prediction) when it has no sensor."""
    if report.get("source") != "modelled":
        return
    crit = _number(report.get("limit_c")) or critical_c
    warn = _number(report.get("target_c")) or crit - WARN_MARGIN_C
    now = _number(report.get("hottest_c"))
    if now is not None:
        yield SensorReading(f"{agent_id} model", now, min(warn, crit), crit, modelled=True)
    ahead = _number(report.get("predicted_c"))
    if ahead is not None:
        horizon = _number(report.get("horizon_s"))
        label = f"{agent_id} in {horizon:g}s" if horizon else f"{agent_id} predicted"
        yield SensorReading(label, ahead, min(warn, crit), crit, modelled=True)


def thermal_view(snapshot: SwarmSnapshot | None, *, critical_c: float = DEFAULT_CRIT_C) -> ThermalView:
    """The readings of a snapshot: real sensors first, then modelled temperatures.

    ``critical_c`` (``performance_thresholds.thermal_critical``) is the limit for
    readings that do not carry their own.  Without any real sensor the note says
    so plainly (followed by the reason a thermal agent gave, if any).
    """
    if snapshot is None:
        return ThermalView((), "waiting for data")
    thermal = snapshot.extra.get("thermal") if isinstance(snapshot.extra, Mapping) else None
    real: dict[str, SensorReading] = {}
    modelled: list[SensorReading] = []
    reasons: list[str] = []
    reported: set[str] = set()
    if isinstance(thermal, Mapping):
        reports = [("", thermal)] if "sensors" in thermal else [
            (str(k), v) for k, v in thermal.items() if isinstance(v, Mapping)]
        for agent_id, report in reports:
            reported.add(agent_id)
            for key, reading in _sensors(report, critical_c):
                if reading.modelled:
                    modelled.append(reading)
                else:
                    real.setdefault(key, reading)
            modelled.extend(_model(agent_id, report, critical_c))
            reason = str(report.get("reason") or "")
            if reason and reason not in reasons:
                reasons.append(reason)
    for agent in snapshot.agents:
        if agent.id in reported:
            continue
        for name, value in agent.gauges.items():
            celsius = _number(value)
            if celsius is not None and name.endswith("_c"):
                label = f"{agent.id} {name[:-2].replace('_', ' ')}"
                modelled.append(SensorReading(label, celsius, critical_c - WARN_MARGIN_C, critical_c, True))
    if real:
        return ThermalView((*real.values(), *modelled))
    return ThermalView(tuple(modelled), NO_SENSORS, reasons[0] if reasons else "")
