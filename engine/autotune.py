"""Search algorithms for kernel autotuning: successive halving and exhaustive search.

Pure code: a search gets a list of configurations and a ``measure(config) -> seconds``
function (one timed run of the kernel) and never touches a kernel itself, so it is
tested against seeded synthetic "kernels" and driven for real by the optimization
agent and ``benchmarks/autotune.py``.

Design note
-----------
*What is measured.* One call of ``measure`` is one run of the kernel: its wall-clock
seconds (the only objective on a machine without hardware counters).  A configuration's
score is the **median of all its samples so far**; the median shrugs off the
scheduler-timeslice outliers a shared 2-core machine produces (docs/KERNELS.md).

*Interleaving.* Within a round every surviving configuration gets one run per pass,
in a freshly shuffled order, so a burst of load from another process falls on every
configuration alike instead of on whichever one happened to be measured then.

*Successive halving* (Jamieson & Talwalkar, 2016; the inner loop of Hyperband, Li et
al., 2017): measure every configuration a little, keep the best ``1/eta``, measure
the survivors ``eta`` times more, and so on until one is left.  Budget goes where
the ranking is still in doubt.  Survivors keep their earlier samples, so the final
ranking rests on the most evidence.  With ``n`` configurations, ``eta = 2`` and
``r`` first-round runs it costs about ``n * r * log2(n)`` runs, against ``n * R``
for exhaustive search at the same final fidelity ``R = r * n`` (see :func:`sh_cost`).

*Exhaustive search* measures every configuration ``runs`` times (interleaved): the
reference the benchmark compares with.

*Deadlines.* Both take a ``deadline`` on an injectable clock and stop cleanly, with
``complete=False`` and the best configuration among the most-measured ones.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Config = dict[str, Any]
Measure = Callable[[Config], float]
"""One timed run of a configuration: returns seconds (lower is better)."""


def config_key(config: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A hashable, order-independent key for a configuration."""
    return tuple(sorted(config.items()))


def grid(
    tunables: Mapping[str, Sequence[Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    canonical: Callable[[Config], Config] | None = None,
    extra: Iterable[Mapping[str, Any]] = (),
) -> list[Config]:
    """Every combination of the tunables' values, plus ``extra`` configurations.

    Args:
        tunables: parameter name -> candidate values.
        fixed: parameters added unchanged to every configuration.
        canonical: maps a configuration to its canonical form (e.g. ``threads=0`` ->
            the pool size, or BLAS matmul with any ``tile`` -> one entry); two
            configurations with the same canonical form are measured once.
        extra: configurations to include even if not on the grid (the default).

    Returns:
        Distinct canonical configurations, in grid order (``extra`` first).
    """
    names = sorted(tunables)
    seen: set[tuple[tuple[str, Any], ...]] = set()
    out: list[Config] = []
    combos = (dict(zip(names, values)) for values in itertools.product(*(tunables[n] for n in names)))
    for raw in itertools.chain((dict(e) for e in extra), combos):
        config = {**(fixed or {}), **raw}
        if canonical is not None:
            config = canonical(config)
        key = config_key(config)
        if key not in seen:
            seen.add(key)
            out.append(config)
    return out


@dataclass(frozen=True)
class Ranked:
    """One configuration's standing at the end of a search."""

    config: Config
    seconds: float
    samples: int


@dataclass(frozen=True)
class SearchResult:
    """What a search found and what it cost.

    Attributes:
        method: ``"successive_halving"`` or ``"exhaustive"``.
        best: the winning configuration.
        best_seconds: median of the winner's samples.
        evaluations: kernel runs spent (calls of ``measure``).
        configs: size of the search space.
        complete: False if the deadline cut the search short.
        rounds: number of rounds run (successive halving) or passes (exhaustive).
        ranking: every configuration, best first (most-measured first on ties).
        elapsed_s: wall time spent, on the search's clock.
    """

    method: str
    best: Config
    best_seconds: float
    evaluations: int
    configs: int
    complete: bool
    rounds: int
    ranking: tuple[Ranked, ...] = field(default_factory=tuple)
    elapsed_s: float = 0.0


class _Samples:
    """Samples per configuration and the evaluation counter shared by the searches."""

    def __init__(self, configs: Sequence[Config], measure: Measure, deadline: float | None,
                 clock: Callable[[], float], rng: random.Random,
                 on_eval: Callable[[Config, float], None] | None) -> None:
        if not configs:
            raise ValueError("nothing to search: the configuration list is empty")
        self.configs = [dict(c) for c in configs]
        self.samples: list[list[float]] = [[] for _ in self.configs]
        self.measure = measure
        self.deadline = deadline
        self.clock = clock
        self.rng = rng
        self.on_eval = on_eval
        self.evaluations = 0
        self.start = clock()

    def out_of_time(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def run_passes(self, indices: Sequence[int], passes: int) -> bool:
        """``passes`` interleaved passes over ``indices``; False if the deadline hit."""
        for _ in range(passes):
            order = list(indices)
            self.rng.shuffle(order)
            for i in order:
                if self.out_of_time():
                    return False
                seconds = float(self.measure(dict(self.configs[i])))
                if not math.isfinite(seconds) or seconds < 0:
                    seconds = math.inf  # a failed run ranks last
                self.samples[i].append(seconds)
                self.evaluations += 1
                if self.on_eval is not None:
                    self.on_eval(self.configs[i], seconds)
        return True

    def score(self, i: int) -> float:
        return statistics.median(self.samples[i]) if self.samples[i] else math.inf

    def ranked(self, indices: Iterable[int]) -> list[int]:
        """Best first by median; among equals, the one with more samples."""
        return sorted(indices, key=lambda i: (self.score(i), -len(self.samples[i])))

    def result(self, method: str, complete: bool, rounds: int, finalists: Sequence[int]) -> SearchResult:
        measured = [i for i in range(len(self.configs)) if self.samples[i]]
        if not measured:
            best_i = 0
        else:
            most = max(len(self.samples[i]) for i in finalists) if finalists else 0
            pool = [i for i in finalists if len(self.samples[i]) == most and most > 0] or measured
            best_i = self.ranked(pool)[0]
        ranking = tuple(Ranked(self.configs[i], self.score(i), len(self.samples[i]))
                        for i in self.ranked(range(len(self.configs))))
        return SearchResult(method, dict(self.configs[best_i]), self.score(best_i), self.evaluations,
                            len(self.configs), complete, rounds, ranking, self.clock() - self.start)


def successive_halving(
    configs: Sequence[Config],
    measure: Measure,
    *,
    eta: int = 2,
    min_runs: int = 1,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    seed: int | None = None,
    on_eval: Callable[[Config, float], None] | None = None,
) -> SearchResult:
    """Successive halving over ``configs`` (see the module docstring).

    Round ``i`` gives each survivor ``min_runs * eta**i`` more runs, then keeps the
    best ``ceil(len / eta)``.  Ends when one configuration is left (or at ``deadline``).

    Raises:
        ValueError: empty ``configs``, ``eta < 2`` or ``min_runs < 1``.
    """
    if eta < 2 or min_runs < 1:
        raise ValueError(f"need eta >= 2 and min_runs >= 1, got eta={eta}, min_runs={min_runs}")
    state = _Samples(configs, measure, deadline, clock, random.Random(seed), on_eval)
    survivors = list(range(len(state.configs)))
    runs = min_runs
    rounds = 0
    complete = True
    while True:
        rounds += 1
        if not state.run_passes(survivors, runs):
            complete = False
            break
        if len(survivors) == 1:
            break
        survivors = state.ranked(survivors)[: max(1, math.ceil(len(survivors) / eta))]
        runs *= eta
    return state.result("successive_halving", complete, rounds, survivors)


def exhaustive(
    configs: Sequence[Config],
    measure: Measure,
    *,
    runs: int,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    seed: int | None = None,
    on_eval: Callable[[Config, float], None] | None = None,
) -> SearchResult:
    """Every configuration ``runs`` times, in interleaved shuffled passes.

    Raises:
        ValueError: empty ``configs`` or ``runs < 1``.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    state = _Samples(configs, measure, deadline, clock, random.Random(seed), on_eval)
    everyone = list(range(len(state.configs)))
    done = 0
    complete = True
    for _ in range(runs):
        if not state.run_passes(everyone, 1):
            complete = False
            break
        done += 1
    return state.result("exhaustive", complete, done, everyone)


def sh_schedule(n_configs: int, *, eta: int = 2, min_runs: int = 1) -> list[tuple[int, int]]:
    """``[(survivors, new runs each), ...]`` per round of :func:`successive_halving`."""
    out = []
    n, runs = n_configs, min_runs
    while True:
        out.append((n, runs))
        if n <= 1:
            return out
        n = max(1, math.ceil(n / eta))
        runs *= eta


def sh_cost(n_configs: int, *, eta: int = 2, min_runs: int = 1) -> int:
    """Kernel runs a complete successive-halving search takes."""
    return sum(n * r for n, r in sh_schedule(n_configs, eta=eta, min_runs=min_runs))


def sh_final_samples(n_configs: int, *, eta: int = 2, min_runs: int = 1) -> int:
    """Samples the winner of a complete search has (its final fidelity)."""
    return sum(r for _, r in sh_schedule(n_configs, eta=eta, min_runs=min_runs))


def plan_min_runs(n_configs: int, budget_runs: float, *, eta: int = 2, most: int = 8) -> int:
    """The largest ``min_runs`` (at most ``most``) whose search fits ``budget_runs``; 0 if none."""
    best = 0
    for r in range(1, most + 1):
        if sh_cost(n_configs, eta=eta, min_runs=r) <= budget_runs:
            best = r
    return best


@dataclass(frozen=True)
class Comparison:
    """An interleaved A/B measurement of two configurations."""

    a_seconds: float
    b_seconds: float
    runs: int

    @property
    def speedup(self) -> float:
        """How many times faster ``a`` is than ``b`` (``b_seconds / a_seconds``)."""
        return self.b_seconds / self.a_seconds if self.a_seconds > 0 else math.inf


def compare(a: Config, b: Config, measure: Measure, *, runs: int, seed: int | None = None,
            on_eval: Callable[[Config, float], None] | None = None) -> Comparison:
    """Measure ``a`` and ``b`` ``runs`` times each, alternating in random order; medians."""
    rng = random.Random(seed)
    sa: list[float] = []
    sb: list[float] = []
    for _ in range(max(1, runs)):
        pair = [(a, sa), (b, sb)]
        rng.shuffle(pair)
        for config, sink in pair:
            seconds = float(measure(dict(config)))
            sink.append(seconds)
            if on_eval is not None:
                on_eval(config, seconds)
    return Comparison(statistics.median(sa), statistics.median(sb), len(sa))
