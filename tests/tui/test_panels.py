"""Panel text builders: machine bars, bus chart, detail graphs."""

from __future__ import annotations

from engine import MachineInfo
from swarm_tui.panels import bus_text, machine_text, series_text
from swarm_tui.render import fmt_percent


def test_machine_lists_every_core_then_memory_and_load() -> None:
    """A few cores: one line each, then memory and the load average."""
    machine = MachineInfo(cpu_percent=50, per_cpu_percent=(10.0, 90.0), memory_percent=25.0,
                          memory_used_bytes=2 * 1024**3, memory_total_bytes=8 * 1024**3, load_average=(1, 2, 3))
    lines = machine_text(machine, 40, 6).plain.splitlines()
    assert lines[0].startswith("0 ") and lines[0].endswith("10.0%")
    assert lines[1].endswith("90.0%")
    assert lines[2].startswith("mem 2.0G/8.0G")
    assert lines[3] == "load 1.00 2.00 3.00"


def test_many_cores_become_columns_within_the_height() -> None:
    """64 cores in 6 lines: a grid of columns, never more lines than the panel has."""
    machine = MachineInfo(per_cpu_percent=tuple(float(i) for i in range(64)))
    lines = machine_text(machine, 120, 6).plain.splitlines()
    assert len(lines) == 6
    assert "63" in "".join(lines)


def test_bus_text_fits_the_height() -> None:
    """The msgs/s chart takes what the p50/p99 lines leave."""
    series = {"messages_per_s": (1.0, 2.0, 3.0), "bus_p50_us": (10.0,), "bus_p99_us": (90.0,)}
    lines = bus_text(series, 30, 8).plain.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith("msgs/s") and lines[-2].startswith("p50") and lines[-1].startswith("p99")
    assert "90.0µs" in lines[-1]


def test_series_text_has_title_now_and_max() -> None:
    """A detail graph says its current and highest value above the chart."""
    text = series_text("cpu", (10.0, 50.0, 20.0), 20, 4, fmt_percent, hi=100)
    lines = text.plain.splitlines()
    assert lines[0] == "cpu  now 20.0%  max 50.0%"
    assert len(lines) == 4
