"""Machine telemetry: one collector per source, and a hub that owns one of each.

Collectors (each with ``available``, ``reason``, ``sample()`` and a ``FIELDS`` table):

- :class:`PsutilCollector` - CPU per core/total, frequency, load, memory, swap,
  disk/net rates; ``process_stats(pids)``.
- :class:`NvmlCollector` - NVIDIA GPUs through NVML.
- :class:`ThermalCollector` - sysfs thermal zones and hwmon temperatures and fans.
- :class:`RaplCollector` - RAPL package/core/DRAM watts from powercap energy counters.
- :class:`CpuIdentityCollector` - brand, cores, caches, ISA flags, ``identity_key()``.
- :class:`PerfCounters` - per-process perf_event counters (task-clock ... IPC).

A collector whose hardware is missing says ``"unavailable: <reason>"`` and keeps
returning well-formed readings marked unavailable; nothing here raises because a
machine lacks a sensor. Nothing is read or imported from hardware libraries at
import time: construction does the probing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.telemetry._common import Clock, Field
from engine.telemetry.cpu_identity import CpuIdentity, CpuIdentityCollector, read_cpu_identity
from engine.telemetry.nvml import GpuReading, NvmlCollector, NvmlReading, decode_throttle_reasons
from engine.telemetry.perf_events import (
    HARDWARE_EVENTS,
    SOFTWARE_EVENTS,
    CounterReading,
    PerfCounters,
    PerfReading,
)
from engine.telemetry.perf_events import probe as probe_perf_events
from engine.telemetry.perf_events import summarise as summarise_perf
from engine.telemetry.psutil_collector import (
    CpuReading,
    IoReading,
    MemoryReading,
    ProcessStats,
    PsutilCollector,
    PsutilReading,
)
from engine.telemetry.rapl import PowerDomain, RaplCollector, RaplReading
from engine.telemetry.sysfs_thermal import Fan, Sensor, SensorKind, ThermalCollector, ThermalReading, classify

__all__ = [
    "ALL_FIELDS",
    "Clock",
    "CounterReading",
    "CpuIdentity",
    "CpuIdentityCollector",
    "CpuReading",
    "Fan",
    "Field",
    "GpuReading",
    "IoReading",
    "MachineReading",
    "MemoryReading",
    "NvmlCollector",
    "NvmlReading",
    "PerfCounters",
    "PerfReading",
    "PowerDomain",
    "ProcessStats",
    "PsutilCollector",
    "PsutilReading",
    "RaplCollector",
    "RaplReading",
    "Sensor",
    "SensorKind",
    "TelemetryHub",
    "ThermalCollector",
    "ThermalReading",
    "classify",
    "decode_throttle_reasons",
    "probe_perf_events",
    "read_cpu_identity",
]

ALL_FIELDS: Mapping[str, Mapping[str, Field]] = {
    "psutil": PsutilCollector.FIELDS,
    "nvml": NvmlCollector.FIELDS,
    "thermal": ThermalCollector.FIELDS,
    "rapl": RaplCollector.FIELDS,
    "cpu_identity": CpuIdentityCollector.FIELDS,
    "perf": PerfCounters.FIELDS,
}
"""Every collector's ``FIELDS`` table, by collector name (for help and export)."""


@dataclass(frozen=True)
class MachineReading:
    """One sample of the whole machine; every part carries ``available``/``reason``."""

    timestamp: float
    cpu: CpuReading
    memory: MemoryReading
    io: IoReading
    thermal: ThermalReading
    gpu: NvmlReading
    power: RaplReading
    perf: PerfReading | None

    @property
    def sensors(self) -> tuple[Sensor, ...]:
        """Temperature sensors (empty where the machine exposes none)."""
        return self.thermal.sensors

    @property
    def gpus(self) -> tuple[GpuReading, ...]:
        """GPUs (empty without an NVIDIA driver)."""
        return self.gpu.gpus

    @property
    def power_domains(self) -> tuple[PowerDomain, ...]:
        """RAPL domains (empty without RAPL)."""
        return self.power.domains


def _status(available: bool, reason: str) -> str:
    return "ok" if available else reason


class TelemetryHub:
    """Owns one of each collector and samples them together.

    Args:
        sysfs_root: where sysfs is mounted (thermal, hwmon, RAPL, cache sizes).
        proc_root: where procfs is mounted (cpuinfo, perf_event_paranoid).
        nvml_module: ``pynvml`` stand-in for tests; ``None`` imports pynvml.
        psutil_module: ``psutil`` stand-in for tests; ``None`` imports psutil.
        clock: monotonic seconds for rates.
        cpuinfo_cache_dir: where py-cpuinfo's result is cached as JSON (optional).
        perf_events: open perf counters on the calling thread (and the threads and
            children it starts later) - the swarm's own monitoring cost.
    """

    def __init__(
        self,
        *,
        sysfs_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        nvml_module: ModuleType | Any = None,
        psutil_module: ModuleType | Any = None,
        clock: Clock = time.monotonic,
        cpuinfo_cache_dir: Path | None = None,
        perf_events: bool = True,
    ) -> None:
        self._clock = clock
        self.psutil = PsutilCollector(psutil_module=psutil_module, clock=clock)
        self.thermal = ThermalCollector(sysfs_root=sysfs_root)
        self.rapl = RaplCollector(sysfs_root=sysfs_root, clock=clock)
        self.nvml = NvmlCollector(nvml_module=nvml_module)
        self.cpu_identity = CpuIdentityCollector(
            sysfs_root=sysfs_root, proc_root=proc_root, cache_dir=cpuinfo_cache_dir
        )
        self.perf = PerfCounters(0, proc_root=proc_root, sysfs_root=sysfs_root) if perf_events else None
        self._last: MachineReading | None = None

    def sample(self) -> MachineReading:
        """Sample every collector once (never raises for missing hardware)."""
        ps = self.psutil.sample()
        reading = MachineReading(
            timestamp=ps.timestamp,
            cpu=ps.cpu,
            memory=ps.memory,
            io=ps.io,
            thermal=self.thermal.sample(),
            gpu=self.nvml.sample(),
            power=self.rapl.sample(),
            perf=self.perf.sample() if self.perf is not None else None,
        )
        self._last = reading
        return reading

    def process_stats(self, pids: Iterable[int]) -> dict[int, ProcessStats]:
        """Per-process stats (see :meth:`PsutilCollector.process_stats`)."""
        return self.psutil.process_stats(pids)

    def availability(self) -> dict[str, str]:
        """``{source: "ok" | reason}`` from the latest sample (sampling once if none)."""
        r = self._last or self.sample()
        out = {
            "cpu": _status(r.cpu.available, r.cpu.reason),
            "cpu.frequency": r.cpu.freq_reason or "ok",
            "memory": _status(r.memory.available, r.memory.reason),
            "io": r.io.reason or "ok",
            "thermal": _status(r.thermal.available, r.thermal.reason),
            "nvml": _status(r.gpu.available, r.gpu.reason),
            "rapl": _status(r.power.available, r.power.reason),
            "cpu_identity": _status(self.cpu_identity.available, self.cpu_identity.reason),
        }
        if r.perf is None:
            out["perf"] = "unavailable: disabled by configuration"
        else:
            for group, names in (("perf.software", SOFTWARE_EVENTS), ("perf.hardware", HARDWARE_EVENTS)):
                bad = {n: c.reason for n in names if (c := r.perf.counters.get(n)) is not None and not c.available}
                out[group] = summarise_perf(bad) if bad else "ok"
        return out

    def close(self) -> None:
        """Shut NVML down and close perf counters (idempotent)."""
        self.nvml.close()
        if self.perf is not None:
            self.perf.close()

    def __enter__(self) -> TelemetryHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
