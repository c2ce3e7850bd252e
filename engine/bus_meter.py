"""Turns the bus's cumulative counters into rates and recent latency percentiles.

Every mailbox keeps lifetime counters and a latency histogram in shared memory.
The meter keeps the previous totals, so each reading covers the interval since the
last one: messages per second and the p50/p99/p99.9 of the messages received in that
interval (the lifetime values are kept when nothing was received).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from engine.channels import ChannelStatistics
from engine.model import BusInfo


def _percentile_us(hist: list[int], q: float) -> float:
    from engine._shm.ring import percentile_from_histogram

    value = percentile_from_histogram(hist, q)
    return round(value / 1000.0, 3) if value is not None else 0.0


class BusMeter:
    """Interval rates and latency percentiles from cumulative bus statistics."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._prev_time: float | None = None
        self._prev_received = 0
        self._prev_hist: list[int] = []
        self._last = BusInfo()

    def update(self, totals: Iterable[ChannelStatistics]) -> BusInfo:
        """A :class:`BusInfo` for the interval since the previous call."""
        total = ChannelStatistics.combine(list(totals))
        now = self._clock()
        hist = list(total.latency_histogram)
        rate = 0.0
        recent = hist
        if self._prev_time is not None and len(self._prev_hist) == len(hist):
            dt = now - self._prev_time
            received = total.received - self._prev_received
            if dt > 0 and received >= 0:
                rate = received / dt
            recent = [max(0, a - b) for a, b in zip(hist, self._prev_hist)]
        if not any(recent):
            recent = hist
        self._prev_time, self._prev_received, self._prev_hist = now, total.received, hist
        self._last = BusInfo(
            sent=total.sent,
            received=total.received,
            bytes=total.bytes_sent,
            full_events=total.full_events,
            rejected=total.rejected,
            redeliveries=total.redelivered,
            latency_p50_us=_percentile_us(recent, 0.50),
            latency_p99_us=_percentile_us(recent, 0.99),
            latency_p999_us=_percentile_us(recent, 0.999),
            messages_per_s=round(rate, 2),
        )
        return self._last

    @property
    def last(self) -> BusInfo:
        """The most recent reading."""
        return self._last


def totals_of(mailboxes: Iterable[Any]) -> list[ChannelStatistics]:
    """Statistics whose sum (``ChannelStatistics.combine``) is the bus total: every ring of every mailbox."""
    return [stats for mb in mailboxes for stats in mb.ring_statistics()]
