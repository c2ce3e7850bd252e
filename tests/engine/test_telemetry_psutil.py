"""psutil collector: CPU/IO maths on a scripted psutil, and well-formed real samples."""

from __future__ import annotations

import subprocess
import sys
from collections import namedtuple
from typing import Any

import psutil
import pytest

from engine.telemetry.psutil_collector import PsutilCollector

CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")
Freq = namedtuple("Freq", "current min max")
Disk = namedtuple("Disk", "read_bytes write_bytes")
Net = namedtuple("Net", "bytes_sent bytes_recv")
VMem = namedtuple("VMem", "total available percent used free")
Swap = namedtuple("Swap", "total used free percent sin sout")


def times(user: float = 0, idle: float = 0, system: float = 0, iowait: float = 0, guest: float = 0) -> CpuTimes:
    return CpuTimes(user, 0.0, system, idle, iowait, 0.0, 0.0, 0.0, guest, 0.0)


class ScriptedPsutil:
    """Just the psutil functions the collector calls, with values a test sets."""

    def __init__(self) -> None:
        self.cores = [times(user=100, idle=100), times(user=100, idle=100)]
        self.freq: Any = Freq(3400.0, 800.0, 4800.0)
        self.disk: Any = Disk(1_000, 500)
        self.net: Any = Net(10_000, 20_000)

    def cpu_times(self, percpu: bool = False) -> Any:
        if percpu:
            return list(self.cores)
        return CpuTimes(*(sum(col) for col in zip(*self.cores)))

    def cpu_freq(self) -> Any:
        return self.freq

    def getloadavg(self) -> tuple[float, float, float]:
        return (1.5, 1.0, 0.5)

    def virtual_memory(self) -> VMem:
        return VMem(total=8_000, available=6_000, percent=25.0, used=1_500, free=5_000)

    def swap_memory(self) -> Swap:
        return Swap(total=2_000, used=500, free=1_500, percent=25.0, sin=0, sout=0)

    def disk_io_counters(self) -> Any:
        return self.disk

    def net_io_counters(self) -> Any:
        return self.net


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_cpu_percent_from_time_deltas_since_construction() -> None:
    """Core 0 half busy, core 1 idle: 50 %, 0 %, total 25 %."""
    ps = ScriptedPsutil()
    col = PsutilCollector(psutil_module=ps, clock=FakeClock())
    ps.cores = [times(user=150, idle=150), times(user=100, idle=200)]
    cpu = col.sample().cpu
    assert cpu.available
    assert cpu.per_core_percent == pytest.approx((50.0, 0.0))
    assert cpu.total_percent == pytest.approx(25.0)
    assert (cpu.load_1m, cpu.load_5m, cpu.load_15m) == (1.5, 1.0, 0.5)


def test_guest_time_is_not_counted_twice_and_iowait_is_idle() -> None:
    """user includes guest; iowait counts as idle (psutil's Linux definition)."""
    ps = ScriptedPsutil()
    col = PsutilCollector(psutil_module=ps, clock=FakeClock())
    ps.cores = [times(user=180, idle=120, guest=40), times(user=100, idle=150, iowait=50)]
    cpu = col.sample().cpu
    assert cpu.per_core_percent == pytest.approx((80.0, 0.0))


def test_no_elapsed_cpu_time_keeps_the_previous_percent() -> None:
    """Two samples with no CPU time in between repeat the last value, not 0 or NaN."""
    ps = ScriptedPsutil()
    col = PsutilCollector(psutil_module=ps, clock=FakeClock())
    ps.cores = [times(user=150, idle=150), times(user=150, idle=150)]
    first = col.sample().cpu
    second = col.sample().cpu
    assert second.per_core_percent == first.per_core_percent == pytest.approx((50.0, 50.0))


def test_io_rates_over_injected_clock() -> None:
    """2000 B read and 4000 B received in 2 s are 1000 B/s and 2000 B/s."""
    ps = ScriptedPsutil()
    clock = FakeClock()
    col = PsutilCollector(psutil_module=ps, clock=clock)
    ps.disk = Disk(3_000, 500)
    ps.net = Net(10_000, 24_000)
    clock.now += 2.0
    io = col.sample().io
    assert io.available and io.interval_s == pytest.approx(2.0)
    assert (io.disk_read_bps, io.disk_write_bps) == pytest.approx((1000.0, 0.0))
    assert (io.net_sent_bps, io.net_recv_bps) == pytest.approx((0.0, 2000.0))


def test_counter_going_backwards_gives_none_not_negative() -> None:
    """A reset NIC counter yields None for that interval, then rates resume."""
    ps = ScriptedPsutil()
    clock = FakeClock()
    col = PsutilCollector(psutil_module=ps, clock=clock)
    ps.net = Net(5, 7)
    clock.now += 1.0
    assert col.sample().io.net_sent_bps is None
    ps.net = Net(105, 7)
    clock.now += 1.0
    assert col.sample().io.net_sent_bps == pytest.approx(100.0)


def test_missing_disk_counters_are_reported() -> None:
    """psutil returns None for disks in some containers: rates None, reason given."""
    ps = ScriptedPsutil()
    col = PsutilCollector(psutil_module=ps, clock=FakeClock())
    ps.disk = None
    io = col.sample().io
    assert io.available and io.disk_read_bps is None
    assert io.reason == "unavailable: no disk counters"


def test_frequency_missing_or_partial() -> None:
    """No cpufreq at all -> None with reason; min/max of 0 -> None with reason."""
    ps = ScriptedPsutil()
    col = PsutilCollector(psutil_module=ps, clock=FakeClock())
    cpu = col.sample().cpu
    assert (cpu.freq_current_mhz, cpu.freq_min_mhz, cpu.freq_max_mhz, cpu.freq_reason) == (3400.0, 800.0, 4800.0, "")
    ps.freq = Freq(2596.1, 0.0, 0.0)
    cpu = col.sample().cpu
    assert (cpu.freq_current_mhz, cpu.freq_min_mhz, cpu.freq_max_mhz) == (2596.1, None, None)
    assert cpu.freq_reason.startswith("min/max not exposed")
    ps.freq = None
    cpu = col.sample().cpu
    assert cpu.freq_current_mhz is None
    assert cpu.freq_reason == "unavailable: no CPU frequency exposed (no cpufreq; VM?)"


def test_memory_and_swap() -> None:
    """Memory and swap figures are passed through in bytes."""
    m = PsutilCollector(psutil_module=ScriptedPsutil(), clock=FakeClock()).sample().memory
    assert (m.mem_total_bytes, m.mem_available_bytes, m.mem_used_bytes, m.mem_percent) == (8000, 6000, 1500, 25.0)
    assert (m.swap_total_bytes, m.swap_used_bytes, m.swap_percent) == (2000, 500, 25.0)


def test_this_machine_sample_is_well_formed() -> None:
    """Real psutil: one percent per logical CPU, all in 0..100; memory and rates sane."""
    col = PsutilCollector()
    sum(i * i for i in range(100_000))  # some CPU time so the interval is not empty
    r = col.sample()
    assert r.available and r.cpu.available
    assert len(r.cpu.per_core_percent) == psutil.cpu_count()
    assert all(0.0 <= p <= 100.0 for p in r.cpu.per_core_percent)
    assert r.cpu.total_percent is not None and 0.0 <= r.cpu.total_percent <= 100.0
    assert r.cpu.freq_reason == "" or r.cpu.freq_reason
    assert r.memory.mem_total_bytes and r.memory.mem_total_bytes > 0
    assert 0 <= (r.memory.mem_available_bytes or 0) <= r.memory.mem_total_bytes
    for rate in (r.io.disk_read_bps, r.io.disk_write_bps, r.io.net_sent_bps, r.io.net_recv_bps):
        assert rate is None or rate >= 0.0


def test_process_stats_caches_processes_and_forgets_dead_ones() -> None:
    """cpu_percent is None on first sight, a number next time; a killed child is dropped."""
    col = PsutilCollector()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = psutil.Process().pid
        first = col.process_stats([me, child.pid])
        assert set(first) == {me, child.pid}
        assert first[me].cpu_percent is None
        assert first[me].rss_bytes > 0 and first[me].num_threads >= 1
        assert first[me].num_fds is not None and first[me].num_fds >= 3
        assert first[me].cpu_time_s > 0 and first[me].ctx_switches >= 0
        assert col.tracked_pids == {me, child.pid}
        second = col.process_stats([me, child.pid])
        assert second[me].cpu_percent is not None and second[me].cpu_percent >= 0.0
    finally:
        child.kill()
        child.wait()
    third = col.process_stats([me, child.pid])
    assert set(third) == {me}
    assert col.tracked_pids == {me}
