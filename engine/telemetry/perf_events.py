"""Per-process hardware and software counters through ``perf_event_open(2)``.

Design note: the syscall is called through ctypes (``syscall(2)`` with the number for
the architecture), with ``struct perf_event_attr`` laid out as in
``<linux/perf_event.h>`` up to ``config3`` (136 bytes, ``PERF_ATTR_SIZE_VER8``). The
kernel accepts a larger struct than it knows as long as the unknown tail is zero,
and a smaller one by zero-extending, so one layout serves old and new kernels.

Each counter is its own event (no group), opened on ``pid`` with ``cpu=-1`` (follow
the task on any CPU), ``inherit=1`` (threads and children created after opening are
counted too; threads that already exist are not - open before spawning workers),
``exclude_kernel=1`` and ``exclude_hv=1`` (so ``perf_event_paranoid=2`` lets a normal
user count their own processes). ``read()`` returns ``value, time_enabled,
time_running`` (``PERF_FORMAT_TOTAL_TIME_ENABLED|RUNNING``); when the PMU is
over-committed the kernel multiplexes and the value is scaled by enabled/running.

Every counter reports whether it opened, and if not, why: EACCES/EPERM names the
``perf_event_paranoid`` level; ENOENT/EOPNOTSUPP/ENODEV means the CPU or the VM
exposes no such event (VMs often have no hardware PMU at all).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import struct
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.telemetry import _common
from engine.telemetry._common import Field, declare, unavailable

SYSCALL_NUMBERS = {"x86_64": 298, "aarch64": 241, "riscv64": 241}

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_FORMAT_TOTAL_TIME_ENABLED = 1 << 0
PERF_FORMAT_TOTAL_TIME_RUNNING = 1 << 1
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_EVENT_IOC_ENABLE = 0x2400  # _IO('$', 0)
# Bit positions in the attr flags word (a C bitfield, first member = bit 0 on LE).
_ATTR_DISABLED = 1 << 0
_ATTR_INHERIT = 1 << 1
_ATTR_EXCLUDE_KERNEL = 1 << 5
_ATTR_EXCLUDE_HV = 1 << 6

#: name -> (type, config, kind) for the counters this module knows.
EVENTS: Mapping[str, tuple[int, int, str]] = {
    "task-clock": (PERF_TYPE_SOFTWARE, 1, "software"),  # PERF_COUNT_SW_TASK_CLOCK, ns
    "context-switches": (PERF_TYPE_SOFTWARE, 3, "software"),
    "page-faults": (PERF_TYPE_SOFTWARE, 2, "software"),
    "cpu-migrations": (PERF_TYPE_SOFTWARE, 4, "software"),
    "cycles": (PERF_TYPE_HARDWARE, 0, "hardware"),  # PERF_COUNT_HW_CPU_CYCLES
    "instructions": (PERF_TYPE_HARDWARE, 1, "hardware"),
    "cache-misses": (PERF_TYPE_HARDWARE, 3, "hardware"),
    "branch-misses": (PERF_TYPE_HARDWARE, 5, "hardware"),
}
SOFTWARE_EVENTS = tuple(n for n, e in EVENTS.items() if e[2] == "software")
HARDWARE_EVENTS = tuple(n for n, e in EVENTS.items() if e[2] == "hardware")

FIELDS: Mapping[str, Field] = declare(
    Field("value", "count", "Counter total since opening, scaled for multiplexing (task-clock in ns).", "counter"),
    Field("delta", "count", "Counter increase since the previous sample, scaled.", "counter"),
    Field("running_fraction", "ratio", "Share of enabled time the counter was really counting.", "counter"),
    Field("ipc", "ratio", "Instructions per cycle over the last interval (needs both hardware counters)."),
)


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` (PERF_ATTR_SIZE_VER8, 136 bytes); unions as their first member."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),  # union with sample_freq
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),  # the disabled:1, inherit:1, ... bitfield
        ("wakeup_events", ctypes.c_uint32),  # union with wakeup_watermark
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),  # union with bp_addr
        ("config2", ctypes.c_uint64),  # union with bp_len
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("reserved_2", ctypes.c_uint16),
        ("aux_sample_size", ctypes.c_uint32),
        ("reserved_3", ctypes.c_uint32),
        ("sig_data", ctypes.c_uint64),
        ("config3", ctypes.c_uint64),
    ]


@dataclass(frozen=True)
class CounterReading:
    """One counter. ``value``/``delta`` are ``None`` when it is unavailable or was
    never scheduled onto the PMU."""

    name: str
    kind: str
    available: bool
    reason: str
    value: float | None = None
    delta: float | None = None
    raw: int | None = None
    time_enabled_ns: int | None = None
    time_running_ns: int | None = None

    @property
    def running_fraction(self) -> float | None:
        """time_running / time_enabled (1.0 = never multiplexed)."""
        if not self.time_enabled_ns or self.time_running_ns is None:
            return None
        return self.time_running_ns / self.time_enabled_ns


@dataclass(frozen=True)
class PerfReading:
    """All counters of one process."""

    pid: int
    available: bool
    reason: str
    counters: Mapping[str, CounterReading]
    ipc: float | None


def _paranoid(proc_root: Path) -> str:
    value, _ = _common.try_read(proc_root / "sys/kernel/perf_event_paranoid")
    return value if value is not None else "?"


def explain_errno(err: int, event: str, *, proc_root: Path = Path("/proc"), sysfs_root: Path = Path("/sys")) -> str:
    """The ``unavailable: ...`` text for a failed ``perf_event_open`` of ``event``."""
    name = "EOPNOTSUPP" if err == errno.EOPNOTSUPP else errno.errorcode.get(err, f"errno {err}")
    if err in (errno.EACCES, errno.EPERM):
        return unavailable(
            f"perf_event_paranoid={_paranoid(proc_root)} forbids {event} for this user ({name})"
        )
    if err in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV):
        hint = ""
        if EVENTS.get(event, (None, None, ""))[2] == "hardware" and not (
            sysfs_root / "bus/event_source/devices/cpu"
        ).exists():
            hint = "; no hardware PMU exposed"
        return unavailable(f"{event} not supported by this CPU/VM ({name}{hint})")
    if err == errno.ESRCH:
        return unavailable(f"no such process ({name})")
    if err in (errno.EMFILE, errno.ENFILE):
        return unavailable(f"out of file descriptors ({name})")
    return unavailable(f"perf_event_open({event}) failed ({name}: {os.strerror(err)})")


def summarise(reasons: Mapping[str, str]) -> str:
    """Merge per-event reasons that differ only in the event's name.

    ``{"cycles": "unavailable: cycles not supported (ENOENT)", "instructions": ...}``
    becomes ``"unavailable: cycles, instructions not supported (ENOENT)"``.
    """
    groups: dict[str, list[str]] = {}
    for event, reason in reasons.items():
        groups.setdefault(reason.removeprefix(_common.UNAVAILABLE).replace(event, "{}", 1), []).append(event)
    return "; ".join(
        unavailable(template.replace("{}", ", ".join(events), 1)) for template, events in groups.items()
    )


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


class PerfCounters:
    """Counters for one process, opened at construction, closed by :meth:`close`.

    Args:
        pid: the process (its main thread) to count; 0 = the calling thread.
        events: names from :data:`EVENTS`.
        proc_root: for ``perf_event_paranoid`` in error texts.
        sysfs_root: to tell "no PMU" from "event unknown" in error texts.
    """

    FIELDS = FIELDS

    def __init__(
        self,
        pid: int = 0,
        *,
        events: Sequence[str] = tuple(EVENTS),
        proc_root: Path = Path("/proc"),
        sysfs_root: Path = Path("/sys"),
    ) -> None:
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            raise ValueError(f"unknown perf events {unknown}; known: {', '.join(EVENTS)}")
        self.pid = pid
        self.events = tuple(events)
        self._fds: dict[str, int] = {}
        self._reasons: dict[str, str] = {}
        self._prev: dict[str, float] = {}
        self._finalizer = weakref.finalize(self, _close_all, self._fds)
        nr = SYSCALL_NUMBERS.get(platform.machine())
        if nr is None:
            why = unavailable(f"perf_event_open syscall number unknown for {platform.machine()}")
            self._reasons = {e: why for e in self.events}
        else:
            self._open_all(nr, Path(proc_root), Path(sysfs_root))
        self.available = bool(self._fds)
        self.reason = "" if self.available else (summarise(self._reasons) or unavailable("no events requested"))

    def _open_all(self, nr: int, proc_root: Path, sysfs_root: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
        syscall.restype = ctypes.c_long
        for name in self.events:
            etype, config, _ = EVENTS[name]
            attr = PerfEventAttr()
            attr.type = etype
            attr.size = ctypes.sizeof(PerfEventAttr)
            attr.config = config
            attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING
            attr.flags = _ATTR_DISABLED | _ATTR_INHERIT | _ATTR_EXCLUDE_KERNEL | _ATTR_EXCLUDE_HV
            fd = syscall(
                ctypes.c_long(nr), ctypes.byref(attr), ctypes.c_int(self.pid), ctypes.c_int(-1),
                ctypes.c_int(-1), ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC),
            )
            if fd < 0:
                self._reasons[name] = explain_errno(
                    ctypes.get_errno(), name, proc_root=proc_root, sysfs_root=sysfs_root
                )
                continue
            self._fds[name] = int(fd)
        for name, fd in list(self._fds.items()):
            try:
                fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0)
            except OSError as exc:
                os.close(self._fds.pop(name))
                self._reasons[name] = unavailable(f"could not enable {name} ({_common.errno_name(exc)})")

    @property
    def open_fds(self) -> tuple[int, ...]:
        """The file descriptors currently open (empty after :meth:`close`)."""
        return tuple(self._fds.values())

    def close(self) -> None:
        """Close every counter's file descriptor (idempotent)."""
        self._finalizer()

    def __enter__(self) -> PerfCounters:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sample(self) -> PerfReading:
        """Read every counter (never raises); ``ipc`` is over the last interval."""
        counters: dict[str, CounterReading] = {}
        for name in self.events:
            kind = EVENTS[name][2]
            fd = self._fds.get(name)
            if fd is None:
                reason = self._reasons.get(name) or unavailable("closed")
                counters[name] = CounterReading(name, kind, False, reason)
                continue
            try:
                raw, enabled, running = struct.unpack("QQQ", os.read(fd, 24))
            except (OSError, struct.error) as exc:
                why = _common.errno_name(exc) if isinstance(exc, OSError) else "short read"
                counters[name] = CounterReading(name, kind, False, unavailable(f"read failed ({why})"))
                continue
            if running == 0:
                counters[name] = CounterReading(
                    name, kind, True, "not yet scheduled on the PMU", None, None, raw, enabled, running
                )
                continue
            value = raw * (enabled / running) if running < enabled else float(raw)
            prev = self._prev.get(name)
            self._prev[name] = value
            counters[name] = CounterReading(
                name, kind, True, "", value, None if prev is None else value - prev, raw, enabled, running
            )
        if not self._fds and self.available:
            self.available, self.reason = False, unavailable("closed")
        return PerfReading(self.pid, self.available, self.reason, counters, _ipc(counters))


def _ipc(counters: Mapping[str, CounterReading]) -> float | None:
    cyc, ins = counters.get("cycles"), counters.get("instructions")
    if cyc is None or ins is None or cyc.value is None or ins.value is None:
        return None
    c, i = (cyc.delta, ins.delta) if cyc.delta is not None and ins.delta is not None else (cyc.value, ins.value)
    return i / c if c and c > 0 else None


def probe(*, proc_root: Path = Path("/proc"), sysfs_root: Path = Path("/sys")) -> dict[str, str]:
    """Open each known event on this process, close it at once; ``{event: "ok" | reason}``."""
    with PerfCounters(0, proc_root=proc_root, sysfs_root=sysfs_root) as pc:
        return {name: ("ok" if r.available else r.reason) for name, r in pc.sample().counters.items()}
