"""CPU, memory, disk and network telemetry through psutil, plus per-process stats.

Design note: CPU percentages are computed here from ``psutil.cpu_times(percpu=True)``
deltas instead of calling ``psutil.cpu_percent(interval=None)``, because psutil keeps
the "previous sample" for that call in module-global state: two collectors (or a
collector and a library) calling it would steal each other's intervals. Each
:class:`PsutilCollector` keeps its own previous sample, so it is non-blocking and
independent. The first :meth:`PsutilCollector.sample` measures from construction.

Rates (disk/net bytes per second) are deltas of psutil's cumulative counters over the
injected clock; psutil already corrects kernel counter wrap (``nowrap=True``). A
counter that goes backwards anyway (a NIC re-created, a disk removed) yields ``None``
for that interval rather than a negative or huge rate.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from engine.telemetry._common import Clock, Field, declare, unavailable

FIELDS: Mapping[str, Field] = declare(
    Field("per_core_percent", "%", "Busy time of each logical CPU over the last interval.", "core"),
    Field("total_percent", "%", "Busy time of all logical CPUs over the last interval."),
    Field("freq_current_mhz", "MHz", "Current CPU frequency (mean over cores), if exposed."),
    Field("freq_min_mhz", "MHz", "Minimum CPU frequency, if a cpufreq driver exposes it."),
    Field("freq_max_mhz", "MHz", "Maximum CPU frequency, if a cpufreq driver exposes it."),
    Field("load_1m", "count", "Load average over 1 minute (runnable + uninterruptible tasks)."),
    Field("load_5m", "count", "Load average over 5 minutes."),
    Field("load_15m", "count", "Load average over 15 minutes."),
    Field("mem_total_bytes", "B", "Total physical memory."),
    Field("mem_available_bytes", "B", "Memory available to new processes without swapping."),
    Field("mem_used_bytes", "B", "Memory in use (psutil's definition: total - free - buffers - cache)."),
    Field("mem_percent", "%", "Share of memory not available ((total - available) / total)."),
    Field("swap_total_bytes", "B", "Total swap space."),
    Field("swap_used_bytes", "B", "Swap space in use."),
    Field("swap_percent", "%", "Share of swap space in use."),
    Field("disk_read_bps", "B/s", "Bytes read from all disks per second over the last interval."),
    Field("disk_write_bps", "B/s", "Bytes written to all disks per second over the last interval."),
    Field("net_sent_bps", "B/s", "Bytes sent on all interfaces per second over the last interval."),
    Field("net_recv_bps", "B/s", "Bytes received on all interfaces per second over the last interval."),
    Field("cpu_percent", "%", "CPU use of one process since the previous call (can exceed 100).", "pid"),
    Field("rss_bytes", "B", "Resident set size of one process.", "pid"),
    Field("num_threads", "count", "Threads of one process.", "pid"),
    Field("num_fds", "count", "Open file descriptors of one process.", "pid"),
    Field("cpu_time_s", "s", "User + system CPU time one process has used.", "pid"),
    Field("ctx_switches", "count", "Voluntary + involuntary context switches of one process.", "pid"),
)


@dataclass(frozen=True)
class CpuReading:
    """CPU utilisation, frequency and load.

    ``per_core_percent`` has one entry per logical CPU, each in 0..100.
    ``freq_reason`` is ``""`` when all three frequencies are known, else why not.
    """

    available: bool
    reason: str
    per_core_percent: tuple[float, ...]
    total_percent: float | None
    freq_current_mhz: float | None
    freq_min_mhz: float | None
    freq_max_mhz: float | None
    freq_reason: str
    load_1m: float | None
    load_5m: float | None
    load_15m: float | None


@dataclass(frozen=True)
class MemoryReading:
    """Physical memory and swap, in bytes."""

    available: bool
    reason: str
    mem_total_bytes: int | None
    mem_available_bytes: int | None
    mem_used_bytes: int | None
    mem_percent: float | None
    swap_total_bytes: int | None
    swap_used_bytes: int | None
    swap_percent: float | None


@dataclass(frozen=True)
class IoReading:
    """Disk and network throughput over ``interval_s`` (rates are ``None`` if unknown)."""

    available: bool
    reason: str
    interval_s: float | None
    disk_read_bps: float | None
    disk_write_bps: float | None
    net_sent_bps: float | None
    net_recv_bps: float | None


@dataclass(frozen=True)
class PsutilReading:
    """One sample of the psutil collector."""

    timestamp: float
    available: bool
    reason: str
    cpu: CpuReading
    memory: MemoryReading
    io: IoReading


@dataclass(frozen=True)
class ProcessStats:
    """Resource use of one process.

    ``cpu_percent`` is ``None`` the first time a pid is seen (psutil needs two
    observations); ``num_fds`` is ``None`` when access is denied.
    """

    pid: int
    cpu_percent: float | None
    rss_bytes: int
    num_threads: int
    num_fds: int | None
    cpu_time_s: float
    ctx_switches: int


def _busy_and_total(t: Any) -> tuple[float, float]:
    """Busy and total jiffies-as-seconds of one ``cpu_times`` entry (Linux fields).

    guest/guest_nice are already counted inside user/nice, so they are subtracted
    from the total; idle and iowait are the non-busy time.
    """
    total = float(sum(t)) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return total - idle, total


def _percent(prev: Any, cur: Any) -> float | None:
    b0, t0 = _busy_and_total(prev)
    b1, t1 = _busy_and_total(cur)
    dt = t1 - t0
    if dt <= 0:
        return None
    return min(100.0, max(0.0, 100.0 * (b1 - b0) / dt))


def _rate(prev: tuple[int, int] | None, cur: tuple[int, int] | None, i: int, dt: float) -> float | None:
    """Rate of counter ``i`` of a (read, write)-style pair; ``None`` if unknown or reset."""
    if prev is None or cur is None or dt <= 0 or cur[i] < prev[i]:
        return None
    return (cur[i] - prev[i]) / dt


class PsutilCollector:
    """Samples CPU, memory and I/O through psutil without blocking.

    Args:
        psutil_module: the ``psutil`` module or a stand-in with the same functions
            (tests); ``None`` imports psutil.
        clock: monotonic seconds, for the I/O rates.
    """

    FIELDS = FIELDS

    def __init__(self, *, psutil_module: ModuleType | Any = None, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._ps: Any = psutil_module
        self.available = True
        self.reason = ""
        if self._ps is None:
            try:
                import psutil

                self._ps = psutil
            except ImportError as exc:  # pragma: no cover - psutil is a dependency
                self.available = False
                self.reason = unavailable(f"psutil not installed ({exc})")
                return
        self._procs: dict[int, Any] = {}
        self._last_core_pct: tuple[float, ...] = ()
        self._last_total_pct: float | None = None
        self._prev_cpu = self._cpu_times()
        self._prev_t = clock()
        self._prev_io = self._io_counters()

    # --- CPU ---------------------------------------------------------------------

    def _cpu_times(self) -> tuple[Any, Any] | None:
        try:
            return tuple(self._ps.cpu_times(percpu=True)), self._ps.cpu_times()
        except (OSError, RuntimeError, NotImplementedError):
            return None

    def _cpu(self) -> CpuReading:
        cur = self._cpu_times()
        reason = ""
        if cur is None or self._prev_cpu is None:
            reason = unavailable("psutil.cpu_times() failed")
            per_core: tuple[float, ...] = ()
            total: float | None = None
        else:
            (prev_cores, prev_all), (cores, allc) = self._prev_cpu, cur
            if len(prev_cores) != len(cores):  # CPU hot-plug: restart the interval
                prev_cores = cores
            pcts = [_percent(p, c) for p, c in zip(prev_cores, cores)]
            last = self._last_core_pct if len(self._last_core_pct) == len(cores) else ()
            per_core = tuple(
                p if p is not None else (last[i] if last else 0.0) for i, p in enumerate(pcts)
            )
            total = _percent(prev_all, allc)
            total = self._last_total_pct if total is None else total
            if total is None:
                total = 0.0
            self._last_core_pct, self._last_total_pct = per_core, total
            self._prev_cpu = cur
        fcur, fmin, fmax, freq_reason = self._freq()
        load = self._loadavg()
        return CpuReading(
            available=not reason,
            reason=reason,
            per_core_percent=per_core,
            total_percent=total,
            freq_current_mhz=fcur,
            freq_min_mhz=fmin,
            freq_max_mhz=fmax,
            freq_reason=freq_reason,
            load_1m=load[0],
            load_5m=load[1],
            load_15m=load[2],
        )

    def _freq(self) -> tuple[float | None, float | None, float | None, str]:
        fn = getattr(self._ps, "cpu_freq", None)
        if fn is None:
            return None, None, None, unavailable("psutil has no cpu_freq() on this platform")
        try:
            f = fn()
        except (OSError, RuntimeError, NotImplementedError) as exc:
            return None, None, None, unavailable(f"cpu_freq() failed ({type(exc).__name__})")
        if f is None:
            return None, None, None, unavailable("no CPU frequency exposed (no cpufreq; VM?)")
        cur = float(f.current) if f.current else None
        fmin = float(f.min) if f.min else None
        fmax = float(f.max) if f.max else None
        if cur is None:
            return None, fmin, fmax, unavailable("current CPU frequency not exposed")
        if fmin is None or fmax is None:
            return cur, fmin, fmax, (
                "min/max not exposed (no cpufreq driver; current is /proc/cpuinfo's nominal MHz)"
            )
        return cur, fmin, fmax, ""

    def _loadavg(self) -> tuple[float | None, float | None, float | None]:
        try:
            a, b, c = self._ps.getloadavg()
            return float(a), float(b), float(c)
        except (OSError, AttributeError, NotImplementedError):
            return None, None, None

    # --- memory --------------------------------------------------------------------

    def _memory(self) -> MemoryReading:
        try:
            vm = self._ps.virtual_memory()
        except (OSError, RuntimeError) as exc:
            return MemoryReading(False, unavailable(f"virtual_memory() failed ({exc})"), *([None] * 7))
        try:
            sw = self._ps.swap_memory()
            swap: tuple[int | None, int | None, float | None] = (sw.total, sw.used, float(sw.percent))
        except (OSError, RuntimeError):
            swap = (None, None, None)
        return MemoryReading(
            available=True,
            reason="",
            mem_total_bytes=vm.total,
            mem_available_bytes=vm.available,
            mem_used_bytes=vm.used,
            mem_percent=float(vm.percent),
            swap_total_bytes=swap[0],
            swap_used_bytes=swap[1],
            swap_percent=swap[2],
        )

    # --- I/O -------------------------------------------------------------------------

    def _io_counters(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        disk: tuple[int, int] | None = None
        net: tuple[int, int] | None = None
        try:
            d = self._ps.disk_io_counters()
            if d is not None:
                disk = (d.read_bytes, d.write_bytes)
        except (OSError, RuntimeError):
            pass
        try:
            n = self._ps.net_io_counters()
            if n is not None:
                net = (n.bytes_sent, n.bytes_recv)
        except (OSError, RuntimeError):
            pass
        return disk, net

    def _io(self, now: float) -> IoReading:
        disk, net = self._io_counters()
        (pdisk, pnet), dt = self._prev_io, now - self._prev_t
        self._prev_io, self._prev_t = (disk, net), now
        missing = [name for name, v in (("disk", disk), ("network", net)) if v is None]
        reason = unavailable(f"no {' or '.join(missing)} counters") if missing else ""
        return IoReading(
            available=len(missing) < 2,
            reason=reason,
            interval_s=dt if dt > 0 else None,
            disk_read_bps=_rate(pdisk, disk, 0, dt),
            disk_write_bps=_rate(pdisk, disk, 1, dt),
            net_sent_bps=_rate(pnet, net, 0, dt),
            net_recv_bps=_rate(pnet, net, 1, dt),
        )

    # --- public ---------------------------------------------------------------------

    def sample(self) -> PsutilReading:
        """Return CPU, memory and I/O measured since the previous sample (never raises)."""
        now = self._clock()
        if not self.available:
            empty_cpu = CpuReading(False, self.reason, (), None, None, None, None, self.reason, None, None, None)
            return PsutilReading(
                now, False, self.reason, empty_cpu,
                MemoryReading(False, self.reason, *([None] * 7)),
                IoReading(False, self.reason, None, None, None, None, None),
            )
        return PsutilReading(now, True, "", self._cpu(), self._memory(), self._io(now))

    def process_stats(self, pids: Iterable[int]) -> dict[int, ProcessStats]:
        """Return stats for each live pid in ``pids``; dead or unknown pids are left out.

        ``psutil.Process`` objects are kept between calls so ``cpu_percent`` measures
        the interval since the previous call; a cached process that has exited (or
        whose pid was reused) is forgotten.
        """
        if not self.available:
            return {}
        ps = self._ps
        for pid, proc in list(self._procs.items()):
            try:
                alive = proc.is_running() and proc.status() != ps.STATUS_ZOMBIE
            except ps.Error:
                alive = False
            if not alive:
                del self._procs[pid]
        out: dict[int, ProcessStats] = {}
        for pid in dict.fromkeys(pids):
            proc = self._procs.get(pid)
            first = proc is None
            try:
                if proc is None:
                    proc = ps.Process(pid)
                with proc.oneshot():
                    cpu = proc.cpu_percent(None)
                    mem = proc.memory_info()
                    threads = proc.num_threads()
                    times = proc.cpu_times()
                    ctx = proc.num_ctx_switches()
                    try:
                        fds: int | None = proc.num_fds()
                    except ps.AccessDenied:
                        fds = None
            except ps.NoSuchProcess:  # includes ZombieProcess
                self._procs.pop(pid, None)
                continue
            except ps.AccessDenied:
                continue
            self._procs[pid] = proc
            out[pid] = ProcessStats(
                pid=pid,
                cpu_percent=None if first else float(cpu),
                rss_bytes=int(mem.rss),
                num_threads=int(threads),
                num_fds=fds,
                cpu_time_s=float(times.user + times.system),
                ctx_switches=int(ctx.voluntary + ctx.involuntary),
            )
        return out

    @property
    def tracked_pids(self) -> frozenset[int]:
        """The pids whose ``psutil.Process`` is cached (for tests and leak checks)."""
        return frozenset(self._procs)
