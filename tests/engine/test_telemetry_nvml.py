"""NVML collector: against the fake two-GPU pynvml, and against the real module here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from engine.telemetry.nvml import NvmlCollector, decode_throttle_reasons

FAKE = Path(__file__).resolve().parents[1] / "fixtures" / "fake_pynvml.py"


@pytest.fixture
def fake() -> ModuleType:
    """A fresh copy of the fake pynvml module (its state is per test)."""
    spec = importlib.util.spec_from_file_location("fake_pynvml_for_test", FAKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reads_every_field_of_a_fully_supported_gpu(fake: ModuleType) -> None:
    """GPU 0 reports all fields, with power converted from mW to W."""
    with NvmlCollector(nvml_module=fake) as col:
        r = col.sample()
    assert r.available and r.reason == "" and r.driver_version == "550.54.15"
    g = r.gpus[0]
    assert (g.index, g.name, g.uuid) == (0, "Fake RTX A4000", "GPU-0a0a0a0a-1111-2222-3333-444444444444")
    assert (g.util_gpu_percent, g.util_mem_percent) == (87.0, 40.0)
    assert (g.mem_used_bytes, g.mem_total_bytes) == (6 * 1024**3, 16 * 1024**3)
    assert g.temperature_c == 71.0
    assert g.power_w == pytest.approx(142.5) and g.power_limit_w == pytest.approx(140.0)
    assert (g.clock_sm_mhz, g.clock_mem_mhz) == (1560.0, 7000.0)
    assert g.throttle_reasons == ("sw_power_cap", "sw_thermal_slowdown")
    assert g.fan_percent == 55.0
    assert g.unsupported == () and g.errors == ()


def test_not_supported_fields_become_none_but_the_device_stays(fake: ModuleType) -> None:
    """GPU 1 lacks power and fan: those are None and listed; the rest is read."""
    with NvmlCollector(nvml_module=fake) as col:
        g = col.sample().gpus[1]
    assert g.name == "Fake Tesla T4"  # bytes decoded
    assert g.power_w is None and g.power_limit_w is None and g.fan_percent is None
    assert set(g.unsupported) == {"power_w", "power_limit_w", "fan_percent"}
    assert g.temperature_c == 38.0 and g.throttle_reasons == ("gpu_idle",)
    assert g.errors == ()


def test_other_nvml_errors_are_recorded_per_field(fake: ModuleType) -> None:
    """A non-NotSupported error (GPU lost) empties only that field and is named."""
    fake.DEVICES[0]["temperature"] = fake.fails(fake.NVML_ERROR_GPU_IS_LOST)
    with NvmlCollector(nvml_module=fake) as col:
        g = col.sample().gpus[0]
    assert g.temperature_c is None
    assert g.errors == ("temperature_c: NVMLError_GpuIsLost",)
    assert g.power_w == pytest.approx(142.5)


def test_init_once_and_shutdown_once_on_close(fake: ModuleType) -> None:
    """nvmlInit runs at construction only; close() shuts down exactly once."""
    col = NvmlCollector(nvml_module=fake)
    col.sample()
    col.sample()
    assert fake.init_calls == 1 and fake.shutdown_calls == 0
    col.close()
    col.close()
    assert fake.shutdown_calls == 1
    after = col.sample()
    assert not after.available and after.reason == "unavailable: collector closed" and after.gpus == ()


def test_missing_library_reads_as_no_driver(fake: ModuleType) -> None:
    """NVMLError_LibraryNotFound at init gives the "no NVIDIA driver" reason."""
    fake.INIT_ERROR = fake.NVML_ERROR_LIBRARY_NOT_FOUND
    col = NvmlCollector(nvml_module=fake)
    assert not col.available
    assert col.reason == "unavailable: no NVIDIA driver (NVMLError_LibraryNotFound)"
    r = col.sample()
    assert (r.available, r.reason, r.gpus) == (False, col.reason, ())
    col.close()
    assert fake.shutdown_calls == 0


def test_zero_gpus_is_unavailable_and_shuts_down(fake: ModuleType) -> None:
    """A driver with no devices: unavailable, and NVML is not left initialised."""
    fake.DEVICES.clear()
    col = NvmlCollector(nvml_module=fake)
    assert col.reason == "unavailable: NVML found no GPUs"
    assert fake.shutdown_calls == 1


def test_falls_back_to_the_older_throttle_reasons_call(fake: ModuleType) -> None:
    """Without ClocksEventReasons (older pynvml), ClocksThrottleReasons is used."""
    del fake.nvmlDeviceGetCurrentClocksEventReasons
    with NvmlCollector(nvml_module=fake) as col:
        g = col.sample().gpus[0]
    assert g.throttle_reasons == ("sw_power_cap", "sw_thermal_slowdown")
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" in fake.calls


def test_decode_throttle_reasons_names_unknown_bits() -> None:
    """Known bits decode by name; leftover bits are shown in hex."""
    assert decode_throttle_reasons(0) == ()
    assert decode_throttle_reasons(0x48) == ("hw_slowdown", "hw_thermal_slowdown")
    assert decode_throttle_reasons(0x1 | 0x800) == ("gpu_idle", "unknown_0x800")


def test_real_pynvml_on_this_machine_is_available_or_says_why() -> None:
    """With the installed pynvml, the collector works or gives an 'unavailable:' reason."""
    with NvmlCollector() as col:
        r = col.sample()
        if col.available:
            assert r.available and len(r.gpus) >= 1
            assert all(g.name for g in r.gpus)
        else:
            assert col.reason.startswith("unavailable:"), col.reason
            assert not r.available and r.gpus == () and r.reason == col.reason


def test_unsupported_names_are_declared_fields(fake: ModuleType) -> None:
    """A compound call that is not supported lists each field it would have filled."""
    fake.DEVICES[0]["util"] = fake.fails(fake.NVML_ERROR_NOT_SUPPORTED)
    with NvmlCollector(nvml_module=fake) as col:
        g = col.sample().gpus[0]
    assert g.unsupported == ("util_gpu_percent", "util_mem_percent")
    assert set(g.unsupported) <= set(NvmlCollector.FIELDS)
