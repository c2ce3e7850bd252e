"""The orchestrator: the public face of the engine.

It owns the supervisor and the bus, creates and unlinks every shared-memory segment,
runs the control loops (hang detection, monitoring, alerts, auto-scaling), turns the
status table into immutable :class:`~engine.model.SwarmSnapshot` values, and
notifies event handlers.  Use it as an async context manager::

    async with Orchestrator(load_config("swarm.toml")) as swarm:
        agent_id = await swarm.create_agent("echo")
        await swarm.wait_ready(agent_id)
        reply = await swarm.communicator.request(agent_id, "hello", {"x": 1})

Data flow: agent process -> its status row / the orchestrator inbox -> control loop
tick -> one immutable snapshot -> observers.  Commands flow back: API call ->
supervisor -> control lane of the agent's mailbox.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import logging
import multiprocessing
import os
import time
from typing import Any, Callable

import psutil

from engine import events as ev
from engine._runtime import protocol
from engine._runtime.inbox import InboxPump
from engine._runtime.launch import AgentLaunch, ResourceLimits, mailbox_name
from engine._runtime.protocol import Kind
from engine._runtime.supervisor import Child, ChildSpec, Supervisor
from engine._shm import segments
from engine._shm.directory import Directory, DirectoryEntry
from engine._shm.status_table import StatusTable
from engine.agents.registry import BUILTIN_AGENTS, load_agent_class
from engine.channels import Lane
from engine.communicator import ORCHESTRATOR_ID, Communicator, Message, decode_message
from engine.config import SwarmConfig, default_config
from engine.errors import (
    AgentNotRunning,
    ChannelError,
    DuplicateAgentId,
    MaxAgentsReached,
    OrchestratorClosed,
    RequestTimeout,
    SwarmError,
    UnknownAgent,
    UnknownAgentType,
)
from engine.events import Event, EventDispatcher, Severity
from engine.model import AgentInfo, BusInfo, MachineInfo, SwarmSnapshot
from engine.bus_meter import BusMeter, totals_of
from engine.scaling import ScalingDecision, ScalingPolicy, ThresholdScaling

log = logging.getLogger("engine.orchestrator")

#: Modules the forkserver imports once, so that every agent starts with them loaded.
PRELOAD = ["engine._runtime.agent_process", "engine.agents.echo", "numpy"]
_COMMON_AGENT_KEYS = frozenset(
    {"count", "restart", "priority", "cycle_interval", "rss_limit_mb", "cpu_time_limit_s", "open_files_limit"}
)


class Orchestrator:
    """Runs a swarm: agents, supervisor, bus, control loops (see module docstring)."""

    def __init__(
        self,
        config: SwarmConfig | None = None,
        *,
        start_configured_agents: bool = False,
        log_level: str | None = None,
    ) -> None:
        self.config = config or default_config()
        self.start_configured_agents = start_configured_agents
        self.agent_log_level = log_level or logging.getLevelName(logging.getLogger().getEffectiveLevel())
        self.events = EventDispatcher()
        self.scaling_policy: ScalingPolicy = ThresholdScaling(self.config)
        self._started = False
        self._closed = False
        self._prefix = ""
        self._supervisor: Supervisor | None = None
        self._table: StatusTable | None = None
        self._directory: Directory | None = None
        self._mailboxes: dict[int, Any] = {}
        self._generations: dict[int, int] = {}
        self._slots: dict[int, Child] = {}
        self._communicator: Communicator | None = None
        self._pump: InboxPump | None = None
        self._pending_replies: dict[int, asyncio.Future[Message]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._start_time = time.monotonic()
        self._events_total = 0
        self._alerts_total = 0
        self._alert_armed = {"cpu": True, "memory": True}
        self._prev_cpu: dict[str, tuple[float, float, int]] = {}
        self._last_snapshot: SwarmSnapshot | None = None
        self._message_handlers: list[Callable[[Message], None]] = []
        self._id_counters: dict[str, int] = {}
        self._bus_meter = BusMeter()
        psutil.cpu_percent(percpu=True)  # prime the non-blocking sampler

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> "Orchestrator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Create the shared memory, start the forkserver and the control loops."""
        if self._started:
            return
        from engine._shm.mailbox import Mailbox

        cfg = self.config
        stale = segments.remove_stale_segments()
        if stale:
            log.warning("removed %d shared-memory segment(s) left by a swarm that died: %s",
                        len(stale), ", ".join(stale[:5]))
        self._prefix = segments.new_swarm_prefix()
        atexit.register(segments.unlink_all, self._prefix)
        slots = cfg.max_agents + 1
        try:
            self._table = StatusTable.create(f"{self._prefix}-status", slots)
            self._directory = Directory.create(f"{self._prefix}-dir", slots)
            self._mailboxes[0] = Mailbox.create(
                mailbox_name(self._prefix, 0, 0), producers=slots, lane_bytes=cfg.channel_size
            )
            self._generations[0] = 0
            self._communicator = Communicator(
                agent_id=ORCHESTRATOR_ID, slot=0, directory=self._directory,
                mailbox_name=lambda slot, gen: mailbox_name(self._prefix, slot, gen),
                send_timeout=cfg.bus.send_timeout, request_timeout=cfg.bus.request_timeout,
            )  # fmt: skip
            self._communicator.set_reply_waiter(self._wait_reply)
            loop = asyncio.get_running_loop()
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            await loop.run_in_executor(None, _ensure_forkserver)
            self._supervisor = Supervisor(
                config=cfg.supervisor, mp_context=ctx, table=self._table,
                make_launch=self._make_launch, emit=self._emit, drain_reports=self._drain_inbox,
            )  # fmt: skip
            self._supervisor.send_control = self._send_control_to
            self._pump = InboxPump(self._mailboxes[0].receiver(), self._handle_report, loop)
            self._pump.start()
        except BaseException:
            await self._release()
            raise
        self._started = True
        self._start_time = time.monotonic()
        self._tasks.append(asyncio.ensure_future(self._heartbeat_loop()))
        self._tasks.append(asyncio.ensure_future(self._monitor_loop()))
        self._emit(Event(ev.SWARM_STARTED, time.time(), Severity.INFO, None,
                         f"swarm {cfg.name!r} started (max {cfg.max_agents} agents)"))
        if self.start_configured_agents:
            await self.start_configured()

    async def start_configured(self) -> list[str]:
        """Create the agents whose ``count`` is set in the configuration."""
        created = []
        for type_name, section in self._agent_sections():
            for _ in range(section.count):
                created.append(await self.create_agent(type_name))
        return created

    def _agent_sections(self) -> list[tuple[str, Any]]:
        cfg = self.config
        out: list[tuple[str, Any]] = []
        for name, section in cfg.agents.items():
            if name in self.available_types():
                out.append((name, section))
        out.extend(cfg.custom_agents.items())
        return out

    async def shutdown(self) -> None:
        """Stop every agent (reverse start order), the loops, and remove all shared memory."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            if self._supervisor is not None:
                await self._supervisor.shutdown()
        finally:
            if self._pump is not None:
                self._drain_inbox()
            for fut in self._pending_replies.values():
                if not fut.done():
                    fut.cancel()
            if self._started:
                self._emit(Event(ev.SWARM_STOPPED, time.time(), Severity.INFO, None, "swarm stopped"))
            await self._release()

    async def _release(self) -> None:
        if self._pump is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._pump.stop)
            self._pump = None
        if self._communicator is not None:
            self._communicator.close()
        for mailbox in self._mailboxes.values():
            _close_quietly(mailbox)
        self._mailboxes.clear()
        for res in (self._directory, self._table):
            if res is not None:
                _close_quietly(res)
        if self._prefix:
            segments.unlink_all(self._prefix)
            atexit.unregister(segments.unlink_all)

    @property
    def prefix(self) -> str:
        """The name prefix of this swarm's shared-memory segments."""
        return self._prefix

    @property
    def communicator(self) -> Communicator:
        """The orchestrator's own endpoint on the bus."""
        self._check_running()
        assert self._communicator is not None
        return self._communicator

    def _check_running(self) -> None:
        if not self._started or self._closed:
            raise OrchestratorClosed("the swarm is not running (use 'async with Orchestrator(...)')")

    # --- agent types ------------------------------------------------------------------------

    def available_types(self) -> list[str]:
        """Agent types that can be created: built-in plus configured custom ones."""
        return sorted({*BUILTIN_AGENTS, *self.config.custom_agents})

    def _resolve_type(self, agent_type: str) -> tuple[str, dict[str, Any], Any]:
        """(import path, default options, config section or None) for ``agent_type``."""
        cfg = self.config
        if agent_type in cfg.custom_agents:
            section = cfg.custom_agents[agent_type]
            return section.import_path, section.option_kwargs(), section
        if agent_type in BUILTIN_AGENTS:
            section = cfg.agents.get(agent_type)
            options: dict[str, Any] = {}
            if section is not None:
                options = {
                    k: v for k, v in dataclasses.asdict(section).items() if k not in _COMMON_AGENT_KEYS
                }
            return BUILTIN_AGENTS[agent_type], options, section
        raise UnknownAgentType(
            f"unknown agent type {agent_type!r}; available: {', '.join(self.available_types())}"
        )

    # --- the public API ---------------------------------------------------------------

    async def create_agent(self, agent_type: str, id: str | None = None, **kwargs: Any) -> str:
        """Start a new agent of ``agent_type``; returns its id.

        Keyword arguments become the agent's options (overriding configured ones);
        ``priority`` and ``restart`` are taken by the supervisor.

        Raises:
            UnknownAgentType: the type is neither built in nor configured.
            DuplicateAgentId: an agent with ``id`` exists.
            MaxAgentsReached: ``max_agents`` agents exist already.
        """
        self._check_running()
        assert self._supervisor is not None and self._directory is not None
        import_path, options, section = self._resolve_type(agent_type)
        load_agent_class(import_path) if agent_type in self.config.custom_agents else None
        sup = self._supervisor
        if id is not None and id in sup.children:
            raise DuplicateAgentId(f"an agent with id {id!r} already exists")
        if len(sup.children) >= self.config.max_agents:
            raise MaxAgentsReached(
                f"cannot create {agent_type!r}: the swarm has max_agents={self.config.max_agents} "
                "agents already (raise max_agents in swarm.toml or destroy one)"
            )
        if id is not None and (not id or len(id.encode()) > 32 or id == ORCHESTRATOR_ID or "*" in id):
            raise ValueError(f"agent id {id!r} must be 1-32 bytes, not 'orchestrator', without '*'")
        agent_id = id or self._next_id(agent_type)
        priority = int(kwargs.pop("priority", getattr(section, "priority", 0)))
        restart = str(kwargs.pop("restart", getattr(section, "restart", "permanent")))
        cycle_interval = float(kwargs.pop("cycle_interval", getattr(section, "cycle_interval", 1.0)))
        options.update(kwargs)
        slot = self._free_slot()
        generation = self._generations.get(slot, 0) + 1
        self._generations[slot] = generation
        from engine._shm.mailbox import Mailbox

        self._mailboxes[slot] = Mailbox.create(
            mailbox_name(self._prefix, slot, generation),
            producers=self.config.max_agents + 1,
            lane_bytes=self.config.channel_size,
        )
        limits = ResourceLimits(
            rss_mb=int(getattr(section, "rss_limit_mb", 0) or 0),
            cpu_time_s=int(getattr(section, "cpu_time_limit_s", 0) or 0),
            open_files=int(getattr(section, "open_files_limit", 0) or 0),
        )
        spec = ChildSpec(agent_id, agent_type, import_path, options, restart, cycle_interval, limits)
        child = Child(spec=spec, slot=slot, generation=generation, priority=priority)
        self._slots[slot] = child
        self._directory.publish(DirectoryEntry(slot, generation, True, agent_id, agent_type))
        try:
            sup.add(child)
        except BaseException:
            self._forget(child)
            raise
        self._emit(Event(ev.AGENT_CREATED, time.time(), Severity.INFO, agent_id,
                         f"created {agent_type} agent {agent_id} (pid {child.pid})",
                         {"agent_type": agent_type, "pid": child.pid, "slot": slot}))
        return agent_id

    def _next_id(self, agent_type: str) -> str:
        assert self._supervisor is not None
        n = self._id_counters.get(agent_type, 0)
        while True:
            n += 1
            candidate = f"{agent_type}-{n}"
            if candidate not in self._supervisor.children:
                self._id_counters[agent_type] = n
                return candidate

    def _free_slot(self) -> int:
        for slot in range(1, self.config.max_agents + 1):
            if slot not in self._slots:
                return slot
        raise MaxAgentsReached(f"no free slot (max_agents={self.config.max_agents})")

    def _child(self, agent_id: str) -> Child:
        self._check_running()
        assert self._supervisor is not None
        child = self._supervisor.children.get(agent_id)
        if child is None:
            raise UnknownAgent(f"no agent with id {agent_id!r}")
        return child

    async def destroy_agent(self, agent_id: str) -> None:
        """Stop an agent for good and release its slot and mailbox.

        Raises:
            UnknownAgent: no agent has that id.
        """
        child = self._child(agent_id)
        assert self._supervisor is not None
        await self._supervisor.stop(child)
        self._forget(child)
        self._emit(Event(ev.AGENT_DESTROYED, time.time(), Severity.INFO, agent_id,
                         f"destroyed {child.spec.agent_type} agent {agent_id}",
                         {"agent_type": child.spec.agent_type, "exit": child.last_exit}))

    def _forget(self, child: Child) -> None:
        assert self._supervisor is not None and self._directory is not None and self._table is not None
        self._supervisor.children.pop(child.agent_id, None)
        self._directory.publish(DirectoryEntry(child.slot, child.generation, False, "", ""))
        if self._communicator is not None:
            self._communicator.forget_slot(child.slot)
        mailbox = self._mailboxes.pop(child.slot, None)
        if mailbox is not None:
            mailbox.unlink()
            _close_quietly(mailbox)
        self._table.clear(child.slot)
        self._slots.pop(child.slot, None)
        self._prev_cpu.pop(child.agent_id, None)

    async def set_priority(self, agent_id: str, priority: int) -> None:
        """Set an agent's nice value (-20 = most CPU .. 19 = least) and scheduling weight.

        Raises:
            ValueError: priority outside -20..19.
            PermissionError: lowering the nice value needs privileges this user lacks.
        """
        if not isinstance(priority, int) or isinstance(priority, bool) or not -20 <= priority <= 19:
            raise ValueError(f"priority must be an integer from -20 (highest) to 19 (lowest), got {priority!r}")
        child = self._child(agent_id)
        if child.pid and child.alive:
            try:
                os.setpriority(os.PRIO_PROCESS, child.pid, priority)
            except PermissionError as exc:
                raise PermissionError(
                    f"cannot set priority {priority} on {agent_id}: raising priority (a lower nice "
                    f"value) needs root or CAP_SYS_NICE ({exc.strerror})"
                ) from None
            except ProcessLookupError:
                pass
        old = child.priority
        child.priority = priority
        self._send_control_to(child, "priority", priority)
        self._emit(Event(ev.PRIORITY_CHANGED, time.time(), Severity.INFO, agent_id,
                         f"{agent_id} priority {old} -> {priority}", {"old": old, "new": priority}))

    async def pause_agent(self, agent_id: str) -> None:
        """Stop running the agent's cycles (it still answers control commands)."""
        child = self._child(agent_id)
        child.paused = True
        self._send_control_to(child, "pause")
        self._emit(Event(ev.AGENT_PAUSED, time.time(), Severity.INFO, agent_id, f"{agent_id} paused"))

    async def resume_agent(self, agent_id: str) -> None:
        """Resume a paused agent."""
        child = self._child(agent_id)
        child.paused = False
        self._send_control_to(child, "resume")
        self._emit(Event(ev.AGENT_RESUMED, time.time(), Severity.INFO, agent_id, f"{agent_id} resumed"))

    async def throttle_agent(self, agent_id: str, duty_cycle: float) -> None:
        """Let the agent compute only ``duty_cycle`` (0.01..1) of the time."""
        if not 0.01 <= duty_cycle <= 1.0:
            raise ValueError(f"duty cycle must be within 0.01..1, got {duty_cycle}")
        child = self._child(agent_id)
        child.duty_cycle = duty_cycle
        self._send_control_to(child, "throttle", duty_cycle)

    async def pin_agent(self, agent_id: str, cpus: list[int] | tuple[int, ...]) -> None:
        """Pin the agent's process to the given CPU cores (empty = all cores)."""
        child = self._child(agent_id)
        allowed = sorted(os.sched_getaffinity(0))
        chosen = tuple(sorted(set(cpus))) or tuple(allowed)
        bad = [c for c in chosen if c not in allowed]
        if bad:
            raise ValueError(f"cores {bad} are not available; this process may use {allowed}")
        child.affinity = chosen
        if child.pid and child.alive:
            try:
                os.sched_setaffinity(child.pid, chosen)
            except ProcessLookupError:
                pass

    async def restart_agent(self, agent_id: str) -> None:
        """Stop the agent gracefully and start it again (not counted as a crash)."""
        child = self._child(agent_id)
        assert self._supervisor is not None
        await self._supervisor.stop(child, restarting=True)
        if agent_id not in self._supervisor.children:
            return
        child.incarnation += 1
        child.restarts += 1
        self._supervisor.start(child)
        self._emit(Event(ev.AGENT_RESTARTED, time.time(), Severity.INFO, agent_id,
                         f"{agent_id} restarted on request", {"reason": "requested", "restarts": child.restarts}))

    async def inject_hang(self, agent_id: str) -> None:
        """Fault injection: make the agent stop heartbeating (the supervisor will kill it)."""
        self._send_control_to(self._child(agent_id), "hang")

    async def wait_ready(self, agent_id: str, timeout: float = 30.0) -> None:
        """Wait until the agent has started and is serving.

        Raises:
            TimeoutError: it did not become ready within ``timeout``.
            AgentNotRunning: it failed (gave up) while waiting.
        """
        child = self._child(agent_id)
        deadline = time.monotonic() + timeout
        while not child.ready.is_set():
            if child.state == "failed":
                raise AgentNotRunning(f"{agent_id} failed: {child.last_exit}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{agent_id} was not ready within {timeout:g} s (state {child.state})")
            try:
                await asyncio.wait_for(child.ready.wait(), min(left, 0.25))
            except asyncio.TimeoutError:
                pass

    async def ping(self, agent_id: str, timeout: float = 5.0) -> dict[str, int]:
        """Round trip a ping through the agent's data lane; returns ``{"pong": pid, "incarnation": n}``.

        The ping waits in the agent's inbox while it is restarting, so it also
        answers "is it serving again?".
        """
        self._child(agent_id)
        reply = await self.communicator.request(agent_id, "__ping__", None, timeout=timeout)
        return dict(reply.payload)

    def add_event_handler(self, event: str, handler: ev.Handler) -> None:
        """Call ``handler(event)`` for each event named ``event`` (``"*"`` for all)."""
        self.events.add(event, handler)

    def add_message_handler(self, handler: Callable[[Message], None]) -> None:
        """Call ``handler(message)`` for each non-reply message sent to ``"orchestrator"``."""
        self._message_handlers.append(handler)

    def agent_ids(self) -> list[str]:
        """Ids of every agent, in start order."""
        if self._supervisor is None:
            return []
        return [c.agent_id for c in self._supervisor.ordered()]

    def agent_details(self, agent_id: str) -> dict[str, Any]:
        """Supervisor-side facts about one agent: options, restarts, last crash traceback."""
        child = self._child(agent_id)
        return {
            "id": child.agent_id, "type": child.spec.agent_type, "slot": child.slot,
            "pid": child.pid, "state": child.state, "restart": child.spec.restart,
            "restarts": child.restarts, "incarnation": child.incarnation,
            "priority": child.priority, "duty_cycle": child.duty_cycle,
            "affinity": list(child.affinity), "options": dict(child.spec.options),
            "last_exit": child.last_exit, "last_error": child.last_error,
            "last_traceback": child.last_traceback, "has_checkpoint": child.checkpoint is not None,
        }  # fmt: skip

    # --- internals: launching and control -------------------------------------------------

    def _make_launch(self, child: Child) -> AgentLaunch:
        assert self._table is not None and self._directory is not None
        return AgentLaunch(
            agent_id=child.agent_id, agent_type=child.spec.agent_type,
            import_path=child.spec.import_path, options=child.spec.options, slot=child.slot,
            generation=child.generation, incarnation=child.incarnation, prefix=self._prefix,
            status_name=self._table.segment.name, directory_name=self._directory.segment.name,
            orchestrator_pid=os.getpid(), config=self.config,
            cycle_interval=child.spec.cycle_interval, priority=child.priority,
            duty_cycle=child.duty_cycle, paused=child.paused, affinity=child.affinity,
            checkpoint=child.checkpoint, limits=child.spec.limits, log_level=self.agent_log_level,
        )  # fmt: skip

    def _send_control_to(self, child: Child, command: str, value: Any = None) -> bool:
        if self._communicator is None:
            return False
        try:
            self._communicator.send_frame(
                child.slot, child.generation, Kind.CONTROL,
                protocol.encode(protocol.Control(command, value)), lane=Lane.CONTROL, timeout=0.5,
            )  # fmt: skip
            return True
        except ChannelError as exc:
            log.warning("control %r to %s not delivered: %s", command, child.agent_id, exc)
            return False

    # --- internals: reports from agents ---------------------------------------------------

    def _drain_inbox(self) -> None:
        if self._pump is not None:
            self._pump.drain()

    def _handle_report(self, frame: Any) -> None:
        kind = frame.msg_type
        child = self._slots.get(frame.sender)
        if kind == Kind.REPLY:
            msg = decode_message(frame)
            fut = self._pending_replies.pop(frame.correlation_id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        if kind == Kind.DATA:
            msg = decode_message(frame)
            for handler in self._message_handlers:
                handler(msg)
            return
        if child is None:
            log.debug("report kind %s from unknown slot %s ignored", kind, frame.sender)
            return
        if kind == Kind.STARTED:
            report = protocol.decode_started(frame.payload)
            if report.incarnation == child.incarnation:
                child.ready.set()
                child.state = "paused" if child.paused else "running"
                child.last_error = ""
                child.last_traceback = ""
        elif kind == Kind.CRASH:
            crash = protocol.decode_crash(frame.payload)
            child.last_error = crash.error
            child.last_traceback = crash.traceback
        elif kind == Kind.CHECKPOINT:
            child.checkpoint = bytes(frame.payload)
        elif kind == Kind.EVENT:
            report = protocol.decode_event(frame.payload)
            try:
                severity = Severity(report.severity)
            except ValueError:
                severity = Severity.INFO
            self._emit(Event(report.name, time.time(), severity, child.agent_id, report.message, dict(report.data)))

    def _wait_reply(self, msg_id: int, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        self._pending_replies[msg_id] = fut

        async def waiter() -> Message:
            try:
                return await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise RequestTimeout(f"no reply to request {msg_id:#x} within {timeout:g} s") from None
            finally:
                self._pending_replies.pop(msg_id, None)

        return waiter()

    def _emit(self, event: Event) -> None:
        self._events_total += 1
        if event.severity in (Severity.ERROR, Severity.CRITICAL) or event.name == ev.PERFORMANCE_ALERT:
            self._alerts_total += 1
        level = {
            Severity.DEBUG: logging.DEBUG, Severity.INFO: logging.INFO,
            Severity.WARNING: logging.WARNING, Severity.ERROR: logging.ERROR,
            Severity.CRITICAL: logging.CRITICAL,
        }[event.severity]  # fmt: skip
        log.log(level, "%s: %s", event.name, event.message,
                extra={"event": event.name, "agent_id": event.agent_id})
        self.events.emit(event)

    # --- control loops -------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = self.config.supervisor.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            assert self._supervisor is not None
            self._supervisor.check_heartbeats()

    async def _monitor_loop(self) -> None:
        cfg = self.config
        last_scale = time.monotonic()
        while True:
            await asyncio.sleep(cfg.monitoring_interval)
            snapshot = self.get_system_status()
            self._check_alerts(snapshot)
            if cfg.auto_scaling and time.monotonic() - last_scale >= cfg.optimization_interval:
                last_scale = time.monotonic()
                await self._apply_scaling(self.scaling_policy.decide(snapshot))

    async def _apply_scaling(self, decision: ScalingDecision | None) -> None:
        if decision is None or decision.delta == 0:
            return
        created: list[str] = []
        removed: list[str] = []
        try:
            if decision.delta > 0:
                for _ in range(decision.delta):
                    created.append(await self.create_agent(decision.agent_type))
            else:
                victims = [a for a in reversed(self.agent_ids())
                           if self._child(a).spec.agent_type == decision.agent_type][: -decision.delta]
                for agent_id in victims:
                    await self.destroy_agent(agent_id)
                    removed.append(agent_id)
        except SwarmError as exc:
            log.warning("scaling %s by %+d stopped: %s", decision.agent_type, decision.delta, exc)
        if created or removed:
            self._emit(Event(ev.SCALED, time.time(), Severity.INFO, None,
                             f"scaled {decision.agent_type} by {len(created) - len(removed):+d}: {decision.reason}",
                             {"agent_type": decision.agent_type, "created": created, "removed": removed,
                              "reason": decision.reason}))

    def _check_alerts(self, snapshot: SwarmSnapshot) -> None:
        th = self.config.performance_thresholds
        for key, value, limit in (
            ("cpu", snapshot.machine.cpu_percent, th.cpu_critical),
            ("memory", snapshot.machine.memory_percent, th.memory_critical),
        ):
            if value >= limit and self._alert_armed[key]:
                self._alert_armed[key] = False
                self._emit(Event(ev.PERFORMANCE_ALERT, time.time(), Severity.WARNING, None,
                                 f"machine {key} at {value:.1f}% (critical {limit:g}%)",
                                 {"metric": key, "value": value, "limit": limit}))
            elif value < limit - 5.0:  # hysteresis: re-arm only once well below
                self._alert_armed[key] = True

    # --- snapshots -----------------------------------------------------------------------------------

    def get_system_status(self) -> SwarmSnapshot:
        """An immutable snapshot of every agent, the bus and the machine."""
        self._check_running()
        assert self._supervisor is not None and self._table is not None
        now = time.monotonic()
        now_ns = time.monotonic_ns()
        agents = []
        for child in self._supervisor.ordered():
            row = self._table.read(child.slot)
            current = row.pid == child.pid and row.agent_id == child.agent_id
            cpu_pct, tasks_rate = 0.0, 0.0
            prev = self._prev_cpu.get(child.agent_id)
            if current and prev is not None and prev[2] == row.pid and now > prev[0]:
                dt = now - prev[0]
                cpu_pct = max(0.0, (row.cpu_time_s - prev[1]) / dt * 100.0)
                tasks_rate = max(0.0, (row.tasks_done - prev[3]) / dt) if len(prev) > 3 else 0.0
            if current:
                self._prev_cpu[child.agent_id] = (now, row.cpu_time_s, row.pid, row.tasks_done)  # type: ignore[assignment]
            state = child.state
            if current and child.alive and state not in ("stopping", "restarting"):
                state = row.state.label if row.state.label not in ("empty", "stopped") else state
            agents.append(AgentInfo(
                id=child.agent_id, type=child.spec.agent_type, slot=child.slot,
                pid=child.pid if child.alive else 0, state=state, priority=child.priority,
                restarts=child.restarts, cpu_percent=round(cpu_pct, 2),
                rss_bytes=row.rss_bytes if current else 0,
                tasks_done=row.tasks_done if current else 0, tasks_per_s=round(tasks_rate, 3),
                messages_in=row.msgs_in if current else 0,
                messages_out=row.msgs_out if current else 0,
                errors=row.errors if current else 0,
                heartbeat_age_s=round(row.heartbeat_age_s(now_ns), 3) if current else float("inf"),
                uptime_s=round(now - child.started_at, 3) if child.alive else 0.0,
                duty_cycle=child.duty_cycle, latency_p50_us=row.latency_p50_us,
                latency_p99_us=row.latency_p99_us, last_error=child.last_error,
                affinity=child.affinity, gauges=dict(row.gauges) if current else {},
            ))  # fmt: skip
        snapshot = SwarmSnapshot(
            name=self.config.name,
            time=time.time(),
            uptime_s=round(now - self._start_time, 3),
            agents=tuple(agents),
            bus=self._bus_info(),
            machine=_machine_info(),
            events_total=self._events_total,
            alerts_total=self._alerts_total,
            max_agents=self.config.max_agents,
        )
        self._last_snapshot = snapshot
        return snapshot

    def _bus_info(self) -> BusInfo:
        return self._bus_meter.update(totals_of(self._mailboxes.values()))


def _machine_info() -> MachineInfo:
    per_cpu = tuple(psutil.cpu_percent(percpu=True))
    vm = psutil.virtual_memory()
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return MachineInfo(
        cpu_percent=round(sum(per_cpu) / len(per_cpu), 2) if per_cpu else 0.0,
        per_cpu_percent=per_cpu,
        memory_percent=vm.percent,
        memory_used_bytes=vm.total - vm.available,
        memory_total_bytes=vm.total,
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
    )


def _ensure_forkserver() -> None:
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _close_quietly(resource_: Any) -> None:
    try:
        resource_.close()
    except Exception:
        pass
