"""Pure text builders for the dashboard's small panels and the detail screen's graphs.

Each function takes values and the size it may fill and returns a Rich ``Text``;
the panel widgets call them from ``render()`` with their content size, and the unit
tests call them directly.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from rich.text import Text

from engine import MachineInfo

from swarm_tui import charts
from swarm_tui.render import fmt_bytes, fmt_count, fmt_latency_us, fmt_percent
from swarm_tui.sensors import SensorReading

LEVEL_STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red"}


def percent_bar(label: str, percent: float, width: int, *, warn: float = 75.0, crit: float = 90.0) -> Text:
    """``label ████▌   45.0%`` in ``width`` cells, the bar coloured by level."""
    value = fmt_percent(percent).rjust(6)
    bar_width = max(1, width - len(label) - len(value) - 2)
    style = LEVEL_STYLES[charts.level(percent, warn, crit)]
    return Text.assemble((label, "bold"), " ", (charts.gauge_bar(percent / 100.0, bar_width), style), " ", value)


def machine_text(machine: MachineInfo, width: int, height: int) -> Text:
    """Per-core CPU bars (in as many columns as the height needs), then memory and load."""
    width = max(width, 12)
    cores = list(machine.per_cpu_percent)
    rows_for_cores = max(1, height - 2)
    ncols = max(1, math.ceil(len(cores) / rows_for_cores)) if cores else 1
    col_width = max(10, (width - (ncols - 1)) // ncols)
    label_width = len(str(max(len(cores) - 1, 0)))
    lines: list[Text] = []
    for row in range(min(rows_for_cores, len(cores))):
        line = Text()
        for col in range(ncols):
            index = col * rows_for_cores + row
            if index >= len(cores):
                break
            if col:
                line.append(" ")
            line.append_text(percent_bar(str(index).rjust(label_width), cores[index], col_width))
        lines.append(line)
    if not cores:
        lines.append(Text("no per-core data", style="bright_black"))
    mem_label = f"mem {fmt_bytes(machine.memory_used_bytes, compact=True)}/{fmt_bytes(machine.memory_total_bytes, compact=True)}"
    lines.append(percent_bar(mem_label, machine.memory_percent, width))
    load = machine.load_average
    lines.append(Text.assemble(("load ", "bold"), f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
                               (f"  cpu {fmt_percent(machine.cpu_percent)}", "")))
    return Text("\n").join(lines[: max(height, 1)])


def labelled_spark(label: str, values: Sequence[float], width: int, fmt: Callable[[float], str],
                   style: str = "cyan", hi: float | None = None) -> Text:
    """``label  value ▁▂▃▅▇`` : the current value, then a sparkline filling the rest."""
    now = fmt(values[-1]) if values else "—"
    head = f"{label} {now:>7} "
    spark_width = max(1, width - len(head))
    return Text.assemble((label, "bold"), f" {now:>7} ", (charts.spark(values, spark_width, hi), style))


def bus_text(series: Mapping[str, Sequence[float]], width: int, height: int) -> Text:
    """Messages/s as a column chart, then bus latency p50 and p99 sparklines (one scale)."""
    width = max(width, 16)
    rate = series.get("messages_per_s", ())
    p50 = series.get("bus_p50_us", ())
    p99 = series.get("bus_p99_us", ())
    peak = max(rate, default=0.0)
    lines = [Text.assemble(("msgs/s", "bold"), f" {fmt_count(rate[-1]) if rate else '—':>7} ",
                           (f"peak {fmt_count(peak)}", "bright_black"))]
    chart_height = max(0, height - 3)
    lines.extend(Text(line, style="green") for line in charts.bar_chart(rate, width, chart_height))
    top = max(max(p99, default=0.0), max(p50, default=0.0)) or None
    lines.append(labelled_spark("p50", p50, width, fmt_latency_us, "cyan", top))
    lines.append(labelled_spark("p99", p99, width, fmt_latency_us, "magenta", top))
    return Text("\n").join(lines[-max(height, 1):] if height < len(lines) else lines)


def thermal_text(readings: Sequence[SensorReading], reason: str, width: int, height: int) -> Text:
    """One gauge per reading (hottest first when they do not all fit), or the reason there are none."""
    if not readings:
        return Text(reason or "no temperature sensors on this machine", style="italic bright_black")
    shown = list(readings)
    if len(shown) > height:
        shown = sorted(shown, key=lambda r: r.celsius, reverse=True)[: max(height, 1)]
    label_width = min(max(len(r.label) + (2 if r.modelled else 0) for r in shown), max(6, width // 2))
    lines = []
    for r in shown:
        label = r.label + (" ~" if r.modelled else "")
        value = f"{r.celsius:5.1f}°C"
        bar_width = max(1, width - label_width - len(value) - 2)
        style = LEVEL_STYLES[charts.level(r.celsius, r.warn_c, r.crit_c)]
        lines.append(Text.assemble((label[:label_width].ljust(label_width), "bold"), " ",
                                   (charts.gauge_bar(r.celsius / r.crit_c if r.crit_c else 0, bar_width), style),
                                   " ", (value, style)))
    return Text("\n").join(lines)


def series_text(title: str, values: Sequence[float], width: int, height: int, fmt: Callable[[float], str],
                *, hi: float | None = None, style: str = "green") -> Text:
    """A titled column chart: ``title  now X  max Y`` then ``height - 1`` chart lines."""
    width = max(width, 8)
    now = fmt(values[-1]) if values else "—"
    peak = fmt(max(values)) if values else "—"
    head = Text.assemble((title, "bold"), "  now ", (now, "bold"), ("  max ", "bright_black"), (peak, "bright_black"))
    lines = [head]
    lines.extend(Text(line, style=style) for line in charts.bar_chart(values, width, max(0, height - 1), hi))
    return Text("\n").join(lines)
