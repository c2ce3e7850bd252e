"""Dispatch learning, duration regression and scaling -- pure, against seeded synthetic worlds."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest

from engine.config import default_config
from engine.dispatch import (
    JoinShortestQueue,
    LearnedDispatch,
    PowerOfTwoChoices,
    RandomChoice,
    RoundRobin,
    ShortestExpectedDelay,
)
from engine.learning import (
    RLS,
    ArmParams,
    DispatchLearner,
    DurationPredictor,
    ServiceTimeModel,
    choose_sed,
)
from engine.learning.queueing import (
    SimClock,
    learned_policy,
    simulate_dispatch,
    task_stream,
)
from engine.learning.scaling import ThroughputScaling, scenarios, simulate_scaling
from engine.learning.service import service_time
from engine.scaling import ThresholdScaling

AGENTS = ("w1", "w2", "w3", "w4")


def speeds_with_slowdown(n_tasks: int):  # type: ignore[no-untyped-def]
    """The benchmark's world: w3, w4 at 1/3; w2 slows to 1/3 after half the tasks."""
    half = n_tasks // 2
    return lambda submitted: {"w1": 1.0, "w2": 1.0 if submitted < half else 1 / 3, "w3": 1 / 3, "w4": 1 / 3}


def run_policy(name: str, seed: int, n: int = 1200) -> Any:
    tasks = task_stream(n, seed=seed)
    speeds = speeds_with_slowdown(n)
    clock, tick = SimClock(), None
    now = {"submitted": 0}

    def tracked(submitted: int) -> dict[str, float]:
        now["submitted"] = submitted
        return speeds(submitted)

    if name == "learning":
        policy, _learner, tick = learned_policy(clock, seed=seed)
    elif name == "oracle":
        policy = ShortestExpectedDelay(lambda: speeds(now["submitted"]), work=lambda f: f["units"])
    else:
        policy = {"round_robin": RoundRobin(), "random": RandomChoice(seed), "jsq": JoinShortestQueue(),
                  "p2c": PowerOfTwoChoices(seed)}[name]
    return simulate_dispatch(policy, tasks, tracked, window=8, seed=seed, clock=clock, on_complete=tick)


def test_discounted_estimates_follow_an_agent_that_drifts() -> None:
    """A gradual 3x slow-down: the discounted mean keeps up; an undiscounted one lags far behind."""
    rng = random.Random(0)
    fast, slow = ServiceTimeModel(discount=0.95), ServiceTimeModel(discount=1.0)
    for i in range(400):
        seconds = 0.01 * (1 + 2 * min(i, 300) / 300) * rng.uniform(0.95, 1.05)
        for model in (fast, slow):
            model.update("k", "a", seconds)
    assert fast.mean("k", "a") == pytest.approx(0.03, rel=0.1)
    assert slow.mean("k", "a") < 0.024
    assert fast.changes == slow.changes == 0


def test_an_abrupt_slow_down_is_detected_within_three_tasks() -> None:
    """Three surprising samples in a row replace the history; a lone outlier does not."""
    model = ServiceTimeModel(discount=0.98)
    for x in (0.010, 0.011, 0.009, 0.010, 0.0105, 0.0095) * 5:
        model.update("k", "a", x)
    model.update("k", "a", 0.05)  # one outlier, then normal again
    model.update("k", "a", 0.010)
    assert model.changes == 0 and model.mean("k", "a") < 0.013
    for _ in range(3):
        model.update("k", "a", 0.030)
    assert model.changes == 1 and model.mean("k", "a") == pytest.approx(0.030)


def test_choice_is_shortest_expected_delay_and_an_unknown_agent_is_tried() -> None:
    """Greedy: the fast agent until its queue makes it slower; an unseen agent gets the optimistic prior."""
    params = {"fast": ArmParams(20, 0.01, 0.001), "slow": ArmParams(20, 0.03, 0.003)}
    assert choose_sed(["fast", "slow"], {"fast": 1, "slow": 0}, params, None) == ("fast", "fast")
    assert choose_sed(["fast", "slow"], {"fast": 3, "slow": 0}, params, None) == ("slow", "slow")
    assert choose_sed(["fast", "new"], {"fast": 2, "new": 0}, params, None)[0] == "new"


def test_thompson_draws_explore_only_when_the_choice_is_close() -> None:
    """Clear-cut choices never explore; near-ties sometimes do."""
    rng = random.Random(1)
    params = {"a": ArmParams(30, 0.010, 0.001), "b": ArmParams(30, 0.030, 0.003)}
    clear = [choose_sed(["a", "b"], {}, params, rng) for _ in range(200)]
    assert all(c == g == "a" for c, g in clear)
    tie = {"a": ArmParams(3, 0.010, 0.002), "b": ArmParams(3, 0.0105, 0.002)}
    picks = [choose_sed(["a", "b"], {}, tie, rng)[0] for _ in range(400)]
    assert 20 < picks.count("b") < 380


def test_service_time_is_measured_from_completions_of_an_in_order_agent() -> None:
    """A task queued behind another starts when that one finishes."""
    assert service_time(now=10.0, latency_s=3.0, previous_completion=None) == 3.0
    assert service_time(now=10.0, latency_s=3.0, previous_completion=8.5) == pytest.approx(1.5)
    assert service_time(now=10.0, latency_s=1.0, previous_completion=5.0) == 1.0


def test_learned_dispatch_in_simulation_matches_the_oracle_and_beats_round_robin() -> None:
    """Benchmark world, 3 seeds: learning >= 95 % of the oracle's throughput and >= 1.3x round robin."""
    ratios_oracle, ratios_rr = [], []
    for seed in range(3):
        learning = run_policy("learning", seed)
        ratios_oracle.append(learning.throughput / run_policy("oracle", seed).throughput)
        ratios_rr.append(learning.throughput / run_policy("round_robin", seed).throughput)
    assert statistics.median(ratios_oracle) >= 0.95
    assert statistics.median(ratios_rr) >= 1.3


def test_learned_dispatch_moves_work_off_an_agent_that_slowed_down() -> None:
    """Once w2 drops to a third of its speed, it gets far fewer tasks than w1."""
    n = 1600
    tasks = task_stream(n, seed=4)
    speeds = speeds_with_slowdown(n)
    clock = SimClock()
    policy, learner, tick = learned_policy(clock, seed=4)
    counts: dict[str, int] = {a: 0 for a in AGENTS}
    original = policy.choose

    def counting(kind: str, features: Any, candidates: Any, outstanding: Any) -> str:
        chosen = original(kind, features, candidates, outstanding)
        if policy.decisions > n * 3 // 4:  # well after the slow-down
            counts[chosen] += 1
        return chosen

    policy.choose = counting  # type: ignore[method-assign]
    simulate_dispatch(policy, tasks, speeds, window=8, seed=4, clock=clock, on_complete=tick)
    assert counts["w2"] < counts["w1"] / 2
    means = learner.service.export()["light"]
    assert means["w2"][1] > 2 * means["w1"][1]


def test_learned_dispatch_falls_back_to_jsq_and_forwards_completions() -> None:
    """No model yet: join-shortest-queue; every completion goes to the sink with its measured service."""
    sent: list[list[dict[str, Any]]] = []
    now = [0.0]
    policy = LearnedDispatch(lambda: None, lambda b: sent.append(b) or True, batch_size=2, clock=lambda: now[0])
    assert policy.name.startswith("learning (jsq")
    f1, f2 = {"units": 1.0}, {"units": 2.0}
    assert policy.choose("k", f1, ["a", "b"], {"a": 1, "b": 0}) == "b"
    assert policy.choose("k", f2, ["a", "b"], {"a": 1, "b": 1}) == "a"
    now[0] = 1.0
    policy.observe("b", "k", f1, 1.0, True)
    now[0] = 1.5
    policy.observe("a", "k", f2, 1.5, True)
    assert len(sent) == 1 and [r["agent"] for r in sent[0]] == ["b", "a"]
    assert sent[0][0]["queue"] == {"a": 1, "b": 0} and sent[0][0]["service_s"] == 1.0
    dropped = LearnedDispatch(lambda: None, lambda b: False, batch_size=1)
    dropped.choose("k", f1, ["a"], {})
    dropped.observe("a", "k", f1, 0.1, True)
    assert dropped.dropped_batches == 1


def test_power_of_two_choices_takes_the_shorter_of_two_queues() -> None:
    """With two candidates p2c always compares both; random spreads evenly."""
    p2c = PowerOfTwoChoices(seed=0)
    assert all(p2c.choose("k", {}, ["a", "b"], {"a": 5, "b": 1}) == "b" for _ in range(20))
    rnd = RandomChoice(seed=0)
    picks = [rnd.choose("k", {}, ["a", "b"], {}) for _ in range(400)]
    assert 150 < picks.count("a") < 250


def test_learner_scores_regret_against_the_best_agent_in_hindsight() -> None:
    """Mostly sending to the slow agent accumulates regret; mostly the fast one, far less."""
    def feed(choose_slow: bool) -> DispatchLearner:
        learner = DispatchLearner(hindsight=4)
        for i in range(40):
            agent = ("fast" if i % 10 == 0 else "slow") if choose_slow else ("slow" if i % 4 == 0 else "fast")
            service = 0.03 if agent == "slow" else 0.01
            learner.observe({"agent": agent, "kind": "k", "service_s": service, "latency_s": service,
                             "queue": {"fast": 0, "slow": 0}, "explored": False, "ok": True, "t": i * 0.01})
        return learner

    good, bad = feed(False), feed(True)
    assert bad.regret_s > 0.5
    assert good.regret_s < bad.regret_s / 3
    assert 0 < good.summary()["reward_tasks_per_s"] == pytest.approx(100, rel=0.01)


def test_learner_state_survives_a_round_trip() -> None:
    """snapshot -> restore gives the same published model (newer version) and figures."""
    learner = DispatchLearner()
    for i in range(30):
        learner.observe({"agent": f"a{i % 3}", "kind": "k", "service_s": 0.01 * (1 + i % 3),
                         "features": {"units": 1.0 + i % 3}, "queue": {"a0": 0, "a1": 1}, "t": float(i)})
    copy = DispatchLearner()
    copy.load(learner.state())
    assert copy.model_payload()["kinds"] == learner.model_payload()["kinds"]
    assert copy.model_payload()["version"] > learner.model_payload()["version"]
    assert copy.observations == 30 and copy.durations.mape == learner.durations.mape


def test_rls_recovers_a_linear_law_and_forgets_an_old_one() -> None:
    """Exact coefficients on noiseless data; with forgetting it tracks a changed law."""
    model = RLS(2, lam=0.95)
    for i in range(200):
        x = [1.0, float(i % 10)]
        model.update(x, 0.5 + (2.0 if i < 100 else 4.0) * x[1])
    assert model.w == pytest.approx([0.5, 4.0], rel=1e-2)


def test_duration_prediction_beats_the_running_mean_when_size_matters() -> None:
    """Prequential error: the regression on task size is well below the size-blind baseline."""
    rng = random.Random(2)
    predictor = DurationPredictor()
    for _ in range(500):
        units = rng.uniform(1e5, 5e5)
        predictor.observe("light", "w1", {"units": units}, 1e-8 * units * rng.uniform(0.95, 1.05))
    assert predictor.mape is not None and predictor.baseline_mape is not None
    assert predictor.mape < 0.06
    assert predictor.baseline_mape > 0.2


def test_learned_scaling_serves_the_same_demand_with_no_more_agents() -> None:
    """In every simulated scenario the throughput-learned policy does the same work with <= agents."""
    config = default_config().with_overrides(**{"agents.compute.count": 1})
    fewer = 0
    for scenario in scenarios():
        t = simulate_scaling(ThresholdScaling(config), scenario, config, steps=200)
        learned = simulate_scaling(ThroughputScaling(config), scenario, config, steps=200)
        assert learned.completed >= 0.99 * t.completed
        assert learned.mean_agents <= t.mean_agents + 0.05
        fewer += learned.mean_agents < t.mean_agents - 0.5
    assert fewer >= 2
