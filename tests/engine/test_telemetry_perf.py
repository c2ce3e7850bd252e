"""perf_event counters on this process: what the kernel allows here, honestly."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import pytest

from engine.telemetry.perf_events import (
    EVENTS,
    HARDWARE_EVENTS,
    PerfCounters,
    PerfEventAttr,
    explain_errno,
    summarise,
)


def burn() -> int:
    return sum(i * i for i in range(300_000))


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_attr_layout_matches_perf_attr_size_ver8() -> None:
    """struct perf_event_attr is 136 bytes with read_format at 32 and flags at 40."""
    assert ctypes.sizeof(PerfEventAttr) == 136
    assert PerfEventAttr.read_format.offset == 32
    assert PerfEventAttr.flags.offset == 40
    assert PerfEventAttr.bp_type.offset == 52
    assert PerfEventAttr.config3.offset == 128


def test_task_clock_on_self_increases_when_burning_cpu() -> None:
    """task-clock counts this thread's CPU time; if the kernel refuses, the reason says so."""
    with PerfCounters(0, events=["task-clock"]) as pc:
        before = pc.sample().counters["task-clock"]
        if not pc.available:
            assert before.reason.startswith("unavailable:")
            assert "perf_event_paranoid=" in before.reason or "not supported" in before.reason
            return
        burn()
        after = pc.sample().counters["task-clock"]
    assert before.value is not None and after.value is not None
    assert after.value > before.value
    assert after.delta == pytest.approx(after.value - before.value)
    assert after.running_fraction is not None and 0.0 < after.running_fraction <= 1.0


def test_software_counters_report_each_availability() -> None:
    """Each software counter is either counting (value >= 0) or gives a reason."""
    with PerfCounters(0, events=["context-switches", "page-faults", "cpu-migrations"]) as pc:
        bytearray(8 * 1024 * 1024)  # touch fresh pages: page faults
        r = pc.sample()
    for c in r.counters.values():
        if c.available:
            assert c.value is not None and c.value >= 0
        else:
            assert c.reason.startswith("unavailable:")


def test_hardware_counters_and_ipc_are_honest() -> None:
    """cycles/instructions either count (and give IPC) or say why not (no PMU in a VM)."""
    with PerfCounters(0, events=list(HARDWARE_EVENTS)) as pc:
        burn()
        r = pc.sample()
    cyc, ins = r.counters["cycles"], r.counters["instructions"]
    if cyc.value is not None and ins.value is not None:
        assert r.ipc is not None and r.ipc > 0
    else:
        assert r.ipc is None
    for c in r.counters.values():
        assert c.available or c.reason.startswith("unavailable:"), c


def test_close_releases_every_fd() -> None:
    """Opening all counters and closing them leaves the fd count where it was."""
    start = fd_count()
    pc = PerfCounters(0)
    opened = len(pc.open_fds)
    assert fd_count() == start + opened
    pc.close()
    pc.close()
    assert fd_count() == start and pc.open_fds == ()
    closed = pc.sample()
    assert not closed.available
    assert all(not c.available for c in closed.counters.values())


def test_unknown_event_name_is_a_value_error() -> None:
    """A typo in an event name fails loudly at construction."""
    with pytest.raises(ValueError, match="unknown perf events"):
        PerfCounters(0, events=["cycle"])


def test_nonexistent_pid_gives_esrch_reason() -> None:
    """Counting a process that does not exist reports ESRCH for every counter."""
    with PerfCounters(2**22 + 12345, events=["task-clock"]) as pc:
        assert not pc.available
        assert pc.reason == "unavailable: no such process (ESRCH)"


def test_errno_texts(tmp_path: Path) -> None:
    """EACCES names the paranoid level; ENOENT says not supported, with a PMU hint."""
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/perf_event_paranoid").write_text("3\n")
    proc, sysfs = tmp_path / "proc", tmp_path / "sys"
    assert explain_errno(errno.EACCES, "cycles", proc_root=proc, sysfs_root=sysfs) == (
        "unavailable: perf_event_paranoid=3 forbids cycles for this user (EACCES)"
    )
    assert explain_errno(errno.ENOENT, "cycles", proc_root=proc, sysfs_root=sysfs) == (
        "unavailable: cycles not supported by this CPU/VM (ENOENT; no hardware PMU exposed)"
    )
    (sysfs / "bus/event_source/devices/cpu").mkdir(parents=True)
    assert explain_errno(errno.EOPNOTSUPP, "cycles", proc_root=proc, sysfs_root=sysfs) == (
        "unavailable: cycles not supported by this CPU/VM (EOPNOTSUPP)"
    )


def test_summarise_merges_reasons_that_differ_only_by_event() -> None:
    """Per-event reasons collapse into one line listing the events."""
    reasons = {e: f"unavailable: {e} not supported by this CPU/VM (ENOENT)" for e in ("cycles", "instructions")}
    reasons["task-clock"] = "unavailable: perf_event_paranoid=3 forbids task-clock for this user (EACCES)"
    assert summarise(reasons) == (
        "unavailable: cycles, instructions not supported by this CPU/VM (ENOENT); "
        "unavailable: perf_event_paranoid=3 forbids task-clock for this user (EACCES)"
    )


def test_this_machine_every_event_is_ok_or_explained() -> None:
    """On this machine each known event either opens or carries an 'unavailable:' reason."""
    with PerfCounters(0) as pc:
        r = pc.sample()
    assert set(r.counters) == set(EVENTS)
    for c in r.counters.values():
        assert c.available or c.reason.startswith("unavailable:")
