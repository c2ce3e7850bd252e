"""Pure formatting for the UI: numbers, states, header lines, event lines, agent order.

Every function here takes plain values (or the engine's frozen model types) and
returns strings or Rich ``Text``; none touches an App, so the unit tests call them
directly.  Widgets only decide *where* the text goes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from engine import AgentInfo, Event, Severity, SwarmSnapshot
from swarm_tui import charts

# --- numbers -------------------------------------------------------------------------

_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
DASH = "—"


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def fmt_bytes(n: float, *, compact: bool = False) -> str:
    """``1536`` -> ``"1.5 KiB"`` (or ``"1.5K"`` with ``compact``); ``0`` -> ``"0 B"``."""
    if not _finite(n) or n < 0:
        return DASH
    value = float(n)
    unit = 0
    while value >= 1024 and unit < len(_BYTE_UNITS) - 1:
        value /= 1024
        unit += 1
    if compact:
        suffix = _BYTE_UNITS[unit][0] if unit else "B"
        return f"{value:.0f}{suffix}" if unit == 0 or value >= 100 else f"{value:.1f}{suffix}"
    if unit == 0:
        return f"{int(value)} B"
    return f"{value:.0f} {_BYTE_UNITS[unit]}" if value >= 100 else f"{value:.1f} {_BYTE_UNITS[unit]}"


def fmt_count(n: float) -> str:
    """A count or rate in at most 5 characters: ``999``, ``1.2k``, ``34k``, ``5.6M``."""
    if not _finite(n):
        return DASH
    sign = "-" if n < 0 else ""
    value = abs(float(n))
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            scaled = value / limit
            return f"{sign}{scaled:.1f}{suffix}" if scaled < 10 else f"{sign}{scaled:.0f}{suffix}"
    if value == int(value):
        return f"{sign}{int(value)}"
    return f"{sign}{value:.1f}" if value < 100 else f"{sign}{value:.0f}"


def fmt_percent(p: float) -> str:
    """``45.26`` -> ``"45.3%"``; values of 100 or more lose the decimal."""
    if not _finite(p):
        return DASH
    return f"{p:.0f}%" if abs(p) >= 100 else f"{p:.1f}%"


def fmt_latency_us(us: float) -> str:
    """Microseconds as ``"850ns"``, ``"12.3µs"``, ``"1.25ms"`` or ``"2.0s"``; 0 -> ``"—"``."""
    if not _finite(us) or us <= 0:
        return DASH
    if us < 1:
        return f"{us * 1000:.0f}ns"
    if us < 1000:
        return f"{us:.1f}µs" if us < 100 else f"{us:.0f}µs"
    if us < 1_000_000:
        ms = us / 1000
        return f"{ms:.2f}ms" if ms < 10 else f"{ms:.1f}ms" if ms < 100 else f"{ms:.0f}ms"
    return f"{us / 1_000_000:.1f}s"


def fmt_duration(s: float) -> str:
    """Seconds as ``"12.3s"``, ``"3m05s"``, ``"1h02m"`` or ``"2d03h"``; inf -> ``"—"``."""
    if not _finite(s) or s < 0:
        return DASH
    if s < 60:
        return f"{s:.1f}s"
    total = int(s)
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86400}d{total % 86400 // 3600:02d}h"


def fmt_clock(epoch: float) -> str:
    """Wall-clock ``HH:MM:SS`` in local time."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


# --- states and severities -------------------------------------------------------------

#: Colour of each agent state (the engine's state labels).
STATE_STYLES: dict[str, str] = {
    "starting": "cyan",
    "warming": "cyan",
    "running": "green",
    "paused": "yellow",
    "throttled": "dark_orange",
    "stopping": "magenta",
    "stopped": "bright_black",
    "restarting": "magenta",
    "crashed": "bold red",
    "failed": "bold white on red",
}

#: Colour of each event severity.
SEVERITY_STYLES: dict[str, str] = {
    "debug": "bright_black",
    "info": "cyan",
    "warning": "yellow",
    "error": "red",
    "critical": "bold white on red",
}

#: Four-letter tags of the severities in the event log.
SEVERITY_TAGS = {"debug": "DBUG", "info": "INFO", "warning": "WARN", "error": "ERR!", "critical": "CRIT"}

#: Severities from least to most serious (for "at least" filters).
SEVERITY_ORDER = ("debug", "info", "warning", "error", "critical")


def state_style(state: str) -> str:
    """The style of an agent state; unknown states are plain."""
    return STATE_STYLES.get(state, "")


def state_text(state: str) -> Text:
    """The state as coloured text."""
    return Text(state, style=state_style(state))


def severity_at_least(severity: str, minimum: str) -> bool:
    """Whether ``severity`` is as serious as ``minimum`` or more."""
    try:
        return SEVERITY_ORDER.index(severity) >= SEVERITY_ORDER.index(minimum)
    except ValueError:
        return True


def _severity_value(severity: Severity | str) -> str:
    return severity.value if isinstance(severity, Severity) else str(severity)


# --- agents ----------------------------------------------------------------------------

#: Sort keys of the agent table: column key -> function of an AgentInfo.
SORT_KEYS = {
    "id": lambda a: a.id,
    "type": lambda a: (a.type, a.id),
    "state": lambda a: (a.state, a.id),
    "priority": lambda a: a.priority,
    "cpu": lambda a: a.cpu_percent,
    "rss": lambda a: a.rss_bytes,
    "tasks": lambda a: a.tasks_per_s,
    "in": lambda a: a.messages_in,
    "out": lambda a: a.messages_out,
    "restarts": lambda a: a.restarts,
    "pid": lambda a: a.pid,
    "metric": lambda a: (key_metric(a) or ("", 0.0))[1],
}
#: Columns whose natural order is largest first (a busy agent at the top).
DESCENDING_BY_DEFAULT = frozenset({"cpu", "rss", "tasks", "in", "out", "restarts", "metric"})


def agent_matches(agent: AgentInfo, query: str) -> bool:
    """Whether an agent matches a filter query.

    The query is split into words, and every word must match: ``type:echo`` and
    ``state:paused`` compare that field exactly; any other word is a case-insensitive
    substring of the id, type or state.
    """
    for word in query.lower().split():
        field, sep, wanted = word.partition(":")
        if sep and field in ("type", "state", "id"):
            if str(getattr(agent, field)).lower() != wanted:
                return False
        elif not any(word in text.lower() for text in (agent.id, agent.type, agent.state)):
            return False
    return True


def order_agents(
    agents: Iterable[AgentInfo], *, sort_key: str | None = None, reverse: bool = False, query: str = ""
) -> list[AgentInfo]:
    """The agents to show, filtered by ``query`` and sorted by ``sort_key``.

    ``None`` keeps the engine's order (start order).  Ties keep that order too, so
    the table does not shuffle between refreshes.
    """
    shown = [a for a in agents if agent_matches(a, query)] if query.strip() else list(agents)
    if sort_key is None:
        return list(reversed(shown)) if reverse else shown
    key = SORT_KEYS[sort_key]
    return sorted(shown, key=key, reverse=reverse)


#: The headline gauge of the built-in agent types (their ``BaseAgent.key_metric``).
#: The snapshot does not carry it yet; other types fall back to their first gauge.
KEY_METRICS = {
    "compute": "gflops", "echo": "handled", "resource": "forecast_cpu_pct", "learning": "reward_tps",
    "thermal": "temp_c", "fault_tolerance": "anomalies", "optimization": "best_gain",
}


def key_metric(agent: AgentInfo) -> tuple[str, float] | None:
    """The agent's headline gauge ``(name, value)``, or ``None`` when it has no gauge.

    The type's known key metric if the agent reports it, else its first gauge (the
    status row keeps gauges in the order the agent first set them).
    """
    name = KEY_METRICS.get(agent.type)
    if name is not None and name in agent.gauges:
        return name, agent.gauges[name]
    for name, value in agent.gauges.items():
        return name, value
    return None


#: One agent-table cell: runs of ``(text, style)``.  A tuple of tuples, so two rows
#: compare (and hash) by value and the table redraws only the rows that changed.
Cell = tuple[tuple[str, str], ...]


def key_metric_cell(agent: AgentInfo, width: int = 8) -> Cell:
    """``name value`` of the headline gauge; a ``*_pct``/``*_percent`` gauge also gets a bar."""
    metric = key_metric(agent)
    if metric is None:
        return ((DASH, "bright_black"),)
    name, value = metric
    if name.endswith("_c"):
        return ((f"{name[:-2]} {value:.1f}°C", ""),)
    if name.endswith(("_pct", "_percent", "util")):
        return ((charts.gauge_bar(value / 100.0, width), "green"), (f" {fmt_percent(value)}", ""))
    return ((f"{name} {fmt_count(value)}", ""),)


def key_metric_text(agent: AgentInfo, width: int = 8) -> Text:
    """:func:`key_metric_cell` as Rich ``Text``."""
    return Text.assemble(*key_metric_cell(agent, width))


def priority_cell(priority: int) -> Cell:
    """A nice value, coloured when it differs from the default 0."""
    style = "bold green" if priority < 0 else "bright_black" if priority > 0 else ""
    return ((f"{priority:+d}" if priority else "0", style),)


def agent_row(agent: AgentInfo, *, selected: bool, trend: Sequence[float], trend_width: int = 8) -> tuple[Cell, ...]:
    """The cells of one agent-table row, in the order of ``AGENT_COLUMNS``."""
    return (
        (("●", "bold magenta") if selected else (" ", ""),),
        ((agent.id, "bold" if selected else ""),),
        ((agent.type, ""),),
        ((agent.state, state_style(agent.state)),),
        priority_cell(agent.priority),
        ((fmt_percent(agent.cpu_percent), ""),),
        ((fmt_bytes(agent.rss_bytes, compact=True) if agent.rss_bytes else DASH, ""),),
        ((fmt_count(agent.tasks_per_s), ""),),
        ((charts.spark(trend, trend_width), "cyan"),),
        ((fmt_count(agent.messages_in), ""),),
        ((fmt_count(agent.messages_out), ""),),
        ((str(agent.restarts), "bold red" if agent.restarts else ""),),
        ((str(agent.pid) if agent.pid else DASH, ""),),
        key_metric_cell(agent),
    )


@dataclass(frozen=True)
class Column:
    """One agent-table column: key (also the sort key), label, width and alignment."""

    key: str
    label: str
    width: int
    right: bool = False
    """Numbers are right-aligned."""


#: The agent table's columns, most important first (a narrow terminal cuts the tail).
AGENT_COLUMNS = (
    Column("sel", " ", 1),
    Column("id", "agent", 17),
    Column("type", "type", 9),
    Column("state", "state", 10),
    Column("priority", "nice", 4),
    Column("cpu", "cpu", 6, right=True),
    Column("rss", "rss", 6, right=True),
    Column("tasks", "tasks/s", 7, right=True),
    Column("trend", "trend", 8),
    Column("in", "in", 6, right=True),
    Column("out", "out", 6, right=True),
    Column("restarts", "rst", 3, right=True),
    Column("pid", "pid", 7, right=True),
    Column("metric", "key metric", 16),
)


# --- header ------------------------------------------------------------------------------


#: Short state names for a narrow header.
SHORT_STATES = {
    "starting": "start", "warming": "warm", "running": "run", "paused": "pause", "throttled": "thrtl",
    "stopping": "stop", "stopped": "stopd", "restarting": "rstrt", "crashed": "crash", "failed": "FAIL",
}


def state_counts_text(snapshot: SwarmSnapshot, *, short: bool = False) -> Text:
    """``"3 running · 1 paused"`` with each state in its colour (``"no agents"`` when empty).

    ``short`` abbreviates the states (``"3 run · 1 pause"``) for narrow terminals.
    """
    counts = snapshot.count_by_state()
    if not counts:
        return Text("no agents", style="bright_black")
    out = Text()
    order = list(STATE_STYLES)
    ranked = sorted(counts.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0]))
    for i, (state, n) in enumerate(ranked):
        if i:
            out.append("·" if short else " · ", style="bright_black")
        out.append(f"{n} {SHORT_STATES.get(state, state) if short else state}", style=state_style(state))
    return out


def header_text(snapshot: SwarmSnapshot | None, *, mode: str, name: str = "", status: str = "",
                width: int | None = None, replay: Any = None) -> Text:
    """The two header lines: identity, alerts and agents by state; then throughput, latency, machine.

    ``status`` replaces the numbers while there is no snapshot yet (``"starting the
    swarm…"``, or why the engine failed).  With ``width``, state names are shortened
    when the full first line would not fit.
    """
    mode_style = {"live": "bold black on green", "replay": "bold black on yellow"}.get(mode, "bold black on cyan")
    line1 = Text(no_wrap=True, overflow="ellipsis")
    line1.append(f" {snapshot.name if snapshot else name or 'swarm'} ", style="bold reverse")
    line1.append(" ")
    line1.append(f" {mode.upper()} ", style=mode_style)
    if replay is not None:
        line1.append(" ")
        line1.append_text(replay_text(replay))
    if snapshot is None:
        line1.append("  " + (status or "waiting for the first snapshot…"), style="italic")
        return line1
    line1.append(f" up {fmt_duration(snapshot.uptime_s)} ")
    line1.append(" alerts ", style="bold")
    line1.append(str(snapshot.alerts_total), style="bold red" if snapshot.alerts_total else "green")
    cap = f"/{snapshot.max_agents}" if snapshot.max_agents else ""
    line1.append(f"  agents {len(snapshot.agents)}{cap} ", style="bold")
    counts = state_counts_text(snapshot)
    if width is not None and line1.cell_len + counts.cell_len > width:
        counts = state_counts_text(snapshot, short=True)
    line1.append_text(counts)
    bus = snapshot.bus
    machine = snapshot.machine
    tasks = sum(a.tasks_per_s for a in snapshot.agents)
    line2 = Text(no_wrap=True, overflow="ellipsis")
    for label, value in (
        ("tasks/s", fmt_count(tasks)),
        ("msgs/s", fmt_count(bus.messages_per_s)),
        ("bus p50", fmt_latency_us(bus.latency_p50_us)),
        ("p99", fmt_latency_us(bus.latency_p99_us)),
        ("cpu", fmt_percent(machine.cpu_percent)),
        ("mem", fmt_percent(machine.memory_percent)),
    ):
        line2.append(f" {label} ", style="bright_black")
        line2.append(value, style="bold")
        line2.append(" ")
    if status:
        line2.append(f" {status}", style="italic yellow")
    out = Text("\n", no_wrap=True, overflow="ellipsis").join([line1, line2])
    return out


def replay_text(state: Any) -> Text:
    """``▶ 0:12 / 1:05  ×2`` for a replay's state (``⏸`` when paused, ``■ end`` at the end)."""
    def clock(seconds: float) -> str:
        total = int(max(0.0, seconds))
        return f"{total // 60}:{total % 60:02d}"

    if state.at_end:
        mark, style = "■", "bold"
    elif state.playing:
        mark, style = "▶", "bold green"
    else:
        mark, style = "⏸", "bold yellow"
    out = Text.assemble((mark, style), f" {clock(state.position)} / {clock(state.duration)}  ×{state.speed:g}")
    if state.truncated:
        out.append("  (recording cut off)", style="yellow")
    return out


# --- events ------------------------------------------------------------------------------


def event_text(event: Event) -> Text:
    """One event-log line: time, severity (coloured), name, agent and message."""
    severity = _severity_value(event.severity)
    style = SEVERITY_STYLES.get(severity, "")
    line = Text(no_wrap=False)
    line.append(fmt_clock(event.time), style="bright_black")
    line.append(" ")
    line.append(SEVERITY_TAGS.get(severity, severity[:4].upper()).ljust(4), style=style)
    line.append(" ")
    line.append(event.name, style="bold")
    if event.agent_id:
        line.append(f" [{event.agent_id}]", style="magenta")
    if event.message:
        line.append(": ")
        line.append(event.message, style=style if severity in ("error", "critical") else "")
    return line


def event_matches(event: Event, *, query: str = "", minimum: str = "debug") -> bool:
    """Whether an event passes the log filter: at least ``minimum`` and containing every word."""
    if not severity_at_least(_severity_value(event.severity), minimum):
        return False
    haystack = f"{event.name} {event.agent_id or ''} {event.message}".lower()
    return all(word in haystack for word in query.lower().split())


# --- actions -----------------------------------------------------------------------------


def parse_cores(text: str, available: Sequence[int]) -> list[int]:
    """Parse ``"0,2-3"`` into ``[0, 2, 3]``; an empty text means every available core.

    Raises:
        ValueError: a malformed part, or a core that is not available; the message
            says which and lists the available cores.
    """
    allowed = sorted(set(available))
    text = text.strip()
    if not text:
        return allowed
    chosen: set[int] = set()
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            first = int(lo)
            last = int(hi) if sep else first
        except ValueError:
            raise ValueError(f"{part!r} is not a core number or a range like 2-3") from None
        if last < first:
            raise ValueError(f"range {part!r} is backwards")
        chosen.update(range(first, last + 1))
    bad = sorted(chosen - set(allowed))
    if bad:
        raise ValueError(f"core(s) {', '.join(map(str, bad))} not available; choose from {fmt_cores(allowed)}")
    return sorted(chosen)


def fmt_cores(cores: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``; empty -> ``"all"``."""
    if not cores:
        return "all"
    ordered = sorted(set(cores))
    parts = []
    start = prev = ordered[0]
    for c in ordered[1:] + [None]:  # type: ignore[list-item]
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    return ",".join(parts)


def outcome(verb: str, done: Sequence[str], failed: Sequence[tuple[str, BaseException]],
            *, suffix: str = "") -> tuple[str, str]:
    """The notification for an action on several agents: ``(message, severity)``.

    ``"{verb} {ids}{suffix}"`` says what worked, then one line per failure.

    ``severity`` is ``"information"``, ``"warning"`` (some failed) or ``"error"``
    (all failed), as ``App.notify`` takes it.
    """
    lines = []
    if done:
        lines.append(f"{verb} {', '.join(done)}{suffix}")
    for agent_id, exc in failed:
        lines.append(f"{agent_id}: {error_text(exc)}" if agent_id else error_text(exc))
    if not failed:
        return "\n".join(lines) or f"nothing to {verb}", "information"
    return "\n".join(lines), "warning" if done else "error"


def error_text(exc: BaseException) -> str:
    """An exception as one readable sentence (no traceback)."""
    message = str(exc).strip() or type(exc).__name__
    return message if isinstance(exc, (ValueError, PermissionError)) or type(exc).__module__.startswith("engine") \
        else f"{type(exc).__name__}: {message}"
