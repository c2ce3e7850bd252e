"""Load forecasts (pure), alert hysteresis, the resource agent with injected readings,
and the resource agent sampling the real machine in a real swarm."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import pytest

from engine import Orchestrator
from engine.agents.context import AgentContext
from engine.agents.resource import AlertHysteresis, ResourceAgent
from engine.config import default_config
from engine.forecast import Ewma, Holt
from engine.telemetry import (
    CpuReading,
    IoReading,
    MachineReading,
    MemoryReading,
    NvmlReading,
    RaplReading,
    ThermalCollector,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"


# --- forecasts -----------------------------------------------------------------------------


def test_holt_learns_a_linear_trend_and_beats_the_naive_forecast() -> None:
    holt = Holt(alpha=0.5, beta=0.3, phi=1.0)
    for i in range(200):
        forecast = holt.update(10.0 + 0.25 * i)
    assert forecast == pytest.approx(10.0 + 0.25 * 200, abs=1e-6)  # exact on a line
    assert holt.forecast(4) == pytest.approx(10.0 + 0.25 * 203, abs=1e-6)
    errors = holt.errors
    assert errors.n == 199 and errors.mae is not None and errors.naive_mae == pytest.approx(0.25)
    assert errors.mae < errors.naive_mae  # the trend pays off


def test_damped_trend_and_clamping_keep_a_burst_bounded() -> None:
    holt = Holt(alpha=0.5, beta=0.5, phi=0.8, lo=0.0, hi=100.0)
    for value in (10, 10, 40, 90, 100, 100):
        holt.update(value)
    assert holt.forecast(1) <= 100.0 and holt.forecast(50) <= 100.0
    far = Holt(alpha=0.5, beta=0.5, phi=0.8)
    for value in (0, 10, 20):
        far.update(value)
    # damped: the trend adds at most trend * phi / (1 - phi) however far ahead
    assert far.forecast(1000) - far.level <= far.trend * 0.8 / 0.2 + 1e-9


def test_forecasters_on_noise_and_their_state_round_trip() -> None:
    values = [50 + 20 * math.sin(i * 0.7) for i in range(100)]
    ewma, holt = Ewma(0.3), Holt()
    for v in values:
        ewma.update(v)
        holt.update(v)
    assert ewma.errors.n == holt.errors.n == 99
    assert holt.errors.rmse is not None and holt.errors.rmse >= holt.errors.mae  # type: ignore[operator]
    copy = Holt()
    copy.load(holt.state())
    assert copy.forecast(3) == holt.forecast(3) and copy.errors == holt.errors
    with pytest.raises(ValueError, match="alpha"):
        Holt(alpha=0.0)
    assert Holt().forecast() is None


# --- alerts --------------------------------------------------------------------------------


def test_alert_hysteresis_raises_once_per_crossing() -> None:
    alarm = AlertHysteresis(90.0, 5.0)
    hovering = [89.0, 90.5, 89.9, 91.0, 86.0, 95.0, 88.0, 90.0]  # never below 85 in between
    assert [alarm.update(v) for v in hovering] == [False, True] + [False] * 6
    assert alarm.active
    assert alarm.update(84.0) is False and not alarm.active  # re-armed
    assert alarm.update(90.0) is True and alarm.raised == 2
    assert alarm.update(None) is False


# --- the agent with injected readings ----------------------------------------------------------


class FakeHub:
    """Stands in for TelemetryHub: returns readings from a script of (cpu %, memory %)."""

    def __init__(self, script: list[tuple[float, float]], sysfs: Path) -> None:
        self.script = list(script)
        self.thermal = ThermalCollector(sysfs_root=sysfs)
        self.closed = False

    def sample(self) -> MachineReading:
        cpu, mem = self.script.pop(0)
        return MachineReading(
            timestamp=time.monotonic(),
            cpu=CpuReading(True, "", (cpu, cpu), cpu, 2600.0, None, None, "no cpufreq", 1.5, 1.0, 0.5),
            memory=MemoryReading(True, "", 16 * 2**30, int(16 * 2**30 * (1 - mem / 100)), int(16 * 2**30 * mem / 100),
                                 mem, 0, 0, 0.0),
            io=IoReading(True, "", 1.0, 2e6, 1e6, 5e5, 5e5),
            thermal=self.thermal.sample(),
            gpu=NvmlReading(False, "unavailable: no NVIDIA driver (fake)", None, ()),
            power=RaplReading(False, "unavailable: no RAPL (fake)", ()),
            perf=None,
        )

    def availability(self) -> dict[str, str]:
        return {"cpu": "ok", "nvml": "unavailable: no NVIDIA driver (fake)"}

    def close(self) -> None:
        self.closed = True


def run_agent(script: list[tuple[float, float]], **options: Any) -> tuple[ResourceAgent, list[Any], dict[str, Any]]:
    published: dict[str, Any] = {}

    class Comm:
        def send_message(self, **fields: Any) -> int:
            published[fields["message_type"].removeprefix("publish:")] = fields["payload"]
            return 1

    events: list[Any] = []
    agent = ResourceAgent("resource-1", telemetry=FakeHub(script, FIXTURES / "amd"), **options)
    agent.bind(AgentContext(agent_id="resource-1", agent_type="resource", slot=1, incarnation=0,
                            config=default_config(), communicator=Comm(), log=logging.getLogger("test.res"),  # type: ignore[arg-type]
                            _emit=lambda name, msg, sev, data: events.append((name, msg, sev, data))))
    agent.on_start()
    for _ in range(len(script)):
        agent.execute_cycle()
    return agent, events, published


def test_alerts_from_injected_readings_have_hysteresis_and_no_storm() -> None:
    cpu = [50, 95, 92, 89, 91, 86, 95, 97, 80, 93, 96, 40]  # crossings at 95 and (after 80) at 93
    mem = [20, 20, 20, 20, 20, 91, 92, 90, 88, 91, 84, 95]  # crossing at 91, re-armed at 84 -> 95
    _, events, published = run_agent(list(zip(map(float, cpu), map(float, mem))))
    alerts = [e for e in events if e[0] == "performance_alert"]
    assert [(e[3]["metric"], e[3]["value"]) for e in alerts] == [
        ("cpu", 95.0), ("memory", 91.0), ("cpu", 93.0), ("memory", 95.0)]
    assert all(e[2] == "warning" and e[3]["source"] == "resource_agent" for e in alerts)
    assert alerts[0][3]["limit"] == 90.0 and alerts[0][3]["rearm_below"] == 85.0
    assert "forecast next interval" in alerts[0][1]
    topic = published["telemetry"]
    assert topic["alerts"]["cpu"] == {"active": False, "limit_pct": 90.0, "raised": 2}
    assert topic["alerts"]["memory"]["active"] is True


def test_topic_and_gauges_from_injected_readings() -> None:
    script = [(float(10 + 5 * i), 30.0) for i in range(10)]  # a ramp: 10, 15, ... 55 %
    agent, events, published = run_agent(script, cpu_critical=99.0)
    assert not events
    t = published["telemetry"]
    assert t["cpu"]["total_pct"] == 55.0 and t["cpu"]["per_core_pct"] == [55.0, 55.0]
    assert t["memory"]["percent"] == 30.0 and t["io"]["disk_read_Bps"] == 2e6
    fc = t["forecast"]
    assert fc["scored"] == 9 and 55.0 < fc["next_cpu_pct"] <= 61.0  # it follows the trend up
    assert fc["mae_pct"] < fc["naive_mae_pct"] == 5.0
    assert {s["label"] for s in t["sensors"]} == {"Tctl", "Tccd1", "edge"}  # the fake sysfs tree
    assert t["gpus"] == [] and t["power_w"] is None and t["availability"]["nvml"].startswith("unavailable")
    g = agent.context.gauges
    assert len(g) <= 8 and g["cpu_pct"] == 55.0 and g["forecast_cpu_pct"] == fc["next_cpu_pct"]
    assert g["disk_MBps"] == 3.0 and g["net_MBps"] == 1.0 and g["mem_pct"] == 30.0
    assert g["forecast_mae_pct"] == fc["mae_pct"]
    # a restart continues the forecast and its error statistics
    again = ResourceAgent("resource-1")
    again.restore(agent.snapshot())
    assert again.forecaster.forecast(1) == agent.forecaster.forecast(1)
    agent.on_stop()
    assert agent.hub.closed


# --- real processes ------------------------------------------------------------------------


async def test_resource_agent_in_a_real_swarm(make_config: Any) -> None:
    """Real machine: the telemetry topic and gauges appear in get_system_status(); with a
    1 % CPU limit the agent raises exactly one alert however many samples follow."""
    cfg = make_config(agents={"resource": {"count": 0, "cycle_interval": 0.1}})
    async with Orchestrator(cfg) as swarm:
        events: list[Any] = []
        swarm.add_event_handler("performance_alert", events.append)
        aid = await swarm.create_agent("resource", cpu_critical=1.0)
        await swarm.wait_ready(aid, timeout=20)

        def topic() -> dict[str, Any] | None:
            return swarm.get_system_status().extra.get("telemetry", {}).get(aid)

        deadline = time.monotonic() + 10
        while (topic() or {}).get("forecast", {}).get("scored", 0) < 10:
            assert time.monotonic() < deadline, "no forecasts scored"
            await asyncio.sleep(0.05)
        t = topic()
        assert t is not None
        assert len(t["cpu"]["per_core_pct"]) == os.cpu_count()
        assert 0.0 <= t["forecast"]["next_cpu_pct"] <= 100.0 and t["forecast"]["mae_pct"] is not None
        assert t["memory"]["total_bytes"] > 0 and t["machine"]["logical_cores"] >= 1
        for source in ("thermal", "nvml", "rapl"):
            assert t["availability"][source] == "ok" or t["availability"][source].startswith("unavailable:")
        gauges = swarm.get_system_status().agent(aid).gauges  # type: ignore[union-attr]
        assert {"cpu_pct", "forecast_cpu_pct", "forecast_mae_pct", "mem_pct"} <= set(gauges)
        mine = [e for e in events if e.agent_id == aid]
        assert len(mine) == 1 and mine[0].data["metric"] == "cpu" and mine[0].data["limit"] == 1.0
