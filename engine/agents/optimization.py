"""The optimization agent: autotunes compute kernels by measuring them, and plans CPU affinity.

What it does, and what it claims:

* **Autotuning.** For each kernel it tunes (the compute agents' configured kernel at
  their configured size, plus ``kernels`` from its options) it measures configurations
  of the kernel's tunables (``threads``, ``chunk``, ``tile``, ``variant``) with
  successive halving (:mod:`engine.autotune`), within a time budget of
  ``budget_fraction * optimization_interval`` per session.  The winner is then
  re-measured against the default configuration in an interleaved A/B run, and the
  *measured* ratio is the gain it reports; if the default wins the A/B, the default
  is kept and the gain is 1.0.  Nothing else is claimed.
* **Objective.** Wall-clock seconds per run (median).  Where hardware counters
  (cycles, cache or branch misses) are unavailable -- as on VMs without a PMU -- it
  says so in its publication and start event and uses wall-clock time alone.
* **Persistence.** Results are stored per machine (CPU identity key) and kernel by
  :class:`engine.tuning_store.TuningStore`; a stored result is applied at start and
  not searched again (``retune = true`` forces a new search).
* **Applying.** Each compute agent gets ``apply_config`` messages ``{kernel, params}``.
* **Affinity.** :func:`plan_affinity` gives compute agents disjoint cores (so they do
  not oversubscribe) and keeps monitoring agents on a housekeeping core when one is
  left over; the plan is applied with ``pin`` actions and shown in the status.
* **Kind to the machine.** Trials are single kernel runs of a few milliseconds,
  thread counts never exceed the cores a compute agent is given, the agent pins itself
  to that many of the least busy cores while measuring, and it heartbeats between
  trials.

Publishes ``optimization`` (plan, per-kernel results, counters note) and the gauges
``tuned``, ``best_gain``, ``mean_gain``, ``evaluations``, ``saved_pct`` (runs saved
against exhaustive search), ``tuning_s``, ``pinned``, ``hw_counters``.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import autotune
from engine.agents.base import BaseAgent
from engine.errors import ChannelError
from engine.tuning_store import TunedConfig, TuningStore, default_store_dir

TOPIC = "optimization"
MONITOR_TYPES = frozenset({"resource", "thermal", "fault_tolerance", "optimization", "learning"})
#: Problem sizes for kernels tuned at no configured size: one run takes milliseconds.
TUNING_SIZES = {"triad": 1 << 22, "jacobi": 1024, "matmul": 512, "montecarlo": 1 << 22, "nbody": 2048}
NOISE_MARGIN = 0.02
"""A search winner must beat the default by more than this in the A/B check to replace it."""
MIN_MEASURE_S = 0.002
"""A measurement repeats the kernel until it lasts at least this long (timer noise)."""


# --- the affinity plan (pure) --------------------------------------------------------------


@dataclass(frozen=True)
class AffinityPlan:
    """Which cores each agent gets; an empty tuple means "all cores" (not pinned).

    Attributes:
        compute: compute agent id -> cores.
        monitors: monitoring agent id -> cores.
        housekeeping: the cores kept for monitoring agents (may be empty).
        cores_per_compute: cores (and so the thread cap) of each compute agent.
        note: one line for humans.
    """

    compute: dict[str, tuple[int, ...]]
    monitors: dict[str, tuple[int, ...]]
    housekeeping: tuple[int, ...]
    cores_per_compute: int
    note: str

    def pins(self) -> dict[str, tuple[int, ...]]:
        """Every agent's cores."""
        return {**self.compute, **self.monitors}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"compute": {a: list(c) for a, c in self.compute.items()},
                "monitors": {a: list(c) for a, c in self.monitors.items()},
                "housekeeping": list(self.housekeeping), "cores_per_compute": self.cores_per_compute,
                "note": self.note}


def plan_affinity(cores: Sequence[int], agents: Iterable[tuple[str, str]], *,
                  exclude: Iterable[str] = ()) -> AffinityPlan:
    """Plan cores for ``agents`` (``(id, type)`` pairs) on ``cores``.

    * ``N > C`` (more cores than compute agents): one housekeeping core for the
      monitoring agents; the others split evenly into disjoint sets, one per compute
      agent (cores left over join the housekeeping set).
    * ``N == C``: one core per compute agent; no core is free of compute work, so the
      monitoring agents stay unpinned and the scheduler spreads their small load.
    * ``N < C``: oversubscribed -- compute agents share cores round robin, one core
      each, and the note says so.

    Agents in ``exclude`` (and types that are neither compute nor monitoring) are left alone.
    """
    cores = sorted(set(cores))
    skip = set(exclude)
    pairs = list(agents)
    compute = sorted(a for a, t in pairs if t == "compute" and a not in skip)
    monitors = sorted(a for a, t in pairs if t in MONITOR_TYPES and a not in skip)
    n, c = len(cores), len(compute)
    if c == 0 or n == 0:
        cap = max(1, n - 1) if n > 1 else 1
        return AffinityPlan({}, {}, (), cap, "no compute agents: nothing pinned")
    if n > c:
        per = (n - 1) // c
        groups = {a: tuple(cores[1 + i * per: 1 + (i + 1) * per]) for i, a in enumerate(compute)}
        used = {x for g in groups.values() for x in g}
        house = tuple(x for x in cores if x not in used)
        return AffinityPlan(groups, {m: house for m in monitors}, house, per,
                            f"{c} compute agent(s) on {per} core(s) each; monitoring on core(s) "
                            f"{','.join(map(str, house))}")
    if n == c:
        return AffinityPlan({a: (cores[i],) for i, a in enumerate(compute)}, {m: () for m in monitors}, (), 1,
                            f"{c} compute agents, one core each; no core is free of compute work, "
                            "so monitoring agents are not pinned")
    return AffinityPlan({a: (cores[i % n],) for i, a in enumerate(compute)}, {m: () for m in monitors}, (), 1,
                        f"oversubscribed: {c} compute agents on {n} cores (they share cores; "
                        f"use at most {n} compute agents, threads=1)")


# --- measuring kernels --------------------------------------------------------------------


def thread_candidates(cap: int) -> list[int]:
    """Powers of two up to ``cap`` (and ``cap`` itself)."""
    out, k = [], 1
    while k < cap:
        out.append(k)
        k *= 2
    out.append(max(1, cap))
    return out


def tuning_space(name: str, cap: int) -> tuple[list[autotune.Config], autotune.Config]:
    """The configurations to search for kernel ``name`` with at most ``cap`` threads, and its default.

    ``threads`` candidates are powers of two up to ``cap``; the default (``threads=0``:
    the whole numba pool) is included as it is, since that is what an untuned agent
    runs, and stands for ``threads = pool size`` when ``cap`` reaches it.  Configurations that are the same computation are measured once (BLAS matmul
    ignores ``tile`` and ``threads``).
    """
    from engine.kernels import KERNELS

    spec = KERNELS[name]
    tunables = {k: list(v) for k, v in spec.tunables.items()}
    if "threads" in tunables:
        pool = os.cpu_count() or 1  # KernelTrial sizes numba's pool to every CPU
        # threads=0 (the default) already means the whole pool: do not measure it twice
        tunables["threads"] = [0 if t >= pool else t for t in thread_candidates(cap)]
    default = {k: spec.default_params[k] for k in spec.tunables}

    def canonical(config: autotune.Config) -> autotune.Config:
        if config.get("variant") == "blas":
            return {**config, "tile": default.get("tile"), "threads": default.get("threads", 0)}
        return config

    return autotune.grid(tunables, canonical=canonical, extra=[default]), canonical(default)


class KernelTrial:
    """``trial(config) -> seconds per run`` for one kernel at one size (the search's ``measure``).

    Inputs are built once; the kernel is compiled (or loaded from numba's cache)
    before anything is timed.  A measurement repeats the run until it lasts at least
    :data:`MIN_MEASURE_S` (``reps``, calibrated on the default) and returns the mean
    per run.  ``heartbeat`` is called after every measurement.
    """

    def __init__(self, name: str, n: int, *, heartbeat: Callable[[], None] | None = None) -> None:
        _numba_pool_all_cores()
        from engine.kernels import KERNELS, get_inputs, warm_up

        self.name = name
        self.n = int(n)
        self.spec = KERNELS[name]
        self.heartbeat = heartbeat or (lambda: None)
        warm_up([name])
        self.heartbeat()
        self.inputs = get_inputs(name, self.n)
        self.heartbeat()
        self.reps = 1
        self.measurements = 0
        self.runs = 0

    def calibrate(self, config: Mapping[str, Any]) -> float:
        """Seconds of one run of ``config`` (median of 3) and set ``reps`` from it."""
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            self.spec.run(self.inputs, **self.spec.resolve_params(config))
            times.append(time.perf_counter() - t0)
        one = statistics.median(times)
        self.reps = max(1, math.ceil(MIN_MEASURE_S / max(one, 1e-7)))
        self.heartbeat()
        return one

    def __call__(self, config: Mapping[str, Any]) -> float:
        params = self.spec.resolve_params(config)
        run, inputs, reps = self.spec.run, self.inputs, self.reps
        t0 = time.perf_counter()
        for _ in range(reps):
            run(inputs, **params)
        seconds = (time.perf_counter() - t0) / reps
        self.measurements += 1
        self.runs += reps
        self.heartbeat()
        return seconds


def _numba_pool_all_cores() -> None:
    """Size numba's pool to every CPU even if this process is pinned (before numba loads)."""
    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_NUM_THREADS", str(os.cpu_count() or 1))


@dataclass
class TuneOutcome:
    """What one tuning session did."""

    record: TunedConfig | None
    search: autotune.SearchResult | None
    reason: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def tune_kernel(name: str, n: int, cap: int, budget_s: float, *, heartbeat: Callable[[], None] | None = None,
                seed: int | None = None, notes: str = "", clock: Callable[[], float] = time.monotonic) -> TuneOutcome:
    """Search kernel ``name`` at size ``n`` with at most ``cap`` threads in about ``budget_s``.

    Successive halving (eta 2) with as many first-round runs (1..4) as the budget
    allows, a hard deadline of twice the budget, then an interleaved A/B of the winner
    against the default to measure the gain; a winner within :data:`NOISE_MARGIN` of
    the default does not replace it.  Returns no record if the search did not
    finish (it will be tried again) or even one round cannot fit the budget.
    """
    start = clock()
    trial = KernelTrial(name, n, heartbeat=heartbeat)
    configs, default = tuning_space(name, cap)
    one = trial.calibrate(default)
    per_measure = max(one, MIN_MEASURE_S) * 1.5  # other configurations may be slower
    min_runs = autotune.plan_min_runs(len(configs), budget_s / per_measure, eta=2, most=4)
    if min_runs == 0:
        need = autotune.sh_cost(len(configs)) * per_measure
        return TuneOutcome(None, None, f"budget {budget_s:.1f} s too small (needs ~{need:.1f} s)",
                           clock() - start)
    search = autotune.successive_halving(configs, trial, eta=2, min_runs=min_runs,
                                         deadline=start + 2 * budget_s, clock=clock, seed=seed)
    if not search.complete:
        return TuneOutcome(None, search, "deadline reached before the search finished", clock() - start)
    final = autotune.sh_final_samples(len(configs), eta=2, min_runs=min_runs)
    if autotune.config_key(search.best) == autotune.config_key(default):
        best, seconds, default_seconds = default, search.best_seconds, search.best_seconds
        ab_runs = 0
    else:
        ab = autotune.compare(search.best, default, trial, runs=max(5, final), seed=seed)
        ab_runs = 2 * ab.runs
        if ab.speedup > 1.0 + NOISE_MARGIN:
            best, seconds, default_seconds = search.best, ab.a_seconds, ab.b_seconds
        else:
            best, seconds, default_seconds = default, ab.b_seconds, ab.b_seconds
            notes = (notes + "; " if notes else "") + (
                f"search winner {_fmt(search.best)} measured {ab.speedup:.3f}x the default in the A/B "
                f"check, within the {NOISE_MARGIN:.0%} noise margin; default kept")
    record = TunedConfig(
        kernel=name, n=int(n), cores=int(cap), params=dict(best), default_params=dict(default),
        seconds=seconds, default_seconds=default_seconds,
        gain=default_seconds / seconds if seconds > 0 else 1.0,
        evaluations=search.evaluations, exhaustive_evaluations=len(configs) * final,
        configs=len(configs), notes=notes,
    )  # fmt: skip
    return TuneOutcome(record, search, "", clock() - start,
                       {"ab_measurements": ab_runs, "runs_per_measurement": trial.reps, "min_runs": min_runs})


# --- the agent ----------------------------------------------------------------------------


class OptimizationAgent(BaseAgent):
    """Autotunes kernels, applies the results to compute agents, plans and applies affinity.

    Options (``[agents.optimization]``): ``kernels``, ``size``, ``budget_fraction``,
    ``pin_agents``, ``store_dir``, ``retune`` (see docs/CONFIG.md).
    """

    agent_type = "optimization"
    key_metric = "best_gain"

    def __init__(self, agent_id: str = "", *, kernels: Sequence[str] = (), size: int = 0,
                 budget_fraction: float = 0.2, pin_agents: bool = True, store_dir: str = "",
                 retune: bool = False, **options: Any) -> None:
        super().__init__(agent_id, kernels=list(kernels), size=size, budget_fraction=budget_fraction,
                         pin_agents=pin_agents, store_dir=store_dir, retune=retune, **options)
        self.extra_kernels = list(kernels)
        self.size = int(size)
        self.budget_fraction = float(budget_fraction)
        self.pin_agents = bool(pin_agents)
        self.store_dir = store_dir
        self.retune = bool(retune)
        self.results: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, str] = {}
        self.applied: dict[str, set[str]] = {}
        self.pinned: dict[str, tuple[int, ...]] = {}
        self.plan: AffinityPlan | None = None
        self.tuning_s = 0.0
        self.last_evaluations = 0
        self.last_saved_pct = 0.0
        self._next_tune = 0.0
        self._retry_at = 0.0
        self._started = 0.0
        self._cores: list[int] = []

    # --- hooks -------------------------------------------------------------------------

    def on_start(self) -> None:
        from engine.telemetry.cpu_identity import CpuIdentityCollector
        from engine.telemetry.perf_events import probe

        root = default_store_dir() if not self.store_dir else _path(self.store_dir)
        self.context.heartbeat()
        self.identity = CpuIdentityCollector(cache_dir=root / "cpuinfo").identity_key()
        self.store = TuningStore(self.identity, root)
        reasons = probe()
        hardware = {k: v for k, v in reasons.items() if k in ("cycles", "instructions", "cache-misses",
                                                               "branch-misses")}
        missing = [k for k in ("cycles", "instructions", "cache-misses", "branch-misses") if hardware.get(k) != "ok"]
        self.hw_ok = not missing
        why = hardware.get(missing[0], "") if missing else ""
        why = ("not supported" + why.split("not supported", 1)[1]) if "not supported" in why else (
            why.removeprefix("unavailable: "))
        self.hw_note = (
            "hardware counters available (cycles, instructions, cache and branch misses); the objective "
            "is still wall-clock time" if self.hw_ok else
            f"hardware counters unavailable here ({', '.join(missing)}: {why}); the objective is "
            "wall-clock time only")
        self.emit_event("optimizer_started", f"autotuning by measurement on {self.identity}: {self.hw_note}",
                        identity=self.identity, hardware_counters=self.hw_note, store=str(self.store.root))
        try:  # the cores this swarm may use (before this agent pins itself to measure)
            self._cores = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - non-Linux
            self._cores = list(range(os.cpu_count() or 1))
        self._started = time.monotonic()
        self._next_tune = self._started + min(5.0, self.context.config.optimization_interval / 4)
        self._refresh_plan()
        self._load_stored()
        self._publish()

    def execute_cycle(self) -> None:
        self._refresh_plan()
        self._apply_configs()
        now = time.monotonic()
        if self.failures and now >= self._retry_at:  # skipped or failed kernels get another go
            self.failures.clear()
        if now >= self._next_tune:
            todo = self._pending_kernels()
            if todo:
                spent = self._tune(*todo[0])
                idle = spent * (1.0 - self.budget_fraction) / max(self.budget_fraction, 1e-3)
                self._next_tune = time.monotonic() + max(idle, self.context.config.supervisor.heartbeat_interval)
                self._apply_configs()
            else:
                self._next_tune = now + self.context.config.optimization_interval
        self._publish()

    def handle_message(self, message: Any) -> Any:
        if message.message_type == "optimization_status":
            return self._status()
        if message.message_type == "optimization_retune":
            self.results.clear()
            self.failures.clear()
            self.retune = True
            self._next_tune = 0.0
            return {"ok": True}
        return None

    # --- what to tune ------------------------------------------------------------------

    def _targets(self) -> list[tuple[str, int]]:
        compute = self.context.config.agents.compute
        targets = [(compute.kernel, self.size or compute.size)]
        for name in self.extra_kernels:
            if name != compute.kernel:
                targets.append((name, self.size or TUNING_SIZES.get(name, 1024)))
        return targets

    def _cap(self) -> int:
        return self.plan.cores_per_compute if self.plan is not None else 1

    def _pending_kernels(self) -> list[tuple[str, int]]:
        return [(k, n) for k, n in self._targets() if k not in self.results and k not in self.failures]

    def _load_stored(self) -> None:
        if self.retune:
            return
        for name, n in self._targets():
            record = self.store.get(name, n, self._cap())
            if record is not None and name not in self.results:
                self.results[name] = {**record.to_dict(), "source": "stored"}
                self.emit_event("tuning_loaded", f"{name} n={n}: stored config {record.params} "
                                f"({record.gain:.2f}x vs default when measured); not searching again",
                                kernel=name, params=record.params, gain=record.gain)

    def _tune(self, name: str, n: int) -> float:
        budget = self.budget_fraction * self.context.config.optimization_interval
        cap = self._cap()
        self.emit_event("tuning_started", f"tuning {name} n={n} (threads <= {cap}, budget {budget:.1f} s)",
                        kernel=name, n=n, cap=cap, budget_s=budget)
        saved = pin_to_least_busy(cap)
        try:
            outcome = tune_kernel(name, n, cap, budget, heartbeat=self.context.heartbeat, notes=self.hw_note)
        except Exception as exc:  # noqa: BLE001  (a kernel that cannot run here must not crash-loop the agent)
            self.failures[name] = f"{type(exc).__name__}: {exc}"
            self._retry_at = time.monotonic() + self.context.config.optimization_interval
            self.emit_event("tuning_failed", f"{name}: {self.failures[name]}", severity="warning", kernel=name)
            return 0.0
        finally:
            restore_affinity(saved)
        self.tuning_s += outcome.seconds
        if outcome.record is None:
            self.failures[name] = outcome.reason
            self._retry_at = time.monotonic() + self.context.config.optimization_interval
            self.emit_event("tuning_skipped", f"{name} n={n}: {outcome.reason}", severity="warning",
                            kernel=name)
            return outcome.seconds
        record = outcome.record
        try:
            self.store.put(record)
        except OSError as exc:
            self.emit_event("tuning_not_saved", f"cannot write {self.store.path(name)}: {exc}", severity="warning")
        self.results[name] = {**record.to_dict(), "source": "measured", **outcome.extra}
        self.last_evaluations = record.evaluations
        self.last_saved_pct = 100.0 * (1.0 - record.evaluations / max(record.exhaustive_evaluations, 1))
        self.emit_event(
            "kernel_tuned",
            f"{name} n={n}: {_fmt(record.params)} runs in {record.seconds * 1e3:.3f} ms vs "
            f"{record.default_seconds * 1e3:.3f} ms for the default {_fmt(record.default_params)} "
            f"({record.gain:.2f}x, measured); {record.evaluations} measurements vs "
            f"{record.exhaustive_evaluations} for exhaustive search",
            kernel=name, n=n, params=record.params, gain=record.gain, evaluations=record.evaluations,
            exhaustive_evaluations=record.exhaustive_evaluations,
        )  # fmt: skip
        for seen in self.applied.values():
            seen.discard(name)
        return outcome.seconds

    # --- applying --------------------------------------------------------------------

    def _live_agents(self) -> list[tuple[str, str]]:
        try:
            return [(e.agent_id, e.agent_type) for e in self.communicator.directory.live_entries()]
        except (OSError, ValueError):  # the directory is unreadable only while the swarm shuts down
            return []

    def _apply_configs(self) -> None:
        computes = [a for a, t in self._live_agents() if t == "compute"]
        for agent in computes:
            done = self.applied.setdefault(agent, set())
            for name, result in self.results.items():
                if name in done:
                    continue
                try:
                    self.communicator.send_message(recipient_id=agent, message_type="apply_config",
                                                   payload={"kernel": name, "params": dict(result["params"])})
                    done.add(name)
                except ChannelError as exc:  # full or gone: try again next cycle
                    self.context.log.debug("apply_config to %s not sent: %s", agent, exc)
        for agent in list(self.applied):
            if agent not in computes:
                del self.applied[agent]

    def _refresh_plan(self) -> None:
        plan = plan_affinity(self._cores, self._live_agents(), exclude=[self.agent_id])
        changed = plan != self.plan
        old_cap = self._cap()
        self.plan = plan
        if changed:
            self.emit_event("affinity_planned", plan.note, plan=plan.to_dict())
        if plan.cores_per_compute != old_cap:  # results were for another thread cap
            self.results = {k: r for k, r in self.results.items() if r.get("cores") == plan.cores_per_compute}
            self._load_stored()
            self.applied.clear()
        if not self.pin_agents:
            return
        for agent, want in plan.pins().items():
            if self.pinned.get(agent) == want or (not want and agent not in self.pinned):
                continue  # already so (an agent nobody pinned runs on every core)
            result = self.request_action("pin", agent, list(want))
            if result.get("ok"):
                self.pinned[agent] = want
            else:
                self.pinned[agent] = want  # do not retry every cycle; the event says why
                self.emit_event("pin_refused", f"pin {agent} to {list(want) or 'all cores'}: "
                                f"{result.get('error')}", severity="warning", agent=agent)
        for agent in [a for a in self.pinned if a not in plan.pins()]:
            del self.pinned[agent]

    # --- showing -----------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        return {
            "identity": getattr(self, "identity", ""), "objective": "wall-clock seconds per run (median)",
            "hardware_counters": getattr(self, "hw_note", ""),
            "store": str(self.store.root) if hasattr(self, "store") else "",
            "plan": self.plan.to_dict() if self.plan else None, "pinned": {a: list(c) for a, c in self.pinned.items()},
            "kernels": self.results, "not_tuned": self.failures,
            "pending": [k for k, _ in self._pending_kernels()], "tuning_s": round(self.tuning_s, 3),
        }  # fmt: skip

    def _publish(self) -> None:
        self.publish(TOPIC, self._status())
        gains = [float(r["gain"]) for r in self.results.values()]
        self.set_gauge("tuned", len(self.results))
        self.set_gauge("best_gain", max(gains) if gains else 1.0)
        self.set_gauge("mean_gain", statistics.fmean(gains) if gains else 1.0)
        self.set_gauge("evaluations", self.last_evaluations)
        self.set_gauge("saved_pct", self.last_saved_pct)
        self.set_gauge("tuning_s", self.tuning_s)
        self.set_gauge("pinned", sum(1 for c in self.pinned.values() if c))
        self.set_gauge("hw_counters", 1.0 if getattr(self, "hw_ok", False) else 0.0)


def _fmt(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text).expanduser()


def pin_to_least_busy(cores_wanted: int) -> set[int] | None:
    """Pin this process to the ``cores_wanted`` least busy cores; returns the old affinity."""
    try:
        old = os.sched_getaffinity(0)
        import psutil

        busy = psutil.cpu_percent(interval=0.1, percpu=True)
        allowed = sorted(range(len(busy)), key=lambda c: busy[c])[: max(1, cores_wanted)]
        os.sched_setaffinity(0, set(allowed))
        return old
    except (OSError, ImportError, ValueError):  # pinning is a nicety here; measuring unpinned is still valid
        return None


def restore_affinity(old: set[int] | None) -> None:
    if old is not None:
        try:
            os.sched_setaffinity(0, old)
        except OSError:
            pass
