"""What the fault-tolerance agent remembers about each observed agent between
cycles, and the inbox readings it derives from shared-memory statistics.

:class:`AgentTrack` keeps an agent's previous status-row counters (to turn them into
rates), its life (pid and incarnation, to notice a restart) and its attached inbox.
The functions turn inbox statistics into the values the agent scores: the fill of
the fullest data lane and the p99 latency of the messages received since the last
reading.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.anomaly.health_signals import MiB

__all__ = [
    "AgentTrack",
    "close_quietly",
    "inbox_fill",
    "interval_latency_p99_ms",
    "rss_limit_bytes",
]


class AgentTrack:
    """What the agent remembers about one observed agent between cycles."""

    __slots__ = (
        "cpu",
        "cycle_max",
        "errors",
        "fill",
        "hist",
        "incarnation",
        "mailbox",
        "mb_gen",
        "msgs_in",
        "msgs_out",
        "pid",
        "restarted_at",
        "t",
        "tasks",
    )

    def __init__(self) -> None:
        self.t = 0.0
        self.pid = 0
        self.incarnation = -1
        self.cpu = self.msgs_in = self.msgs_out = self.errors = self.tasks = 0.0
        self.hist: tuple[int, ...] = ()
        self.restarted_at = -math.inf
        self.cycle_max = 0.0
        self.mailbox: Any = None
        self.mb_gen = -1
        self.fill = 0.0

    def is_new_life(self, row: Any) -> bool:
        """Whether the status ``row`` is of another process than the last one seen."""
        return bool(row.incarnation != self.incarnation or row.pid != self.pid)

    def remember(self, row: Any, now: float) -> None:
        """Keep the counters of ``row`` (read at ``now``) for the next cycle's rates."""
        self.t, self.pid, self.incarnation = now, row.pid, row.incarnation
        self.cpu, self.msgs_in = row.cpu_time_s, row.msgs_in
        self.msgs_out = row.msgs_out
        self.errors, self.tasks = row.errors, row.tasks_done

    def inbox_statistics(
        self, mailbox_name: Callable[[int, int], str], slot: int, generation: int
    ) -> Any:
        """The statistics of the agent's inbox, attaching it (again, for a new
        ``generation``) as needed; None while it cannot be read."""
        if self.mailbox is None or self.mb_gen != generation:
            close_quietly(self.mailbox)
            self.mailbox, self.mb_gen = None, generation
            try:
                from engine.channels import Mailbox

                self.mailbox = Mailbox.attach(mailbox_name(slot, generation))
            except Exception:  # it is being created or was just removed: next cycle
                return None
        try:
            return self.mailbox.statistics()
        except Exception:
            close_quietly(self.mailbox)
            self.mailbox = None
            return None

    def close(self) -> None:
        """Unmap the attached inbox, if any."""
        close_quietly(self.mailbox)


def inbox_fill(stats: Any) -> float:
    """The fill of the fullest data lane of an inbox (0..1), from its statistics."""
    from engine.channels import Lane

    fills = [ch.queued_bytes / ch.capacity for (_, lane), ch in stats.channels.items()
             if lane != Lane.CONTROL and ch.capacity]
    return max(fills or [0.0])


def interval_latency_p99_ms(
    hist: tuple[int, ...] | list[int], previous: tuple[int, ...]
) -> float | None:
    """p99 latency (ms) of the messages counted in ``hist`` since the cumulative
    histogram ``previous``; None without a comparable previous reading or messages."""
    if not previous or len(previous) != len(hist):
        return None
    delta = [max(0, a - b) for a, b in zip(hist, previous)]
    if not any(delta):
        return None
    from engine.channels import percentile_from_histogram

    ns = percentile_from_histogram(delta, 0.99)
    return None if ns is None else ns / 1e6


def rss_limit_bytes(cfg: Any, agent_type: str) -> int:
    """The configured ``rss_limit_mb`` of ``agent_type`` in bytes (0: no limit)."""
    section = cfg.agent_section(agent_type)
    return 0 if section is None else int(section.rss_limit_mb or 0) * MiB


def close_quietly(resource: Any) -> None:
    """Close ``resource`` (if any), ignoring errors: it may already be gone."""
    if resource is not None:
        try:
            resource.close()
        except Exception:
            pass
