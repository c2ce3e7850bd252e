"""Pure formatting: numbers, states, header, events, agent order and filter, cores, outcomes."""

from __future__ import annotations

import dataclasses

import pytest

from engine import Event, MaxAgentsReached, Severity
from swarm_tui import render
from swarm_tui.fixed_source import sample_snapshot


@pytest.mark.parametrize(("n", "full", "compact"), [
    (0, "0 B", "0B"), (512, "512 B", "512B"), (1536, "1.5 KiB", "1.5K"),
    (182 * 1024**2, "182 MiB", "182M"), (int(9.8 * 1024**3), "9.8 GiB", "9.8G"),
])
def test_bytes_are_binary_units(n: int, full: str, compact: str) -> None:
    """Sizes use KiB/MiB/GiB, with a compact form for table cells."""
    assert render.fmt_bytes(n) == full
    assert render.fmt_bytes(n, compact=True) == compact


def test_counts_fit_in_five_characters() -> None:
    """Counts and rates shrink with k/M/G suffixes."""
    assert [render.fmt_count(v) for v in (0, 7, 35.2, 999, 1234, 56_000, 5_600_000)] == \
        ["0", "7", "35.2", "999", "1.2k", "56k", "5.6M"]
    assert render.fmt_count(float("nan")) == render.DASH


def test_latency_picks_its_unit_and_zero_means_no_data() -> None:
    """Microseconds become ns/µs/ms/s; 0 (no traffic yet) is a dash."""
    assert render.fmt_latency_us(0) == render.DASH
    assert render.fmt_latency_us(0.5) == "500ns"
    assert render.fmt_latency_us(14.25) == "14.2µs"
    assert render.fmt_latency_us(4060) == "4.06ms"
    assert render.fmt_latency_us(2_500_000) == "2.5s"


def test_durations_and_percentages() -> None:
    """Uptimes read like top's; infinity (never heard from) is a dash."""
    assert render.fmt_duration(12.34) == "12.3s"
    assert render.fmt_duration(185) == "3m05s"
    assert render.fmt_duration(3725) == "1h02m"
    assert render.fmt_duration(2 * 86400 + 3 * 3600) == "2d03h"
    assert render.fmt_duration(float("inf")) == render.DASH
    assert render.fmt_percent(45.26) == "45.3%"
    assert render.fmt_percent(100) == "100%"


def test_every_engine_state_has_a_colour() -> None:
    """The states the status table can hold are all coloured."""
    for state in ("starting", "warming", "running", "paused", "throttled", "stopping", "stopped", "crashed",
                  "restarting", "failed"):
        assert render.state_style(state), state
    assert render.state_text("crashed").style == "bold red"


def test_filter_words_all_match_and_field_words_match_exactly() -> None:
    """``type:``/``state:`` words compare a field; other words are substrings of id, type or state."""
    agents = sample_snapshot(0).agents

    def ids(query: str) -> list[str]:
        return [a.id for a in agents if render.agent_matches(a, query)]

    assert ids("compute") == ["compute-1", "compute-2"]
    assert ids("type:echo") == ["echo-1"]
    assert ids("state:running compute") == ["compute-1"]
    assert ids("state:run") == []
    assert ids("") == [a.id for a in agents]


def test_order_sorts_by_column_and_keeps_start_order_by_default() -> None:
    """Sorting is by the column's value; no sort key keeps the engine's order."""
    agents = sample_snapshot(0).agents
    assert [a.id for a in render.order_agents(agents)] == [a.id for a in agents]
    by_cpu = render.order_agents(agents, sort_key="cpu", reverse=True)
    assert [a.cpu_percent for a in by_cpu] == sorted((a.cpu_percent for a in agents), reverse=True)
    assert [a.id for a in render.order_agents(agents, sort_key="id", query="type:compute")] == \
        ["compute-1", "compute-2"]
    assert set(render.SORT_KEYS) <= {c.key for c in render.AGENT_COLUMNS}


def test_key_metric_is_the_first_gauge() -> None:
    """The headline gauge is the first one the agent set; none gives a dash."""
    compute, *_ = sample_snapshot(0).agents
    assert render.key_metric(compute) == ("gflops", compute.gauges["gflops"])
    assert render.key_metric(dataclasses.replace(compute, gauges={})) is None
    assert render.key_metric_text(dataclasses.replace(compute, gauges={})).plain == render.DASH
    assert "█" in render.key_metric_text(dataclasses.replace(compute, gauges={"util_pct": 50.0})).plain


def test_header_names_the_swarm_mode_states_and_numbers() -> None:
    """The header says what a glance needs: mode, uptime, states, alerts, throughput, latency."""
    snap = sample_snapshot(0)
    text = render.header_text(snap, mode="live").plain
    for part in ("sample-swarm", "LIVE", "up 1h00m", "alerts 2", "agents 7/16", "3 running", "1 crashed",
                 "msgs/s", "bus p50", "p99", "cpu", "mem"):
        assert part in text, part
    narrow = render.header_text(snap, mode="live", width=80).plain
    assert "3 run·" in narrow
    waiting = render.header_text(None, mode="live", name="x", status="starting the swarm…").plain
    assert "starting the swarm…" in waiting


def test_event_line_has_time_severity_name_agent_and_message() -> None:
    """An event line reads: time, severity tag, name, [agent]: message."""
    event = Event("agent_crashed", 0.0, Severity.ERROR, "compute-1", "boom")
    line = render.event_text(event)
    assert line.plain == "00:00:00 ERR! agent_crashed [compute-1]: boom"


def test_event_filter_by_words_and_least_severity() -> None:
    """The log filter needs every word and at least the chosen severity."""
    event = Event("agent_paused", 0.0, Severity.INFO, "echo-1", "echo-1 paused")
    assert render.event_matches(event, query="echo paused")
    assert not render.event_matches(event, query="compute")
    assert not render.event_matches(event, minimum="warning")
    assert render.severity_at_least("critical", "error")


def test_cores_parse_ranges_and_refuse_missing_cores() -> None:
    """``0,2-3`` is three cores; empty is all; a core that does not exist is refused, naming it."""
    assert render.parse_cores("0,2-3", range(4)) == [0, 2, 3]
    assert render.parse_cores(" ", range(4)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="core.*7.*not available.*0-3"):
        render.parse_cores("1,7", range(4))
    with pytest.raises(ValueError, match="not a core number"):
        render.parse_cores("x", range(4))
    with pytest.raises(ValueError, match="backwards"):
        render.parse_cores("3-1", range(4))
    assert render.fmt_cores([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"


def test_outcome_says_what_worked_and_why_the_rest_did_not() -> None:
    """A partly failed action is a warning listing each failure's reason, without a traceback."""
    msg, severity = render.outcome("killed", ["a"], [])
    assert (msg, severity) == ("killed a", "information")
    msg, severity = render.outcome("spawned", ["echo-1"], [("", MaxAgentsReached("swarm is full"))])
    assert severity == "warning" and "spawned echo-1" in msg and "swarm is full" in msg
    msg, severity = render.outcome("paused", [], [("x", KeyError("x"))])
    assert severity == "error" and "x: KeyError" in msg
    assert render.error_text(PermissionError("needs root")) == "needs root"
