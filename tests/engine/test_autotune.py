"""Autotuning search, the tuning store and the affinity plan -- pure, seeded, no timing."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from engine import autotune
from engine.agents.optimization import plan_affinity, thread_candidates, tuning_space
from engine.tuning_store import TunedConfig, TuningStore


class FakeKernel:
    """A synthetic kernel: true seconds per config, log-normal noise, occasional 10x spikes."""

    def __init__(self, truth: dict[tuple[Any, ...], float], seed: int, noise: float = 0.08,
                 spike_rate: float = 0.05) -> None:
        self.truth = truth
        self.rng = random.Random(seed)
        self.noise = noise
        self.spike_rate = spike_rate
        self.calls = 0

    def __call__(self, config: dict[str, Any]) -> float:
        self.calls += 1
        t = self.truth[autotune.config_key(config)] * math.exp(self.rng.gauss(0, self.noise))
        return t * 10 if self.rng.random() < self.spike_rate else t


def space(seed: int, n: int = 16) -> tuple[list[dict[str, Any]], dict[tuple[Any, ...], float]]:
    rng = random.Random(seed)
    configs = [{"chunk": c, "threads": t} for c in range(n // 2) for t in (1, 2)]
    truth = {autotune.config_key(c): rng.uniform(1.0, 2.0) for c in configs}
    return configs, truth


def test_grid_dedupes_canonical_configs_and_puts_extra_first() -> None:
    """Configurations with the same canonical form are measured once; the default leads."""
    def canonical(c: dict[str, Any]) -> dict[str, Any]:
        return {**c, "tile": 0} if c["variant"] == "blas" else c

    configs = autotune.grid({"variant": ["blas", "blocked"], "tile": [16, 32]}, canonical=canonical,
                            extra=[{"variant": "blas", "tile": 64}])
    assert configs[0] == {"variant": "blas", "tile": 0}
    assert configs[1:] == [{"tile": 16, "variant": "blocked"}, {"tile": 32, "variant": "blocked"}]


def test_successive_halving_finds_a_near_best_config_with_fewer_runs_than_exhaustive() -> None:
    """Over 40 seeded noisy spaces SH lands within 5 % of the true best nearly always, at a third of the cost."""
    good = 0
    for seed in range(40):
        configs, truth = space(seed)
        kernel = FakeKernel(truth, seed)
        result = autotune.successive_halving(configs, kernel, eta=2, min_runs=1, seed=seed)
        assert result.complete
        assert result.evaluations == kernel.calls == autotune.sh_cost(len(configs), eta=2, min_runs=1)
        best = min(truth.values())
        good += truth[autotune.config_key(result.best)] <= best * 1.05
    exhaustive_cost = len(configs) * autotune.sh_final_samples(len(configs), eta=2, min_runs=1)
    assert autotune.sh_cost(len(configs)) * 3 <= exhaustive_cost
    assert good >= 36


def test_exhaustive_search_at_high_fidelity_finds_a_near_best_config() -> None:
    """Every config measured 25 times: the median sees through 5 % noise and spikes (within 5 %)."""
    for seed in range(5):
        configs, truth = space(seed)
        result = autotune.exhaustive(configs, FakeKernel(truth, seed, noise=0.05), runs=25, seed=seed)
        assert result.evaluations == 25 * len(configs)
        assert truth[autotune.config_key(result.best)] <= min(truth.values()) * 1.05
        assert result.ranking[0].config == result.best and result.ranking[0].samples == 25


def test_deadline_stops_the_search_and_keeps_the_best_most_measured() -> None:
    """A fake clock passes the deadline mid-search: incomplete, bounded, still an answer."""
    configs, truth = space(5)
    now = [0.0]

    def measure(config: dict[str, Any]) -> float:
        now[0] += 1.0
        return truth[autotune.config_key(config)]

    result = autotune.successive_halving(configs, measure, deadline=20.0, clock=lambda: now[0], seed=5)
    assert not result.complete
    assert result.evaluations == 20
    assert result.best in configs


def test_interleaving_makes_a_drifting_machine_harmless() -> None:
    """Load that grows during the search hits every config alike: the ranking stays right."""
    configs = [{"x": i} for i in range(6)]
    truth = {autotune.config_key(c): 1.0 + 0.1 * c["x"] for c in configs}
    calls = [0]

    def measure(config: dict[str, Any]) -> float:
        calls[0] += 1
        return truth[autotune.config_key(config)] * (1.0 + 0.05 * calls[0])  # the machine slows down

    result = autotune.exhaustive(configs, measure, runs=9, seed=1)
    assert result.best == {"x": 0}


def test_plan_min_runs_fits_the_budget_or_says_it_cannot() -> None:
    """The first-round runs chosen keep the whole search within the budget of runs."""
    assert autotune.plan_min_runs(8, budget_runs=5) == 0
    r = autotune.plan_min_runs(8, budget_runs=100, most=8)
    assert r >= 1 and autotune.sh_cost(8, min_runs=r) <= 100 < autotune.sh_cost(8, min_runs=r + 1)


def test_compare_reports_which_config_is_faster() -> None:
    """The A/B helper's speedup is b/a from medians of alternating runs."""
    ab = autotune.compare({"v": "fast"}, {"v": "slow"}, lambda c: 1.0 if c["v"] == "fast" else 1.5, runs=5)
    assert ab.runs == 5 and ab.speedup == pytest.approx(1.5)


def test_tuning_space_has_the_default_no_duplicate_blas_and_threads_within_the_cap() -> None:
    """The matmul space measures BLAS once; threads never exceed the cap (0 = the whole pool)."""
    configs, default = tuning_space("matmul", cap=1)
    assert configs[0] == default == {"variant": "blas", "tile": 64, "threads": 0}
    assert sum(c["variant"] == "blas" for c in configs) == 1
    assert all(c["threads"] == 1 for c in configs[1:])
    assert thread_candidates(4) == [1, 2, 4] and thread_candidates(3) == [1, 2, 3]


def _record(kernel: str = "triad", n: int = 1000, cores: int = 1, **kw: Any) -> TunedConfig:
    base = {"kernel": kernel, "n": n, "cores": cores, "params": {"chunk": 4}, "default_params": {"chunk": 0},
            "seconds": 1.0, "default_seconds": 1.5, "gain": 1.5, "evaluations": 10,
            "exhaustive_evaluations": 40, "configs": 5}
    return TunedConfig(**{**base, **kw})


def test_tuning_store_round_trip_is_per_machine_kernel_size_and_cores(tmp_path: Any) -> None:
    """A stored record comes back for its key only, and another CPU never reads it."""
    store = TuningStore("cpu-A", tmp_path)
    store.put(_record())
    store.put(_record(n=2000, gain=2.0))
    assert store.get("triad", 1000, 1) == _record(measured_at=store.get("triad", 1000, 1).measured_at)
    assert store.get("triad", 2000, 1).gain == 2.0
    assert store.get("triad", 1000, 2) is None and store.get("jacobi", 1000, 1) is None
    assert TuningStore("cpu-B", tmp_path).get("triad", 1000, 1) is None
    store.put(_record(gain=1.2))
    assert store.get("triad", 1000, 1).gain == 1.2 and len(store.records("triad")) == 2


def test_tuning_store_treats_a_corrupt_or_foreign_file_as_empty(tmp_path: Any) -> None:
    """Garbage, another identity's file or another schema read as "nothing stored"."""
    store = TuningStore("cpu-A", tmp_path)
    path = store.path("triad")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert store.get("triad", 1000, 1) is None
    path.write_text(json.dumps({"schema": 1, "identity": "cpu-B", "entries": {"n=1000,cores=1": {}}}))
    assert store.get("triad", 1000, 1) is None
    store.put(_record())  # a corrupt file is replaced, not a reason to fail
    assert store.get("triad", 1000, 1) is not None


def test_affinity_plan_with_a_spare_core_isolates_compute_and_monitors() -> None:
    """4 cores, 3 compute agents: one core each, the monitors on the housekeeping core."""
    agents = [("c1", "compute"), ("c2", "compute"), ("c3", "compute"), ("th", "thermal"), ("x", "echo")]
    plan = plan_affinity([0, 1, 2, 3], agents, exclude=["opt"])
    assert plan.compute == {"c1": (1,), "c2": (2,), "c3": (3,)}
    assert plan.monitors == {"th": (0,)} and plan.housekeeping == (0,)
    assert plan.cores_per_compute == 1 and "x" not in plan.pins()


def test_affinity_plan_on_two_cores_never_oversubscribes_compute_agents() -> None:
    """2 cores, 2 compute agents: disjoint cores, monitors unpinned; 3 agents: flagged."""
    plan = plan_affinity([0, 1], [("c1", "compute"), ("c2", "compute"), ("r", "resource")])
    assert plan.compute == {"c1": (0,), "c2": (1,)} and plan.monitors == {"r": ()}
    one = plan_affinity([0, 1], [("c1", "compute"), ("r", "resource")])
    assert one.compute == {"c1": (1,)} and one.monitors == {"r": (0,)}
    over = plan_affinity([0, 1], [("c1", "compute"), ("c2", "compute"), ("c3", "compute")])
    assert "oversubscribed" in over.note and over.cores_per_compute == 1
    assert plan_affinity([0, 1, 2, 3, 4], [("c1", "compute"), ("c2", "compute")]).cores_per_compute == 2
