"""Temperature readings for the thermal panel, extracted from a snapshot.

The engine puts machine temperatures in ``snapshot.extra["thermal"]`` (the
``ThermalCollector``'s reading as a dict: ``available``, ``reason`` and a list of
``sensors`` each with ``label``/``id``, ``temperature_c``, ``critical_c``, ``max_c``)
and thermal agents publish their model temperature as gauges whose names end in
``_c`` (``temp_c``, ``predicted_c``).  Both are read tolerantly: anything missing or
malformed is skipped, never an error, because a dashboard must draw whatever arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from engine.model import SwarmSnapshot

#: Warning level used when a sensor does not say its own.
DEFAULT_WARN_C = 80.0
#: Critical level used when neither the sensor nor the configuration says one.
DEFAULT_CRIT_C = 95.0


@dataclass(frozen=True)
class SensorReading:
    """One temperature to draw as a gauge.

    Attributes:
        label: what the user sees (``"Package id 0"``, ``"thermal-1 model"``).
        celsius: the temperature.
        warn_c: where the gauge turns yellow.
        crit_c: where it turns red (and the gauge's full scale).
        modelled: the value comes from a model, not a sensor (labelled as such).
    """

    label: str
    celsius: float
    warn_c: float = DEFAULT_WARN_C
    crit_c: float = DEFAULT_CRIT_C
    modelled: bool = False


@dataclass(frozen=True)
class ThermalView:
    """What the thermal panel shows: readings, or the reason there are none."""

    readings: tuple[SensorReading, ...]
    reason: str = ""


NO_SENSORS = "no temperature sensors on this machine"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def thermal_view(snapshot: SwarmSnapshot | None, *, critical_c: float = DEFAULT_CRIT_C) -> ThermalView:
    """The readings of a snapshot: machine sensors first, then agents' model temperatures.

    ``critical_c`` (``performance_thresholds.thermal_critical``) is used for sensors
    that do not report their own critical limit; warning is 10 °C below critical.
    """
    if snapshot is None:
        return ThermalView((), "waiting for data")
    readings: list[SensorReading] = []
    thermal = snapshot.extra.get("thermal") if isinstance(snapshot.extra, Mapping) else None
    reason = str(_get(thermal, "reason") or "") if thermal is not None else ""
    for sensor in _get(thermal, "sensors") or () if thermal is not None else ():
        celsius = _number(_get(sensor, "temperature_c"))
        if celsius is None:
            continue
        crit = _number(_get(sensor, "critical_c")) or critical_c
        warn = _number(_get(sensor, "max_c")) or crit - 10.0
        label = str(_get(sensor, "label") or _get(sensor, "id") or "sensor")
        readings.append(SensorReading(label, celsius, min(warn, crit), crit, bool(_get(sensor, "modelled"))))
    for agent in snapshot.agents:
        for name, value in agent.gauges.items():
            celsius = _number(value)
            if celsius is None or not name.endswith("_c"):
                continue
            readings.append(SensorReading(f"{agent.id} {name[:-2].replace('_', ' ')}", celsius,
                                          critical_c - 10.0, critical_c, modelled=True))
    if readings:
        return ThermalView(tuple(readings))
    return ThermalView((), NO_SENSORS + (f" ({reason})" if reason and "unavailable" in reason else ""))
