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
