"""NVIDIA GPU telemetry through NVML (``import pynvml`` from nvidia-ml-py).

NVML is initialised once, when the collector is built (never at import time), and
shut down by :meth:`NvmlCollector.close`. Every per-field NVML call is wrapped on
its own: a GPU that lacks a reading (``NVMLError_NotSupported`` for power on many
consumer boards, fan speed on passively cooled ones) gets ``None`` in that field and
the field's name in ``unsupported``; the rest of the device is still reported.

Units: NVML reports power in milliwatts (converted to watts here), memory in bytes,
clocks in MHz, temperature in °C and fan speed in percent of maximum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from engine.telemetry._common import Field, declare, unavailable

T = TypeVar("T")

FIELDS: Mapping[str, Field] = declare(
    Field("name", "text", "Product name of the GPU.", "gpu"),
    Field("uuid", "text", "Unique id of the GPU (stable across reboots).", "gpu"),
    Field("util_gpu_percent", "%", "Share of time a kernel was running on the GPU.", "gpu"),
    Field("util_mem_percent", "%", "Share of time device memory was being read or written.", "gpu"),
    Field("mem_used_bytes", "B", "Device memory in use.", "gpu"),
    Field("mem_total_bytes", "B", "Total device memory.", "gpu"),
    Field("temperature_c", "°C", "GPU core temperature.", "gpu"),
    Field("power_w", "W", "Power draw of the board.", "gpu"),
    Field("power_limit_w", "W", "Power limit the driver enforces.", "gpu"),
    Field("clock_sm_mhz", "MHz", "Streaming-multiprocessor clock.", "gpu"),
    Field("clock_mem_mhz", "MHz", "Memory clock.", "gpu"),
    Field("throttle_reasons", "text", "Why the clocks are held down (decoded NVML bit names).", "gpu"),
    Field("fan_percent", "%", "Fan speed as a share of its maximum.", "gpu"),
)

# NVML clocks-event ("throttle") reason bits; stable ABI values from nvml.h.
THROTTLE_REASON_BITS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)

_NO_DRIVER_ERRORS = ("NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded")


def decode_throttle_reasons(mask: int) -> tuple[str, ...]:
    """Names of the reason bits set in ``mask``; unknown bits as ``unknown_0x...``."""
    names = [name for bit, name in THROTTLE_REASON_BITS if mask & bit]
    rest = mask & ~sum(bit for bit, _ in THROTTLE_REASON_BITS)
    if rest:
        names.append(f"unknown_{rest:#x}")
    return tuple(names)


@dataclass(frozen=True)
class GpuReading:
    """One GPU. Any field is ``None`` when NVML could not provide it.

    ``unsupported`` lists fields NVML reports as not supported on this device;
    ``errors`` lists other per-field failures as ``"field: NVMLError_X"``.
    """

    index: int
    name: str | None
    uuid: str | None
    util_gpu_percent: float | None
    util_mem_percent: float | None
    mem_used_bytes: int | None
    mem_total_bytes: int | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    clock_sm_mhz: float | None
    clock_mem_mhz: float | None
    throttle_reasons: tuple[str, ...] | None
    fan_percent: float | None
    unsupported: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class NvmlReading:
    """All GPUs NVML sees; ``gpus`` is empty when ``available`` is false."""

    available: bool
    reason: str
    driver_version: str | None
    gpus: tuple[GpuReading, ...]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class NvmlCollector:
    """Reads every NVIDIA GPU through NVML.

    Args:
        nvml_module: ``pynvml`` or a stand-in with the same functions and error
            classes; ``None`` imports ``pynvml`` here (lazily, not at import time).
    """

    FIELDS = FIELDS

    def __init__(self, *, nvml_module: ModuleType | Any = None) -> None:
        self._nvml: Any = nvml_module
        self._initialised = False
        self._count = 0
        self.available = False
        self.reason = ""
        self.driver_version: str | None = None
        if self._nvml is None:
            try:
                import pynvml

                self._nvml = pynvml
            except ImportError as exc:
                self.reason = unavailable(f"nvidia-ml-py (pynvml) not installed ({exc})")
                return
        nv = self._nvml
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            kind = type(exc).__name__
            if kind in _NO_DRIVER_ERRORS:
                self.reason = unavailable(f"no NVIDIA driver ({kind})")
            else:
                self.reason = unavailable(f"NVML initialisation failed ({kind}: {exc})")
            return
        except OSError as exc:  # a broken libnvidia-ml.so
            self.reason = unavailable(f"NVML library failed to load ({exc})")
            return
        self._initialised = True
        try:
            self._count = int(nv.nvmlDeviceGetCount())
        except nv.NVMLError as exc:
            self.reason = unavailable(f"NVML could not count GPUs ({type(exc).__name__})")
            self.close()
            return
        if self._count == 0:
            self.reason = unavailable("NVML found no GPUs")
            self.close()
            return
        try:
            self.driver_version = _text(nv.nvmlSystemGetDriverVersion())
        except nv.NVMLError:
            self.driver_version = None
        self.available = True

    def close(self) -> None:
        """Shut NVML down (once). Later samples report the collector as closed."""
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
            if self.available:
                self.available = False
                self.reason = unavailable("collector closed")

    def __enter__(self) -> NvmlCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sample(self) -> NvmlReading:
        """Read every GPU; never raises for a missing or partly supported GPU."""
        if not self.available:
            return NvmlReading(False, self.reason, None, ())
        return NvmlReading(True, "", self.driver_version, tuple(self._device(i) for i in range(self._count)))

    def _device(self, index: int) -> GpuReading:
        nv = self._nvml
        unsupported: list[str] = []
        errors: list[str] = []

        def call(field: str, fn: Callable[[], T]) -> T | None:
            """``fn()``, or ``None`` with ``field`` (``a+b`` for two) recorded."""
            try:
                return fn()
            except nv.NVMLError_NotSupported:
                unsupported.extend(field.split("+"))
            except nv.NVMLError as exc:
                errors.extend(f"{f}: {type(exc).__name__}" for f in field.split("+"))
            return None

        try:
            h = nv.nvmlDeviceGetHandleByIndex(index)
        except nv.NVMLError as exc:
            return GpuReading(
                index, None, None, None, None, None, None, None, None, None, None, None, None, None,
                errors=(f"handle: {type(exc).__name__}",),
            )

        name = call("name", lambda: _text(nv.nvmlDeviceGetName(h)))
        uuid = call("uuid", lambda: _text(nv.nvmlDeviceGetUUID(h)))
        util = call("util_gpu_percent+util_mem_percent", lambda: nv.nvmlDeviceGetUtilizationRates(h))
        mem = call("mem_used_bytes+mem_total_bytes", lambda: nv.nvmlDeviceGetMemoryInfo(h))
        temp = call("temperature_c", lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        power = call("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h))
        limit = call("power_limit_w", lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h))
        sm = call("clock_sm_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))
        memclk = call("clock_mem_mhz", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM))
        reasons_fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nv, "nvmlDeviceGetCurrentClocksThrottleReasons"
        )
        mask = call("throttle_reasons", lambda: reasons_fn(h))
        fan = call("fan_percent", lambda: nv.nvmlDeviceGetFanSpeed(h))
        return GpuReading(
            index=index,
            name=name,
            uuid=uuid,
            util_gpu_percent=None if util is None else float(util.gpu),
            util_mem_percent=None if util is None else float(util.memory),
            mem_used_bytes=None if mem is None else int(mem.used),
            mem_total_bytes=None if mem is None else int(mem.total),
            temperature_c=None if temp is None else float(temp),
            power_w=None if power is None else power / 1000.0,
            power_limit_w=None if limit is None else limit / 1000.0,
            clock_sm_mhz=None if sm is None else float(sm),
            clock_mem_mhz=None if memclk is None else float(memclk),
            throttle_reasons=None if mask is None else decode_throttle_reasons(int(mask)),
            fan_percent=None if fan is None else float(fan),
            unsupported=tuple(unsupported),
            errors=tuple(errors),
        )
