"""Agents used by the benchmarks (loaded by import path, like a user's custom agents)."""

from __future__ import annotations

import os
import time
from typing import Any

from engine import BaseAgent

TASK_KINDS = ("light", "heavy")


def spin(units: int) -> int:
    """Real CPU work: ``units`` steps of a linear congruential generator (pure Python)."""
    x = 12345
    for _ in range(units):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    return x


class BenchWorker(BaseAgent):
    """A compute-like worker whose speed follows its duty cycle.

    A task (message type ``light`` or ``heavy``, payload ``{"units": int}``) is real CPU
    work; when the agent is throttled to duty cycle ``d`` it then rests
    ``work * (1 - d) / d``, as the runtime rests between throttled cycles, so a worker
    at ``d = 1/3`` serves a task in three times the time and uses a third of a core.
    The reply carries the measured work and rest times.
    """

    agent_type = "bench_worker"

    def handle_message(self, message: Any) -> Any:
        if message.message_type not in TASK_KINDS:
            return None
        payload = message.payload if isinstance(message.payload, dict) else {}
        units = int(payload.get("units", 10_000))
        t0 = time.perf_counter()
        spin(units)
        work = time.perf_counter() - t0
        duty = self.duty_cycle
        rest = work * (1.0 - duty) / duty if duty < 1.0 else 0.0
        if rest > 0:
            time.sleep(rest)
        self.task_done()
        self.context.heartbeat()  # a backlog of slow tasks is handled in one go: stay visibly alive
        return {"work_s": work, "rest_s": rest, "duty": duty, "pid": os.getpid()}
