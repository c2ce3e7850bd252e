"""TelemetryHub and the collectors' shared contract (FIELDS, availability, no UI imports)."""

from __future__ import annotations

import ast
import dataclasses
import gc
import importlib.util
import os
import sys
from pathlib import Path

import pytest

import engine.telemetry as telemetry
from engine.telemetry import ALL_FIELDS, TelemetryHub
from engine.telemetry.cpu_identity import CpuIdentity
from engine.telemetry.nvml import GpuReading
from engine.telemetry.perf_events import CounterReading, PerfReading
from engine.telemetry.psutil_collector import CpuReading, IoReading, MemoryReading, ProcessStats
from engine.telemetry.rapl import PowerDomain
from engine.telemetry.sysfs_thermal import Fan, Sensor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

READING_TYPES = {
    "psutil": (CpuReading, MemoryReading, IoReading, ProcessStats),
    "nvml": (GpuReading,),
    "thermal": (Sensor, Fan),
    "rapl": (PowerDomain,),
    "cpu_identity": (CpuIdentity,),
    "perf": (CounterReading, PerfReading),
}


def fake_nvml():
    spec = importlib.util.spec_from_file_location("fake_pynvml_for_hub", FIXTURES / "fake_pynvml.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("collector", sorted(ALL_FIELDS))
def test_every_declared_field_exists_on_a_reading(collector: str) -> None:
    """Each FIELDS entry names an attribute of one of the collector's reading types."""
    types = READING_TYPES[collector]
    for f in ALL_FIELDS[collector].values():
        assert f.unit and f.description.endswith("."), f
        assert any(
            f.name in {x.name for x in dataclasses.fields(t)} or hasattr(t, f.name) for t in types
        ), f"{collector}.{f.name} is not an attribute of {types}"


def test_hub_on_fake_intel_desktop(tmp_path: Path) -> None:
    """A hub over the fake tree and fake NVML reports sensors, GPUs and power domains."""
    with TelemetryHub(sysfs_root=FIXTURES / "sysfs/intel_desktop", proc_root=tmp_path, nvml_module=fake_nvml()) as hub:
        r = hub.sample()
        avail = hub.availability()
    assert len(r.sensors) == 7 and {s.kind for s in r.sensors} == {"cpu_package", "cpu_core", "other"}
    assert [g.name for g in r.gpus] == ["Fake RTX A4000", "Fake Tesla T4"]
    assert [d.name for d in r.power_domains] == ["package-0", "core", "dram"]
    assert avail["thermal"] == avail["nvml"] == avail["rapl"] == "ok"
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.cpu = r.cpu  # type: ignore[misc]


def test_hub_on_this_machine_is_well_formed() -> None:
    """Real machine: every source is 'ok' or an 'unavailable:' reason; nothing raises."""
    with TelemetryHub() as hub:
        r = hub.sample()
        avail = hub.availability()
        assert set(avail) >= {"cpu", "memory", "io", "thermal", "nvml", "rapl", "cpu_identity"}
        for key, status in avail.items():
            if key == "cpu.frequency":
                continue  # may be a partial note ("min/max not exposed ...")
            assert status == "ok" or status.startswith("unavailable:"), (key, status)
        assert avail["cpu"] == avail["memory"] == "ok"
        assert r.thermal.available == (avail["thermal"] == "ok")
        assert r.gpu.available == (avail["nvml"] == "ok") and (r.gpus == ()) == (not r.gpu.available)
        stats = hub.process_stats([os.getpid()])
        assert stats[os.getpid()].rss_bytes > 0
    assert hub.perf is None or hub.perf.open_fds == ()


def test_telemetry_modules_import_no_ui_and_load_hardware_libraries_lazily() -> None:
    """No textual/rich/swarm_tui import anywhere; pynvml/cpuinfo only inside functions."""
    for path in sorted(Path(telemetry.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            roots = {n.split(".")[0] for n in names}
            assert not roots & {"textual", "rich", "swarm_tui"}, (path.name, names)
            if id(node) in top_level:
                assert not roots & {"pynvml", "cpuinfo"}, f"{path.name} imports {names} at import time"


def test_public_names_are_exported() -> None:
    """__all__ lists only names that exist."""
    missing = [n for n in telemetry.__all__ if not hasattr(telemetry, n)]
    assert missing == []


def test_repeated_sampling_keeps_memory_bounded(tmp_path: Path) -> None:
    """Hundreds of sample + process_stats cycles leave the allocated block count flat."""
    with TelemetryHub(sysfs_root=FIXTURES / "sysfs/intel_desktop", proc_root=tmp_path, nvml_module=fake_nvml()) as hub:
        for _ in range(50):
            hub.sample()
            hub.process_stats([os.getpid()])
        gc.collect()
        before = sys.getallocatedblocks()
        for _ in range(300):
            hub.sample()
            hub.process_stats([os.getpid()])
        gc.collect()
        assert sys.getallocatedblocks() - before < 2_000
