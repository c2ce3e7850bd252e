"""The agent process: entry point and main loop.

Design note
-----------
Each agent runs this loop in its own process (forked from the forkserver):

1. hand over any frames waiting in the inbox (control lane first -- the ring
   drains lanes in priority order), a bounded batch at a time so that a flood of
   messages cannot starve the agent's own cycle or its heartbeat;
2. run ``execute_cycle`` when due (every ``cycle_interval``, stretched by the duty
   cycle when throttled: a cycle that took *t* seconds is followed by a rest of
   *t (1 - d) / d*);
3. publish a heartbeat row in the status table every ``heartbeat_interval``;
4. checkpoint (``snapshot()``) every ``checkpoint_interval`` and run
   ``optimize_performance`` every ``optimization_interval``;
5. block on the inbox (spin, then futex sleep) until the next due time.

A frame is acknowledged -- and so leaves its ring -- only after it was handled, so a
crash mid-handling means the next incarnation receives it again (``redelivered``).
A redelivered frame that crashes the handler a second time is dropped as poison and
reported, so one bad message cannot crash-loop an agent forever.

Exceptions escaping the agent's hooks crash the process on purpose (let it crash);
before exiting, the traceback is sent to the orchestrator as a ``CRASH`` report.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import inspect
import logging
import os
import resource
import signal
import sys
import time
import traceback
from collections import deque
from typing import Any, Callable

import msgspec

from engine._runtime import protocol
from engine._runtime.launch import AgentLaunch, mailbox_name
from engine._runtime.protocol import Kind
from engine._shm.directory import Directory
from engine._shm.status_table import AgentState, StatusTable, StatusWriter
from engine.agents.base import BaseAgent
from engine.agents.context import AgentContext
from engine.agents.registry import load_agent_class
from engine.channels import ChannelStatistics, Lane
from engine.communicator import ORCHESTRATOR_SLOT, Communicator, Message, decode_message
from engine.errors import ChannelEmpty, ChannelError, RequestTimeout
from engine import security  # issue 8: frame MAC/AEAD and acl.send

PR_SET_PDEATHSIG = 1
_PAGE = os.sysconf("SC_PAGE_SIZE")


def agent_main(launch: AgentLaunch) -> None:
    """Process entry point: run the agent, then exit with its status code."""
    code = AgentRuntime(launch).run()
    # Leave through multiprocessing's normal exit path so its finalizers run (e.g. the
    # named semaphores numba creates are unlinked instead of reported as leaked).
    sys.exit(code)


def _close_forkserver_alive_fd() -> None:
    """Drop the forkserver's "parent alive" pipe end that every forkserver child inherits.

    multiprocessing hands each child the write end of the pipe by which the
    forkserver notices that its parent died.  If agents kept it, a SIGKILLed
    orchestrator would leave the forkserver -- and with it every agent -- running
    forever.  Closing it lets the forkserver exit, and PR_SET_PDEATHSIG then takes
    the agents down with it.
    """
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver  # private, but stable since Python 3.4
        fd = server._forkserver_alive_fd
        if fd is not None:
            os.close(fd)
            server._forkserver_alive_fd = None
    except (ImportError, AttributeError, OSError):
        pass


def _orchestrator_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Stop(Exception):
    """Raised inside the runtime to unwind to a clean stop."""


class LimitExceeded(BaseException):
    """A configured resource limit was hit (issue 8); crashes the agent with the limit's name.

    A BaseException so that an agent's ``except Exception`` cannot swallow it.
    """

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def _control_value(command: str, value: Any) -> Any:
    """The checked value of a control command (issue 8: fuzzed control frames).

    Raises:
        ValueError, TypeError, OverflowError: the value does not fit the command.
    """
    if command == "priority":
        return int(value)
    if command == "throttle":
        duty = float(value)
        if duty != duty:
            raise ValueError("duty cycle is NaN")
        return duty
    if command == "affinity":
        return tuple(int(c) for c in value)
    return value


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class AgentRuntime:
    """Runs one agent inside its process (see the module docstring for the loop)."""

    def __init__(self, launch: AgentLaunch) -> None:
        self.launch = launch
        cfg = launch.config
        self.heartbeat_interval = cfg.supervisor.heartbeat_interval
        self.checkpoint_interval = cfg.supervisor.checkpoint_interval
        self.optimization_interval = cfg.optimization_interval
        self.paused = launch.paused
        self.hung = False
        self.stop_requested = False
        self.log = logging.getLogger(f"agent.{launch.agent_id}")
        self._stash: deque[Any] = deque()
        self._loop = asyncio.new_event_loop()
        self.cycles = 0
        self.msgs_in = 0
        self.bytes_in = 0
        self.errors = 0
        self.cycle_ms = 0.0
        self._replies: dict[int, Message] = {}
        self.serving = False
        self._latency_at = 0.0
        self._next_beat = 0.0
        self._latency = (0.0, 0.0)

    # --- set-up -----------------------------------------------------------------------

    def _setup_process(self) -> None:
        launch = self.launch
        # Ctrl-C in a terminal reaches the whole process group: the orchestrator decides.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:  # die with our parent (the forkserver, which dies with the orchestrator)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
        _close_forkserver_alive_fd()
        from engine.logging_setup import configure_agent_logging

        configure_agent_logging(launch.agent_id, launch.log_level)  # human or JSON, as the CLI chose
        self._apply_priority(launch.priority)
        if launch.affinity:
            self._apply_affinity(launch.affinity)
        limits = launch.limits
        if limits.cpu_time_s:
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_time_s, limits.cpu_time_s + 1))
            signal.signal(signal.SIGXCPU, self._on_sigxcpu)  # issue 8: say which limit
        if limits.open_files:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))

    def _on_sigxcpu(self, signum: int, frame: Any) -> None:
        raise LimitExceeded("cpu_time_limit_s", f"CPU time limit exceeded: cpu_time_limit_s="
                            f"{self.launch.limits.cpu_time_s} (used {time.process_time():.1f} s)")

    def _limit_of(self, exc: BaseException) -> tuple[str, str] | None:
        """(limit name, message) if ``exc`` means a configured resource limit was hit."""
        if isinstance(exc, LimitExceeded):
            return exc.limit, str(exc)
        if isinstance(exc, OSError) and exc.errno == errno.EMFILE and self.launch.limits.open_files:
            return "open_files_limit", (f"open files limit exceeded: open_files_limit="
                                        f"{self.launch.limits.open_files} ({exc})")
        return None

    def _report_denied(self, record: dict[str, Any]) -> None:
        """A send refused by security.acl.send: an event the orchestrator audits."""
        n = record.get("count", 1)
        self._emit_event(
            "access_denied",
            f"{self.launch.agent_id} may not send to {record.get('recipient')} "
            f"({record.get('recipient_type')}): security.acl.send" + (f" ({n} refusals)" if n > 1 else ""),
            "warning", record)

    def _apply_priority(self, priority: int) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, priority)
        except OSError as exc:
            self.log.warning("cannot set nice value %d: %s", priority, exc)

    def _apply_affinity(self, cpus: tuple[int, ...] | list[int]) -> None:
        try:
            os.sched_setaffinity(0, set(cpus))
        except OSError as exc:
            self.log.warning("cannot pin to cores %s: %s", list(cpus), exc)

    def _attach(self) -> None:
        from engine._shm.mailbox import Mailbox

        launch = self.launch
        self.table = StatusTable.attach(launch.status_name)
        self.status: StatusWriter = self.table.writer(launch.slot)
        self.directory = Directory.attach(launch.directory_name)
        self.inbox = Mailbox.attach(mailbox_name(launch.prefix, launch.slot, launch.generation))
        self.receiver = self.inbox.receiver()
        cfg = launch.config
        # security (issue 8): seal/open frames with the swarm secret; check acl.send
        sealer = security.sealer_for(cfg, launch.secret)
        self.receiver = security.wrap_receiver(self.receiver, sealer)
        guard = None
        if security.SendGuard.needed(cfg.security.acl, launch.agent_type):
            guard = security.SendGuard(cfg.security.acl, launch.agent_type, launch.agent_id, self._report_denied)
        self.communicator = Communicator(
            agent_id=launch.agent_id,
            slot=launch.slot,
            directory=self.directory,
            mailbox_name=lambda slot, gen: mailbox_name(launch.prefix, slot, gen),
            send_timeout=cfg.bus.send_timeout,
            request_timeout=cfg.bus.request_timeout,
            sealer=sealer,
            send_guard=guard,
        )
        self.communicator.set_reply_waiter(self._wait_reply)
        self.communicator.attach_inbox(self.inbox)
        self.context = AgentContext(
            agent_id=launch.agent_id,
            agent_type=launch.agent_type,
            slot=launch.slot,
            incarnation=launch.incarnation,
            config=cfg,
            communicator=self.communicator,
            log=self.log,
            duty_cycle=launch.duty_cycle,
            priority=launch.priority,
            _emit=self._emit_event,
            _stop=self._request_stop,
            _beat=self._beat,
            _table=self.table,  # read-only view for the fault-tolerance agent
            _prefix=launch.prefix,
        )

    def _beat(self) -> None:
        self._heartbeat(None if self.serving else AgentState.WARMING)

    def _request_stop(self) -> None:
        self.stop_requested = True

    def _detach(self) -> None:
        for closer in (
            lambda: self.communicator.close(),
            lambda: self.receiver.close(),
            lambda: self.inbox.close(),
            lambda: self.directory.close(),
            lambda: self.table.close(),
        ):
            try:
                closer()
            except Exception:  # best effort on the way out
                pass

    # --- reports to the orchestrator ----------------------------------------------------

    def _report(self, kind: Kind, payload: bytes, timeout: float = 1.0, *, wake: bool = True) -> None:
        """Send a report to the orchestrator (``wake=False``: quietly, see ``Sender.send``)."""
        self.communicator.send_frame(
            ORCHESTRATOR_SLOT, 0, kind, payload, lane=Lane.HIGH, timeout=timeout, wake=wake
        )

    def _emit_event(self, name: str, message: str, severity: str, data: dict[str, Any]) -> None:
        report = protocol.EventReport(name=name, message=message, severity=severity, data=data)
        try:
            self._report(Kind.EVENT, protocol.encode(report))
        except ChannelError as exc:
            self.log.warning("event %s not delivered: %s", name, exc)

    # --- calling agent hooks ------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        result = fn(*args)
        if inspect.isawaitable(result):
            result = self._loop.run_until_complete(result)
        return result

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> int:
        """Run the agent to completion; returns the process exit code."""
        launch = self.launch
        self._setup_process()
        self._attach()
        now_ns = time.monotonic_ns()
        self.status.update(
            pid=os.getpid(), state=AgentState.STARTING, priority=launch.priority,
            incarnation=launch.incarnation, agent_id=launch.agent_id,
            agent_type=launch.agent_type, started_ns=now_ns, heartbeat_ns=now_ns,
            duty_cycle=launch.duty_cycle,
        )  # fmt: skip
        try:
            t0 = time.monotonic()
            cls = load_agent_class(launch.import_path)
            self.agent: BaseAgent = cls(launch.agent_id, **launch.options)
            self.agent.bind(self.context)
            if launch.checkpoint is not None:
                self._call(self.agent.restore, protocol.decode_any(launch.checkpoint))
            self._call(self.agent.on_start)
            self.serving = True
            self._heartbeat()
            self._report(
                Kind.STARTED,
                protocol.encode(protocol.StartedReport(os.getpid(), launch.incarnation, time.monotonic() - t0)),
            )
            self._main_loop()
        except _Stop:
            pass
        except BaseException as exc:  # the agent crashed: report, then die
            return self._crash(exc)
        return self._clean_stop()

    def _crash(self, exc: BaseException) -> int:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.log.error("agent crashed: %s", text)
        limit = self._limit_of(exc)
        if limit is not None:  # issue 8: the event names the limit
            self._emit_event("limit_exceeded", f"{self.launch.agent_id} {limit[1]}; stopping", "error",
                             {"limit": limit[0]})
        try:
            report = protocol.CrashReport(error=f"{type(exc).__name__}: {exc}", traceback=text)
            self._report(Kind.CRASH, protocol.encode(report), timeout=0.5)
            self._heartbeat(AgentState.CRASHED)
        except Exception:
            pass
        self._detach()
        return 1

    def _clean_stop(self) -> int:
        try:
            self._heartbeat(AgentState.STOPPING)
            self._checkpoint()
            self._call(self.agent.on_stop)
            self._heartbeat(AgentState.STOPPED)
        except BaseException as exc:
            return self._crash(exc)
        self._detach()
        return 0

    def _current_state(self) -> AgentState:
        if self.paused:
            return AgentState.PAUSED
        if self.context.duty_cycle < 0.999:
            return AgentState.THROTTLED
        return AgentState.RUNNING

    def _inbox_latency(self) -> tuple[float, float]:
        """Inbox latency p50/p99 in µs, refreshed about once a second (reading costs ~0.2 ms)."""
        now = time.monotonic()
        if now - self._latency_at >= 1.0:
            self._latency_at = now
            total = ChannelStatistics.combine(self.inbox.ring_statistics())
            p50, p99 = total.latency_percentile_ns(0.5), total.latency_percentile_ns(0.99)
            if p50 is not None and p99 is not None:
                self._latency = (round(p50 / 1000.0, 3), round(p99 / 1000.0, 3))
        return self._latency

    def _heartbeat(self, state: AgentState | None = None) -> None:
        ctx = self.context
        p50, p99 = self._inbox_latency()
        self.status.update(
            gauges=ctx.gauges or None,
            state=state if state is not None else self._current_state(),
            heartbeat_ns=time.monotonic_ns(), cycles=self.cycles, tasks_done=ctx.tasks_done,
            errors=self.errors, msgs_in=self.msgs_in, msgs_out=self.communicator.sent,
            bytes_in=self.bytes_in, bytes_out=self.communicator.sent_bytes,
            cpu_time_s=time.process_time(), rss_bytes=_rss_bytes(),
            duty_cycle=ctx.duty_cycle, cycle_ms=self.cycle_ms, priority=ctx.priority,
            latency_p50_us=p50, latency_p99_us=p99,
        )  # fmt: skip

    def _report_channel_faults(self) -> None:
        """Turn corrupt frames the receiver skipped into ``channel_fault`` events."""
        for fault in self.receiver.take_faults():
            self.errors += 1
            self._emit_event(
                "channel_fault",
                f"corrupt frame from slot {fault.producer} on lane {fault.lane.name.lower()}: "
                f"{fault.reason}; {fault.bytes_lost} bytes skipped to resynchronise",
                "error",
                {"producer": fault.producer, "lane": fault.lane.name.lower(), "reason": fault.reason,
                 "bytes_lost": fault.bytes_lost},
            )

    def _checkpoint(self) -> None:
        state = self._call(self.agent.snapshot)
        if state is None:
            return
        try:
            raw = msgspec.msgpack.encode(state)
            # Quiet: nobody waits for a checkpoint.  The orchestrator takes it at its next
            # drain; the supervisor drains when a child exits, so one sent before a crash
            # or a stop is handled before the restart.
            self._report(Kind.CHECKPOINT, raw, wake=False)
        except (TypeError, msgspec.EncodeError) as exc:
            self.log.error("snapshot() returned a value that cannot be encoded: %s", exc)
        except ChannelError as exc:
            self.log.warning("checkpoint not delivered: %s", exc)

    def _main_loop(self) -> None:
        cfg = self.launch.config
        interval = self.launch.cycle_interval
        now = time.monotonic()
        next_cycle = now
        self._next_beat = now + self.heartbeat_interval
        next_ckpt = now + self.checkpoint_interval if self.checkpoint_interval > 0 else float("inf")
        next_opt = now + cfg.optimization_interval
        agent = self.agent
        while not self.stop_requested:
            while self.hung and not self.stop_requested:  # injected fault: no heartbeat
                time.sleep(0.05)
                self._drain(64, control_only=True)
            self._drain(256)
            if self.stop_requested:
                break
            now = time.monotonic()
            if not self.paused and now >= next_cycle:
                self._call(agent.execute_cycle)
                end = time.monotonic()
                took = end - now
                self.cycles += 1
                self.cycle_ms = took * 1000.0
                duty = self.context.duty_cycle
                rest = took * (1.0 - duty) / duty if duty < 1.0 else 0.0
                next_cycle = max(now + interval, end + rest)
                now = end
            if now >= self._next_beat:
                if not _orchestrator_alive(self.launch.orchestrator_pid):
                    self.log.error("orchestrator (pid %d) is gone; exiting", self.launch.orchestrator_pid)
                    raise _Stop()
                self._report_channel_faults()
                if self.communicator.send_guard is not None:  # issue 8: late acl refusals
                    self.communicator.send_guard.flush()
                self._heartbeat()
                self._next_beat = now + self.heartbeat_interval
            if now >= next_ckpt:
                self._checkpoint()
                next_ckpt = now + self.checkpoint_interval
            if now >= next_opt and not self.paused:
                self._call(agent.optimize_performance)
                next_opt = time.monotonic() + cfg.optimization_interval
            wake = min(self._next_beat, next_ckpt, next_opt, float("inf") if self.paused else next_cycle)
            timeout = wake - time.monotonic()
            if timeout > 0 and not self._stash_ready():
                try:
                    frame = self.receiver.receive(timeout=timeout)
                except ChannelEmpty:
                    continue
                self._dispatch(frame)

    # --- frames ---------------------------------------------------------------------

    def _stash_ready(self) -> bool:
        return bool(self._stash) and not self.paused

    def _drain(self, limit: int, *, control_only: bool = False) -> None:
        """Handle stashed frames, then up to ``limit`` frames already in the inbox."""
        while self._stash and not self.paused and not control_only:
            self._handle_data(self._stash.popleft())
        for i in range(limit):
            if i & 7 == 7 and time.monotonic() >= self._next_beat:
                self._heartbeat()  # a long stream of messages must not look like a hang
                self._next_beat = time.monotonic() + self.heartbeat_interval
            try:
                frame = self.receiver.receive_nowait()
            except ChannelEmpty:
                return
            if control_only and frame.msg_type != Kind.CONTROL:
                self._stash.append(frame)
                continue
            self._dispatch(frame)
            if self.stop_requested:
                return

    def _dispatch(self, frame: Any) -> None:
        kind = frame.msg_type
        if kind == Kind.CONTROL:
            self._handle_control(frame)
        elif kind == Kind.DATA:
            if self.paused or self._stash:
                self._stash.append(frame)  # keep order; stays unacknowledged until handled
            else:
                self._handle_data(frame)
        elif kind == Kind.REPLY:
            self._handle_reply(frame)
        else:
            self.errors += 1
            self.log.warning("unexpected frame kind %s from slot %s", kind, frame.sender)
            self.receiver.ack(frame)

    def _handle_control(self, frame: Any) -> None:
        try:
            cmd = protocol.decode_control(frame.payload)
            value = _control_value(cmd.command, cmd.value)
        except (ValueError, TypeError, OverflowError) as exc:  # issue 8: counted, never fatal
            self.errors += 1
            self.log.warning("malformed control command from slot %s dropped: %s", frame.sender, exc)
            self.receiver.ack(frame)
            return
        self.receiver.ack(frame)
        ctx = self.context
        if cmd.command == "stop":
            self.stop_requested = True
        elif cmd.command == "pause":
            self.paused = True
            self._heartbeat()
        elif cmd.command == "resume":
            self.paused = False
            self._heartbeat()
        elif cmd.command == "priority":
            ctx.priority = value
            self._heartbeat()
        elif cmd.command == "throttle":
            ctx.duty_cycle = min(1.0, max(0.01, value))
            self._call(self.agent.on_throttle, ctx.duty_cycle)
            self._heartbeat()
        elif cmd.command == "checkpoint":
            self._checkpoint()
        elif cmd.command == "affinity":
            self._apply_affinity(value)
        elif cmd.command == "hang":
            self.hung = True

    def _handle_data(self, frame: Any) -> None:
        try:
            msg = decode_message(frame)
        except msgspec.DecodeError as exc:
            self.errors += 1
            self.log.warning("undecodable message from slot %s dropped: %s", frame.sender, exc)
            self.receiver.ack(frame)
            return
        self.msgs_in += 1
        self.bytes_in += len(frame.payload)
        if msg.message_type == "__ping__":
            if msg.expects_reply:
                self.communicator.reply(msg, {"pong": os.getpid(), "incarnation": self.launch.incarnation})
            self.receiver.ack(frame)
            return
        try:
            result = self._call(self.agent.handle_message, msg)
        except BaseException as exc:
            if frame.redelivered:
                self.receiver.ack(frame)  # poison: it crashed an earlier incarnation too
                self._emit_event(
                    "message_dropped",
                    f"dropped message {msg.message_type!r} from {msg.sender_id!r}: "
                    f"it crashed the agent twice ({type(exc).__name__}: {exc})",
                    "error",
                    {"msg_id": msg.msg_id, "sender": msg.sender_id},
                )
            raise
        if msg.expects_reply:
            try:
                self.communicator.reply(msg, result)
            except ChannelError as exc:
                self.log.warning("reply to %s not delivered: %s", msg.sender_id, exc)
        self.receiver.ack(frame)

    def _handle_reply(self, frame: Any) -> None:
        self.receiver.ack(frame)
        try:
            msg = decode_message(frame)
        except msgspec.DecodeError:
            self.errors += 1
            return
        self.msgs_in += 1
        self._replies[frame.correlation_id] = msg

    def _wait_reply(self, msg_id: int, timeout: float) -> Message:
        """Receive until the reply to ``msg_id`` arrives; other data frames wait in the stash."""
        deadline = time.monotonic() + timeout
        while True:
            reply = self._replies.pop(msg_id, None)
            if reply is not None:
                return reply
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeout(f"no reply to request {msg_id:#x} within {timeout:g} s")
            try:
                frame = self.receiver.receive(timeout=min(left, self.heartbeat_interval))
            except ChannelEmpty:
                self._heartbeat()
                continue
            if frame.msg_type == Kind.DATA:
                self._stash.append(frame)
            else:
                self._dispatch(frame)
