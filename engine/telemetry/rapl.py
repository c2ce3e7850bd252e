"""CPU package/core/DRAM power from RAPL energy counters in the powercap sysfs class.

What is read: ``<sysfs>/class/powercap/intel-rapl:*`` (``intel-rapl:0`` is package 0,
``intel-rapl:0:1`` a sub-zone of it; AMD Zen CPUs appear under the same name):
``name`` (``package-0``, ``core``, ``uncore``, ``dram``, ``psys``), ``energy_uj`` (a
cumulative counter in microjoules) and ``max_energy_range_uj`` (where it wraps to 0).

Watts are energy deltas over the injected clock between two samples, so the first
sample of a domain has ``watts=None``. When the counter is lower than last time it
wrapped once: delta = (max_range - previous) + current. Two wraps between samples
cannot be detected; at a package's ~100 W and a 2^32 uJ-ish range that needs
samples minutes apart, so sample at least every few seconds.

Since Linux 5.10 (the "Platypus" side channel, CVE-2020-8694) ``energy_uj`` is
readable by root only; the EACCES is reported as the domain's reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.telemetry import _common
from engine.telemetry._common import Clock, Field, declare, errno_name, sorted_numerically, unavailable

FIELDS: Mapping[str, Field] = declare(
    Field("watts", "W", "Average power of one RAPL domain over the last interval.", "domain"),
    Field("energy_j", "J", "Energy counter of one RAPL domain (wraps; use watts).", "domain"),
)


@dataclass(frozen=True)
class PowerDomain:
    """One RAPL domain (``zone`` = ``intel-rapl:0:1``, ``name`` = ``dram``)."""

    zone: str
    name: str
    parent: str | None
    available: bool
    reason: str
    energy_j: float | None
    watts: float | None
    wrapped: bool = False


@dataclass(frozen=True)
class RaplReading:
    """All RAPL domains; ``available`` if at least one domain's energy is readable."""

    available: bool
    reason: str
    domains: tuple[PowerDomain, ...]

    @property
    def package_watts(self) -> float | None:
        """Sum of the ``package-N`` domains' watts; ``None`` if any of them is unknown."""
        tops = [d for d in self.domains if d.parent is None and d.name.startswith("package")]
        if not tops or any(d.watts is None for d in tops):
            return None
        return sum(d.watts for d in tops if d.watts is not None)


class RaplCollector:
    """Turns RAPL energy counters into watts.

    Args:
        sysfs_root: where sysfs is mounted (a fake tree in tests).
        clock: monotonic seconds; the interval between samples.
    """

    FIELDS = FIELDS

    def __init__(self, *, sysfs_root: Path = Path("/sys"), clock: Clock = time.monotonic) -> None:
        self.sysfs_root = Path(sysfs_root)
        self._clock = clock
        self._prev: dict[str, tuple[int, float]] = {}
        self.available = False
        self.reason = ""
        self.sample()

    def sample(self) -> RaplReading:
        """Read every domain's counter and derive watts since the last sample."""
        base = self.sysfs_root / "class/powercap"
        zones = sorted_numerically([p for p in base.glob("intel-rapl:*") if p.is_dir()])
        now = self._clock()
        domains = tuple(self._domain(z, now) for z in zones)
        if not zones:
            reason = unavailable(f"no RAPL zones under {base} (no intel_rapl driver; VM?)")
        elif not any(d.available for d in domains):
            reasons = sorted({d.reason.removeprefix(_common.UNAVAILABLE) for d in domains})
            reason = unavailable("; ".join(reasons))
        else:
            reason = ""
        self.available, self.reason = not reason, reason
        return RaplReading(not reason, reason, domains)

    def _domain(self, zone: Path, now: float) -> PowerDomain:
        name, _ = _common.try_read(zone / "name")
        name = name or zone.name
        parts = zone.name.split(":")
        parent = ":".join(parts[:-1]) if len(parts) > 2 else None
        try:
            energy = int(_common.read_text(zone / "energy_uj"))
        except OSError as exc:
            self._prev.pop(zone.name, None)
            why = errno_name(exc)
            if why in ("EACCES", "EPERM"):
                text = f"{zone.name}/energy_uj is readable by root only ({why}; Linux >= 5.10)"
            else:
                text = f"{zone.name}/energy_uj unreadable ({why})"
            return PowerDomain(zone.name, name, parent, False, unavailable(text), None, None)
        except (ValueError, UnicodeDecodeError):
            self._prev.pop(zone.name, None)
            why_text = unavailable(f"{zone.name}/energy_uj is not a number")
            return PowerDomain(zone.name, name, parent, False, why_text, None, None)
        max_range, _ = _common.try_read_int(zone / "max_energy_range_uj")
        prev = self._prev.get(zone.name)
        self._prev[zone.name] = (energy, now)
        watts: float | None = None
        wrapped = False
        reason = ""
        if prev is None:
            reason = "first sample: watts need two readings"
        else:
            e0, t0 = prev
            dt = now - t0
            delta: int | None = energy - e0
            if delta is not None and delta < 0:
                wrapped = True
                delta = (max_range - e0) + energy if max_range and max_range > e0 else None
            if delta is None:
                reason = "counter went backwards and max_energy_range_uj is unknown"
            elif dt <= 0:
                reason = "no time elapsed since the previous sample"
            else:
                watts = delta / 1e6 / dt
        return PowerDomain(zone.name, name, parent, True, reason, energy / 1e6, watts, wrapped)
