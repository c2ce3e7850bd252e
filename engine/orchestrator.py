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

from engine import events as ev
from engine._runtime import protocol
from engine._runtime.inbox import InboxPump
from engine._runtime.launch import AgentLaunch, ResourceLimits, mailbox_name
from engine._runtime.protocol import Kind
from engine._runtime.supervisor import Child, ChildSpec, Supervisor
from engine._shm import segments
from engine._shm.directory import Directory, DirectoryEntry
from engine._shm.status_table import StatusTable
from engine.agents.registry import BUILTIN_AGENTS, builtin_types, load_agent_class
from engine.channels import Lane
from engine.communicator import ORCHESTRATOR_ID, Communicator, Message
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
from engine.model import SwarmSnapshot
from engine._runtime.agent_control import AgentControl
from engine._runtime.snapshots import SnapshotBuilder
from engine._runtime.control_loops import ControlLoops
from engine._runtime.guard import Guard
from engine._runtime.reports import ReportRouter
from engine.dispatch import (  # LearnedDispatch & co: issue 5, learned dispatch
    LEARNED_MODEL_TOPIC,
    TASK_RESULTS_MESSAGE,
    LearnedDispatch,
    RoundRobin,
    TaskDispatcher,
    TaskResult,
)
from engine.scaling import ScalingPolicy, ThresholdScaling
from engine import security  # issue 8: frame MAC/AEAD, acl.send / acl.control

log = logging.getLogger("engine.orchestrator")


#: Longest sleep of the orchestrator's inbox watcher between doorbell checks: a safety net,
#: and the latency bound of the frames agents send quietly (publications, checkpoints),
#: which do not ring the doorbell (``get_system_status`` also drains before each snapshot).
INBOX_SAFETY_SLEEP_S = 0.5

#: Modules the forkserver imports once, so that every agent starts with them loaded.
#: (Missing optional modules are skipped by the forkserver.)
PRELOAD = ["engine._runtime.agent_process", "numpy", "numba", "engine.kernels",
           *sorted({path.split(":")[0] for path in BUILTIN_AGENTS.values()})]
_COMMON_AGENT_KEYS = frozenset(
    {"count", "restart", "priority", "cycle_interval", "rss_limit_mb", "cpu_time_limit_s", "open_files_limit"}
)


class Orchestrator(AgentControl):
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
        self._start_time = time.monotonic()
        self._events_total = 0
        self._alerts_total = 0
        self._last_snapshot: SwarmSnapshot | None = None
        self._id_counters: dict[str, int] = {}
        self._snapshots: SnapshotBuilder | None = None
        self._status_handlers: list[Callable[[SwarmSnapshot], None]] = []
        self._guard = Guard()
        self._secret: bytes | None = None  # security (issue 8): per-swarm secret, never on disk
        self._sealer: security.FrameSealer | None = None
        self._reports = ReportRouter(self)
        self._loops = ControlLoops(self)
        # Quarantine (fault tolerance): agent id -> (reason, paused by the quarantine).
        # The dispatcher never chooses a quarantined agent; "release" lifts it.
        self._quarantined: dict[str, tuple[str, bool]] = {}
        # load_balancing: the learned policy (join-shortest-queue until a learning agent
        # publishes a model); see _learned_model / _send_to_learner below (issue 5).
        self.dispatcher = TaskDispatcher(
            self._dispatch_request, self._dispatch_candidates,
            LearnedDispatch(self._learned_model, self._send_to_learner) if self.config.load_balancing
            else RoundRobin())

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
            self._snapshots = SnapshotBuilder(self._table)
            self._directory = Directory.create(f"{self._prefix}-dir", slots)
            self._mailboxes[0] = Mailbox.create(
                mailbox_name(self._prefix, 0, 0), producers=slots, lane_bytes=cfg.channel_size
            )
            self._generations[0] = 0
            # security (issue 8): a fresh secret per swarm when the bus is protected
            if cfg.security.authenticate or cfg.security.encrypt:
                self._secret = security.new_secret()
            self._sealer = security.sealer_for(cfg, self._secret)
            self._communicator = Communicator(
                agent_id=ORCHESTRATOR_ID, slot=0, directory=self._directory,
                mailbox_name=lambda slot, gen: mailbox_name(self._prefix, slot, gen),
                send_timeout=cfg.bus.send_timeout, request_timeout=cfg.bus.request_timeout,
                sealer=self._sealer, send_guard=self._orchestrator_send_guard(),
            )  # fmt: skip
            self._communicator.set_reply_waiter(self._wait_reply)
            loop = asyncio.get_running_loop()
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            log.info("starting the agent forkserver (preloading %s)", ", ".join(PRELOAD))
            await loop.run_in_executor(None, _warm_forkserver, ctx)
            self._supervisor = Supervisor(
                config=cfg.supervisor, mp_context=ctx, table=self._table,
                make_launch=self._make_launch, emit=self.emit, drain_reports=self._drain_inbox,
            )  # fmt: skip
            self._supervisor.send_control = self._send_control_to
            # The watcher thread sleeps on the doorbell; wake-ups are fenced (membarrier), so its
            # safety-net timeout can be long instead of polling 20 times a second.
            inbox = self._mailboxes[0].receiver(sleep_s=INBOX_SAFETY_SLEEP_S)
            self._pump = InboxPump(security.wrap_receiver(inbox, self._sealer),
                                   self._reports.handle, loop, on_faults=self._reports.channel_faults)
            self._install_access_control()  # security (issue 8)
            self._communicator.attach_inbox(self._mailboxes[0])
            self._pump.start()
        except BaseException:
            await self._release()
            raise
        self._started = True
        self._start_time = time.monotonic()
        self._loops.start()
        self.emit(Event(ev.SWARM_STARTED, time.time(), Severity.INFO, None,
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
        available = self.available_types()
        for name, section in cfg.agents.items():
            if name in available:
                out.append((name, section))
            elif section.count:
                log.warning("agent type %r is configured (count %d) but not available in this build",
                            name, section.count)
        out.extend(cfg.custom_agents.items())
        return out

    async def shutdown(self) -> None:
        """Stop every agent (reverse start order), the loops, and remove all shared memory."""
        if self._closed:
            return
        self._closed = True
        await self._loops.stop()
        try:
            if self._supervisor is not None:
                await self._supervisor.shutdown()
        finally:
            if self._pump is not None:
                self._drain_inbox()
            self._reports.cancel_pending()
            if self._started:
                self.emit(Event(ev.SWARM_STOPPED, time.time(), Severity.INFO, None, "swarm stopped"))
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
        return sorted({*builtin_types(), *self.config.custom_agents})

    def _resolve_type(self, agent_type: str) -> tuple[str, dict[str, Any], Any]:
        """(import path, default options, config section or None) for ``agent_type``."""
        cfg = self.config
        if agent_type in cfg.custom_agents:
            section = cfg.custom_agents[agent_type]
            return section.import_path, section.option_kwargs(), section
        if agent_type in builtin_types():
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

    async def create_agent(self, agent_type: str, id: str | None = None, *, actor: str = "api",
                           **kwargs: Any) -> str:
        """Start a new agent of ``agent_type``; returns its id.

        Keyword arguments become the agent's options (overriding configured ones);
        ``priority``, ``restart`` and ``cycle_interval`` are taken by the supervisor.
        ``actor`` names who asked (for the audit log: "api", "ui", an agent id...).

        Raises:
            UnknownAgentType: the type is neither built in nor configured.
            DuplicateAgentId: an agent with ``id`` exists.
            MaxAgentsReached: ``max_agents`` agents exist already.
        """
        self._check_running()
        assert self._supervisor is not None and self._directory is not None
        self._guard.authorize(actor, "create", agent_type)
        try:
            agent_id = await self._create_agent(agent_type, id, kwargs)
        except (SwarmError, ValueError) as exc:
            self._guard.audit(actor, "create", id or agent_type, "error", agent_type=agent_type, error=str(exc))
            raise
        self._guard.audit(actor, "create", agent_id, "ok", agent_type=agent_type)
        return agent_id

    async def _create_agent(self, agent_type: str, id: str | None, kwargs: dict[str, Any]) -> str:
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
        self.emit(Event(ev.AGENT_CREATED, time.time(), Severity.INFO, agent_id,
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

    async def destroy_agent(self, agent_id: str, *, actor: str = "api") -> None:
        """Stop an agent for good and release its slot and mailbox.

        Raises:
            UnknownAgent: no agent has that id.
        """
        child = self._child(agent_id)
        assert self._supervisor is not None
        self._guard.authorize(actor, "destroy", agent_id)
        await self._supervisor.stop(child)
        self._forget(child)
        self._guard.audit(actor, "destroy", agent_id, "ok", exit=child.last_exit)
        self.emit(Event(ev.AGENT_DESTROYED, time.time(), Severity.INFO, agent_id,
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
        if self._snapshots is not None:
            self._snapshots.forget(child.agent_id)
        self._reports.forget_agent(child.agent_id)
        self._quarantined.pop(child.agent_id, None)

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
        self._reports.message_handlers.append(handler)

    def add_status_handler(self, handler: Callable[[SwarmSnapshot], None]) -> None:
        """Call ``handler(snapshot)`` with the snapshot taken each ``monitoring_interval``."""
        self._status_handlers.append(handler)

    def add_audit_sink(self, sink: Callable[[dict[str, Any]], None]) -> None:
        """Call ``sink(record)`` for every action that changes the swarm (and every denial).

        A record has ``time``, ``actor``, ``action``, ``target``, ``outcome`` and details.
        """
        self._guard.audit_sinks.append(sink)

    def add_authorizer(self, check: Callable[[str, str, str], None]) -> None:
        """Install ``check(actor, action, target)``; it raises ``AccessDenied`` to refuse."""
        self._guard.authorizers.append(check)

    async def submit_task(self, kind: str, payload: Any = None, *, agent_type: str = "compute",
                          features: dict[str, float] | None = None,
                          timeout: float | None = None) -> TaskResult:
        """Run a task on an agent of ``agent_type`` chosen by the dispatch policy.

        The task is a request with message type ``kind``; the agent's reply is the result.

        Raises:
            NoAgentAvailable: no running agent of that type.
            RequestTimeout: the chosen agent did not answer in time.
        """
        self._check_running()
        return await self.dispatcher.submit(kind, payload, agent_type=agent_type,
                                            features=features, timeout=timeout)

    def set_dispatch_policy(self, policy: Any) -> None:
        """Replace the policy that chooses an agent for each task."""
        self.dispatcher.policy = policy

    # --- learned dispatch (issue 5): decisions here, learning in the learning agent ----------

    def _learned_model(self) -> Any:
        """The service-time model a learning agent published last (``None``: none yet)."""
        by_agent = self._reports.published.get(LEARNED_MODEL_TOPIC)
        return next(iter(by_agent.values()), None) if by_agent else None

    def _send_to_learner(self, batch: list[dict[str, Any]]) -> bool:
        """Send completed-task records to the first running learning agent, if any.

        Never waits: with the learner's lane full the batch is refused (ChannelFull,
        counted by the policy as dropped) rather than stalling the event loop.
        """
        if self._supervisor is None or self._communicator is None:
            return False
        for child in self._supervisor.ordered():
            if child.spec.agent_type == "learning" and child.alive and child.ready.is_set():
                msg = Message(recipient_id=child.agent_id, message_type=TASK_RESULTS_MESSAGE,
                              payload=batch, priority="low")
                self._communicator.send_message(msg, timeout=0)
                return True
        return False

    async def _dispatch_request(self, agent_id: str, kind: str, payload: Any, timeout: float | None) -> Any:
        reply = await self.communicator.request(agent_id, kind, payload, timeout=timeout)
        return reply.payload

    def _dispatch_candidates(self, agent_type: str) -> list[str]:
        if self._supervisor is None:
            return []
        return [c.agent_id for c in self._supervisor.ordered()
                if c.spec.agent_type == agent_type and c.alive and c.ready.is_set()
                and not c.paused and c.state not in ("failed", "stopping", "restarting")
                and c.agent_id not in self._quarantined]

    def bus_statistics(self) -> Any:
        """The whole bus's counters and latency histogram as one ``ChannelStatistics``."""
        from engine.bus_meter import totals_of
        from engine.channels import ChannelStatistics

        self._check_running()
        return ChannelStatistics.combine(totals_of(list(self._mailboxes.values())))

    def get_bus_statistics(self) -> dict[str, Any]:
        """Statistics of every channel of the bus (``"sender->recipient"``) and the total.

        Same fields as :meth:`Communicator.get_statistics`, over every mailbox.
        """
        from engine.channels import ChannelStatistics
        from engine.communicator import summarize

        self._check_running()
        names = {0: ORCHESTRATOR_ID, **{slot: c.agent_id for slot, c in self._slots.items()}}
        groups: dict[str, list[Any]] = {}
        for slot, mailbox in list(self._mailboxes.items()):
            for (prod, _lane), stats in mailbox.statistics().channels.items():
                key = f"{names.get(prod, f'slot-{prod}')}->{names.get(slot, f'slot-{slot}')}"
                groups.setdefault(key, []).append(stats)
        combined = {k: ChannelStatistics.combine(v) for k, v in groups.items()}
        return {
            "channels": {k: summarize(v) for k, v in sorted(combined.items())},
            "total": summarize(ChannelStatistics.combine(list(combined.values()))),
        }

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
            secret=self._secret,
        )  # fmt: skip

    # --- security (issue 8): access control from security.acl -------------------------------

    def _orchestrator_send_guard(self) -> security.SendGuard | None:
        acl = self.config.security.acl
        if not security.SendGuard.needed(acl, ORCHESTRATOR_ID):
            return None
        return security.SendGuard(acl, ORCHESTRATOR_ID, ORCHESTRATOR_ID, self._audit_denied_send)

    def _install_access_control(self) -> None:
        """acl.control as an authorizer; agents' refused sends (events) into the audit log."""
        acl = self.config.security.acl
        if acl.control:
            def type_of(agent_id: str) -> str | None:
                child = self._supervisor.children.get(agent_id) if self._supervisor else None
                return child.spec.agent_type if child is not None else None

            self.add_authorizer(security.control_authorizer(acl, type_of))
        if acl.send:
            self.add_event_handler(
                "access_denied",
                lambda e: self._audit_denied_send(dict(e.data), actor=e.agent_id or "?"))

    def _audit_denied_send(self, record: dict[str, Any], actor: str = ORCHESTRATOR_ID) -> None:
        self._guard.audit(actor, "send", str(record.get("recipient", "")), "denied",
                          **{k: v for k, v in record.items() if k != "recipient"})

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

    def _wait_reply(self, msg_id: int, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        self._reports.pending_replies[msg_id] = fut

        async def waiter() -> Message:
            # asyncio.wait, not wait_for: before Python 3.12, wait_for returns the result
            # when the reply and a cancellation arrive together, and the cancellation is lost
            # (a demo that was told to stop kept sending requests for ever).
            try:
                done, _ = await asyncio.wait((fut,), timeout=timeout)
                if not done:
                    raise RequestTimeout(f"no reply to request {msg_id:#x} within {timeout:g} s")
                return fut.result()
            finally:
                self._reports.pending_replies.pop(msg_id, None)
                if not fut.done():
                    fut.cancel()

        return waiter()

    def child_in_slot(self, slot: int) -> Child | None:
        """The supervisor record of the agent in ``slot`` (internal use)."""
        return self._slots.get(slot)

    def check_heartbeats(self) -> None:
        """Kill agents whose heartbeat is too old (called by the control loop)."""
        if self._supervisor is not None:
            self._supervisor.check_heartbeats()

    def notify_status(self, snapshot: SwarmSnapshot) -> None:
        """Hand a snapshot to every status handler (called by the control loop)."""
        for handler in list(self._status_handlers):
            try:
                handler(snapshot)
            except Exception:
                log.exception("status handler %r failed", handler)

    def emit(self, event: Event) -> None:
        """Count, log and dispatch an event to the handlers (internal use)."""
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

    # --- snapshots -----------------------------------------------------------------------------------

    def get_system_status(self) -> SwarmSnapshot:
        """An immutable snapshot of every agent, the bus and the machine.

        Called on the orchestrator's event loop, it first drains the inbox, so
        publications agents sent quietly (not waking the loop) are included.
        """
        self._check_running()
        assert self._supervisor is not None and self._snapshots is not None
        if self._pump is not None:
            self._pump.refresh()
        snapshot = self._snapshots.build(
            name=self.config.name,
            children=self._supervisor.ordered(),
            started_at=self._start_time,
            mailboxes=self._mailboxes.values(),
            events_total=self._events_total,
            alerts_total=self._alerts_total,
            max_agents=self.config.max_agents,
            extra=self._extra(),
        )
        self._last_snapshot = snapshot
        return snapshot

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {topic: dict(by_agent) for topic, by_agent in self._reports.published.items()}
        if self._quarantined:
            extra["quarantined"] = {aid: reason for aid, (reason, _) in self._quarantined.items()}
        stats = self.dispatcher.stats
        if stats.submitted:
            extra["dispatch"] = {
                "policy": self.dispatcher.policy.name, "submitted": stats.submitted,
                "completed": stats.completed, "failed": stats.failed,
                "per_agent": dict(stats.per_agent),
            }  # fmt: skip
        return extra


def _warm_forkserver(ctx: Any) -> None:
    """Start the forkserver and wait until its preloading is done.

    The forkserver imports ``PRELOAD`` before it serves its first request, so forking
    one no-op process here moves that one-time cost (about a second for numba) into
    ``start()`` -- agent starts and restarts afterwards cost only a fork.
    """
    proc = ctx.Process(target=_noop, name="swarm:warm-up")
    proc.start()
    proc.join()
    proc.close()


def _noop() -> None:
    """Target of the forkserver warm-up process."""


def _close_quietly(resource_: Any) -> None:
    try:
        resource_.close()
    except Exception:
        pass
