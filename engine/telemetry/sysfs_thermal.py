"""Temperatures and fans from Linux sysfs: thermal zones and hwmon chips.

What is read (values in millidegrees Celsius unless said otherwise):

- ``<sysfs>/class/thermal/thermal_zone*/type`` and ``temp``; trip points
  ``trip_point_*_type`` (``critical``, ``hot``, ``passive``, ``active``) and
  ``trip_point_*_temp``. The ``critical`` trip becomes ``critical_c``, ``hot``
  becomes ``max_c``.
- ``<sysfs>/class/hwmon/hwmon*/name`` and ``temp*_input``, ``temp*_label``,
  ``temp*_crit``, ``temp*_max``; ``fan*_input`` (RPM) and ``fan*_label``. Old
  drivers keep the attributes in ``hwmon*/device/``; that is searched too.

Real sysfs files fail to read in ordinary ways (EIO from a sleeping device, EACCES,
ENODATA for a disconnected sensor, garbage from a buggy driver). Such a sensor is
skipped with a note in ``ThermalReading.notes``; nothing raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.telemetry import _common
from engine.telemetry._common import Field, declare, sorted_numerically, unavailable

SensorKind = Literal["cpu_package", "cpu_core", "gpu", "other"]

FIELDS: Mapping[str, Field] = declare(
    Field("temperature_c", "°C", "Temperature of one sensor.", "sensor"),
    Field("critical_c", "°C", "Critical limit of one sensor (hardware may shut down there).", "sensor"),
    Field("max_c", "°C", "High (warning) limit of one sensor.", "sensor"),
    Field("rpm", "RPM", "Speed of one fan.", "fan"),
)

# Readings outside this range are a driver's way of saying "no sensor here".
PLAUSIBLE_C = (-50.0, 200.0)

_CPU_CHIPS = {"coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "x86_pkg_temp"}
_GPU_CHIPS = {"amdgpu", "radeon", "nouveau", "i915", "xe", "gpu_thermal", "gpu-thermal"}
_PACKAGE_LABEL = re.compile(r"^(package id \d+|physical id \d+|tctl|tdie|cpu)$", re.I)
_CORE_LABEL = re.compile(r"^(core \d+|tccd\d+)$", re.I)


def classify(chip: str, label: str) -> SensorKind:
    """Kind of a sensor from its chip/zone name and its label.

    coretemp "Package id 0" and k10temp "Tctl"/"Tdie" and the ``x86_pkg_temp`` zone
    are the CPU package; coretemp "Core N" and k10temp "TccdN" (one per core
    complex die) count as cores; amdgpu/nouveau/i915 and "gpu" zones are GPUs.
    """
    chip_l = chip.lower()
    if chip_l in _GPU_CHIPS or "gpu" in chip_l:
        return "gpu"
    if chip_l in _CPU_CHIPS or chip_l.startswith("cpu"):
        if _CORE_LABEL.match(label.strip()):
            return "cpu_core"
        if chip_l in ("x86_pkg_temp", "cpu_thermal", "cpu-thermal") or _PACKAGE_LABEL.match(label.strip()):
            return "cpu_package"
        return "cpu_core" if chip_l == "coretemp" else "cpu_package"
    return "other"


@dataclass(frozen=True)
class Sensor:
    """One temperature sensor.

    ``id`` is unique per machine (``thermal_zone1``, ``hwmon2/temp3``); ``chip`` is the
    zone type or hwmon name; ``label`` is what a user should see.
    """

    id: str
    source: Literal["thermal_zone", "hwmon"]
    chip: str
    label: str
    kind: SensorKind
    temperature_c: float
    critical_c: float | None
    max_c: float | None


@dataclass(frozen=True)
class Fan:
    """One fan (hwmon ``fan*_input``)."""

    id: str
    chip: str
    label: str
    rpm: int


@dataclass(frozen=True)
class ThermalReading:
    """All readable sensors and fans; ``notes`` says what was skipped and why."""

    available: bool
    reason: str
    sensors: tuple[Sensor, ...]
    fans: tuple[Fan, ...]
    notes: tuple[str, ...]


def _milli(path: Path, notes: list[str], *, required: bool) -> float | None:
    value, why = _common.try_read_int(path)
    if value is None:
        if required or (why is not None and "unreadable (ENOENT)" not in why):
            notes.append(str(why))
        return None
    c = value / 1000.0
    if not PLAUSIBLE_C[0] < c <= PLAUSIBLE_C[1]:
        notes.append(f"{path}: implausible temperature {c:g} °C")
        return None
    return c


class ThermalCollector:
    """Reads thermal zones and hwmon chips under ``sysfs_root``.

    Args:
        sysfs_root: where sysfs is mounted (a fake tree in tests).
    """

    FIELDS = FIELDS

    def __init__(self, *, sysfs_root: Path = Path("/sys")) -> None:
        self.sysfs_root = Path(sysfs_root)
        self.available = False
        self.reason = ""
        self.sample()

    def sample(self) -> ThermalReading:
        """Read every sensor now (never raises)."""
        notes: list[str] = []
        zone_dirs = sorted_numerically(list((self.sysfs_root / "class/thermal").glob("thermal_zone*")))
        hwmon_dirs = sorted_numerically(list((self.sysfs_root / "class/hwmon").glob("hwmon*")))
        sensors = [s for z in zone_dirs if (s := self._zone(z, notes)) is not None]
        fans: list[Fan] = []
        for h in hwmon_dirs:
            chip_sensors, chip_fans = self._hwmon(h, notes)
            sensors += chip_sensors
            fans += chip_fans
        if sensors or fans:
            reason = ""
        elif not zone_dirs and not hwmon_dirs:
            reason = unavailable(
                f"no thermal zones under {self.sysfs_root / 'class/thermal'}"
                f" and no hwmon chips under {self.sysfs_root / 'class/hwmon'}"
            )
        else:
            reason = unavailable(
                f"{len(zone_dirs)} thermal zones and {len(hwmon_dirs)} hwmon chips, none readable (see notes)"
            )
        self.available, self.reason = not reason, reason
        return ThermalReading(not reason, reason, tuple(sensors), tuple(fans), tuple(notes))

    def _zone(self, zone: Path, notes: list[str]) -> Sensor | None:
        ztype, why = _common.try_read(zone / "type")
        if ztype is None:
            notes.append(f"{why}; zone skipped")
            return None
        temp = _milli(zone / "temp", notes, required=True)
        if temp is None:
            return None
        trips: dict[str, float] = {}
        for tt in sorted_numerically(list(zone.glob("trip_point_*_type"))):
            kind, _ = _common.try_read(tt)
            if kind is None or kind in trips:
                continue
            t = _milli(zone / tt.name.replace("_type", "_temp"), notes, required=False)
            if t is not None:
                trips[kind] = t
        return Sensor(
            id=zone.name,
            source="thermal_zone",
            chip=ztype,
            label=ztype,
            kind=classify(ztype, ztype),
            temperature_c=temp,
            critical_c=trips.get("critical"),
            max_c=trips.get("hot"),
        )

    def _hwmon(self, hwmon: Path, notes: list[str]) -> tuple[list[Sensor], list[Fan]]:
        base = hwmon
        if not list(base.glob("temp*_input")) and not list(base.glob("fan*_input")):
            base = hwmon / "device"
        name, why = _common.try_read(hwmon / "name")
        if name is None:
            name, _ = _common.try_read(base / "name")
        if name is None:
            notes.append(f"{why}; chip name unknown")
            name = hwmon.name
        sensors: list[Sensor] = []
        for inp in sorted_numerically(list(base.glob("temp*_input"))):
            n = inp.name[: -len("_input")]
            temp = _milli(inp, notes, required=True)
            if temp is None:
                continue
            label, _ = _common.try_read(base / f"{n}_label")
            label = label or n
            sensors.append(
                Sensor(
                    id=f"{hwmon.name}/{n}",
                    source="hwmon",
                    chip=name,
                    label=label,
                    kind=classify(name, label),
                    temperature_c=temp,
                    critical_c=_milli(base / f"{n}_crit", notes, required=False),
                    max_c=_milli(base / f"{n}_max", notes, required=False),
                )
            )
        fans: list[Fan] = []
        for inp in sorted_numerically(list(base.glob("fan*_input"))):
            n = inp.name[: -len("_input")]
            rpm, why = _common.try_read_int(inp)
            if rpm is None:
                notes.append(str(why))
                continue
            label, _ = _common.try_read(base / f"{n}_label")
            fans.append(Fan(id=f"{hwmon.name}/{n}", chip=name, label=label or n, rpm=rpm))
        return sensors, fans
