"""The Prometheus endpoint: scraped over real HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.quiet_config import write_quiet_config
from prometheus_client.parser import text_string_to_metric_families

from engine._shm.ring import HIST_BUCKETS, latency_bucket
from engine.events import Severity
from engine.export.prometheus import (
    LATENCY_BOUNDS_NS,
    METRICS,
    PrometheusExporter,
    SwarmCollector,
    cumulative_latency_buckets,
)
from tests.recording_fixtures import agent, event, snapshot

Families = dict[str, Any]


def scrape(url: str) -> tuple[str, Families]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: Families, name: str) -> list[tuple[dict[str, str], float]]:
    family = families[name]
    return [(s.labels, s.value) for s in family.samples]


def value(families: Families, family: str, sample: str | None = None, **labels: str) -> float:
    for s in families[family].samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise KeyError(f"{family}{labels}")


@pytest.fixture
def exporter() -> Any:
    collector = SwarmCollector(version="0.1.0", thermal_critical=85.0,
                               machine={"brand": "Test CPU", "identity_key": "test-key"})
    exp = PrometheusExporter(collector)
    yield exp
    exp.close()


def synthetic_histogram() -> list[int]:
    hist = [0] * HIST_BUCKETS
    for ns, count in ((100, 3), (5_000, 10), (50_000, 20), (2_000_000, 5)):
        hist[latency_bucket(ns)] += count
    return hist


def test_synthetic_swarm_scraped_over_http(exporter: Any) -> None:
    """Per-agent metrics carry agent/type labels, counters end in _total, units are in names."""
    thermal = {"thermal-1": {"sensors": [{"label": "CPU package 0 (modelled)", "temperature_c": 61.5,
                                          "modelled": True}], "hottest_c": 61.5}}
    snap = snapshot(5, agents=(agent("echo-1", 5), agent("thermal-1", 5, agent_type="thermal",
                                                          gauges={"temp_c": 61.5, "predicted_c": 64.0})),
                    extra={"thermal": thermal})
    exporter.collector.on_event(event("agent_created", 1.0))
    exporter.collector.on_event(event("agent_crashed", 2.0, severity=Severity.ERROR))
    exporter.collector.on_event(event("agent_crashed", 3.0, severity=Severity.ERROR))
    exporter.collector.latency_histogram = tuple(synthetic_histogram())
    exporter.collector.on_status(snap)
    server = exporter.serve("127.0.0.1", 0)
    assert server.host == "127.0.0.1" and server.port > 0
    text, families = scrape(server.url)

    assert value(families, "swarm_up") == 1.0
    assert value(families, "swarm_agent_tasks", "swarm_agent_tasks_total", agent="echo-1", type="echo") == 50
    assert value(families, "swarm_agent_cpu_ratio", agent="echo-1", type="echo") == pytest.approx(0.15)
    assert value(families, "swarm_agent_resident_memory_bytes", agent="echo-1") == 30_000_000
    assert value(families, "swarm_agent_state", agent="echo-1", state="running") == 1.0
    assert value(families, "swarm_agent_gauge", agent="echo-1", name="handled") == 50
    assert value(families, "swarm_events", event="agent_crashed", severity="error") == 2
    assert value(families, "swarm_machine_cpu_ratio", cpu="1") == pytest.approx(0.30)
    assert value(families, "swarm_thermal_temperature_celsius", source="thermal-1",
                 sensor="CPU package 0 (modelled)", modelled="true") == 61.5
    assert value(families, "swarm_thermal_temperature_celsius", source="thermal-1", sensor="predicted") == 64.0
    assert value(families, "swarm_machine_info", brand="Test CPU") == 1.0

    # identity is in labels, never in names; every per-agent family is labelled agent and type
    for name, family in families.items():
        assert "echo" not in name and "thermal-1" not in name
        if name.startswith("swarm_agent_"):
            assert all({"agent", "type"} <= set(s.labels) for s in family.samples), name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name
    assert "# TYPE swarm_agent_tasks_total counter" in text
    assert value(families, "swarm_agent_heartbeat_age_seconds", agent="echo-1") == pytest.approx(0.1)


def test_bus_latency_histogram_is_exact_and_cumulative(exporter: Any) -> None:
    """Bucket counts are cumulative, end in +Inf = _count, and there is no invented _sum."""
    exporter.collector.latency_histogram = tuple(synthetic_histogram())
    exporter.collector.on_status(snapshot(1))
    _text, families = scrape(exporter.serve("127.0.0.1", 0).url)
    family = families["swarm_bus_latency_seconds"]
    assert family.type == "histogram"
    buckets = [(s.labels["le"], s.value) for s in family.samples if s.name.endswith("_bucket")]
    counts = [c for _le, c in buckets]
    assert counts == sorted(counts) and buckets[-1] == ("+Inf", 38.0)
    assert value(families, "swarm_bus_latency_seconds", "swarm_bus_latency_seconds_count") == 38.0
    assert not any(s.name.endswith("_sum") for s in family.samples)
    le = {float(b): c for b, c in buckets if b != "+Inf"}
    assert le[256e-9] == 3 and le[8192e-9] == 13 and le[65536e-9] == 33 and le[1_048_576e-9] == 33
    assert le[2_097_152e-9] == 38
    assert math.isinf(value(families, "swarm_agent_heartbeat_age_seconds", agent="echo-2"))  # never beat


def test_cumulative_buckets_use_bus_bucket_edges() -> None:
    """Every bound is a bus bucket edge: a value just under a bound counts, one at the bound does not."""
    hist = [0] * HIST_BUCKETS
    hist[latency_bucket(1023)] += 1   # just under 1024 ns
    hist[latency_bucket(1024)] += 1   # exactly 1024 ns: next bucket
    out = dict(cumulative_latency_buckets(hist))
    assert out[1024e-9] == 1 and out[2048e-9] == 2 and out[math.inf] == 2
    assert len(out) == len(LATENCY_BOUNDS_NS) + 1


def test_metric_declarations_follow_conventions() -> None:
    """Declared once: unique names, the swarm_ prefix, _total on counters, agent/type on agent metrics."""
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    for spec in METRICS:
        assert spec.name.startswith("swarm_")
        if spec.kind == "counter":
            assert spec.exposed.endswith("_total")
        if spec.name.startswith("swarm_agent_"):
            assert spec.labels[:2] == ("agent", "type")
        if spec.unit:
            assert spec.unit in spec.name


def test_no_snapshot_yet_means_down_not_an_error(exporter: Any) -> None:
    """Before the first snapshot the endpoint answers with swarm_up 0."""
    _text, families = scrape(exporter.serve("127.0.0.1", 0).url)
    assert value(families, "swarm_up") == 0.0


async def test_live_swarm_metrics_over_http(make_config: Callable[..., Any]) -> None:
    """A real swarm: the echo agent's counters and the bus histogram reach the scrape."""
    from engine import Orchestrator

    swarm = Orchestrator(make_config())
    exporter = PrometheusExporter.attach(swarm, machine={"brand": "x", "identity_key": "y"})
    seen = asyncio.Event()

    def on_status(snap: Any) -> None:
        if any(a.tasks_done >= 20 for a in snap.agents) and exporter.collector.latency_histogram:
            seen.set()

    swarm.add_status_handler(on_status)
    server = exporter.serve("127.0.0.1", 0)
    try:
        async with swarm:
            echo = await swarm.create_agent("echo")
            await swarm.wait_ready(echo)
            for i in range(20):
                await swarm.communicator.request(echo, "demo", {"i": i}, timeout=10)
            await asyncio.wait_for(seen.wait(), timeout=30)
            loop = asyncio.get_running_loop()
            _text, families = await loop.run_in_executor(None, scrape, server.url)
    finally:
        exporter.close()
    assert value(families, "swarm_agent_tasks", "swarm_agent_tasks_total", agent=echo, type="echo") >= 20
    assert value(families, "swarm_agents", state="running") == 1
    assert value(families, "swarm_events", event="agent_created", severity="info") == 1
    assert value(families, "swarm_bus_latency_seconds", "swarm_bus_latency_seconds_count") >= 20
    assert value(families, "swarm_bus_messages_received", "swarm_bus_messages_received_total") >= 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])




def test_cli_metrics_port_record_and_audit_log_together(tmp_path: Path) -> None:
    """``--metrics-port`` serves on 127.0.0.1 while the run also records and audits."""
    cfg = write_quiet_config(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "--config", str(cfg), "--demo", "--duration", "6",
         "--metrics-port", str(port), "--record", str(tmp_path / "run.swrec"),
         "--audit-log", str(tmp_path / "audit.log"), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    families: Families = {}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                _text, families = scrape(f"http://127.0.0.1:{port}/metrics")
            except OSError:
                families = {}
            if families and value(families, "swarm_up") == 1.0 and "swarm_agent_tasks" in families and any(
                    v > 0 for _l, v in samples(families, "swarm_agent_tasks")):
                break
            time.sleep(0.2)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"serving Prometheus metrics at http://127.0.0.1:{port}/metrics" in err
    assert {lbl["agent"] for lbl, _v in samples(families, "swarm_agent_tasks")} == {"echo-1", "echo-2"}
    from engine.audit import verify
    from engine.recording import open_recording

    rec = open_recording(tmp_path / "run.swrec")
    assert not rec.truncated and rec.header["demo"] == "default"
    assert [e.name for e in rec.events].count("agent_created") == 2
    assert len(rec.snapshot_times) >= 3  # the run lasts 6 s, part of it spent starting
    result = verify(tmp_path / "audit.log")
    assert result.ok and result.entries >= 3  # config load + two creates
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["exit_status"] == 0


def test_thermal_agent_publication_from_the_thermal_demo_is_exported(exporter: Any) -> None:
    """The thermal agent's real publication (modelled package) and gauges become temperature series."""
    from engine.demo import bundled_recordings
    from engine.recording import open_recording

    rec = open_recording(bundled_recordings()["thermal"])
    exporter.collector.on_status(rec.snapshot(len(rec.snapshot_times) - 1))
    _text, families = scrape(exporter.serve("127.0.0.1", 0).url)
    temps = {(lbl["source"], lbl["sensor"], lbl["modelled"]) for lbl, _v in
             samples(families, "swarm_thermal_temperature_celsius")}
    assert ("thermal-1", "CPU package 0 (modelled)", "true") in temps
    assert ("thermal-1", "temp", "true") in temps and ("thermal-1", "predicted", "true") in temps
    assert value(families, "swarm_agent_duty_cycle_ratio", agent="compute-1", type="compute") < 1.0
