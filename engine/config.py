"""Typed, validated configuration: ``swarm.toml`` (or a JSON file with the same keys).

One frozen dataclass per TOML table; every field is declared with
:func:`~engine._config_schema.setting`, which holds its default, its documentation
and its allowed values in one place.  Loading and construction in code check the same
rules, and :func:`render_reference` / :func:`render_default_toml` produce
``docs/CONFIG.md`` and the shipped ``swarm.toml`` from those declarations.

Errors: loading collects *every* problem of a file and raises one
:class:`~engine.errors.ConfigError` whose ``key`` is the first problem's key and whose
message lists the others; :func:`validate` returns them as a list instead.

Usage::

    cfg = load_config("swarm.toml")      # or None for the built-in defaults
    cfg.supervisor.strategy, cfg.agents["compute"].count
    cfg.with_overrides(**{"supervisor.strategy": "one_for_all"})

``python -m engine.config check FILE | reference | toml`` checks a file or prints
the generated reference / default file.

This module is longer than most because it is mostly declarations whose doc strings
are the user documentation; the machinery (checking, reading, rendering) lives in
:mod:`engine._config_schema`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine._config_schema import (
    FrozenDict,
    Problem,
    Section,
    build,
    check_host,
    check_import_path,
    check_modules,
    check_name,
    check_path,
    check_power_of_two,
    apply_overrides,
    read_table,
    render_markdown,
    render_toml,
    section,
    setting,
    show,
    suggest,
    to_error,
    to_plain,
)
from engine.errors import ConfigError

__all__ = [
    "AclConfig", "AgentConfig", "AgentsConfig", "BUILTIN_AGENT_TYPES", "BusConfig",
    "ComputeAgentConfig", "CustomAgentConfig", "FaultToleranceAgentConfig",
    "LearningAgentConfig", "OptimizationAgentConfig", "PerformanceThresholds",
    "ResourceAgentConfig", "SecurityConfig", "SupervisorConfig", "SwarmConfig",
    "ThermalAgentConfig", "config_from_mapping", "config_to_dict", "default_config",
    "load_config", "render_default_toml", "render_reference", "validate",
]

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
RESTART_POLICIES = ("permanent", "transient", "temporary")
COMPUTE_KERNELS = ("triad", "jacobi", "matmul", "montecarlo", "nbody")
"""The names of ``engine.kernels.KERNELS`` (a test keeps the two in step)."""
RESERVED_TYPE_NAMES = ("orchestrator", "*")
"""Names an ACL may use besides agent types; no custom agent may take them."""


# --- sections -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PerformanceThresholds(Section):
    """Levels at which the swarm raises alerts and its control loops push back."""

    cpu_critical: float = setting(
        90.0, "Whole-machine CPU utilisation above which a performance alert is raised "
        "and auto-scaling stops adding agents.", unit="%", lo=1.0, hi=100.0)
    memory_critical: float = setting(
        90.0, "Memory in use, as a share of total RAM, above which a performance alert is "
        "raised and auto-scaling stops adding agents.", unit="%", lo=1.0, hi=100.0)
    thermal_critical: float = setting(
        85.0, "Temperature the thermal agent keeps the hottest sensor (or its model) "
        "under by throttling compute agents.", unit="°C", lo=20.0, hi=150.0)


@dataclass(frozen=True, kw_only=True)
class SupervisorConfig(Section):
    """How crashed or hung agents are restarted and how agents are stopped.

    Restart delay for the n-th consecutive restart of an agent:
    ``min(backoff_max, backoff_initial * backoff_multiplier ** (n - 1))``, then
    multiplied by a random factor in ``1 +/- backoff_jitter``.
    """

    strategy: str = setting(
        "one_for_one", "Which agents restart when one fails: one_for_one restarts only "
        "the failed agent; one_for_all restarts every agent; rest_for_one restarts the "
        "failed agent and every agent started after it.", choices=STRATEGIES)
    max_restarts: int = setting(
        5, "Restart intensity: when more than max_restarts restarts happen within "
        "max_seconds, the supervisor gives up and leaves the agent failed. 0 = never "
        "restart.", lo=0, hi=1000)
    max_seconds: float = setting(
        30.0, "The time window of the restart intensity (see max_restarts).",
        unit="s", lo=0.1, hi=86400.0)
    backoff_initial: float = setting(
        0.01, "Delay before the first restart of a failed agent.", unit="s", lo=0.0, hi=60.0)
    backoff_max: float = setting(
        2.0, "Longest delay between restarts; at least backoff_initial.",
        unit="s", lo=0.0, hi=600.0)
    backoff_multiplier: float = setting(
        2.0, "Factor by which the delay grows with each consecutive restart.", lo=1.0, hi=10.0)
    backoff_jitter: float = setting(
        0.2, "Random spread of each delay, as a fraction of it (0.2 = +/-20 %), so agents "
        "that failed together do not restart in lockstep.", lo=0.0, hi=1.0)
    heartbeat_interval: float = setting(
        0.2, "How often each agent writes its heartbeat to the status table.",
        unit="s", lo=0.01, hi=60.0)
    heartbeat_timeout: float = setting(
        5.0, "An agent whose heartbeat is older than this is hung: it is killed and "
        "restarted. Must be greater than heartbeat_interval.", unit="s", lo=0.05, hi=3600.0)
    startup_timeout: float = setting(
        30.0, "How long a newly started agent may take to write its first heartbeat "
        "(imports, kernel compilation) before it counts as hung; heartbeat_timeout "
        "applies if it is longer.", unit="s", lo=0.1, hi=3600.0)
    shutdown_timeout: float = setting(
        3.0, "On stop, how long an agent may take to finish cleanly before it gets SIGTERM.",
        unit="s", lo=0.0, hi=600.0)
    kill_timeout: float = setting(
        2.0, "How long after SIGTERM an agent may take to exit before it gets SIGKILL.",
        unit="s", lo=0.0, hi=600.0)
    checkpoint_interval: float = setting(
        5.0, "How often agents that implement snapshot() are checkpointed, so a restarted "
        "agent resumes from recent state. 0 = only on a clean stop.",
        unit="s", lo=0.0, hi=86400.0)

    def cross_checks(self) -> Iterator[Problem]:
        if self.heartbeat_timeout <= self.heartbeat_interval:
            yield Problem("heartbeat_timeout", f"{show(self.heartbeat_timeout)} must be "
                          f"greater than heartbeat_interval ({show(self.heartbeat_interval)})")
        if self.backoff_max < self.backoff_initial:
            yield Problem("backoff_max", f"{show(self.backoff_max)} must be at least "
                          f"backoff_initial ({show(self.backoff_initial)})")


@dataclass(frozen=True, kw_only=True)
class BusConfig(Section):
    """The shared-memory message bus between agents."""

    spin_us: int = setting(
        50, "How long a consumer with nothing to read spins before it sleeps on its "
        "doorbell: lower saves CPU, higher lowers latency.", unit="µs", lo=0, hi=100000)
    send_timeout: float = setting(
        1.0, "How long a blocking send waits for room in a full channel before it raises "
        "ChannelFull. 0 = fail at once.", unit="s", lo=0.0, hi=600.0)
    request_timeout: float = setting(
        5.0, "How long a request waits for its reply before it raises RequestTimeout.",
        unit="s", lo=0.001, hi=3600.0)


def _count(default: int) -> Any:
    return setting(default, "How many agents of this type the swarm starts with.",
                   lo=0, hi=256)


def _cycle_interval(default: float) -> Any:
    return setting(default, "Time between two calls of the agent's execute_cycle().",
                   unit="s", lo=0.001, hi=3600.0)


@dataclass(frozen=True, kw_only=True)
class AgentConfig(Section):
    """Keys every agent type has, built-in or custom."""

    count: int = _count(1)
    restart: str = setting(
        "permanent", "When a stopped agent is restarted: permanent = always; transient = "
        "only after an abnormal exit (crash, non-zero exit, hang); temporary = never.",
        choices=RESTART_POLICIES)
    priority: int = setting(
        0, "Nice value of the agent's process, as in nice(1): lower = more CPU time. "
        "Values below 0 usually need root or CAP_SYS_NICE.", lo=-20, hi=19)
    cycle_interval: float = _cycle_interval(1.0)
    rss_limit_mb: int = setting(
        0, "Resident memory an agent may use; above it the agent is stopped and handled "
        "per its restart policy. 0 = no limit.", unit="MiB", lo=0, hi=1048576)
    cpu_time_limit_s: int = setting(
        0, "CPU time an agent process may consume in total (RLIMIT_CPU). 0 = no limit.",
        unit="s", lo=0, hi=31536000)
    open_files_limit: int = setting(
        0, "Most file descriptors an agent may hold open (RLIMIT_NOFILE). 0 = inherit.",
        lo=0, hi=1048576)


@dataclass(frozen=True, kw_only=True)
class ComputeAgentConfig(AgentConfig):
    """Runs numba-compiled numeric kernels and reports achieved GFLOP/s and GB/s."""

    count: int = _count(2)
    cycle_interval: float = _cycle_interval(0.05)
    kernel: str = setting(
        "triad", "The workload: triad (STREAM, memory-bandwidth bound), jacobi (2-D "
        "stencil), matmul (dense float64), montecarlo and nbody (compute bound).",
        choices=COMPUTE_KERNELS)
    size: int = setting(
        1_000_000, "Problem size n given to the kernel: elements per array for triad, "
        "samples for montecarlo, bodies for nbody, the side of the square grid or "
        "matrix for jacobi and matmul. The default suits triad; choose it per kernel.",
        lo=1, hi=2**30)
    threads: int = setting(0, "Threads per kernel call. 0 = numba's default (one per core).",
                           lo=0, hi=1024)
    background: bool = setting(
        True, "Run the configured kernel in every cycle while no requests are waiting, so "
        "the agent shows load (and the thermal agent has something to throttle). Off = "
        "compute only on execute_workload requests.")
    slice_s: float = setting(
        0.1, "Longest compute time of one background cycle: the kernel is repeated until this "
        "much run time is spent. Short slices keep throttling smooth and requests prompt; a "
        "size whose single run is longer is halved at start until one run fits.",
        unit="s", lo=0.001, hi=10.0)
    use_cuda: bool = setting(
        True, "Run triad and jacobi on an NVIDIA GPU through numba.cuda when one is found. "
        "Without a GPU the agent runs on the CPU and publishes why.")


@dataclass(frozen=True, kw_only=True)
class ResourceAgentConfig(AgentConfig):
    """Samples CPU, GPU, memory and I/O and forecasts load for the auto-scaler."""

    forecast_alpha: float = setting(
        0.5, "Level smoothing of the Holt forecast of next-interval CPU load (1 = follow the "
        "last sample).", lo=0.01, hi=1.0)
    forecast_beta: float = setting(
        0.2, "Trend smoothing of the Holt forecast (0 = no trend).", lo=0.0, hi=1.0)
    forecast_phi: float = setting(
        0.9, "Trend damping of the Holt forecast (1 = undamped; lower keeps a burst from "
        "extrapolating far).", lo=0.01, hi=1.0)
    alert_hysteresis_pct: float = setting(
        5.0, "After a performance alert, the value must fall this far below its critical "
        "level before the next alert for it can be raised (no alert storms).",
        unit="%", lo=0.0, hi=50.0)


@dataclass(frozen=True, kw_only=True)
class ThermalAgentConfig(AgentConfig):
    """Predicts temperature and throttles compute agents to stay under the limits.

    Without real sensors it uses a labelled first-order model: power
    ``P = idle_watts + watts_per_util * cpu_percent``, temperature
    ``C dT/dt = P - (T - ambient_c) / R``, so at steady state ``T = ambient_c + R * P``.
    """

    cycle_interval: float = _cycle_interval(0.5)
    ambient_c: float = setting(35.0, "Ambient temperature of the model.",
                               unit="°C", lo=-40.0, hi=80.0)
    resistance_c_per_w: float = setting(
        0.5, "Model thermal resistance from die to ambient (R).", unit="°C/W", lo=0.001, hi=100.0)
    capacitance_j_per_c: float = setting(
        40.0, "Model heat capacity (C): the temperature follows power with time constant "
        "R*C seconds.", unit="J/°C", lo=0.001, hi=1e6)
    watts_per_util: float = setting(
        0.65, "Model power per percent of whole-machine CPU utilisation.",
        unit="W/%", lo=0.0, hi=100.0)
    idle_watts: float = setting(10.0, "Model power at 0 % CPU.", unit="W", lo=0.0, hi=10000.0)
    horizon_s: float = setting(
        10.0, "How far ahead the controller predicts temperature; it throttles on the "
        "prediction, not only on the present value.", unit="s", lo=0.0, hi=3600.0)
    emergency_c: float = setting(
        95.0, "Temperature at which compute agents are paused outright rather than "
        "throttled. Must be above performance_thresholds.thermal_critical.",
        unit="°C", lo=20.0, hi=200.0)
    power_budget_w: float = setting(
        0.0, "Package power (RAPL where readable, else the model) the controller keeps "
        "the machine under. 0 = no power budget.", unit="W", lo=0.0, hi=100000.0)
    kp: float = setting(0.05, "Proportional gain of the PI throttle controller (duty-cycle "
                        "fraction per °C over the target).", lo=0.0, hi=100.0)
    ki: float = setting(0.01, "Integral gain of the PI throttle controller (duty-cycle "
                        "fraction per °C-second over the target).", lo=0.0, hi=100.0)
    margin_c: float = setting(
        2.0, "The controller's target is this far below performance_thresholds."
        "thermal_critical.", unit="°C", lo=0.0, hi=50.0)
    min_duty: float = setting(
        0.1, "Lowest duty cycle the controller throttles compute agents to (below it only "
        "the emergency pause stops them).", lo=0.01, hi=0.99)
    power_kp: float = setting(
        0.005, "Proportional gain of the power-budget PI controller (duty-cycle fraction per "
        "watt over power_budget_w).", lo=0.0, hi=100.0)
    power_ki: float = setting(
        0.01, "Integral gain of the power-budget PI controller (duty-cycle fraction per "
        "watt-second over power_budget_w).", lo=0.0, hi=100.0)
    event_step: float = setting(
        0.1, "Smallest change of the duty cycle that is reported by a new thermal_throttle "
        "event (at most one every 2 s; emergencies always report).", lo=0.01, hi=1.0)


def _check_kernels(value: tuple[str, ...]) -> str | None:
    for name in value:
        if name not in COMPUTE_KERNELS:
            return f"{show(name)} is not a kernel; choose from {', '.join(COMPUTE_KERNELS)}"
    return None


@dataclass(frozen=True, kw_only=True)
class OptimizationAgentConfig(AgentConfig):
    """Autotunes compute kernels (chunk size, threads) by measuring them; pins agents.

    A tuning session spends at most ``budget_fraction * optimization_interval`` seconds
    measuring, then rests so that measuring takes no more than that share of the time.
    Results are stored per machine and kernel, so the next start applies them at once.
    """

    cycle_interval: float = _cycle_interval(5.0)
    kernels: tuple[str, ...] = setting(
        (), "Kernels to tune besides the compute agents' own (agents.compute.kernel, tuned at "
        "agents.compute.size).", check=_check_kernels, allowed=" | ".join(COMPUTE_KERNELS))
    size: int = setting(
        0, "Problem size to tune at. 0 = agents.compute.size for the compute kernel and a "
        "size whose runs take milliseconds for the others.", lo=0, hi=2**30)
    budget_fraction: float = setting(
        0.2, "Share of optimization_interval a tuning session may spend measuring kernels "
        "(it then rests so that tuning takes at most this share of the time).", lo=0.01, hi=0.9)
    pin_agents: bool = setting(
        True, "Pin compute agents to disjoint cores and monitoring agents to a housekeeping "
        "core when one is left (the plan is shown in the status either way).")
    store_dir: str = setting(
        "", "Directory of the per-machine tuning results. Empty = $SWARM_TUNING_DIR or "
        "~/.cache/swarm-tui/tuning.", check=check_path, allowed="a path, or empty")
    retune: bool = setting(
        False, "Search again even when a stored result exists for this machine and kernel.")


@dataclass(frozen=True, kw_only=True)
class FaultToleranceAgentConfig(AgentConfig):
    """Streaming anomaly detection and failure prediction over telemetry."""

    cycle_interval: float = _cycle_interval(0.5)
    # --- fault-tolerance agent: detection, prediction, recovery (docs/ADAPTIVE.md) ---
    table_bits: int = setting(
        8, "Size of each series' sentinel context table as a power of two (8 = 256 slots, "
        "about 6 kB of state per series; NAB standard score 60.1 at 8, 60.5 at 14).",
        lo=4, hi=16)
    anomaly_threshold: float = setting(
        0.5, "Detector score at or above which an anomaly_detected event is raised (0.5 "
        "means a tail probability of 1e-5).", lo=0.01, hi=1.0)
    holdoff_s: float = setting(
        60.0, "After an anomaly or failure-prediction event for a series, further events "
        "for that series wait this long (a prediction whose time halves is reported at "
        "once).", unit="s", lo=0.0, hi=86400.0)
    max_events_per_min: int = setting(
        20, "Most anomaly_detected events per minute over all series (storm guard; "
        "predictions and recovery actions are never suppressed).", lo=1, hi=10000)
    trend_halflife_s: float = setting(
        60.0, "Half-life of the weights of the trend lines behind failure predictions: "
        "shorter reacts faster to a change of growth rate.", unit="s", lo=1.0, hi=86400.0)
    prediction_horizon_s: float = setting(
        900.0, "Failures predicted further ahead than this are not reported.",
        unit="s", lo=1.0, hi=604800.0)
    actions: bool = setting(
        True, "Take recovery actions (restart, quarantine, release). Off = detect and "
        "predict only. No actions are taken either when fault_tolerance = false.")
    restart_lead_s: float = setting(
        30.0, "Restart an agent whose RSS is predicted to reach its rss_limit_mb (or machine "
        "memory to run out) within this time, before the supervisor kills it at the limit.",
        unit="s", lo=0.0, hi=86400.0)
    drain_lead_s: float = setting(
        60.0, "A compute agent predicted to fail within this time is quarantined first: no "
        "new work is dispatched to it while it finishes its queue. At least restart_lead_s.",
        unit="s", lo=0.0, hi=86400.0)
    hang_fraction: float = setting(
        0.5, "Restart a running agent gracefully when its heartbeat is older than this "
        "fraction of supervisor.heartbeat_timeout (and twice its longest recent cycle) on "
        "two observations in a row.", lo=0.05, hi=0.95)
    crash_loop_restarts: int = setting(
        3, "Crashes within crash_loop_window_s after which an agent is quarantined (paused "
        "and taken out of dispatch until released).", lo=1, hi=1000)
    crash_loop_window_s: float = setting(
        300.0, "The time window of crash_loop_restarts.", unit="s", lo=1.0, hi=86400.0)
    max_restarts: int = setting(
        3, "Most restarts this agent may request for one agent within restart_window_s; an "
        "agent that needs more is quarantined instead.", lo=0, hi=1000)
    restart_window_s: float = setting(
        600.0, "The time window of max_restarts.", unit="s", lo=1.0, hi=86400.0)
    state_budget_kb: int = setting(
        96, "Most detector state kept in the agent's checkpoint (compressed); series beyond "
        "it start learning afresh after a restart. Capped at half of channel_size.",
        unit="KiB", lo=1, hi=65536)
    snapshot_interval_s: float = setting(
        30.0, "Shortest time between two checkpoints of the detector state.",
        unit="s", lo=0.0, hi=86400.0)

    def cross_checks(self) -> Iterator[Problem]:
        if self.restart_lead_s > self.drain_lead_s:
            yield Problem("restart_lead_s", f"{show(self.restart_lead_s)} must not exceed "
                          f"drain_lead_s ({show(self.drain_lead_s)})")


@dataclass(frozen=True, kw_only=True)
class LearningAgentConfig(AgentConfig):
    """Learns the swarm's choices (task placement, scaling) from measured reward.

    With ``load_balancing = true`` the orchestrator sends it every completed task's
    measured service time and dispatches by the estimates it publishes.
    """

    cycle_interval: float = _cycle_interval(0.5)
    discount: float = setting(
        0.98, "Forgetting factor per observed task of a kind: the service-time estimates "
        "remember about 1 / (1 - discount) tasks, so they follow agents that slow down.",
        lo=0.5, hi=1.0)
    hindsight: int = setting(
        32, "Later tasks of the same kind to wait for before a decision's regret is scored "
        "against the best agent in hindsight.", lo=1, hi=100000)
    publish_interval: float = setting(
        0.1, "Least time between two publications of the learned model to the orchestrator.",
        unit="s", lo=0.01, hi=60.0)


@dataclass(frozen=True, kw_only=True)
class AgentsConfig(Section, Mapping[str, AgentConfig]):
    """One table per built-in agent type; also a read-only mapping type name -> section."""

    compute: ComputeAgentConfig = section(ComputeAgentConfig, "Compute agents.")
    resource: ResourceAgentConfig = section(ResourceAgentConfig, "Resource agents.")
    thermal: ThermalAgentConfig = section(ThermalAgentConfig, "Thermal agents.")
    optimization: OptimizationAgentConfig = section(OptimizationAgentConfig,
                                                    "Optimization agents.")
    fault_tolerance: FaultToleranceAgentConfig = section(FaultToleranceAgentConfig,
                                                         "Fault-tolerance agents.")
    learning: LearningAgentConfig = section(LearningAgentConfig, "Learning agents.")

    def __getitem__(self, agent_type: str) -> AgentConfig:
        if agent_type not in BUILTIN_AGENT_TYPES:
            raise KeyError(agent_type)
        return getattr(self, agent_type)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(BUILTIN_AGENT_TYPES)

    def __len__(self) -> int:
        return len(BUILTIN_AGENT_TYPES)


BUILTIN_AGENT_TYPES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AgentsConfig))


@dataclass(frozen=True, kw_only=True)
class CustomAgentConfig(AgentConfig):
    """A user-defined agent type, a ``BaseAgent`` subclass loaded by import path."""

    import_path: str = setting(
        doc="Where the agent class lives, as 'package.module:ClassName'. The module "
        "must be under one of security.allowed_agent_modules.", check=check_import_path)
    count: int = setting(0, "How many agents of this type the swarm starts with.", lo=0, hi=256)
    options: Mapping[str, Any] = setting(
        FrozenDict(), "Free-form table passed to the agent's constructor as keyword arguments.")

    def option_kwargs(self) -> dict[str, Any]:
        """:attr:`options` as plain, mutable dicts and lists, ready to pass as ``**kwargs``."""
        kwargs: dict[str, Any] = to_plain(self.options)
        return kwargs

    @property
    def module(self) -> str:
        """The module part of :attr:`import_path`."""
        return self.import_path.partition(":")[0]


def _may(table: Mapping[str, tuple[str, ...]], source: str, target: str) -> bool:
    if not table:
        return True
    targets = table.get(source, ()) + table.get("*", ())
    return "*" in targets or target in targets


@dataclass(frozen=True, kw_only=True)
class AclConfig(Section):
    """Which agent types may message or control which (optional).

    Each table maps a sender type to the list of types it may address. ``"*"`` as a
    key matches every sender and in a list every recipient; ``"orchestrator"`` names
    the orchestrator. An empty table allows everything; otherwise a sender that no
    key matches may address no one.
    """

    send: Mapping[str, tuple[str, ...]] = setting(
        FrozenDict(), "Who may send data messages to whom: type -> list of types.",
        example={"compute": ["learning", "orchestrator"], "*": ["orchestrator"]})
    control: Mapping[str, tuple[str, ...]] = setting(
        FrozenDict(), "Who may send control commands (pause, stop, set priority) to whom: "
        "type -> list of types. The orchestrator itself is never restricted.")

    def may_send(self, sender: str, recipient: str) -> bool:
        """Whether an agent of type ``sender`` may send a message to ``recipient``."""
        return _may(self.send, sender, recipient)

    def may_control(self, sender: str, recipient: str) -> bool:
        """Whether an agent of type ``sender`` may send control commands to ``recipient``."""
        return sender == "orchestrator" or _may(self.control, sender, recipient)


@dataclass(frozen=True, kw_only=True)
class SecurityConfig(Section):
    """What code may run as an agent and how the bus is protected."""

    allowed_agent_modules: tuple[str, ...] = setting(
        (), "Module prefixes custom agents may be imported from ('mypkg' allows 'mypkg' "
        "and 'mypkg.agents'). Empty = no custom agents.", check=check_modules,
        allowed="module names")
    authenticate: bool = setting(
        False, "Authenticate bus messages with a per-swarm secret key (keyed BLAKE2b MAC), so only "
        "processes started by this swarm can send.")
    encrypt: bool = setting(
        False, "Encrypt message payloads on the bus. Segments are already readable by "
        "their owner only, so this guards against little on a single-user machine.")
    acl: AclConfig = section(AclConfig, "Which agent types may message or control which.")


@dataclass(frozen=True, kw_only=True)
class SwarmConfig(Section):
    """The whole configuration: the top-level keys of ``swarm.toml``."""

    name: str = setting("swarm", "Name of the swarm, shown in the UI and logs and used as "
                        "a label on exported metrics.", check=check_name,
                        allowed="1..40 characters from [a-zA-Z0-9_-]")
    max_agents: int = setting(
        32, "Most agents that may run at once, built-in and custom; the counts of all "
        "agent tables must add up to no more. Sizes the shared-memory tables, so it is "
        "fixed while the swarm runs.", lo=1, hi=256)
    channel_size: int = setting(
        262144, "Size of each message-lane ring buffer. A message larger than a lane can "
        "hold is refused with MessageTooLarge.", unit="bytes", lo=4096, hi=67108864,
        check=check_power_of_two, allowed="a power of two")
    monitoring_interval: float = setting(
        1.0, "Time between two telemetry samples of the machine.", unit="s", lo=0.05, hi=3600.0)
    optimization_interval: float = setting(
        30.0, "Time between two runs of the control loops that rebalance, scale and tune.",
        unit="s", lo=1.0, hi=86400.0)
    fault_tolerance: bool = setting(
        True, "Restart crashed or hung agents as [supervisor] says; off = a dead agent "
        "stays dead.")
    load_balancing: bool = setting(True, "Give work to the least-loaded agent of a type.")
    auto_scaling: bool = setting(
        True, "Let the orchestrator add and remove compute agents (within max_agents) from "
        "the measured and forecast load.")
    metrics_port: int = setting(
        0, "TCP port of the Prometheus /metrics endpoint. 0 = off.", lo=0, hi=65535)
    metrics_host: str = setting(
        "127.0.0.1", "Address the /metrics endpoint listens on; the default accepts local "
        "connections only.", check=check_host, allowed="a host name or IP address")
    audit_log: str = setting(
        "", "File every spawn, kill, restart and reprioritisation is appended to as JSON "
        "lines (relative to the working directory). Empty = off.", check=check_path,
        allowed="a path, or empty")
    performance_thresholds: PerformanceThresholds = section(
        PerformanceThresholds, "Alert and push-back levels.")
    supervisor: SupervisorConfig = section(SupervisorConfig, "Restart and stop policy.")
    bus: BusConfig = section(BusConfig, "Message bus tuning.")
    agents: AgentsConfig = section(AgentsConfig, "Built-in agent types.")
    custom_agents: Mapping[str, CustomAgentConfig] = setting(
        FrozenDict(), "User-defined agent types: one table per type, named after the type "
        "(lower-case letters, digits and '_'; not a built-in type's name).",
        example={"my_agent": {"import_path": "mypkg.agents:MyAgent", "count": 1,
                              "options": {"depth": 3}}})
    security: SecurityConfig = section(SecurityConfig, "Custom-agent and bus security.")

    def agent_section(self, agent_type: str) -> AgentConfig | None:
        """The section configuring ``agent_type`` (custom first, then built-in), or ``None``."""
        section = self.custom_agents.get(agent_type)
        if section is None:
            try:
                return self.agents[agent_type]
            except KeyError:
                return None
        return section

    def agent_counts(self) -> dict[str, int]:
        """Initial agent count per type, built-in then custom."""
        counts = {name: agent.count for name, agent in self.agents.items()}
        counts.update((name, agent.count) for name, agent in self.custom_agents.items())
        return counts

    def with_overrides(self, **overrides: Any) -> SwarmConfig:
        """A copy with some keys replaced, validated exactly like a file.

        Keys are top-level names or dotted paths, e.g.
        ``cfg.with_overrides(max_agents=64, **{"supervisor.strategy": "one_for_all"})``;
        a table given for a table is merged into it key by key.

        Raises:
            ConfigError: naming the bad key, as for a file (source ``<overrides>``).
        """
        data = apply_overrides(config_to_dict(self), overrides, "<overrides>")
        return config_from_mapping(data, source="<overrides>")

    def cross_checks(self) -> Iterator[Problem]:
        counts = self.agent_counts()
        if sum(counts.values()) > self.max_agents:
            listed = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            yield Problem("max_agents", f"{self.max_agents} is less than the sum of the "
                          f"agent counts ({sum(counts.values())}: {listed}); raise "
                          f"max_agents or lower the counts")
        thermal = self.agents.thermal
        if thermal.emergency_c <= self.performance_thresholds.thermal_critical:
            yield Problem("agents.thermal.emergency_c", f"{show(thermal.emergency_c)} must "
                          f"be greater than performance_thresholds.thermal_critical "
                          f"({show(self.performance_thresholds.thermal_critical)})")
        yield from self._custom_agent_problems()
        known = set(BUILTIN_AGENT_TYPES) | set(self.custom_agents) | set(RESERVED_TYPE_NAMES)
        for table in ("send", "control"):
            for sender, targets in getattr(self.security.acl, table).items():
                for name in (sender, *targets):
                    if name not in known:
                        yield Problem(f"security.acl.{table}.{sender}", f"unknown agent "
                                      f"type {name!r}; {suggest(name, known, 'types')}")

    def _custom_agent_problems(self) -> Iterator[Problem]:
        allowed = self.security.allowed_agent_modules
        for name, agent in self.custom_agents.items():
            key = f"custom_agents.{name}"
            if name in BUILTIN_AGENT_TYPES or name in RESERVED_TYPE_NAMES:
                yield Problem(key, f"{name!r} is the name of a built-in type; choose another")
            elif not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
                yield Problem(key, f"{name!r} is not a valid agent type name; use 1..40 "
                              "lower-case letters, digits and '_', starting with a letter")
            module = agent.module
            if not any(module == p or module.startswith(p + ".") for p in allowed):
                yield Problem(f"{key}.import_path", f"module {module!r} is not under "
                              f"security.allowed_agent_modules (now: "
                              f"{', '.join(allowed) or 'empty'}); add its package there")


# --- public functions -------------------------------------------------------------------


def default_config() -> SwarmConfig:
    """The built-in defaults; equal to loading the shipped ``swarm.toml``."""
    return SwarmConfig()


def config_from_mapping(data: Mapping[str, Any], source: str = "<mapping>") -> SwarmConfig:
    """Validate a parsed table (as from TOML or JSON) into a :class:`SwarmConfig`.

    Missing keys take their defaults.  ``source`` names the origin in errors.

    Raises:
        ConfigError: for the first problem found; its message lists the rest.
    """
    found: list[Problem] = []
    result = _build(data, found)
    if result is None:
        raise to_error(found, source)
    return result


def validate(data: Mapping[str, Any], source: str = "<mapping>") -> list[ConfigError]:
    """Every problem of a parsed table, one :class:`ConfigError` each (empty if valid)."""
    found: list[Problem] = []
    _build(data, found)
    return [ConfigError(p.message, path=source, key=p.key or None) for p in found]


def _build(data: Any, found: list[Problem]) -> SwarmConfig | None:
    if not isinstance(data, Mapping):
        found.append(Problem("", f"the configuration must be a table, got "
                                 f"{type(data).__name__}"))
        return None
    return build(SwarmConfig, data, "", found)


def load_config(path: str | os.PathLike[str] | None) -> SwarmConfig:
    """Load and validate a configuration file; ``None`` gives :func:`default_config`.

    A ``.json`` file is read as JSON, anything else as TOML.

    Raises:
        ConfigError: the file is unreadable (with the OS reason), has a syntax error
            (with its ``line``) or holds bad values (with the dotted ``key``).
    """
    if path is None:
        return default_config()
    where = os.fsdecode(path)
    return config_from_mapping(read_table(where), source=where)


def config_to_dict(cfg: SwarmConfig) -> dict[str, Any]:
    """Plain dicts and lists, ready for TOML or JSON; ``config_from_mapping`` inverts it."""
    plain: dict[str, Any] = to_plain(cfg)
    return plain


_TOML_HEADER = """\
swarm.toml -- configuration of a swarm-tui swarm.

Every key is shown with its built-in default; delete any you do not change. Unknown
keys, wrong types and out-of-range values are errors that name the key. A JSON file
with the same keys works too. Reference: docs/CONFIG.md.
Generated by `python -m engine.config toml`; edit engine/config.py, not this file's
comments."""

_REFERENCE_INTRO = """\
# Configuration reference

<!-- Generated by `python -m engine.config reference > docs/CONFIG.md`. Edit the
declarations in engine/config.py, not this file. -->

The swarm reads `swarm.toml` (TOML; `tomllib`, or `tomli` on Python 3.10) or a `.json`
file with the same keys. Every key is optional: a missing key takes the default shown
here, and the shipped `swarm.toml` lists exactly these defaults. Check a file with
`python -m engine.config check FILE`.

**Validation.** Nothing starts on a bad configuration. Unknown keys (at any depth, with
the closest known key suggested), wrong types (`true` is not an integer; an integer is
fine where a float is expected), out-of-range values, values not among the choices,
malformed `import_path`s, custom agents from modules outside
`security.allowed_agent_modules`, agent counts adding up to more than `max_agents`,
`heartbeat_timeout <= heartbeat_interval`, `backoff_max < backoff_initial`,
`agents.thermal.emergency_c <= performance_thresholds.thermal_critical` and ACLs
naming unknown agent types are all errors. Loading collects **every** problem and
raises one `ConfigError` for the first (its `key` attribute is the dotted key path),
with the others listed in its message; `engine.config.validate(data)` returns them all
as a list. Syntax errors carry the `line`; an unreadable file, the OS reason:

```
swarm.toml: supervisor.strategy: 'one_for_some' is not allowed; choose one of one_for_one, one_for_all, rest_for_one
swarm.toml:7: TOML syntax error: Invalid value (column 14)
```

**In code.** `load_config(path)`, `default_config()`, `config_from_mapping(data)`,
`config_to_dict(cfg)` (round-trips). Sections are frozen dataclasses that check
themselves, so `dataclasses.replace` is validated too; `cfg.with_overrides(**{"a.b":
v})` replaces dotted keys. `cfg.agents` is also a mapping type name -> section.
"""


def render_default_toml() -> str:
    """The commented default ``swarm.toml`` (what the repository ships)."""
    return render_toml(default_config(), _TOML_HEADER)


def render_reference() -> str:
    """The Markdown of ``docs/CONFIG.md``: every table and key, with defaults and ranges."""
    return render_markdown(SwarmConfig, _REFERENCE_INTRO)


def main(argv: list[str] | None = None) -> int:
    """``check FILE`` | ``reference`` | ``toml``: check a file or print generated text."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["reference"] and len(args) == 1:
        sys.stdout.write(render_reference())
    elif args[:1] == ["toml"] and len(args) == 1:
        sys.stdout.write(render_default_toml())
    elif args[:1] == ["check"] and len(args) == 2:
        try:
            load_config(args[1])
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{args[1]}: ok")
    else:
        print("usage: python -m engine.config check FILE | reference | toml", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
