"""Demonstration scenarios for ``--demo [SCENARIO]``: real workloads on the live engine.

A :class:`Scenario` is a configuration overlay (which agents run, which thresholds
apply) plus a script that drives the running swarm through its public API and
narrates each phase with a ``demo_phase`` event, so the event log -- and a recording
of it -- tells the story.  Nothing is simulated by the script: the scaling,
throttling, restarts and dispatch decisions shown are the engine's own.

* ``default`` -- echo agents answering a steady stream of requests (plain ``--demo``);
  the configured agents run as usual.
* ``burst``   -- a burst of compute tasks makes the auto-scaler add compute agents;
  when the burst ends it retires them.
* ``thermal`` -- compute agents at full load heat the thermal agent's model (or real
  sensors) past a deliberately low ``thermal_critical``; the thermal agent throttles
  them to hold the temperature.
* ``chaos``   -- echo agents under request traffic are SIGKILLed and hung; the
  supervisor detects it and restarts them, and requests keep being answered.
* ``learning``-- a task stream over three compute agents; one is slowed down and the
  learning dispatcher shifts work away from it.

Use :func:`prepare_config` before the orchestrator is built (it applies the
overlay) and :func:`start_demo` once it runs.  ``scenario.duration_s`` is how long
the script takes; ``None`` means it runs until the swarm stops.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import SwarmError
from engine.events import Event, Severity

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import SwarmConfig
    from engine.orchestrator import Orchestrator

log = logging.getLogger("engine.demo")

DEMO_PHASE = "demo_phase"
DEMO_ACTOR = "demo"
BUILTIN_COUNTED = ("compute", "resource", "thermal", "optimization", "fault_tolerance", "learning")


class DemoUnavailable(SwarmError):
    """The scenario is unknown, or needs agent types this build does not have."""


@dataclass
class DemoContext:
    """What a scenario script gets besides the swarm: narration and stoppable waits."""

    swarm: Orchestrator
    scenario: Scenario
    started: float = field(default_factory=time.monotonic)

    def phase(self, message: str, **data: Any) -> None:
        """Announce a phase as a ``demo_phase`` event (it shows in the event log and recordings)."""
        self.swarm.emit(Event(DEMO_PHASE, time.time(), Severity.INFO, None,
                              f"[{self.scenario.name}] {message}", {"scenario": self.scenario.name, **data}))

    async def wait(self, seconds: float) -> None:
        """Sleep for a scenario-timeline step."""
        await asyncio.sleep(seconds)

    def agents_of(self, agent_type: str) -> list[str]:
        """Ids of the agents of ``agent_type`` now."""
        return [a.id for a in self.swarm.get_system_status().agents if a.type == agent_type]


Script = Callable[["Orchestrator", DemoContext], Awaitable[None]]


@dataclass(frozen=True)
class Scenario:
    """One demo: a configuration overlay and a script.

    Attributes:
        name: what ``--demo NAME`` and ``--replay NAME`` use.
        summary: one line for ``--list-demos``.
        needs: agent types that must be available.
        overrides: dotted configuration keys applied by :func:`prepare_config`.
        script: the coroutine that drives the swarm.
        duration_s: how long the script runs (``None`` = until stopped).
    """

    name: str
    summary: str
    needs: tuple[str, ...]
    overrides: Mapping[str, Any]
    script: Script
    duration_s: float | None


def _only(**counts: int) -> dict[str, Any]:
    """Overrides that set every built-in agent count to 0 except the ones given."""
    return {f"agents.{name}.count": counts.get(name, 0) for name in BUILTIN_COUNTED}


# --- default: echo traffic ----------------------------------------------------------------

DEFAULT_RATE_HZ = 200.0
#: Compute agents compile (or load) their kernels before they serve: allow for it.
READY_TIMEOUT_S = 180.0


async def _ensure(swarm: Orchestrator, agent_type: str, count: int, prefix: str | None = None) -> list[str]:
    """At least ``count`` agents of ``agent_type`` running and ready; returns their ids."""
    have = [a for a in swarm.agent_ids() if a.startswith(prefix or agent_type)]
    while len(have) < count:
        have.append(await swarm.create_agent(agent_type, actor=DEMO_ACTOR))
    for agent_id in have:
        await swarm.wait_ready(agent_id, timeout=READY_TIMEOUT_S)
    return have


async def _traffic(swarm: Orchestrator, targets: list[str], rate_hz: float,
                   tally: dict[str, int] | None = None) -> None:
    """Requests to ``targets`` in turn at ``rate_hz``, forever (counts outcomes in ``tally``)."""
    period = 1.0 / rate_hz
    i = 0
    while True:
        target = targets[i % len(targets)]
        i += 1
        try:
            if target in swarm.agent_ids():
                if tally is not None:
                    tally["sent"] += 1
                await swarm.communicator.request(target, "demo", {"n": i}, timeout=2.0)
                if tally is not None:
                    tally["answered"] += 1
        except SwarmError as exc:
            if tally is not None:
                tally["failed"] += 1
            log.debug("demo request to %s failed: %s", target, exc)
        await asyncio.sleep(period)


async def _default(swarm: Orchestrator, ctx: DemoContext) -> None:
    echoes = await _ensure(swarm, "echo", 2)
    await _traffic(swarm, echoes, DEFAULT_RATE_HZ)


# --- burst: auto-scaling ---------------------------------------------------------------------

BURST_QUIET_S, BURST_S, BURST_CALM_S = 8.0, 30.0, 20.0
#: The threshold rule's levels for this demo (the engine's defaults are 75 % and 15 %):
#: lower, so that a burst scales on a machine that other work keeps busy too.
BURST_HIGH_PCT, BURST_LOW_PCT = 50.0, 10.0
BURST_TASK = {"kernel": "triad", "n": 500_000, "repeats": 1}
TASK_TIMEOUT_S = 30.0
#: How often an idle task stream looks whether it should send again.
STREAM_IDLE_S = 0.1


async def _task_stream(swarm: Orchestrator, window: Callable[[], int], stop: asyncio.Event,
                       payload: Mapping[str, Any], done: dict[str, int]) -> None:
    """Keep ``window()`` compute tasks in flight until ``stop`` is set."""
    inflight: set[asyncio.Task[Any]] = set()

    async def one() -> None:
        try:
            result = await swarm.submit_task("execute_workload", dict(payload), agent_type="compute",
                                             timeout=TASK_TIMEOUT_S)
        except SwarmError as exc:
            done["failed"] += 1
            log.debug("demo task failed: %s", exc)
            return
        reply = result.result if isinstance(result.result, dict) else {}
        if reply.get("ok", True):
            done["completed"] += 1
        else:
            done["failed"] += 1
            if done["failed"] == 1:
                log.warning("demo task refused by %s: %s", result.agent_id, reply.get("error"))

    try:
        while not stop.is_set():
            while len(inflight) < window():
                task = asyncio.ensure_future(one())
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            if inflight:
                await asyncio.wait(set(inflight), return_when=asyncio.FIRST_COMPLETED)
            else:  # nothing to wait for: look at the window again shortly
                await asyncio.sleep(STREAM_IDLE_S)
    finally:
        for task in inflight:
            task.cancel()


async def _burst(swarm: Orchestrator, ctx: DemoContext) -> None:
    from engine.scaling import ThresholdScaling

    await _ensure(swarm, "compute", 1)
    cfg = swarm.config
    policy = ThresholdScaling(cfg, high=BURST_HIGH_PCT, low=BURST_LOW_PCT)
    swarm.scaling_policy = policy
    ctx.phase(f"quiet: one compute agent, no tasks; every {cfg.optimization_interval:g} s the auto-scaler "
              f"adds a compute agent if they average above {policy.high:g} % CPU (and the machine is below "
              f"{cfg.performance_thresholds.cpu_critical:g} %), retires one below {policy.low:g} %")
    stop = asyncio.Event()
    done = {"completed": 0, "failed": 0}
    level = {"window": 0}
    stream = asyncio.ensure_future(_task_stream(swarm, lambda: level["window"], stop, BURST_TASK, done))
    try:
        await ctx.wait(BURST_QUIET_S)
        ctx.phase("burst: tasks flood in (two in flight per compute agent, kernel triad)")
        burst_end = time.monotonic() + BURST_S
        while time.monotonic() < burst_end:
            level["window"] = 2 * max(1, len(ctx.agents_of("compute")))
            await ctx.wait(min(1.0, burst_end - time.monotonic()))
        level["window"] = 0
        ctx.phase(f"calm: the burst is over ({done['completed']} tasks done); idle agents are retired",
                  tasks_completed=done["completed"], tasks_failed=done["failed"])
        await ctx.wait(BURST_CALM_S)
        ctx.phase(f"end: {len(ctx.agents_of('compute'))} compute agent(s) left", tasks_completed=done["completed"])
    finally:
        stop.set()
        stream.cancel()


# --- thermal: throttling ------------------------------------------------------------------------

THERMAL_CRITICAL_C = 50.0
THERMAL_S = 75.0


async def _thermal(swarm: Orchestrator, ctx: DemoContext) -> None:
    computes = await _ensure(swarm, "compute", 2)
    thermals = await _ensure(swarm, "thermal", 1)
    ctx.phase(f"heating: {len(computes)} compute agents at full load; {thermals[0]} keeps the "
              f"temperature under thermal_critical = {swarm.config.performance_thresholds.thermal_critical:g} °C "
              "(deliberately low) by throttling them")
    await ctx.wait(THERMAL_S / 2)
    status = swarm.get_system_status()
    duties = ", ".join(f"{a.id} {a.duty_cycle:.0%}" for a in status.agents if a.type == "compute")
    ctx.phase(f"holding: compute duty cycles now {duties}")
    await ctx.wait(THERMAL_S / 2)
    ctx.phase("end")


# --- chaos: crashes and recovery ---------------------------------------------------------------------

CHAOS_STEP_S = 6.0
CHAOS_HEARTBEAT_TIMEOUT_S = 2.0


def _kill(swarm: Orchestrator, agent_id: str) -> int:
    """SIGKILL the agent's process; returns the pid (0 if it had none)."""
    pid = int(swarm.agent_details(agent_id).get("pid") or 0)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return 0
    return pid


async def _chaos(swarm: Orchestrator, ctx: DemoContext) -> None:
    echoes = await _ensure(swarm, "echo", 3)
    tally = {"sent": 0, "answered": 0, "failed": 0}
    traffic = asyncio.ensure_future(_traffic(swarm, echoes, 50.0, tally))
    try:
        ctx.phase(f"steady: {len(echoes)} echo agents answering requests")
        await ctx.wait(CHAOS_STEP_S)
        pid = _kill(swarm, echoes[0])
        ctx.phase(f"SIGKILL {echoes[0]} (pid {pid})", target=echoes[0])
        await ctx.wait(CHAOS_STEP_S)
        pid = _kill(swarm, echoes[1])
        ctx.phase(f"SIGKILL {echoes[1]} (pid {pid})", target=echoes[1])
        await ctx.wait(CHAOS_STEP_S)
        await swarm.inject_hang(echoes[2], actor=DEMO_ACTOR)
        ctx.phase(f"hang {echoes[2]}: it stops heartbeating; the supervisor kills it after "
                  f"{swarm.config.supervisor.heartbeat_timeout:g} s", target=echoes[2])
        await ctx.wait(CHAOS_STEP_S + swarm.config.supervisor.heartbeat_timeout)
        for _ in range(3):
            pid = _kill(swarm, echoes[0])
            what = f"pid {pid}" if pid else "not running at this instant: nothing to kill"
            ctx.phase(f"SIGKILL {echoes[0]} again ({what}); each restart waits longer (backoff)",
                      target=echoes[0])
            await ctx.wait(CHAOS_STEP_S / 3)
        await ctx.wait(CHAOS_STEP_S)
        ctx.phase(f"end: {tally['sent']} requests sent, {tally['answered']} answered, "
                  f"{tally['failed']} failed or timed out", **tally)
    finally:
        traffic.cancel()


# --- learning: adaptive dispatch -----------------------------------------------------------------------

LEARNING_WARM_S, LEARNING_SLOW_S, LEARNING_REPORT_S = 15.0, 35.0, 5.0
LEARNING_SLOW_DUTY = 0.2
LEARNING_TASK = {"kernel": "triad", "n": 500_000, "repeats": 1}


def _shares(before: Mapping[str, int], after: Mapping[str, int]) -> tuple[str, dict[str, int]]:
    delta = {a: after.get(a, 0) - before.get(a, 0) for a in after}
    total = sum(delta.values()) or 1
    return ", ".join(f"{a} {100 * n / total:.0f}%" for a, n in sorted(delta.items())), delta


async def _learning(swarm: Orchestrator, ctx: DemoContext) -> None:
    computes = await _ensure(swarm, "compute", 3)
    await _ensure(swarm, "learning", 1)
    stop = asyncio.Event()
    done = {"completed": 0, "failed": 0}
    window = 2 * len(computes)
    stream = asyncio.ensure_future(_task_stream(swarm, lambda: window, stop, LEARNING_TASK, done))
    slowed = computes[0]

    async def report(seconds: float, label: str) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            before = dict(swarm.dispatcher.stats.per_agent)
            await ctx.wait(min(LEARNING_REPORT_S, end - time.monotonic()))
            text, delta = _shares(before, dict(swarm.dispatcher.stats.per_agent))
            ctx.phase(f"{label}: tasks in the last {LEARNING_REPORT_S:g} s: {text}", shares=delta)

    try:
        ctx.phase(f"learning: {window} tasks in flight over {len(computes)} equal compute agents "
                  f"(policy {swarm.dispatcher.policy.name})")
        await report(LEARNING_WARM_S, "equal")
        await swarm.throttle_agent(slowed, LEARNING_SLOW_DUTY, actor=DEMO_ACTOR)
        ctx.phase(f"slow-down: {slowed} throttled to {LEARNING_SLOW_DUTY:.0%} duty (each task now takes "
                  f"{1 / LEARNING_SLOW_DUTY:.0f}x as long there); the dispatcher should send it less",
                  target=slowed)
        await report(LEARNING_SLOW_S, "adapting")
        ctx.phase(f"end: {done['completed']} tasks done, {done['failed']} failed; dispatch policy now: "
                  f"{swarm.dispatcher.policy.name}", **done)
    finally:
        stop.set()
        stream.cancel()


# --- registry ------------------------------------------------------------------------------

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("default", "echo agents answering a steady stream of requests; the configured agents run too",
             ("echo",), {}, _default, None),
    Scenario("burst", "a burst of compute tasks makes the auto-scaler add compute agents, then retire them",
             ("compute",),
             {**_only(compute=1), "auto_scaling": True, "optimization_interval": 2.0,
              "agents.compute.background": False, "agents.compute.threads": 1, "max_agents": 8,
              "performance_thresholds.cpu_critical": 99.0},
             _burst, BURST_QUIET_S + BURST_S + BURST_CALM_S),
    Scenario("thermal", "compute agents at full load heat the machine (modelled without sensors) past a low "
             "thermal_critical; the thermal agent throttles them",
             ("compute", "thermal"),
             {**_only(compute=2, thermal=1), "auto_scaling": False, "agents.compute.threads": 1,
              "performance_thresholds.thermal_critical": THERMAL_CRITICAL_C},
             _thermal, THERMAL_S),
    Scenario("chaos", "echo agents are SIGKILLed and hung under request traffic; the supervisor restarts them",
             ("echo",),
             {**_only(), "auto_scaling": False,
              "supervisor.heartbeat_timeout": CHAOS_HEARTBEAT_TIMEOUT_S},
             _chaos, 5 * CHAOS_STEP_S + CHAOS_HEARTBEAT_TIMEOUT_S),
    Scenario("learning", "a task stream over three compute agents; one is slowed and the learning "
             "dispatcher shifts work away from it",
             ("compute", "learning"),
             {**_only(compute=3, learning=1), "auto_scaling": False, "load_balancing": True,
              "agents.compute.background": False, "agents.compute.threads": 1},
             _learning, LEARNING_WARM_S + LEARNING_SLOW_S),
)}
DEFAULT_SCENARIO = "default"


def bundled_recordings_dir() -> Path | None:
    """Where the bundled demo recordings are installed (``swarm_tui/demos``), or ``None``.

    Found with ``importlib.util.find_spec``, which locates the ``swarm_tui`` package
    without importing it: the engine never loads UI code.
    """
    try:
        spec = importlib.util.find_spec("swarm_tui")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "demos"
    return path if path.is_dir() else None


def bundled_recordings() -> dict[str, Path]:
    """Bundled demo recordings by name (the file name without ``.swrec``)."""
    from engine.recording import FILE_SUFFIX

    folder = bundled_recordings_dir()
    if folder is None:
        return {}
    return {p.name[: -len(FILE_SUFFIX)]: p for p in sorted(folder.glob(f"*{FILE_SUFFIX}")) if p.is_file()}


def scenario_names() -> list[str]:
    """Every scenario name, ``default`` first."""
    return [DEFAULT_SCENARIO] + sorted(n for n in SCENARIOS if n != DEFAULT_SCENARIO)


def get_scenario(name: str | bool | None) -> Scenario:
    """The scenario called ``name`` (``True``/``None`` = the default).

    Raises:
        DemoUnavailable: no such scenario (the message lists them).
    """
    key = DEFAULT_SCENARIO if name in (None, True, "") else str(name)
    try:
        return SCENARIOS[key]
    except KeyError:
        raise DemoUnavailable(f"unknown demo {key!r}; choose one of {', '.join(scenario_names())}") from None


def check_available(scenario: Scenario, available_types: list[str]) -> None:
    """Raise :class:`DemoUnavailable` if the scenario needs an agent type this build lacks."""
    missing = [t for t in scenario.needs if t not in available_types]
    if missing:
        raise DemoUnavailable(f"demo {scenario.name!r} needs the agent type(s) {', '.join(missing)}, "
                              "which this installation does not have")


def prepare_config(config: SwarmConfig, scenario: str | bool | None) -> SwarmConfig:
    """``config`` with the scenario's overlay applied (validated like a file)."""
    overrides = get_scenario(scenario).overrides
    return config.with_overrides(**overrides) if overrides else config


async def start_demo(swarm: Orchestrator, scenario: str | bool | None = DEFAULT_SCENARIO) -> asyncio.Task[None]:
    """Start the scenario's script on the running swarm; returns its task.

    The task ends when the script does (never, for ``default``) and is cancelled when
    the swarm stops.  Call :func:`prepare_config` on the configuration first, or the
    scenario runs with whatever agents and thresholds the swarm has.

    Raises:
        DemoUnavailable: unknown scenario, or an agent type it needs is missing.
    """
    chosen = get_scenario(scenario)
    check_available(chosen, swarm.available_types())
    ctx = DemoContext(swarm, chosen)
    task = asyncio.ensure_future(_run_script(chosen, swarm, ctx))
    swarm.add_event_handler("swarm_stopped", lambda _e: task.cancel())
    return task


async def stop_demo(task: asyncio.Task[None] | None) -> None:
    """Cancel a demo's task and wait until it has really ended.

    It cancels again while the task runs on: a cancellation can be lost before
    Python 3.12 (``asyncio.wait_for`` inside the script returns a result that arrived
    at the same moment instead of raising), and a script that is not cancelled keeps
    sending requests for ever.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait((task,), timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        log.error("the demo failed", exc_info=task.exception())


async def _run_script(scenario: Scenario, swarm: Orchestrator, ctx: DemoContext) -> None:
    try:
        await scenario.script(swarm, ctx)
    except asyncio.CancelledError:
        raise
    except SwarmError as exc:
        log.warning("demo %r stopped: %s", scenario.name, exc)
        ctx.phase(f"stopped: {exc}")
