"""Channels between real processes: crash redelivery, cross-process backpressure, wake-ups.

Workers are started with the ``spawn`` method, so they share nothing with the
test process but the named segments.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine._shm.segments import list_segments, new_swarm_prefix
from engine.channels import ChannelEmpty, Lane, Mailbox

CTX = mp.get_context("spawn")
JOIN_S = 30.0


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh segment-name prefix; no segment with it may survive the test."""
    p = new_swarm_prefix()
    yield p
    assert list_segments(p) == []


@pytest.fixture
def inbox(prefix: str) -> Iterator[Mailbox]:
    mb = Mailbox.create(f"{prefix}-inbox", producers=3, lane_bytes=4096)
    yield mb
    mb.close()
    mb.unlink()


# --- worker bodies (module level so that spawn can import them) ---------------------------


def consumer_dies_mid_handling(name: str, report: Any) -> None:
    """Acknowledge three frames, take three more without acknowledging, then hang."""
    mb = Mailbox.attach(name)
    rx = mb.receiver()
    for _ in range(3):
        rx.ack(rx.receive(timeout=JOIN_S))
    held = [rx.receive(timeout=JOIN_S) for _ in range(3)]
    report.put([f.payload for f in held])
    time.sleep(3600)  # "handling" the held frames until SIGKILLed


def flooding_producer(name: str, n: int) -> None:
    """Send ``n`` numbered NORMAL frames (blocking for room), then a CONTROL 'done'."""
    mb = Mailbox.attach(name)
    tx = mb.sender(2, send_timeout=None)
    for i in range(n):
        tx.send(b"%05d" % i + bytes(150), msg_type=1, lane=Lane.NORMAL, recipient=0)
    tx.send(b"done", msg_type=2, lane=Lane.CONTROL, recipient=0)
    tx.close()
    mb.close()


def echo_server(inbox_name: str, outbox_name: str, n: int) -> None:
    """Answer ``n`` frames; sleeps on the doorbell between them (no spinning)."""
    inbox = Mailbox.attach(inbox_name)
    outbox = Mailbox.attach(outbox_name)
    rx = inbox.receiver(spin_us=0, sleep_s=1.0)
    tx = outbox.sender(1)
    for _ in range(n):
        f = rx.receive(timeout=JOIN_S)
        tx.send(f.payload, msg_type=f.msg_type, lane=Lane.HIGH, recipient=0, correlation_id=f.msg_id)
        rx.ack(f)
    rx.close()
    tx.close()
    inbox.close()
    outbox.close()


def _join(p: Any) -> None:
    p.join(JOIN_S)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError("worker process did not finish")


# --- tests ------------------------------------------------------------------------------------------


def test_frames_held_by_a_killed_consumer_are_redelivered(inbox: Mailbox) -> None:
    """SIGKILL mid-handling: the next receiver gets the unacknowledged frames, flagged."""
    tx = inbox.sender(0)
    payloads = [b"m%d" % i for i in range(8)]
    for p in payloads:
        tx.send(p, msg_type=1, lane=Lane.NORMAL, recipient=1)
    report = CTX.Queue()
    proc = CTX.Process(target=consumer_dies_mid_handling, args=(inbox.name, report))
    proc.start()
    try:
        held = report.get(timeout=JOIN_S)
        assert held == payloads[3:6]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        _join(proc)
    assert proc.exitcode == -signal.SIGKILL
    rx = inbox.receiver()
    got = []
    while True:
        try:
            f = rx.receive(timeout=0.2)
        except ChannelEmpty:
            break
        got.append((f.payload, f.redelivered))
        rx.ack(f)
    assert got == [(p, i < 3) for i, p in enumerate(payloads[3:])]
    rx.close()
    stats = inbox.statistics().channels[(0, Lane.NORMAL)]
    assert (stats.sent, stats.redelivered, stats.queued_bytes) == (8, 3, 0)
    assert stats.received == 3 + 3 + 5  # acked, held, then redelivered + new


def test_blocked_producer_process_is_released_by_acks(inbox: Mailbox) -> None:
    """A producer process far ahead of a slow consumer blocks, loses nothing, keeps order."""
    n = 400  # ~16 laps of a 4 KiB lane
    proc = CTX.Process(target=flooding_producer, args=(inbox.name, n))
    proc.start()
    rx = inbox.receiver()
    try:
        seen: list[bytes] = []
        done = False
        deadline = time.monotonic() + JOIN_S
        # CONTROL overtakes NORMAL frames still queued, so read until both are in.
        while (not done or len(seen) < n) and time.monotonic() < deadline:
            try:
                f = rx.receive(timeout=1.0)
            except ChannelEmpty:
                continue
            if f.lane == Lane.CONTROL:
                done = True
            else:
                seen.append(f.payload[:5])
                if len(seen) % 50 == 0:
                    time.sleep(0.02)  # a slow handler: the producer fills the lane
            rx.ack(f)
    finally:
        _join(proc)
    assert done and seen == [b"%05d" % i for i in range(n)]
    stats = inbox.statistics().channels[(2, Lane.NORMAL)]
    assert stats.full_events > 0 and stats.rejected == 0


def test_sleeping_consumer_process_is_woken_for_every_message(prefix: str, inbox: Mailbox) -> None:
    """Ping-pong with a consumer that never spins: each futex wake-up delivers one frame."""
    outbox = Mailbox.create(f"{prefix}-outbox", producers=2, lane_bytes=4096)
    n = 50
    proc = CTX.Process(target=echo_server, args=(inbox.name, outbox.name, n))
    proc.start()
    try:
        tx = inbox.sender(0)
        rx = outbox.receiver()
        for i in range(n):
            tx.send(b"ping %d" % i, msg_type=3, lane=Lane.NORMAL, recipient=1, msg_id=1000 + i)
            f = rx.receive(timeout=JOIN_S)
            assert (f.payload, f.correlation_id, f.sender) == (b"ping %d" % i, 1000 + i, 1)
            rx.ack(f)
            if i % 10 == 0:
                time.sleep(0.01)  # let the server fall asleep on its doorbell
        rx.close()
        tx.close()
    finally:
        _join(proc)
        outbox.close()
        outbox.unlink()
    assert proc.exitcode == 0
