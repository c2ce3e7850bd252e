"""Streaming anomaly detectors, the trend predictor and the NAB benchmark writer."""

from __future__ import annotations

import csv
import json
import math

import msgspec
import numpy as np
import pytest

from engine.anomaly import (
    SentinelDetector,
    TrendPredictor,
    WindowedGaussianDetector,
    available_detectors,
    detector_from_state,
    make_detector,
)

NAMES = ["sentinel", "windowed_gaussian"]
STEP = 300.0  # 5-minute samples
T0 = 1_400_000_000.0


def _series(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy daily cycle sampled every 5 minutes, with timestamps."""
    rng = np.random.default_rng(seed)
    t = T0 + STEP * np.arange(n)
    x = 50.0 + 10.0 * np.sin(2 * np.pi * np.arange(n) / 288.0) + rng.normal(0.0, 1.0, n)
    return x, t


def _small(name: str) -> dict[str, float]:
    """Smaller windows so the tests exercise the sliding phase quickly."""
    return {"window": 500.0, "step": 20.0} if name == "windowed_gaussian" else {}


# ----------------------------------------------------------------------------
# Contract shared by every detector
# ----------------------------------------------------------------------------


def test_registry() -> None:
    assert set(NAMES) <= set(available_detectors())
    assert isinstance(make_detector("sentinel"), SentinelDetector)
    assert isinstance(make_detector("windowed_gaussian"), WindowedGaussianDetector)
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        make_detector("sentinel", bogus=1.0)


@pytest.mark.parametrize("name", NAMES)
def test_scores_in_unit_interval(name: str) -> None:
    x, t = _series(3000)
    x[1500] = 500.0
    x[2000:2100] = -40.0
    x[2500] = np.nan
    for times in (t, None):
        s = make_detector(name, **_small(name)).update_many(x, times)
        assert s.shape == x.shape
        assert np.all(np.isfinite(s))
        assert np.all((s >= 0.0) & (s <= 1.0))
        assert s[2500] == 0.0  # a missing sample scores 0


@pytest.mark.parametrize("name", NAMES)
def test_spike_and_shift_score_higher_than_quiet(name: str) -> None:
    rng = np.random.default_rng(1)
    n = 4000
    x = 10.0 + rng.normal(0.0, 1.0, n)
    t = T0 + STEP * np.arange(n)
    x[2500] = 40.0             # spike
    x[3200:] += 3.0            # sustained level shift inside the old range
    s = make_detector(name, **_small(name)).update_many(x, t)
    quiet = s[1000:2500].max()
    assert s[2500] > quiet
    assert s[3200:3500].max() > quiet
    if name == "sentinel":
        assert s[2500] == 1.0  # out of the range seen so far
        assert quiet < 0.5


@pytest.mark.parametrize("name", NAMES)
def test_no_look_ahead(name: str) -> None:
    x, t = _series(2500)
    cut = 1800
    y = x.copy()
    y[cut + 1:] = np.random.default_rng(7).normal(0.0, 100.0, y.size - cut - 1)
    a = make_detector(name, **_small(name)).update_many(x, t)
    b = make_detector(name, **_small(name)).update_many(y, t)
    np.testing.assert_array_equal(a[:cut + 1], b[:cut + 1])
    assert not np.array_equal(a[cut + 1:], b[cut + 1:])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("with_times", [True, False])
def test_batch_equals_point_by_point(name: str, with_times: bool) -> None:
    x, t = _series(2000, seed=3)
    x[700] = np.nan
    x[900] = 300.0
    batch = make_detector(name, **_small(name)).update_many(x, t if with_times else None)
    det = make_detector(name, **_small(name))
    single = np.array([det.update(v, tt if with_times else None) for v, tt in zip(x, t)])
    np.testing.assert_array_equal(batch, single)
    # arbitrary chunking gives the same scores too
    det = make_detector(name, **_small(name))
    parts, i = [], 0
    for size in [1, 7, 300, 2, 1000, 5000]:
        parts.append(det.update_many(x[i:i + size], t[i:i + size] if with_times else None))
        i += size
    np.testing.assert_array_equal(batch, np.concatenate(parts))


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_mid_stream(name: str) -> None:
    x, t = _series(3000, seed=4)
    x[2200] = 400.0
    ref = make_detector(name, **_small(name)).update_many(x, t)
    det = make_detector(name, **_small(name))
    first = det.update_many(x[:1400], t[:1400])
    snap = json.loads(json.dumps(det.state()))                       # JSON-safe
    snap2 = msgspec.json.decode(msgspec.json.encode(det.state()))    # msgspec-safe
    restored = detector_from_state(snap)
    assert type(restored) is type(det) and restored.params == det.params
    rest = restored.update_many(x[1400:], t[1400:])
    np.testing.assert_array_equal(ref, np.concatenate([first, rest]))
    rest2 = type(det).from_state(snap2).update_many(x[1400:], t[1400:])
    np.testing.assert_array_equal(rest, rest2)


def test_state_rejects_other_detector() -> None:
    snap = make_detector("windowed_gaussian").state()
    with pytest.raises(ValueError):
        SentinelDetector.from_state(snap)


@pytest.mark.parametrize("name", NAMES)
def test_constant_memory(name: str) -> None:
    short = make_detector(name, **_small(name))
    long_ = make_detector(name, **_small(name))
    x, t = _series(20000, seed=5)
    short.update_many(x[:100], t[:100])
    long_.update_many(x, t)
    assert short.state_nbytes() == long_.state_nbytes()
    assert len(json.dumps(short.state())) == len(json.dumps(long_.state()))


def test_sentinel_calendar_channel_sees_a_missing_daily_cycle() -> None:
    # a daily square wave; one weekday the "high" phase never comes
    n = 288 * 14
    i = np.arange(n)
    t = T0 + STEP * i
    day_phase = ((t % 86400.0) / 86400.0)
    rng = np.random.default_rng(2)
    x = np.where((day_phase > 0.35) & (day_phase < 0.75), 80.0, 20.0) + rng.normal(0.0, 1.0, n)
    day = 10
    lo_day = slice(288 * day, 288 * (day + 1))
    x[lo_day] = 20.0 + rng.normal(0.0, 1.0, 288)
    s = make_detector("sentinel").update_many(x, t)
    assert s[lo_day].max() > 2 * s[288 * 4:288 * day].max()
    assert make_detector("sentinel").update_many(x).max() < 1.0  # no timestamps: blind to it


# ----------------------------------------------------------------------------
# Trend predictor
# ----------------------------------------------------------------------------


def test_trend_predictor_ramp_to_threshold() -> None:
    rng = np.random.default_rng(0)
    tp = TrendPredictor(halflife=600.0)
    rate = 2e6  # bytes per second
    for k in range(120):
        ts = 1000.0 + 5.0 * k
        tp.update(1e9 + rate * (ts - 1000.0) + rng.normal(0, 1e6), timestamp=ts)
    assert tp.slope == pytest.approx(rate, rel=0.02)
    now = 1000.0 + 5.0 * 119
    level = 1e9 + rate * (now - 1000.0)
    limit = 4e9
    eta = tp.time_to_threshold(limit)
    assert eta == pytest.approx((limit - level) / rate, rel=0.03)
    assert tp.time_to_threshold(limit, horizon=10.0) is None
    assert tp.time_to_threshold(level - 1e8) == 0.0          # already past
    assert tp.time_to_threshold(0.0, rising=False) is None   # rising, floor below


def test_trend_predictor_falling_flat_and_irregular() -> None:
    tp = TrendPredictor(halflife=100.0)
    times = np.cumsum(np.random.default_rng(1).uniform(0.5, 3.0, 200))
    for ts in times:
        tp.update(500.0 - 0.5 * ts, timestamp=float(ts))
    assert tp.slope == pytest.approx(-0.5, rel=1e-6)
    eta = tp.time_to_threshold(100.0, rising=False)
    assert eta == pytest.approx((500.0 - 0.5 * times[-1] - 100.0) / 0.5, rel=1e-6)
    assert tp.time_to_threshold(1e6) is None  # moving away from a ceiling
    flat = TrendPredictor()
    assert flat.time_to_threshold(1.0) is None  # no data
    for k in range(10):
        flat.update(7.0, timestamp=float(k))
    assert flat.slope == 0.0
    assert flat.time_to_threshold(8.0) is None
    assert flat.time_to_threshold(6.5) == 0.0  # at or past the ceiling
    flat.update(float("nan"), timestamp=11.0)  # ignored
    assert flat.n == 10


def test_trend_predictor_state_round_trip() -> None:
    a = TrendPredictor(halflife=50.0)
    for k in range(30):
        a.update(3.0 * k + (k % 3), timestamp=10.0 * k)
    b = TrendPredictor.from_state(json.loads(json.dumps(a.state())))
    for k in range(30, 40):
        a.update(3.0 * k, timestamp=10.0 * k)
        b.update(3.0 * k, timestamp=10.0 * k)
    assert a.slope == b.slope and a.level == b.level
    assert a.time_to_threshold(500.0) == b.time_to_threshold(500.0)


# ----------------------------------------------------------------------------
# Benchmark writer (NAB results layout)
# ----------------------------------------------------------------------------


def test_benchmark_writes_nab_layout(tmp_path) -> None:
    from benchmarks.nab import list_corpus, run_benchmark

    data = tmp_path / "nab"
    x, t = _series(400, seed=9)
    for cat, name, eol in (("catA", "one.csv", "\n"), ("catB", "two.csv", "\r\n")):
        (data / "data" / cat).mkdir(parents=True)
        lines = ["timestamp,value"] + [
            "{},{}".format(np.datetime64(int(ts), "s").astype(str).replace("T", " "), repr(float(v)))
            for ts, v in zip(t, x)
        ]
        (data / "data" / cat / name).write_bytes((eol.join(lines) + eol).encode())
    assert list_corpus(str(data)) == ["catA/one.csv", "catB/two.csv"]
    out = tmp_path / "out"
    logs: list[str] = []
    totals = run_benchmark(str(data), str(out), NAMES, log=logs.append)
    for det in NAMES:
        assert totals[det]["rows"] == 800 and totals[det]["files"] == 2
        for cat, name in (("catA", "one.csv"), ("catB", "two.csv")):
            path = out / cat / (f"{det}_{name}")
            with open(path, newline="") as fh:
                rows = list(csv.reader(fh))
            assert rows[0] == ["timestamp", "value", "anomaly_score"]
            assert len(rows) == 401
            scores = np.array([float(r[2]) for r in rows[1:]])
            assert np.all((scores >= 0) & (scores <= 1))
            assert rows[1][0].startswith("2014-05-13 ")
            assert math.isclose(float(rows[1][1]), x[0])
    assert any("points/s" in line for line in logs)
