"""Which CPU this is: brand, architecture, cores, caches, ISA flags, and a stable key.

py-cpuinfo's ``get_cpu_info()`` is slow (it may spawn a subprocess and run CPUID),
so it runs at most once per process (a module-level ``lru_cache``) and, when a
``cache_dir`` is given, once per machine: the result is stored as JSON keyed by a
hash of ``/proc/cpuinfo`` without its fluctuating ``cpu MHz``/``bogomips`` lines.

Cache sizes come from ``<sysfs>/devices/system/cpu/cpu0/cache/index*/{level,type,size}``
(per-instance sizes as the kernel reports them) and fall back to py-cpuinfo's figures,
which in VMs are often wrong. Core counts come from psutil. If py-cpuinfo fails, the
brand, vendor and flags are parsed from ``/proc/cpuinfo`` directly.

:meth:`CpuIdentity.identity_key` is what autotuning results are keyed by: the same
machine gives the same string across runs and reboots.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.telemetry import _common
from engine.telemetry._common import Field, declare, sorted_numerically, unavailable

FIELDS: Mapping[str, Field] = declare(
    Field("brand", "text", "CPU model name."),
    Field("arch", "text", "Instruction-set architecture (x86_64, aarch64...)."),
    Field("logical_cores", "count", "Logical CPUs (hardware threads) the OS sees."),
    Field("physical_cores", "count", "Physical cores, if the OS can tell."),
    Field("l1d_bytes", "B", "Level-1 data cache of one core."),
    Field("l2_bytes", "B", "Level-2 cache of one instance (usually one core)."),
    Field("l3_bytes", "B", "Level-3 cache of one instance (usually shared)."),
    Field("flags", "text", "ISA extensions (avx2, avx512f, fma, neon...)."),
)

InfoFunc = Callable[[], dict[str, Any]]
_VOLATILE = re.compile(r"^(cpu MHz|bogomips)\s*:.*$", re.I | re.M)


@functools.lru_cache(maxsize=1)
def _py_cpuinfo() -> dict[str, Any]:
    """py-cpuinfo's answer, computed once per process."""
    import cpuinfo

    return dict(cpuinfo.get_cpu_info())


@dataclass(frozen=True)
class CpuIdentity:
    """The CPU's identity. ``source`` says where brand/flags came from."""

    available: bool
    reason: str
    source: str
    brand: str
    vendor: str
    arch: str
    family: int | None
    model: int | None
    stepping: int | None
    logical_cores: int | None
    physical_cores: int | None
    l1d_bytes: int | None
    l1i_bytes: int | None
    l2_bytes: int | None
    l3_bytes: int | None
    cache_source: str
    hz_advertised: float | None
    flags: frozenset[str] = field(default_factory=frozenset)

    def has(self, flag: str) -> bool:
        """Whether the CPU advertises ISA extension ``flag`` (``"avx2"``)."""
        return flag.lower() in self.flags

    def identity_key(self) -> str:
        """A stable, filename-safe key for per-machine results (autotuning).

        Built from arch, vendor, family/model/stepping, brand, core counts and a
        digest of the flags and cache sizes; never from frequency or load.
        """
        digest = hashlib.sha256(
            "|".join(
                [*sorted(self.flags), *(str(x) for x in (self.l1d_bytes, self.l2_bytes, self.l3_bytes))]
            ).encode()
        ).hexdigest()[:12]
        brand = re.sub(r"[^A-Za-z0-9]+", "_", self.brand).strip("_") or "unknown"
        fms = ".".join("x" if v is None else str(v) for v in (self.family, self.model, self.stepping))
        cores = f"{self.physical_cores or 'x'}c{self.logical_cores or 'x'}t"
        return f"{self.arch}-{self.vendor or 'unknown'}-{fms}-{brand}-{cores}-{digest}"


def _parse_size(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)i?B?\s*", text, re.I)
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[m.group(2).upper()]


def sysfs_cache_sizes(sysfs_root: Path) -> dict[str, int]:
    """``{"l1d": bytes, "l1i": ..., "l2": ..., "l3": ...}`` for cpu0 from sysfs."""
    out: dict[str, int] = {}
    base = sysfs_root / "devices/system/cpu/cpu0/cache"
    for idx in sorted_numerically(list(base.glob("index*"))):
        level, _ = _common.try_read(idx / "level")
        ctype, _ = _common.try_read(idx / "type")
        size, _ = _common.try_read(idx / "size")
        if not (level and ctype and size) or (parsed := _parse_size(size)) is None:
            continue
        key = f"l{level}" + {"Data": "d", "Instruction": "i"}.get(ctype, "")
        out.setdefault(key, parsed)
    return out


def _proc_cpuinfo_fields(text: str) -> dict[str, str]:
    """First processor block of /proc/cpuinfo as ``{key: value}``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        key, _, value = line.partition(":")
        out.setdefault(key.strip().lower(), value.strip())
    return out


def _load_info(proc_text: str | None, cache_dir: Path | None, info_func: InfoFunc | None) -> dict[str, Any]:
    """py-cpuinfo's dict, via the JSON cache when ``cache_dir`` is given."""
    path: Path | None = None
    if cache_dir is not None and proc_text is not None:
        key = hashlib.sha256(_VOLATILE.sub("", proc_text).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"cpuinfo-{key}.json"
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                return data
        except (OSError, ValueError):
            pass
    info = info_func() if info_func is not None else _py_cpuinfo()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(info, sort_keys=True, default=str))
            os.replace(tmp, path)
        except OSError:
            pass
    return info


def _core_counts() -> tuple[int | None, int | None]:
    try:
        import psutil

        return psutil.cpu_count(), psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency
        return os.cpu_count(), None


def read_cpu_identity(
    *,
    sysfs_root: Path = Path("/sys"),
    proc_root: Path = Path("/proc"),
    cache_dir: Path | None = None,
    info_func: InfoFunc | None = None,
) -> CpuIdentity:
    """Build the :class:`CpuIdentity` (never raises).

    Args:
        sysfs_root: for cache sizes.
        proc_root: for ``/proc/cpuinfo`` (cache key and fallback).
        cache_dir: if given, py-cpuinfo's result is stored there as JSON.
        info_func: a stand-in for ``cpuinfo.get_cpu_info`` (tests); ``None`` uses
            py-cpuinfo once per process.
    """
    proc_text, proc_why = _common.try_read(Path(proc_root) / "cpuinfo")
    notes: list[str] = []
    try:
        info = _load_info(proc_text, cache_dir, info_func)
        source = "py-cpuinfo"
    except Exception as exc:  # noqa: BLE001 - py-cpuinfo can fail in many ways
        info = {}
        source = "/proc/cpuinfo"
        notes.append(f"py-cpuinfo failed ({type(exc).__name__}: {exc})")
    proc = _proc_cpuinfo_fields(proc_text or "")
    brand = str(info.get("brand_raw") or proc.get("model name") or proc.get("hardware") or "")
    vendor = str(info.get("vendor_id_raw") or proc.get("vendor_id") or proc.get("cpu implementer") or "")
    flags = info.get("flags") or (proc.get("flags") or proc.get("features") or "").split()
    if not brand and not flags:
        reason = unavailable("; ".join([*notes, proc_why or "/proc/cpuinfo has no model or flags"]))
        available = False
    else:
        reason, available = "; ".join(notes), True

    def num(key: str) -> int | None:
        value = info.get(key, proc.get({"family": "cpu family"}.get(key, key)))
        try:
            return int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    sizes = sysfs_cache_sizes(Path(sysfs_root))
    cache_source = "sysfs" if sizes else "py-cpuinfo"
    if not sizes:
        sizes = {
            k: v
            for k, v in (
                ("l1d", info.get("l1_data_cache_size")),
                ("l1i", info.get("l1_instruction_cache_size")),
                ("l2", info.get("l2_cache_size")),
                ("l3", info.get("l3_cache_size")),
            )
            if isinstance(v, int)
        }
    hz = info.get("hz_advertised")
    logical, physical = _core_counts()
    return CpuIdentity(
        available=available,
        reason=reason,
        source=source,
        brand=brand,
        vendor=vendor,
        arch=str(info.get("arch_string_raw") or platform.machine()),
        family=num("family"),
        model=num("model"),
        stepping=num("stepping"),
        logical_cores=logical,
        physical_cores=physical,
        l1d_bytes=sizes.get("l1d"),
        l1i_bytes=sizes.get("l1i"),
        l2_bytes=sizes.get("l2"),
        l3_bytes=sizes.get("l3"),
        cache_source=cache_source,
        hz_advertised=float(hz[0]) if isinstance(hz, (list, tuple)) and hz and hz[0] else None,
        flags=frozenset(str(f).lower() for f in flags),
    )


class CpuIdentityCollector:
    """Holds the machine's :class:`CpuIdentity`, computed on first use."""

    FIELDS = FIELDS

    def __init__(
        self,
        *,
        sysfs_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
        cache_dir: Path | None = None,
        info_func: InfoFunc | None = None,
    ) -> None:
        self._identity = read_cpu_identity(
            sysfs_root=sysfs_root, proc_root=proc_root, cache_dir=cache_dir, info_func=info_func
        )
        self.available = self._identity.available
        self.reason = self._identity.reason if not self.available else ""

    def sample(self) -> CpuIdentity:
        """The identity (it does not change while the process runs)."""
        return self._identity

    def identity_key(self) -> str:
        """Shortcut for ``sample().identity_key()``."""
        return self._identity.identity_key()
