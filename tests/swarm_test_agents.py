"""Custom agents used by the process tests (loaded by import path, like a user's agents)."""

from __future__ import annotations

import os
import signal
from typing import Any

from engine import BaseAgent, Message


class CounterAgent(BaseAgent):
    """Counts ``inc`` messages; ``get`` replies with the count; state survives restarts."""

    agent_type = "counter"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.count = 0
        self.restored = False

    def handle_message(self, message: Message) -> Any:
        if message.message_type == "inc":
            self.count += int(message.payload or 1)
            self.task_done()
            return self.count
        if message.message_type == "get":
            return {"count": self.count, "restored": self.restored, "pid": os.getpid()}
        if message.message_type == "crash":
            raise RuntimeError(f"asked to crash: {message.payload}")
        if message.message_type == "exit":
            self.context.request_stop()
            return "bye"
        if message.message_type == "publish":  # a quiet publication (does not wake the orchestrator)
            self.context.publish("counter", {"count": self.count, "tag": message.payload})
            return "published"
        return None

    def snapshot(self) -> Any:
        return {"count": self.count}

    def restore(self, state: Any) -> None:
        self.count = int(state["count"])
        self.restored = True


class AsyncCycleAgent(BaseAgent):
    """The original spec's example: async hooks work as written."""

    agent_type = "async_cycle"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.cycles = 0
        self.optimized = 0

    async def execute_cycle(self) -> None:
        self.cycles += 1
        self.set_gauge("cycles", self.cycles)

    async def _agent_specific_optimization(self) -> None:
        self.optimized += 1
        self.set_gauge("optimized", self.optimized)

    async def handle_message(self, message: Message) -> Any:
        return {"cycles": self.cycles, "optimized": self.optimized}


class CrashOnStartAgent(BaseAgent):
    """Raises in ``on_start``: a crash loop the supervisor must give up on."""

    agent_type = "crash_on_start"

    def on_start(self) -> None:
        raise ValueError("cannot start: the widget is missing")


class CycleCrashAgent(BaseAgent):
    """Crashes in its third cycle with a recognisable message."""

    agent_type = "cycle_crash"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.n = 0

    def execute_cycle(self) -> None:
        self.n += 1
        if self.n == 3:
            raise ZeroDivisionError("cycle three divides by zero")


class SegfaultAgent(BaseAgent):
    """Kills itself with SIGSEGV when asked (a native crash, no Python traceback)."""

    agent_type = "segfault"

    def handle_message(self, message: Message) -> Any:
        if message.message_type == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        return None


class LeakAgent(BaseAgent):
    """Leaks memory steadily: ``leak_mb`` MiB per cycle (touched, so it is resident),
    up to ``max_leak_mb`` in total so that a failing test cannot exhaust the machine."""

    agent_type = "leaker"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.leak_mb = float(options.get("leak_mb", 2.0))
        self.max_leak_mb = float(options.get("max_leak_mb", 1024.0))
        self.hoard: list[bytes] = []

    def execute_cycle(self) -> None:
        if len(self.hoard) * self.leak_mb < self.max_leak_mb:
            self.hoard.append(b"\xa5" * int(self.leak_mb * 2**20))
        self.set_gauge("leaked_mb", len(self.hoard) * self.leak_mb)


class FloodAgent(BaseAgent):
    """Sends data messages as fast as it can (issue 8: the load test's flooding agent).

    Options: ``targets`` (agent ids, ``"orchestrator"`` allowed; default the
    orchestrator), ``payload_bytes`` (default 64), ``slice_s`` (sending time per
    cycle, default 0.05 s), ``start_after_s`` (stay quiet this long after start).
    A full lane blocks for the bus's ``send_timeout`` and then counts as ``full``;
    gauges ``sent`` and ``full``; ``flood_status`` replies with the counters.
    """

    agent_type = "flooder"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.targets = list(options.get("targets") or ["orchestrator"])
        self.blob = b"\x5a" * int(options.get("payload_bytes", 64))
        self.slice_s = float(options.get("slice_s", 0.05))
        self.start_after_s = float(options.get("start_after_s", 0.0))
        self.sent = 0
        self.full = 0
        self.errors = 0
        self._i = 0
        self._t0 = 0.0

    def on_start(self) -> None:
        import time

        self._t0 = time.monotonic()

    def execute_cycle(self) -> None:
        import time

        from engine.errors import ChannelError, ChannelFull

        now = time.monotonic()
        if now - self._t0 < self.start_after_s:
            return
        end = now + self.slice_s
        send = self.communicator.send_message
        targets = self.targets
        while time.monotonic() < end:
            target = targets[self._i % len(targets)]
            self._i += 1
            try:
                send(recipient_id=target, message_type="flood", payload=self.blob)
                self.sent += 1
            except ChannelFull:
                self.full += 1
            except ChannelError:  # recipient restarting or gone: try the next one
                self.errors += 1
        self.set_gauge("sent", self.sent)
        self.set_gauge("full", self.full)

    def handle_message(self, message: Message) -> Any:
        if message.message_type == "flood_status":
            return {"sent": self.sent, "full": self.full, "errors": self.errors}
        return None

    def snapshot(self) -> Any:
        return {"sent": self.sent, "full": self.full}

    def restore(self, state: Any) -> None:
        self.sent = int(state.get("sent", 0))
        self.full = int(state.get("full", 0))


class ChattyAgent(BaseAgent):
    """Sends a message to ``target`` when asked (issue 8: access-control tests).

    ``send_to`` (payload: recipient id) sends one ``hello`` and replies with
    ``{"ok": True}`` or ``{"ok": False, "error": "<ExceptionType>: ..."}``;
    ``fd_hog`` opens files until it fails (the open-files limit); ``burn`` spins the
    CPU for ``payload`` seconds (the CPU-time limit); any other message is counted
    and ``received`` replies with the list of (sender, type) seen.
    """

    agent_type = "chatty"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.received: list[list[str]] = []
        self.hoard: list[Any] = []

    def handle_message(self, message: Message) -> Any:
        kind = message.message_type
        if kind == "send_to":
            try:
                self.communicator.send_message(recipient_id=str(message.payload), message_type="hello",
                                               payload=self.agent_id)
            except Exception as exc:  # noqa: BLE001 - the test wants to see the refusal
                return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            return {"ok": True}
        if kind == "fd_hog":
            while True:
                self.hoard.append(open(os.devnull, "rb"))  # noqa: SIM115 - held on purpose
        if kind == "burn":
            import time

            end = time.process_time() + float(message.payload or 5.0)
            x = 0
            beat = time.monotonic() + 0.1
            while time.process_time() < end:
                x += 1
                if not x & 0xFFFF and time.monotonic() > beat:  # stay alive for the supervisor
                    self.context.heartbeat()
                    beat = time.monotonic() + 0.1
            return x
        if kind == "received":
            return self.received
        self.received.append([message.sender_id, kind])
        return None
