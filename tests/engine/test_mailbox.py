"""Mailboxes in one process: lanes, backpressure, closing, statistics, shared arrays."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from engine._shm.segments import SHM_DIR, Segment, list_segments, new_swarm_prefix
from engine.channels import (
    ChannelClosed,
    ChannelStatistics,
    ChannelEmpty,
    ChannelFull,
    Frame,
    Lane,
    Mailbox,
    MailboxLayoutError,
    MessageTooLarge,
    open_array,
    share_array,
    unlink_array,
)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh segment-name prefix; no segment with it may survive the test."""
    p = new_swarm_prefix()
    assert list_segments(p) == []
    yield p
    assert list_segments(p) == []


@pytest.fixture
def mailbox(prefix: str) -> Iterator[Mailbox]:
    mb = Mailbox.create(f"{prefix}-mb", producers=4, lane_bytes=4096, control_bytes=4096)
    yield mb
    mb.close()
    mb.unlink()


def drain(rx: object, limit: int = 10_000) -> list[Frame]:
    out = []
    for _ in range(limit):
        try:
            f = rx.receive_nowait()  # type: ignore[attr-defined]
        except ChannelEmpty:
            return out
        rx.ack(f)  # type: ignore[attr-defined]
        out.append(f)
    raise AssertionError("receiver never ran dry")


def test_every_lane_delivers_and_drains_in_priority_order(mailbox: Mailbox) -> None:
    """Whatever the send order, CONTROL comes out first, then HIGH, NORMAL, LOW."""
    tx1, tx2 = mailbox.sender(1), mailbox.sender(2)
    rx = mailbox.receiver()
    order = [Lane.LOW, Lane.NORMAL, Lane.HIGH, Lane.CONTROL] * 3
    for i, lane in enumerate(order):
        (tx1 if i % 2 else tx2).send(b"%s-%d" % (lane.name.encode(), i), msg_type=1, lane=lane, recipient=0)
    got = drain(rx)
    assert [f.lane for f in got] == sorted(order)
    assert {f.sender for f in got} == {1, 2}


def test_fifo_within_a_lane_of_one_producer(mailbox: Mailbox) -> None:
    """Messages of one producer on one lane arrive in send order with consecutive seqs."""
    tx, rx = mailbox.sender(3), mailbox.receiver()
    for i in range(200):
        tx.send(b"%d" % i, msg_type=2, lane=Lane.NORMAL, recipient=0)
        if i % 7 == 0:
            drain(rx)
    drain(rx)
    for i in range(30):
        tx.send(b"%d" % i, msg_type=2, lane=Lane.HIGH, recipient=0)
    got = drain(rx)
    assert [f.payload for f in got] == [b"%d" % i for i in range(30)]
    assert [f.seq for f in got] == list(range(30))


def test_producers_of_one_lane_take_turns(mailbox: Mailbox) -> None:
    """A busy producer does not starve another one on the same lane."""
    tx1, tx2, rx = mailbox.sender(1), mailbox.sender(2), mailbox.receiver()
    for i in range(10):
        tx1.send(b"a", msg_type=1, lane=Lane.NORMAL, recipient=0)
    tx2.send(b"b", msg_type=1, lane=Lane.NORMAL, recipient=0)
    first_three = [f.sender for f in drain(rx)][:3]
    assert 2 in first_three


def test_control_lane_gets_through_when_data_lanes_are_full(mailbox: Mailbox) -> None:
    """A full NORMAL lane does not stop a CONTROL message from the same producer."""
    tx, rx = mailbox.sender(0), mailbox.receiver()
    with pytest.raises(ChannelFull):
        for _ in range(1000):
            tx.send_nowait(bytes(200), msg_type=1, lane=Lane.NORMAL, recipient=1)
    tx.send_nowait(b"stop", msg_type=9, lane=Lane.CONTROL, recipient=1)
    f = rx.receive(timeout=1)
    assert (f.lane, f.payload) == (Lane.CONTROL, b"stop")


def test_full_lane_raises_and_counts_full_events(mailbox: Mailbox) -> None:
    """send_nowait and a timed-out send raise ChannelFull naming the lane; each is counted."""
    tx, rx = mailbox.sender(1), mailbox.receiver()
    sent = 0
    with pytest.raises(ChannelFull, match="lane NORMAL to recipient 5"):
        for _ in range(1000):
            tx.send_nowait(bytes(100), msg_type=1, lane=Lane.NORMAL, recipient=5)
            sent += 1
    with pytest.raises(ChannelFull):
        tx.send(bytes(100), msg_type=1, lane=Lane.NORMAL, recipient=5, timeout=0.01)
    stats = mailbox.statistics()
    assert stats.channels[(1, Lane.NORMAL)].full_events == 2
    assert stats.total.sent == sent
    assert len(drain(rx)) == sent  # nothing was dropped


def test_blocking_send_completes_when_another_thread_frees_space(mailbox: Mailbox) -> None:
    """A sender blocked on a full lane finishes once the consumer acknowledges frames."""
    tx, rx = mailbox.sender(1, send_timeout=None), mailbox.receiver()
    n = 0
    while True:
        try:
            tx.send_nowait(bytes(100), msg_type=1, lane=Lane.LOW, recipient=0)
            n += 1
        except ChannelFull:
            break
    done = threading.Event()

    def blocked_send() -> None:
        tx.send(b"last" + bytes(96), msg_type=1, lane=Lane.LOW, recipient=0, timeout=None)
        done.set()

    t = threading.Thread(target=blocked_send)
    t.start()
    assert not done.wait(0.05)  # really blocked
    got = []
    while len(got) < n + 1:
        f = rx.receive(timeout=5)
        got.append(f.payload)
        rx.ack(f)
    t.join(5)
    assert done.is_set() and got[-1] == b"last" + bytes(96)


def test_send_batch_spans_many_ring_laps_with_a_consumer_thread(mailbox: Mailbox) -> None:
    """send_batch blocks for room as needed; every message arrives once, in order."""
    tx, rx = mailbox.sender(2, send_timeout=10), mailbox.receiver()
    payloads = [b"%06d" % i for i in range(3000)]
    got: list[bytes] = []

    def consume() -> None:
        while len(got) < len(payloads):
            frames = rx.receive_batch(100, timeout=10)
            got.extend(f.payload for f in frames)
            rx.ack_batch(frames)

    t = threading.Thread(target=consume)
    t.start()
    assert tx.send_batch(payloads, msg_type=1, lane=Lane.NORMAL, recipient=0) == 3000
    t.join(20)
    assert got == payloads


def test_send_batch_timeout_reports_how_many_went_out(mailbox: Mailbox) -> None:
    """A batch that cannot fit raises ChannelFull with ``sent``; those messages are delivered."""
    tx, rx = mailbox.sender(1), mailbox.receiver()
    with pytest.raises(ChannelFull) as info:
        tx.send_batch([bytes(100)] * 100, msg_type=1, lane=Lane.NORMAL, recipient=0, timeout=0.01)
    sent = info.value.sent  # type: ignore[attr-defined]
    assert 0 < sent < 100
    assert len(drain(rx)) == sent


def test_message_too_large_for_the_lane(mailbox: Mailbox) -> None:
    """A payload bigger than a lane can hold raises MessageTooLarge with the sizes."""
    tx = mailbox.sender(1)
    limit = mailbox.max_payload(Lane.HIGH)
    tx.send(bytes(limit), msg_type=1, lane=Lane.HIGH, recipient=0)
    with pytest.raises(MessageTooLarge, match=f"{limit + 1} bytes exceeds the lane limit of {limit}"):
        tx.send(bytes(limit + 1), msg_type=1, lane=Lane.HIGH, recipient=0)


def test_closed_mailbox_refuses_senders_and_drains_then_closes(mailbox: Mailbox) -> None:
    """After mark_closed, sends raise ChannelClosed; the receiver drains, then gets ChannelClosed."""
    tx, rx = mailbox.sender(1), mailbox.receiver()
    tx.send(b"before", msg_type=1, lane=Lane.NORMAL, recipient=0)
    mailbox.mark_closed()
    assert mailbox.closed
    with pytest.raises(ChannelClosed, match="closed"):
        tx.send(b"after", msg_type=1, lane=Lane.NORMAL, recipient=0)
    assert rx.receive(timeout=1).payload == b"before"
    with pytest.raises(ChannelClosed):
        rx.receive_nowait()
    with pytest.raises(ChannelClosed):
        rx.receive(timeout=1)


def test_mark_closed_wakes_a_sleeping_receiver(mailbox: Mailbox) -> None:
    """A receiver blocked without timeout returns ChannelClosed when the mailbox closes."""
    rx = mailbox.receiver(spin_us=0, sleep_s=30)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            rx.receive(timeout=None)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.05)
    mailbox.mark_closed()
    t.join(5)
    assert not t.is_alive() and isinstance(errors[0], ChannelClosed)


def test_closed_endpoints_raise_channel_closed(mailbox: Mailbox) -> None:
    """Using a closed sender or receiver, or acking into a closed receiver, raises ChannelClosed."""
    tx, rx = mailbox.sender(1), mailbox.receiver()
    tx.send(b"x", msg_type=1, lane=Lane.NORMAL, recipient=0)
    f = rx.receive(timeout=1)
    tx.close()
    rx.close()
    with pytest.raises(ChannelClosed):
        tx.send(b"y", msg_type=1, lane=Lane.NORMAL, recipient=0)
    with pytest.raises(ChannelClosed):
        rx.receive_nowait()
    with pytest.raises(ChannelClosed):
        rx.ack(f)
    # the unacknowledged frame is still there for the next receiver
    rx2 = mailbox.receiver()
    again = rx2.receive(timeout=1)
    assert again.payload == b"x" and again.redelivered


def test_receive_timeout_raises_channel_empty(mailbox: Mailbox) -> None:
    """An empty mailbox gives ChannelEmpty from receive_nowait and from a timed receive."""
    rx = mailbox.receiver()
    with pytest.raises(ChannelEmpty):
        rx.receive_nowait()
    with pytest.raises(ChannelEmpty):
        rx.receive(timeout=0.02)
    with pytest.raises(ChannelEmpty):
        rx.receive_batch(10, timeout=0)


def test_receiver_sleeping_is_woken_by_a_sender(mailbox: Mailbox) -> None:
    """A receiver that has gone to sleep on the doorbell gets a message sent later."""
    rx = mailbox.receiver(spin_us=0, sleep_s=30)
    tx = mailbox.sender(2)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(rx.receive(timeout=10).payload))
    t.start()
    time.sleep(0.05)
    tx.send(b"wake", msg_type=1, lane=Lane.HIGH, recipient=0)
    t.join(10)
    assert got == [b"wake"]


def test_wait_reports_readiness_without_consuming(mailbox: Mailbox) -> None:
    """Receiver.wait returns True when a frame is ready and leaves it for receive."""
    rx, tx = mailbox.receiver(), mailbox.sender(1)
    assert rx.wait(0.01) is False
    tx.send(b"x", msg_type=1, lane=Lane.NORMAL, recipient=0)
    assert rx.wait(1) is True
    assert rx.wait(0) is True
    assert rx.receive_nowait().payload == b"x"


def test_statistics_per_channel_lane_and_total(mailbox: Mailbox) -> None:
    """Counters per (producer, lane), per lane and in total match the traffic."""
    tx1, tx2, rx = mailbox.sender(1), mailbox.sender(2), mailbox.receiver()
    for _ in range(5):
        tx1.send(bytes(10), msg_type=1, lane=Lane.HIGH, recipient=0)
    for _ in range(3):
        tx2.send(bytes(20), msg_type=1, lane=Lane.LOW, recipient=0)
    frames = rx.receive_batch(100)
    rx.ack_batch(frames[:4])
    s = mailbox.statistics()
    assert set(s.channels) == {(1, Lane.HIGH), (2, Lane.LOW)}
    high = s.channels[(1, Lane.HIGH)]
    assert (high.sent, high.bytes_sent, high.received, high.bytes_received) == (5, 50, 5, 50)
    assert high.queued_bytes == 64  # the fifth frame is read but not acknowledged
    assert s.lanes[Lane.LOW].bytes_sent == 60 and s.lanes[Lane.NORMAL].sent == 0
    assert (s.total.sent, s.total.received, s.total.rejected) == (8, 8, 0)
    assert s.total.latency_count == 8 and s.total.latency_percentile_ns(0.5) is not None
    assert s.consumer_pid == os.getpid() and not s.closed
    from engine.bus_meter import BusMeter

    bus = BusMeter().update([s.total, s.total])
    assert (bus.sent, bus.received, bus.bytes) == (16, 16, 220)
    assert bus.latency_p50_us > 0
    rings = mailbox.ring_statistics()
    assert sorted((r.producer, r.lane) for r in rings) == [(1, Lane.HIGH), (2, Lane.LOW)]
    assert ChannelStatistics.combine(rings) == s.total  # what the bus meter sums, without per-lane sums


def test_unused_rings_cost_no_memory(prefix: str) -> None:
    """A 65-producer mailbox maps ~53 MB but only the header and used rings are resident."""
    mb = Mailbox.create(f"{prefix}-big", producers=65, lane_bytes=256 * 1024)
    try:
        path = SHM_DIR / mb.name
        rx = mb.receiver()
        mb.statistics()
        assert os.stat(path).st_blocks * 512 <= 8192
        tx = mb.sender(7)
        tx.send(bytes(100), msg_type=1, lane=Lane.NORMAL, recipient=0)
        rx.ack(rx.receive(timeout=1))
        mb.statistics()
        assert mb._seg.size > 50_000_000
        assert os.stat(path).st_blocks * 512 <= 4 * 4096
    finally:
        mb.close()
        mb.unlink()


def test_attach_sees_the_same_mailbox_and_rejects_garbage(prefix: str, mailbox: Mailbox) -> None:
    """attach() maps an existing mailbox; a segment that is not one raises MailboxLayoutError."""
    other = Mailbox.attach(mailbox.name)
    try:
        other.sender(2).send(b"via attach", msg_type=1, lane=Lane.NORMAL, recipient=0)
        assert mailbox.receiver().receive(timeout=1).payload == b"via attach"
    finally:
        other.close()
    seg = Segment.create(f"{prefix}-junk", 65536)
    seg.buf[:4] = b"JUNK"
    seg.close()
    try:
        with pytest.raises(MailboxLayoutError):
            Mailbox.attach(f"{prefix}-junk")
    finally:
        seg.unlink()


def test_bad_geometry_is_refused(prefix: str) -> None:
    """Lane sizes must be powers of two >= 4096; producer indices must exist."""
    with pytest.raises(ValueError, match="power of two"):
        Mailbox.create(f"{prefix}-bad", producers=2, lane_bytes=5000)
    with Mailbox.create(f"{prefix}-ok", producers=2, lane_bytes=4096) as mb:
        with pytest.raises(ValueError, match="producer index"):
            mb.sender(2)
        mb.unlink()


def test_memoryview_payloads_are_accepted(mailbox: Mailbox) -> None:
    """Any contiguous buffer can be sent; its bytes arrive."""
    tx, rx = mailbox.sender(1), mailbox.receiver()
    arr = np.arange(4, dtype=np.int32)
    tx.send(memoryview(arr), msg_type=1, lane=Lane.NORMAL, recipient=0)
    tx.send(bytearray(b"ba"), msg_type=1, lane=Lane.NORMAL, recipient=0)
    assert [f.payload for f in drain(rx)] == [arr.tobytes(), b"ba"]


def test_share_array_round_trip(prefix: str) -> None:
    """A shared array opens as an equal, read-only view; the creator unlinks it."""
    import msgspec

    src = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]  # non-contiguous
    handle = share_array(src, prefix)
    try:
        wire = msgspec.msgpack.decode(msgspec.msgpack.encode(handle), type=type(handle))
        view, closer = open_array(wire)
        assert np.array_equal(view, src) and view.dtype == src.dtype
        assert not view.flags.writeable
        closer()
        del view
    finally:
        unlink_array(handle)
    assert list_segments(prefix) == []
    with pytest.raises(ValueError):
        share_array(np.array([object()]), prefix)


def test_out_of_range_header_fields_are_value_errors(mailbox: Mailbox) -> None:
    """msg_type/recipient beyond 16 bits raise ValueError, and nothing is published."""
    tx, rx = mailbox.sender(1), mailbox.receiver()
    with pytest.raises(ValueError, match="16 bits"):
        tx.send(b"x", msg_type=70_000, lane=Lane.NORMAL, recipient=0)
    with pytest.raises(ValueError, match="16 bits"):
        tx.send_batch([b"x"], msg_type=1, lane=Lane.NORMAL, recipient=-1)
    tx.send(b"ok", msg_type=1, lane=Lane.NORMAL, recipient=0)
    assert [f.payload for f in drain(rx)] == [b"ok"]


def test_receive_batch_payloads_and_whole_batch_ack(mailbox: Mailbox) -> None:
    """A FrameBatch gives payloads without building frames; acking it frees the lane."""
    tx, rx = mailbox.sender(1), mailbox.receiver()
    tx.send_batch([b"a", b"b", b"c"], msg_type=4, lane=Lane.NORMAL, recipient=0)
    batch = rx.receive_batch(10)
    assert batch.payloads == [b"a", b"b", b"c"] and len(batch) == 3
    rx.ack_batch(batch)
    assert mailbox.statistics().channels[(1, Lane.NORMAL)].queued_bytes == 0
    assert [f.msg_type for f in batch] == [4, 4, 4] and batch[1].seq == 1
    rx.ack_batch(batch)  # acknowledging again is harmless


# --- quiet sends (wake=False) ---------------------------------------------------------------


def _doorbell(mailbox: Mailbox) -> int:
    from engine._shm.mailbox import H_DOORBELL

    return mailbox._hot[H_DOORBELL]


def _until_asleep_on_doorbell(mailbox: Mailbox, thread: threading.Thread, timeout: float = 10.0) -> None:
    """Return once ``thread`` is blocked in ``futex_wait`` on the mailbox's doorbell.

    Read from ``/proc/self/task/<tid>/syscall`` (number 202 and the futex address), so
    the test knows the receiver is really asleep rather than guessing with a sleep.
    """
    path = f"/proc/self/task/{thread.native_id}/syscall"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as fh:
                fields = fh.read().split()
        except OSError:  # pragma: no cover - kernels without the file: settle for a pause
            time.sleep(0.2)
            return
        if len(fields) > 1 and fields[0] == "202" and int(fields[1], 16) == mailbox._doorbell_addr:
            return
        time.sleep(0.002)
    raise AssertionError("the receiver thread never went to sleep on the doorbell")


def _prime(tx: object, rx: object, lane: Lane) -> None:
    """Use the ring once, so that its first use (an active-ring change) is not what wakes."""
    tx.send(b"prime", msg_type=1, lane=lane, recipient=0)  # type: ignore[attr-defined]
    assert [f.payload for f in drain(rx)] == [b"prime"]


def test_quiet_send_does_not_wake_a_sleeping_receiver_but_a_later_send_delivers_it(mailbox: Mailbox) -> None:
    """wake=False publishes without ringing: a receiver asleep in wait() stays asleep
    (doorbell unchanged); the next normal send wakes it once and every frame comes out
    in send order."""
    rx = mailbox.receiver(spin_us=0, sleep_s=30)  # the safety net cannot fire during the test
    tx = mailbox.sender(1)
    _prime(tx, rx, Lane.NORMAL)
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(rx.wait(20)))
    t.start()
    _until_asleep_on_doorbell(mailbox, t)
    bell = _doorbell(mailbox)
    for i in range(3):
        tx.send(b"quiet-%d" % i, msg_type=1, lane=Lane.NORMAL, recipient=0, wake=False)
    tx.send_nowait(b"quiet-3", msg_type=1, lane=Lane.NORMAL, recipient=0, wake=False)
    assert tx.send_batch([b"quiet-4", b"quiet-5"], msg_type=1, lane=Lane.NORMAL, recipient=0, wake=False) == 2
    assert _doorbell(mailbox) == bell  # no bump, hence no futex_wake
    t.join(0.2)
    assert t.is_alive() and results == []  # still asleep: only a wake-up could end a 30 s sleep early
    tx.send(b"loud", msg_type=1, lane=Lane.NORMAL, recipient=0)
    assert _doorbell(mailbox) == (bell + 1) & 0xFFFFFFFF
    t.join(10)
    assert not t.is_alive() and results == [True]
    batch = rx.receive_batch(64, timeout=0)
    assert batch.payloads == [b"quiet-%d" % i for i in range(6)] + [b"loud"]
    assert [f.seq for f in batch] == sorted(f.seq for f in batch)
    rx.ack_batch(batch)
    assert drain(rx) == []


def test_quiet_send_is_received_after_the_receivers_sleep_s(mailbox: Mailbox) -> None:
    """With nothing else sent, a quiet frame reaches a sleeping receiver through its
    safety-net timeout: wait() re-checks the rings after sleep_s and reports it."""
    rx = mailbox.receiver(spin_us=0, sleep_s=0.3)
    tx = mailbox.sender(2)
    _prime(tx, rx, Lane.LOW)
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(rx.wait(20)))
    t.start()
    _until_asleep_on_doorbell(mailbox, t)
    bell = _doorbell(mailbox)
    tx.send(b"latest", msg_type=3, lane=Lane.LOW, recipient=0, wake=False)
    t.join(10)
    assert results == [True]
    assert _doorbell(mailbox) == bell  # found by the timeout re-check, not by a wake-up
    got = drain(rx)
    assert [(f.payload, f.msg_type, f.lane) for f in got] == [(b"latest", 3, Lane.LOW)]
    st = mailbox.statistics().channels[(2, Lane.LOW)]
    assert (st.sent, st.received) == (2, 2)  # counted like any other frame


def test_quiet_send_into_a_full_ring_still_rings(mailbox: Mailbox) -> None:
    """A quiet sender that finds no room rings the doorbell anyway: the consumer must
    drain for the send to make progress."""
    from engine._shm.mailbox import H_ASLEEP

    tx = mailbox.sender(3)
    with pytest.raises(ChannelFull):
        for _ in range(1000):
            tx.send_nowait(bytes(100), msg_type=1, lane=Lane.NORMAL, recipient=0, wake=False)
    bell = _doorbell(mailbox)
    mailbox._hot[H_ASLEEP] = 1  # as if the consumer were asleep
    try:
        with pytest.raises(ChannelFull):
            tx.send_nowait(bytes(100), msg_type=1, lane=Lane.NORMAL, recipient=0, wake=False)
    finally:
        mailbox._hot[H_ASLEEP] = 0
    assert _doorbell(mailbox) == (bell + 1) & 0xFFFFFFFF
    rx = mailbox.receiver()
    assert len(drain(rx)) > 0
