"""sysfs thermal/hwmon collector, on fake trees and on this machine."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from engine.telemetry import _common
from engine.telemetry.sysfs_thermal import ThermalCollector, classify

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"


def by_id(reading: object) -> dict:
    return {s.id: s for s in reading.sensors}  # type: ignore[attr-defined]


def test_intel_desktop_zones_and_coretemp() -> None:
    """Zones, coretemp package/cores, nvme and acpitz are read with limits and kinds."""
    r = ThermalCollector(sysfs_root=SYSFS / "intel_desktop").sample()
    assert r.available and r.reason == "" and r.notes == ()
    s = by_id(r)
    assert set(s) == {
        "thermal_zone0", "thermal_zone1", "hwmon0/temp1", "hwmon1/temp1", "hwmon1/temp2",
        "hwmon1/temp3", "hwmon2/temp1",
    }
    pkg_zone = s["thermal_zone1"]
    assert (pkg_zone.chip, pkg_zone.kind, pkg_zone.temperature_c) == ("x86_pkg_temp", "cpu_package", 46.0)
    assert (pkg_zone.critical_c, pkg_zone.max_c) == (100.0, 90.0)
    assert (s["thermal_zone0"].kind, s["thermal_zone0"].critical_c) == ("other", 105.0)
    pkg = s["hwmon1/temp1"]
    assert (pkg.chip, pkg.label, pkg.kind, pkg.temperature_c) == ("coretemp", "Package id 0", "cpu_package", 46.0)
    assert (pkg.critical_c, pkg.max_c) == (100.0, 80.0)
    assert [s[f"hwmon1/temp{n}"].kind for n in (2, 3)] == ["cpu_core", "cpu_core"]
    assert s["hwmon1/temp3"].label == "Core 1" and s["hwmon1/temp3"].temperature_c == 43.0
    nvme = s["hwmon2/temp1"]
    assert (nvme.label, nvme.kind, nvme.temperature_c, nvme.critical_c) == ("Composite", "other", 38.85, 84.85)
    assert [(f.id, f.chip, f.label, f.rpm) for f in r.fans] == [
        ("hwmon3/fan1", "nct6798", "fan1", 1120),
        ("hwmon3/fan2", "nct6798", "fan2", 0),
    ]


def test_amd_k10temp_and_amdgpu() -> None:
    """k10temp Tctl is the package, Tccd1 a core die; amdgpu is a GPU with a fan."""
    r = ThermalCollector(sysfs_root=SYSFS / "amd").sample()
    s = by_id(r)
    assert (s["hwmon0/temp1"].label, s["hwmon0/temp1"].kind, s["hwmon0/temp1"].temperature_c) == (
        "Tctl", "cpu_package", 52.125,
    )
    assert (s["hwmon0/temp3"].label, s["hwmon0/temp3"].kind) == ("Tccd1", "cpu_core")
    assert (s["hwmon1/temp1"].kind, s["hwmon1/temp1"].critical_c) == ("gpu", 100.0)
    assert [(f.chip, f.rpm) for f in r.fans] == [("amdgpu", 800)]


def test_broken_tree_skips_bad_sensors_with_notes() -> None:
    """Garbage, empty, missing, implausible and directory files are skipped, noted."""
    r = ThermalCollector(sysfs_root=SYSFS / "broken").sample()
    assert r.available
    s = by_id(r)
    assert set(s) == {"thermal_zone3", "hwmon0/temp3"}
    assert s["thermal_zone3"].temperature_c == 35.0 and s["thermal_zone3"].critical_c is None
    core = s["hwmon0/temp3"]
    assert (core.label, core.kind, core.temperature_c, core.critical_c) == ("Core 3", "cpu_core", 50.0, None)
    notes = "\n".join(r.notes)
    assert "thermal_zone0/temp: not an integer ('garbage')" in notes
    assert "thermal_zone1/type: unreadable (ENOENT); zone skipped" in notes
    assert "thermal_zone2/temp: unreadable (EISDIR)" in notes
    assert "trip_point_0_temp: not an integer ('n/a')" in notes
    assert "hwmon0/temp1_input: not an integer ('')" in notes
    assert "hwmon0/temp2_input: implausible temperature -274 °C" in notes
    assert "hwmon0/temp3_crit: not an integer ('N/A')" in notes
    assert "hwmon1/fan1_input: not an integer ('abc')" in notes
    assert r.fans == ()


@pytest.mark.parametrize("err", [errno.EIO, errno.EACCES, errno.ENODATA])
def test_unreadable_input_skips_only_that_sensor(monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    """EIO/EACCES/ENODATA on one temp*_input drops that sensor with a note, not the chip."""
    real = _common.read_text

    def flaky(path: Path) -> str:
        if path.name == "temp2_input" and path.parent.name == "hwmon1":
            raise OSError(err, "simulated")
        return real(path)

    monkeypatch.setattr(_common, "read_text", flaky)
    r = ThermalCollector(sysfs_root=SYSFS / "intel_desktop").sample()
    s = by_id(r)
    assert "hwmon1/temp2" not in s and "hwmon1/temp1" in s and "hwmon1/temp3" in s
    path = SYSFS / "intel_desktop/class/hwmon/hwmon1/temp2_input"
    assert r.notes == (f"{path}: unreadable ({errno.errorcode[err]})",)


def test_every_sensor_unreadable_is_unavailable_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sensors exist but none can be read: unavailable, and the counts are in the reason."""

    def denied(path: Path) -> str:
        raise OSError(errno.EACCES, "simulated")

    monkeypatch.setattr(_common, "read_text", denied)
    col = ThermalCollector(sysfs_root=SYSFS / "intel_desktop")
    assert not col.available
    assert col.reason == "unavailable: 2 thermal zones and 4 hwmon chips, none readable (see notes)"


def test_empty_root_says_where_it_looked(tmp_path: Path) -> None:
    """No thermal or hwmon class dirs: the reason names both paths."""
    col = ThermalCollector(sysfs_root=tmp_path)
    r = col.sample()
    assert not r.available and r.sensors == () and r.fans == ()
    assert r.reason == (
        f"unavailable: no thermal zones under {tmp_path}/class/thermal"
        f" and no hwmon chips under {tmp_path}/class/hwmon"
    )


@pytest.mark.parametrize(
    ("chip", "label", "kind"),
    [
        ("coretemp", "Package id 1", "cpu_package"),
        ("coretemp", "Core 12", "cpu_core"),
        ("k10temp", "Tdie", "cpu_package"),
        ("k10temp", "Tccd2", "cpu_core"),
        ("x86_pkg_temp", "x86_pkg_temp", "cpu_package"),
        ("cpu-thermal", "cpu-thermal", "cpu_package"),
        ("nouveau", "temp1", "gpu"),
        ("gpu-thermal", "gpu-thermal", "gpu"),
        ("acpitz", "acpitz", "other"),
        ("nvme", "Composite", "other"),
    ],
)
def test_classify(chip: str, label: str, kind: str) -> None:
    """Sensors are classified by chip name and label."""
    assert classify(chip, label) == kind


def test_this_machine_sample_is_well_formed() -> None:
    """On the real /sys the reading is well formed; without sensors it says why."""
    col = ThermalCollector()
    r = col.sample()
    if r.available:
        assert r.sensors or r.fans
        assert all(-50 < s.temperature_c <= 200 for s in r.sensors)
    else:
        assert r.reason.startswith("unavailable:") and r.sensors == ()
