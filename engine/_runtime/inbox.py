"""The orchestrator's inbox pump: wakes the event loop when agents report something.

A daemon thread sleeps on the inbox doorbell (``Receiver.wait``, a futex wait that
consumes nothing) and asks the loop to drain; all receiving and handling happens on
the loop thread.  So there is a single consumer, no lock, and the supervisor can
drain synchronously when a child exits (its crash report, sent before it died, is
then handled before the exit).

Agents send "latest value" traffic (publications, checkpoints) *quietly*: those
frames do not ring the doorbell, so they do not wake this thread; they are handled
at the next drain -- one caused by any waking frame, the orchestrator's own
:meth:`InboxPump.refresh` before each snapshot, or the watcher's safety-net timeout
(``poll_timeout``; ``Receiver.wait`` re-checks the rings after it).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable

from engine.errors import ChannelEmpty

log = logging.getLogger("engine.inbox")


class InboxPump:
    """Drains a receiver on an asyncio loop, woken by a watcher thread."""

    def __init__(
        self,
        receiver: Any,
        handle: Callable[[Any], None],
        loop: asyncio.AbstractEventLoop,
        *,
        poll_timeout: float = 0.5,
        on_faults: Callable[[list[Any]], None] | None = None,
    ) -> None:
        self.receiver = receiver
        self._handle = handle
        self._on_faults = on_faults
        self._loop = loop
        self._poll_timeout = poll_timeout
        self._running = False
        self._drained = threading.Event()
        self._thread: threading.Thread | None = None
        self._draining = False
        self.handled = 0

    def start(self) -> None:
        """Start the watcher thread."""
        self._running = True
        self._thread = threading.Thread(target=self._watch, name="swarm-inbox", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while self._running:
            try:
                ready = self.receiver.wait(self._poll_timeout)
            except Exception:  # the mailbox was closed under us during shutdown
                if self._running:
                    log.exception("inbox watcher failed")
                return
            if not ready or not self._running:
                continue
            self._drained.clear()
            try:
                self._loop.call_soon_threadsafe(self._drain_and_signal)
            except RuntimeError:  # loop closed
                return
            self._drained.wait(self._poll_timeout)

    def _drain_and_signal(self) -> None:
        try:
            self.drain()
        finally:
            self._drained.set()

    def drain(self, limit: int = 100_000) -> int:
        """Handle every frame now in the inbox (loop thread only); returns how many."""
        n = 0
        outer = self._draining
        self._draining = True
        try:
            while n < limit:
                try:  # batches also publish the receive counters to shared memory
                    frames = self.receiver.receive_batch(min(256, limit - n), timeout=0)
                except ChannelEmpty:
                    break
                for frame in frames:
                    try:
                        self._handle(frame)
                    except Exception:
                        log.exception("handling an inbox frame failed")
                    finally:
                        self.receiver.ack(frame)
                n += len(frames)
        finally:
            self._draining = outer
        self.handled += n
        faults = self.receiver.take_faults()
        if faults and self._on_faults is not None:
            self._on_faults(faults)
        return n

    def refresh(self) -> int:
        """Drain now if that is safe here; returns how many frames were handled.

        For readers of state that quiet frames update (the snapshot's publications):
        it drains only when called on the pump's own event loop and not from inside
        a drain (a frame handler), and does nothing otherwise -- the receiver has a
        single consumer, the loop thread.  On an empty inbox it costs one poll of
        the active rings.
        """
        if self._draining or not self._running:
            return 0
        try:
            if asyncio.get_running_loop() is not self._loop:
                return 0
        except RuntimeError:  # no running loop in this thread
            return 0
        return self.drain()

    def stop(self) -> None:
        """Stop the watcher thread (waits for it)."""
        self._running = False
        self._drained.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self._poll_timeout + 1)
            self._thread = None
