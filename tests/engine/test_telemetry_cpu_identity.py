"""CPU identity: caches from sysfs, flags, stable key, JSON cache, fallbacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil

from engine.telemetry.cpu_identity import CpuIdentityCollector, read_cpu_identity

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"

PROC_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 151
model name\t: 12th Gen Intel(R) Core(TM) i7-12700K
stepping\t: 2
cpu MHz\t\t: {mhz}
flags\t\t: fpu sse2 avx avx2 fma bmi2
bogomips\t: 7219.20

processor\t: 1
vendor_id\t: GenuineIntel
"""

INFO = {
    "brand_raw": "12th Gen Intel(R) Core(TM) i7-12700K",
    "vendor_id_raw": "GenuineIntel",
    "arch_string_raw": "x86_64",
    "family": 6,
    "model": 151,
    "stepping": 2,
    "flags": ["avx", "avx2", "fma", "sse2"],
    "hz_advertised": [3610000000, 0],
    "l2_cache_size": 12 * 1024 * 1024,
}


def proc_root(tmp_path: Path, mhz: str = "3609.600") -> Path:
    root = tmp_path / "proc"
    root.mkdir(exist_ok=True)
    (root / "cpuinfo").write_text(PROC_CPUINFO.format(mhz=mhz))
    return root


class CountingInfo:
    def __init__(self, info: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.calls = 0
        self.info, self.error = info, error

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return dict(self.info or {})


def test_identity_from_cpuinfo_and_sysfs_caches(tmp_path: Path) -> None:
    """Brand/flags from py-cpuinfo's dict; cache sizes from the sysfs tree, not cpuinfo."""
    ident = read_cpu_identity(
        sysfs_root=SYSFS / "intel_desktop", proc_root=proc_root(tmp_path), info_func=CountingInfo(INFO)
    )
    assert ident.available and ident.source == "py-cpuinfo"
    assert (ident.brand, ident.vendor, ident.arch) == ("12th Gen Intel(R) Core(TM) i7-12700K", "GenuineIntel", "x86_64")
    assert (ident.family, ident.model, ident.stepping) == (6, 151, 2)
    assert (ident.l1d_bytes, ident.l1i_bytes, ident.l2_bytes, ident.l3_bytes) == (
        48 * 1024, 32 * 1024, 1280 * 1024, 24576 * 1024,
    )
    assert ident.cache_source == "sysfs"
    assert ident.has("avx2") and ident.has("FMA") and not ident.has("avx512f")
    assert ident.hz_advertised == 3.61e9
    assert ident.logical_cores == psutil.cpu_count()


def test_cache_sizes_fall_back_to_py_cpuinfo(tmp_path: Path) -> None:
    """Without sysfs cache entries the py-cpuinfo figures are used and labelled."""
    ident = read_cpu_identity(sysfs_root=tmp_path, proc_root=proc_root(tmp_path), info_func=CountingInfo(INFO))
    assert ident.cache_source == "py-cpuinfo" and ident.l2_bytes == 12 * 1024 * 1024 and ident.l3_bytes is None


def test_identity_key_is_stable_and_changes_with_the_cpu(tmp_path: Path) -> None:
    """Same inputs give the same key; other flags give another key; it is filename-safe."""
    kw = dict(sysfs_root=SYSFS / "intel_desktop", proc_root=proc_root(tmp_path))
    a = read_cpu_identity(info_func=CountingInfo(INFO), **kw).identity_key()
    b = read_cpu_identity(info_func=CountingInfo(dict(INFO)), **kw).identity_key()
    c = read_cpu_identity(info_func=CountingInfo({**INFO, "flags": ["avx", "sse2"]}), **kw).identity_key()
    assert a == b != c
    assert a.startswith("x86_64-GenuineIntel-6.151.2-12th_Gen_Intel_R_Core_TM_i7_12700K-")
    assert all(ch.isalnum() or ch in "._-" for ch in a)


def test_json_cache_skips_py_cpuinfo_and_ignores_mhz(tmp_path: Path) -> None:
    """Second run reads the JSON file even though /proc/cpuinfo's MHz changed."""
    cache = tmp_path / "cache"
    first = CountingInfo(INFO)
    read_cpu_identity(
        sysfs_root=SYSFS / "intel_desktop", proc_root=proc_root(tmp_path), cache_dir=cache, info_func=first
    )
    assert first.calls == 1
    files = list(cache.glob("cpuinfo-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["brand_raw"] == INFO["brand_raw"]
    second = CountingInfo(INFO)
    ident = read_cpu_identity(
        sysfs_root=SYSFS / "intel_desktop",
        proc_root=proc_root(tmp_path, mhz="800.012"),
        cache_dir=cache,
        info_func=second,
    )
    assert second.calls == 0 and ident.brand == INFO["brand_raw"]


def test_py_cpuinfo_failure_falls_back_to_proc_cpuinfo(tmp_path: Path) -> None:
    """If py-cpuinfo raises, brand/vendor/flags come from /proc/cpuinfo and the note says so."""
    ident = read_cpu_identity(
        sysfs_root=SYSFS / "intel_desktop",
        proc_root=proc_root(tmp_path),
        info_func=CountingInfo(error=RuntimeError("cpuid")),
    )
    assert ident.available and ident.source == "/proc/cpuinfo"
    assert ident.brand == "12th Gen Intel(R) Core(TM) i7-12700K" and ident.vendor == "GenuineIntel"
    assert ident.flags == {"fpu", "sse2", "avx", "avx2", "fma", "bmi2"}
    assert (ident.family, ident.model, ident.stepping) == (6, 151, 2)
    assert ident.reason == "py-cpuinfo failed (RuntimeError: cpuid)"


def test_nothing_readable_is_unavailable(tmp_path: Path) -> None:
    """No py-cpuinfo answer and no /proc/cpuinfo: unavailable with both reasons."""
    col = CpuIdentityCollector(sysfs_root=tmp_path, proc_root=tmp_path, info_func=CountingInfo(error=OSError("no")))
    assert not col.available
    assert col.reason.startswith("unavailable: py-cpuinfo failed (OSError: no); ")
    assert "cpuinfo: unreadable (ENOENT)" in col.reason


def test_this_machine_identity() -> None:
    """The real CPU: a brand, core counts from psutil, a key, the same key twice."""
    col = CpuIdentityCollector()
    ident = col.sample()
    assert ident.available, ident.reason
    assert ident.brand and ident.logical_cores == psutil.cpu_count()
    assert ident.flags, "a real CPU advertises some flags"
    assert col.identity_key() == CpuIdentityCollector().identity_key()
