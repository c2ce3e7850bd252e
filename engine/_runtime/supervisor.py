"""The supervisor: starts agent processes, notices when they die or hang, restarts them.

Design note
-----------
Semantics follow Erlang/OTP supervisors:

* restart *types* per child: ``permanent`` (always restarted), ``transient``
  (restarted only after an abnormal exit), ``temporary`` (never restarted);
* restart *strategies*: ``one_for_one`` (only the dead child), ``one_for_all`` (stop
  every other child, then restart all in start order), ``rest_for_one`` (stop the
  children started after the dead one, then restart it and them in start order);
* restart *intensity*: more than ``max_restarts`` restarts of a child within
  ``max_seconds`` and the supervisor gives up on that child (state ``failed``, event
  ``agent_gave_up``) instead of looping -- OTP would terminate the supervisor; a
  swarm keeps its other agents running;
* exponential backoff with jitter between restarts of the same child.

Crash detection uses the process *sentinel*: the forkserver hands us a pipe that
becomes readable when the child exits, and the asyncio loop watches it with
``add_reader`` -- no polling.  Hang detection is a timeout by nature: every
``heartbeat_interval`` the supervisor reads the status table (no round trip) and
kills an agent whose heartbeat is older than ``heartbeat_timeout``.

Shutdown is graceful, then forced: a ``stop`` command on the control lane, SIGTERM
after ``shutdown_timeout``, SIGKILL after ``kill_timeout``; children stop one after
the other in reverse start order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from engine._runtime.launch import AgentLaunch, ResourceLimits
from engine._shm.status_table import AgentState, StatusTable
from engine.events import (
    AGENT_CRASHED,
    AGENT_GAVE_UP,
    AGENT_HUNG,
    AGENT_RESTARTED,
    LIMIT_EXCEEDED,
    Event,
    Severity,
)

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

    from engine.config import SupervisorConfig

log = logging.getLogger("engine.supervisor")

PERMANENT, TRANSIENT, TEMPORARY = "permanent", "transient", "temporary"
RESTART_TYPES = (PERMANENT, TRANSIENT, TEMPORARY)
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")

_SIGNAL_REASONS = {
    signal.SIGKILL: "killed (SIGKILL)",
    signal.SIGTERM: "terminated (SIGTERM)",
    signal.SIGSEGV: "segmentation fault (SIGSEGV)",
    signal.SIGXCPU: "CPU time limit exceeded (SIGXCPU)",
    signal.SIGXFSZ: "file size limit exceeded (SIGXFSZ)",
    signal.SIGABRT: "aborted (SIGABRT)",
    signal.SIGBUS: "bus error (SIGBUS)",
}


def describe_exit(exitcode: int | None) -> str:
    """Human words for a process exit code (negative = killed by that signal)."""
    if exitcode is None:
        return "still running"
    if exitcode == 0:
        return "exited normally"
    if exitcode < 0:
        sig = -exitcode
        try:
            name = _SIGNAL_REASONS.get(signal.Signals(sig), f"killed by {signal.Signals(sig).name}")
        except ValueError:
            name = f"killed by signal {sig}"
        return name
    return f"exited with status {exitcode}"


@dataclass(frozen=True)
class ChildSpec:
    """What to run for one supervised agent (it survives restarts)."""

    agent_id: str
    agent_type: str
    import_path: str
    options: dict[str, Any] = field(default_factory=dict)
    restart: str = PERMANENT
    cycle_interval: float = 1.0
    limits: ResourceLimits = field(default_factory=ResourceLimits)


@dataclass
class Child:
    """The supervisor's record of one agent (mutable; only the supervisor changes it)."""

    spec: ChildSpec
    slot: int
    generation: int
    priority: int = 0
    duty_cycle: float = 1.0
    paused: bool = False
    affinity: tuple[int, ...] = ()
    process: "BaseProcess | None" = None
    pid: int = 0
    state: str = "starting"
    incarnation: int = 0
    restarts: int = 0
    restart_times: deque[float] = field(default_factory=deque)
    started_at: float = 0.0
    stopping: bool = False
    hung_reason: str = ""
    last_error: str = ""
    last_traceback: str = ""
    last_exit: str = ""
    checkpoint: bytes | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    restart_handle: asyncio.TimerHandle | None = None
    start_order: int = 0

    @property
    def agent_id(self) -> str:
        """The agent's id."""
        return self.spec.agent_id

    @property
    def alive(self) -> bool:
        """Whether a process is currently running for this child."""
        return self.process is not None


class Supervisor:
    """Owns the agent processes of one swarm (runs on the orchestrator's event loop)."""

    def __init__(
        self,
        *,
        config: "SupervisorConfig",
        mp_context: "BaseContext",
        table: StatusTable,
        make_launch: Callable[[Child], AgentLaunch],
        emit: Callable[[Event], None],
        drain_reports: Callable[[], None],
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.ctx = mp_context
        self.table = table
        self._make_launch = make_launch
        self._emit = emit
        self._drain_reports = drain_reports
        self._rng = rng or random.Random()
        self.children: dict[str, Child] = {}
        self._order = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group_tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        #: How to send a control command to a child (installed by the orchestrator).
        self.send_control: Callable[[Child, str], bool] | None = None

    # --- events ----------------------------------------------------------------------

    def _event(self, name: str, child: Child, message: str, severity: Severity, **data: Any) -> None:
        self._emit(Event(name, time.time(), severity, child.agent_id, message, data))

    # --- starting ---------------------------------------------------------------------

    def add(self, child: Child) -> None:
        """Register a new child and start it."""
        self._order += 1
        child.start_order = self._order
        self.children[child.agent_id] = child
        self.start(child)

    def ordered(self) -> list[Child]:
        """Children in start order."""
        return sorted(self.children.values(), key=lambda c: c.start_order)

    def start(self, child: Child) -> None:
        """Start a process for ``child`` (from the forkserver) and watch its sentinel."""
        loop = self._loop = asyncio.get_running_loop()
        launch = self._make_launch(child)
        proc = self.ctx.Process(
            target=_agent_entry, args=(launch,), name=f"swarm:{child.agent_id}", daemon=False
        )
        child.ready.clear()
        child.exited.clear()
        child.hung_reason = ""
        child.stopping = False
        child.started_at = time.monotonic()
        proc.start()
        child.process = proc
        child.pid = proc.pid or 0
        child.state = "starting"
        loop.add_reader(proc.sentinel, self._on_exit, child, proc)

    # --- exits ------------------------------------------------------------------------

    def _on_exit(self, child: Child, proc: "BaseProcess") -> None:
        loop = self._loop
        assert loop is not None
        loop.remove_reader(proc.sentinel)
        proc.join(0)
        exitcode = proc.exitcode
        try:
            proc.close()
        except ValueError:
            pass
        if child.process is not proc:  # an older incarnation's late exit
            return
        child.process = None
        # Reports the child sent before dying (crash traceback, checkpoint) come first.
        self._drain_reports()
        reason = child.hung_reason or describe_exit(exitcode)
        if exitcode == 1 and not child.ready.is_set() and not child.last_error:
            reason += (" before the agent code ran (see its stderr; a script that starts the swarm "
                       "must do so under `if __name__ == \"__main__\":`, because agent processes "
                       "import the main module)")
        child.last_exit = reason
        child.exited.set()
        if child.stopping:
            child.state = "stopped"
            return
        abnormal = exitcode != 0 or bool(child.hung_reason)
        if abnormal:
            child.state = "crashed"
            detail = f": {child.last_error}" if child.last_error and not child.hung_reason else ""
            self._event(
                AGENT_CRASHED, child,
                f"{child.agent_id} {reason}{detail}", Severity.ERROR,
                exitcode=exitcode, reason=reason, error=child.last_error,
                traceback=child.last_traceback, pid=child.pid,
            )  # fmt: skip
        restart_type = child.spec.restart
        if self.closing or restart_type == TEMPORARY or (restart_type == TRANSIENT and not abnormal):
            child.state = "stopped" if not abnormal else "crashed"
            return
        self._schedule_restart(child, reason)

    def _schedule_restart(self, child: Child, reason: str) -> None:
        cfg = self.config
        now = time.monotonic()
        times = child.restart_times
        while times and now - times[0] > cfg.max_seconds:
            times.popleft()
        if len(times) >= cfg.max_restarts:
            child.state = "failed"
            self._event(
                AGENT_GAVE_UP, child,
                f"gave up on {child.agent_id}: {len(times)} restarts within {cfg.max_seconds:g} s "
                f"(limit {cfg.max_restarts}); last exit: {reason}",
                Severity.CRITICAL, restarts=child.restarts, reason=reason,
            )  # fmt: skip
            return
        delay = self.backoff_delay(len(times))
        times.append(now)
        child.state = "restarting"
        strategy = cfg.strategy
        if strategy == "one_for_one":
            group = [child]
        elif strategy == "one_for_all":
            group = self.ordered()
        else:  # rest_for_one
            group = [c for c in self.ordered() if c.start_order >= child.start_order]
        group = [c for c in group if c.state not in ("failed", "stopped") or c is child]
        task = asyncio.ensure_future(self._restart_group(child, group, delay, reason))
        self._group_tasks.add(task)
        task.add_done_callback(self._group_tasks.discard)

    def backoff_delay(self, recent_restarts: int) -> float:
        """Delay before the next restart given how many happened recently (with jitter)."""
        cfg = self.config
        base = min(cfg.backoff_max, cfg.backoff_initial * cfg.backoff_multiplier**recent_restarts)
        jitter = 1.0 + cfg.backoff_jitter * (2.0 * self._rng.random() - 1.0)
        return max(0.0, base * jitter)

    async def _restart_group(self, crashed: Child, group: list[Child], delay: float, reason: str) -> None:
        # Stop the others in reverse start order (OTP semantics), then restart all in order.
        for other in reversed(group):
            if other is not crashed and other.alive:
                await self.stop(other, restarting=True)
        if delay > 0:
            await asyncio.sleep(delay)
        for member in group:
            if self.closing or member.agent_id not in self.children or member.alive:
                continue
            if member is not crashed and member.state == "failed":
                continue
            member.incarnation += 1
            member.restarts += 1
            self.start(member)
            why = reason if member is crashed else f"{self.config.strategy}: {crashed.agent_id} {reason}"
            self._event(
                AGENT_RESTARTED, member,
                f"{member.agent_id} restarted (#{member.restarts}, {why})", Severity.WARNING,
                restarts=member.restarts, reason=why, strategy=self.config.strategy,
                delay_s=round(delay, 4),
            )  # fmt: skip

    # --- stopping -------------------------------------------------------------------------

    async def stop(self, child: Child, *, restarting: bool = False) -> None:
        """Stop ``child`` gracefully, then with SIGTERM, then SIGKILL."""
        if child.restart_handle is not None:
            child.restart_handle.cancel()
            child.restart_handle = None
        proc = child.process
        child.stopping = True
        if proc is None:
            if not restarting:
                child.state = "stopped"
            return
        child.state = "stopping"
        cfg = self.config
        asked = self._send_stop(child)
        if asked and await self._wait_exit(child, cfg.shutdown_timeout):
            return
        if child.process is not None and child.pid:
            log.warning("%s did not stop within %.1f s; sending SIGTERM", child.agent_id, cfg.shutdown_timeout)
            _kill(child.pid, signal.SIGTERM)
            if await self._wait_exit(child, cfg.kill_timeout):
                return
        if child.process is not None and child.pid:
            log.warning("%s ignored SIGTERM; sending SIGKILL", child.agent_id)
            _kill(child.pid, signal.SIGKILL)
            await self._wait_exit(child, 10.0)

    def _send_stop(self, child: Child) -> bool:
        """Ask the child to stop over its control lane; False if that was impossible."""
        return self.send_control(child, "stop") if self.send_control is not None else False

    async def _wait_exit(self, child: Child, timeout: float) -> bool:
        if child.process is None:
            return True
        try:
            await asyncio.wait_for(child.exited.wait(), timeout)
        except asyncio.TimeoutError:
            return child.process is None
        return True

    async def shutdown(self) -> None:
        """Stop every child in reverse start order (nothing is restarted any more)."""
        self.closing = True
        for task in list(self._group_tasks):
            task.cancel()
        for child in reversed(self.ordered()):
            await self.stop(child)

    # --- hang detection --------------------------------------------------------------------

    def check_heartbeats(self) -> None:
        """Kill children whose heartbeat is older than ``heartbeat_timeout``."""
        cfg = self.config
        now_ns = time.monotonic_ns()
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.process is None or child.stopping or child.hung_reason:
                continue
            row = self.table.read(child.slot)
            fresh = row.pid == child.pid and row.incarnation == child.incarnation and row.heartbeat_ns
            if fresh:
                age = (now_ns - row.heartbeat_ns) / 1e9
                if row.state in (AgentState.RUNNING, AgentState.PAUSED, AgentState.THROTTLED):
                    child.state = row.state.label
            else:
                age = now - child.started_at
            rss_limit = child.spec.limits.rss_mb * 1024 * 1024
            if fresh and rss_limit and row.rss_bytes > rss_limit:
                child.hung_reason = (f"RSS limit exceeded: {row.rss_bytes / 2**20:.0f} MiB > "
                                     f"rss_limit_mb={child.spec.limits.rss_mb}")
                self._event(LIMIT_EXCEEDED, child,
                            f"{child.agent_id} {child.hung_reason}; killing it", Severity.ERROR,
                            limit="rss_limit_mb", rss_bytes=row.rss_bytes)
                _kill(child.pid, signal.SIGKILL)
                continue
            starting = not fresh or row.state in (AgentState.STARTING, AgentState.WARMING)
            limit = max(cfg.heartbeat_timeout, cfg.startup_timeout) if starting else cfg.heartbeat_timeout
            if age > limit:
                child.hung_reason = f"hung: no heartbeat for {age:.1f} s (limit {limit:g} s)"
                self._event(AGENT_HUNG, child, f"{child.agent_id} {child.hung_reason}; killing it",
                            Severity.ERROR, heartbeat_age_s=round(age, 3))
                _kill(child.pid, signal.SIGKILL)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _agent_entry(launch: AgentLaunch) -> None:
    from engine._runtime.agent_process import agent_main

    agent_main(launch)
