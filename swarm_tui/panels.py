"""Pure text builders for the dashboard's small panels and the detail screen's graphs.

Each function takes values and the size it may fill and returns a Rich ``Text``;
the panel widgets call them from ``render()`` with their content size, and the unit
tests call them directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from rich.text import Text

from engine import MachineInfo
from swarm_tui import charts
from swarm_tui.render import fmt_bytes, fmt_count, fmt_latency_us, fmt_percent
from swarm_tui.sensors import NO_SENSORS, SensorReading

LEVEL_STYLES = {"ok": "green", "warn": "yellow", "crit": "bold red"}


def percent_bar(label: str, percent: float, width: int, *, warn: float = 75.0, crit: float = 90.0) -> Text:
    """``label ████▌   45.0%`` in ``width`` cells, the bar coloured by level."""
    value = fmt_percent(percent).rjust(6)
    bar_width = max(1, width - len(label) - len(value) - 2)
    style = LEVEL_STYLES[charts.level(percent, warn, crit)]
    return Text.assemble((label, "bold"), " ", (charts.gauge_bar(percent / 100.0, bar_width), style), " ", value)


def machine_text(machine: MachineInfo, width: int, height: int) -> Text:
    """Per-core CPU bars, then memory, then the load average if there is room.

    Cores fill as many columns as the height needs (a 64-core machine in a short
    panel becomes a grid); the load line is the first thing dropped when short.
    """
    width = max(width, 12)
    cores = list(machine.per_cpu_percent)
    with_load = height >= len(cores) + 2 or height >= 6
    rows_for_cores = max(1, height - (2 if with_load else 1))
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
    used = fmt_bytes(machine.memory_used_bytes, compact=True)
    total = fmt_bytes(machine.memory_total_bytes, compact=True)
    lines.append(percent_bar(f"mem {used}/{total}" if width >= 30 else "mem", machine.memory_percent, width))
    if with_load:
        load = machine.load_average
        lines.append(Text.assemble(("load ", "bold"), f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"))
    return Text("\n").join(lines[: max(height, 1)])


def labelled_spark(label: str, values: Sequence[float], width: int, fmt: Callable[[float], str],
                   style: str = "cyan", hi: float | None = None) -> Text:
    """``label  value ▁▂▃▅▇`` : the current value, then a sparkline filling the rest."""
    now = fmt(values[-1]) if values else "—"
    head = f"{label} {now:>7} "
    spark_width = max(1, width - len(head))
    return Text.assemble((label, "bold"), f" {now:>7} ", (charts.spark(values, spark_width, hi), style))


def bus_text(series: Mapping[str, Sequence[float]], width: int, height: int) -> Text:
    """Messages/s as a column chart, then bus latency p50 and p99 sparklines (each its own scale)."""
    width = max(width, 16)
    rate = series.get("messages_per_s", ())
    p50 = series.get("bus_p50_us", ())
    p99 = series.get("bus_p99_us", ())
    peak = max(rate, default=0.0)
    lines = [Text.assemble(("msgs/s", "bold"), f" {fmt_count(rate[-1]) if rate else '—':>7} ",
                           (f"peak {fmt_count(peak)}", "bright_black"))]
    chart_height = max(0, height - 3)
    lines.extend(Text(line, style="green") for line in charts.bar_chart(rate, width, chart_height))
    lines.append(labelled_spark("p50", p50, width, fmt_latency_us, "cyan"))
    lines.append(labelled_spark("p99", p99, width, fmt_latency_us, "magenta"))
    return Text("\n").join(lines[-max(height, 1):] if height < len(lines) else lines)


def thermal_text(readings: Sequence[SensorReading], note: str, width: int, height: int, detail: str = "") -> Text:
    """The note (e.g. "no temperature sensors on this machine"), one gauge per reading, the detail.

    Modelled readings are marked ``~``.  When they do not all fit, the hottest are
    shown; the detail (why there are no sensors) only if there is room left.
    """
    lines: list[Text] = []
    if note:
        lines.append(Text(note, style="italic"))
    room = max(height - (_wrapped_height(note, width) if note else 0), 0)
    shown = list(readings)
    if len(shown) > room:
        shown = sorted(shown, key=lambda r: r.celsius, reverse=True)[:room]
    if shown:
        label_width = min(max(len(r.label) + (2 if r.modelled else 0) for r in shown), max(6, width // 2))
    for r in shown:
        label = r.label + (" ~" if r.modelled else "")
        value = f"{r.celsius:5.1f}°C"
        bar_width = max(1, width - label_width - len(value) - 2)
        style = LEVEL_STYLES[charts.level(r.celsius, r.warn_c, r.crit_c)]
        lines.append(Text.assemble((label[:label_width].ljust(label_width), "bold"), " ",
                                   (charts.gauge_bar(r.celsius / r.crit_c if r.crit_c else 0, bar_width), style),
                                   " ", (value, style)))
    if detail and room - len(shown) >= _wrapped_height(detail, width):
        lines.append(Text(detail, style="italic bright_black"))
    if not lines:
        return Text(NO_SENSORS, style="italic")
    return Text("\n").join(lines)


def _wrapped_height(text: str, width: int) -> int:
    """Lines ``text`` takes when wrapped at ``width`` (roughly: by words)."""
    if width <= 0:
        return 1
    lines, used = 1, 0
    for word in text.split():
        need = len(word) + (1 if used else 0)
        if used + need > width and used:
            lines, used = lines + 1, len(word)
        else:
            used += need
    return lines


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
