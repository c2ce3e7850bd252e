"""RAPL collector: watts from energy deltas with a fake clock, wrap-around, EACCES."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from engine.telemetry import _common
from engine.telemetry.rapl import RaplCollector

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of the intel_desktop sysfs tree."""
    root = tmp_path / "sys"
    shutil.copytree(SYSFS / "intel_desktop", root)
    return root


def set_energy(root: Path, zone: str, uj: int) -> None:
    (root / "class/powercap" / zone / "energy_uj").write_text(f"{uj}\n")


def test_domains_names_and_hierarchy(tree: Path) -> None:
    """Package, core and dram zones are found with names and parents; first sample has no watts."""
    r = RaplCollector(sysfs_root=tree, clock=FakeClock()).sample()
    assert r.available and r.reason == ""
    assert [(d.zone, d.name, d.parent) for d in r.domains] == [
        ("intel-rapl:0", "package-0", None),
        ("intel-rapl:0:0", "core", "intel-rapl:0"),
        ("intel-rapl:0:1", "dram", "intel-rapl:0"),
    ]
    # the collector sampled once at construction, so this second sample at the same
    # instant has a zero interval
    assert all(d.watts is None for d in r.domains)
    assert r.domains[0].energy_j == pytest.approx(1000.0)


def test_a_domain_first_readable_later_needs_two_readings(tree: Path) -> None:
    """A domain whose counter becomes readable only now has no watts yet, and says why."""
    clock = FakeClock()
    (tree / "class/powercap/intel-rapl:0:1/energy_uj").write_text("garbage\n")
    col = RaplCollector(sysfs_root=tree, clock=clock)  # construction takes the first sample
    set_energy(tree, "intel-rapl:0:1", 202_000_000)
    clock.now += 1.0
    package, _, dram = col.sample().domains
    assert package.watts == pytest.approx(0.0) and package.reason == ""
    assert dram.available and dram.watts is None
    assert dram.reason == "first sample: watts need two readings"


def test_watts_from_delta_over_injected_clock(tree: Path) -> None:
    """50 J over 2 s on the package is 25 W; core 10 J -> 5 W; dram 2 J -> 1 W."""
    clock = FakeClock()
    col = RaplCollector(sysfs_root=tree, clock=clock)
    set_energy(tree, "intel-rapl:0", 1_050_000_000)
    set_energy(tree, "intel-rapl:0:0", 410_000_000)
    set_energy(tree, "intel-rapl:0:1", 202_000_000)
    clock.now += 2.0
    r = col.sample()
    watts = {d.name: d.watts for d in r.domains}
    assert watts == pytest.approx({"package-0": 25.0, "core": 5.0, "dram": 1.0})
    assert r.package_watts == pytest.approx(25.0)
    assert not any(d.wrapped for d in r.domains)


def test_counter_wrap_uses_max_energy_range(tree: Path) -> None:
    """A counter that restarts from 0 adds (max_range - previous) to the new value."""
    clock = FakeClock()
    max_range = 262_143_328_850
    set_energy(tree, "intel-rapl:0", max_range - 10_000_000)  # 10 J before the wrap
    col = RaplCollector(sysfs_root=tree, clock=clock)
    set_energy(tree, "intel-rapl:0", 20_000_000)  # 20 J after it
    clock.now += 0.5
    d = col.sample().domains[0]
    assert d.wrapped
    assert d.watts == pytest.approx(30.0 / 0.5)


def test_backwards_counter_without_range_gives_no_watts(tree: Path) -> None:
    """Without max_energy_range_uj a decreasing counter cannot be trusted: watts None."""
    (tree / "class/powercap/intel-rapl:0/max_energy_range_uj").unlink()
    clock = FakeClock()
    col = RaplCollector(sysfs_root=tree, clock=clock)
    set_energy(tree, "intel-rapl:0", 5)
    clock.now += 1.0
    d = col.sample().domains[0]
    assert d.watts is None and d.wrapped
    assert d.reason == "counter went backwards and max_energy_range_uj is unknown"


def test_eacces_on_energy_is_reported_as_root_only(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """energy_uj readable by root only: every domain and the collector say so."""
    real = _common.read_text

    def root_only(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(path)

    monkeypatch.setattr(_common, "read_text", root_only)
    col = RaplCollector(sysfs_root=tree, clock=FakeClock())
    r = col.sample()
    assert not r.available and not col.available
    assert r.domains[0].reason == (
        "unavailable: intel-rapl:0/energy_uj is readable by root only (EACCES; Linux >= 5.10)"
    )
    assert col.reason.startswith("unavailable: intel-rapl:0/energy_uj is readable by root only (EACCES")
    assert "intel-rapl:0:1/energy_uj" in col.reason


def test_broken_tree_reports_each_domain() -> None:
    """Garbage and missing energy files make the domains unavailable with reasons."""
    r = RaplCollector(sysfs_root=SYSFS / "broken", clock=FakeClock()).sample()
    assert not r.available
    reasons = {d.name: d.reason for d in r.domains}
    assert reasons == {
        "package-0": "unavailable: intel-rapl:0/energy_uj is not a number",
        "psys": "unavailable: intel-rapl:1/energy_uj unreadable (ENOENT)",
    }


def test_amd_package_domain() -> None:
    """AMD exposes its package counter under the same intel-rapl name."""
    r = RaplCollector(sysfs_root=SYSFS / "amd", clock=FakeClock()).sample()
    assert [(d.zone, d.name, d.energy_j) for d in r.domains] == [("intel-rapl:0", "package-0", 77.0)]


def test_this_machine_is_available_or_says_why() -> None:
    """On the real /sys: domains with readable energy, or an 'unavailable:' reason."""
    col = RaplCollector()
    r = col.sample()
    if r.available:
        assert any(d.available for d in r.domains)
    else:
        assert r.reason.startswith("unavailable:")
