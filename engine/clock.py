"""Clocks: the real monotonic clock and a fake one for timing logic in tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells monotonic time in seconds."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class SystemClock:
    """The real clocks (``time.monotonic`` and ``time.time``)."""

    def monotonic(self) -> float:
        """Seconds on the system monotonic clock."""
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()


class FakeClock:
    """A clock that only moves when told to (for deterministic tests)."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self._now

    def wall(self) -> float:
        """The fake wall time (moves with the monotonic time)."""
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
