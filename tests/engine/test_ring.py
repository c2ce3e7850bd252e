"""The SPSC ring on its own: framing, wrap-around, acknowledgement, histogram maths."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from engine._shm.ring import (
    C_HEAD,
    C_READ,
    HDR,
    HIST_BUCKETS,
    P_TAIL,
    ChannelFault,
    Frame,
    Lane,
    RingConsumer,
    RingProducer,
    bucket_bounds,
    latency_bucket,
    max_payload,
    percentile_from_histogram,
    read_ring_statistics,
    ring_region_size,
)
from engine._shm.segments import Segment, list_segments, new_swarm_prefix
from engine.errors import MessageTooLarge


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh segment-name prefix; no segment with it may survive the test."""
    p = new_swarm_prefix()
    before = list_segments(p)
    yield p
    assert list_segments(p) == before == []


class RingPair:
    """A producer and a consumer on one ring in a private segment."""

    def __init__(self, prefix: str, capacity: int) -> None:
        self.capacity = capacity
        self.seg = Segment.create(f"{prefix}-ring", ring_region_size(capacity))
        self.faults: list[ChannelFault] = []
        self.producer = RingProducer(self.seg.buf, 0, capacity, lane=Lane.NORMAL, producer=3)
        self.consumer = self.new_consumer()

    def new_consumer(self) -> RingConsumer:
        return RingConsumer(
            self.seg.buf, 0, self.capacity, lane=Lane.NORMAL, producer=3, fault_sink=self.faults
        )

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()
        self.seg.close()
        self.seg.unlink()


@pytest.fixture
def ring(prefix: str) -> Iterator[RingPair]:
    pair = RingPair(prefix, 1024)
    yield pair
    pair.close()


def test_frame_carries_every_header_field(ring: RingPair) -> None:
    """A frame read back has the payload and every header field the producer wrote."""
    assert ring.producer.put(b"payload", 17, 9, 1234, 5678)
    f = ring.consumer.read_one()
    assert isinstance(f, Frame)
    assert (f.payload, f.msg_type, f.recipient, f.msg_id, f.correlation_id) == (b"payload", 17, 9, 1234, 5678)
    assert (f.sender, f.lane, f.seq, f.redelivered) == (3, Lane.NORMAL, 0, False)
    assert f.recv_ns >= f.send_ns and f.latency_ns == f.recv_ns - f.send_ns
    assert ring.consumer.read_one() is None


def test_wrap_around_random_sizes_many_laps(ring: RingPair) -> None:
    """Random sizes over ~100 laps of a small ring: every payload arrives intact, in order."""
    rng = random.Random(7)
    sent: list[bytes] = []
    got: list[bytes] = []
    limit = max_payload(ring.capacity)
    for i in range(3000):
        size = rng.choice([0, 1, 7, 8, 9, 40, 100, 300, rng.randrange(0, limit + 1)])
        payload = rng.randbytes(size)
        idle = 0
        while not ring.producer.put(payload, 1, 0, i, 0):
            f = ring.consumer.read_one()
            if f is None:  # only a padding record was in the way; it is now freed
                idle += 1
                assert idle < 2, "producer says full but the consumer has nothing"
                continue
            got.append(f.payload)
            ring.consumer.ack(f)
        sent.append(payload)
        if rng.random() < 0.3:
            while (f := ring.consumer.read_one()) is not None:
                got.append(f.payload)
                ring.consumer.ack(f)
    while (f := ring.consumer.read_one()) is not None:
        got.append(f.payload)
        ring.consumer.ack(f)
    assert got == sent
    assert ring.producer.tail > 50 * ring.capacity  # really wrapped many times
    assert ring.faults == []


def test_large_frames_use_crc_and_put_many_frames_each_message(prefix: str) -> None:
    """Big payloads (CRC-32 path) and batches: each message is its own sequenced frame."""
    pair = RingPair(prefix, 1 << 16)
    try:
        big = [bytes([i]) * 5000 for i in range(5)]
        small = [b"s%d" % i for i in range(50)]
        assert pair.producer.put_many(big, 0, 2, 0) == 5
        assert pair.producer.put_many(small, 0, 3, 0) == 50
        out: list[Frame] = []
        assert pair.consumer.read_into(out, 100) == 55
        assert [f.payload for f in out] == big + small
        assert [f.seq for f in out] == list(range(55))
        assert [f.msg_type for f in out] == [2] * 5 + [3] * 50
    finally:
        pair.close()


def test_put_many_stops_when_full_and_resumes(ring: RingPair) -> None:
    """A batch larger than the ring is published up to the room available, then continues."""
    payloads = [b"%04d" % i + bytes(60) for i in range(40)]
    first = ring.producer.put_many(payloads, 0, 1, 0)
    assert 0 < first < 40
    out: list[Frame] = []
    ring.consumer.read_into(out, 100)
    for f in out:
        ring.consumer.ack(f)
    second = ring.producer.put_many(payloads, first, 1, 0)
    assert second > 0
    ring.consumer.read_into(out, 100)
    assert [f.payload for f in out] == payloads[: first + second]


def test_message_too_large_names_the_sizes(ring: RingPair) -> None:
    """A payload bigger than the ring can ever hold is refused with both sizes in the message."""
    limit = max_payload(ring.capacity)
    assert ring.producer.put(bytes(limit), 1, 0)
    with pytest.raises(MessageTooLarge, match=f"{limit + 8} bytes.*limit of {limit}"):
        ring.producer.put(bytes(limit + 8), 1, 0)


def test_full_ring_refuses_until_acknowledged(ring: RingPair) -> None:
    """Reading does not free space; acknowledging does."""
    n = 0
    while ring.producer.put(bytes(100), 1, 0):
        n += 1
    frames = [ring.consumer.read_one() for _ in range(n)]
    assert None not in frames
    assert not ring.producer.put(bytes(100), 1, 0)  # read but not acknowledged
    for f in frames:
        ring.consumer.ack(f)  # type: ignore[arg-type]
    assert ring.producer.put(bytes(100), 1, 0)


def test_out_of_order_and_double_acks(ring: RingPair) -> None:
    """The head moves only over a handled prefix; a second ack of a frame changes nothing."""
    for i in range(3):
        assert ring.producer.put(b"m%d" % i, 1, 0)
    a, b, c = (ring.consumer.read_one() for _ in range(3))
    c_ = ring.consumer._c
    start = c_[C_HEAD]
    ring.consumer.ack(c)  # type: ignore[arg-type]
    ring.consumer.ack(b)  # type: ignore[arg-type]
    assert c_[C_HEAD] == start
    ring.consumer.ack(a)  # type: ignore[arg-type]
    assert c_[C_HEAD] == ring.producer.tail
    ring.consumer.ack(a)  # type: ignore[arg-type]
    assert c_[C_HEAD] == ring.producer.tail


def test_new_consumer_redelivers_unacknowledged_frames(ring: RingPair) -> None:
    """A consumer that replaces a dead one starts at the committed head and flags redeliveries."""
    for i in range(5):
        assert ring.producer.put(b"m%d" % i, 1, 0)
    frames = [ring.consumer.read_one() for _ in range(4)]
    ring.consumer.ack(frames[0])  # type: ignore[arg-type]
    ring.consumer.flush_stats()
    ring.consumer.close()  # "dies" without acknowledging m1..m3
    ring.consumer = ring.new_consumer()
    again = [ring.consumer.read_one() for _ in range(4)]
    ring.consumer.flush_stats()
    assert [f.payload for f in again] == [b"m1", b"m2", b"m3", b"m4"]  # type: ignore[union-attr]
    assert [f.redelivered for f in again] == [True, True, True, False]  # type: ignore[union-attr]
    stats = read_ring_statistics(ring.seg.buf, 0, ring.capacity, producer=3, lane=Lane.NORMAL)
    assert (stats.sent, stats.received, stats.redelivered) == (5, 8, 3)


def test_restarted_producer_continues_sequence(ring: RingPair) -> None:
    """A new producer on the same ring continues tail and sequence numbers."""
    assert ring.producer.put(b"a", 1, 0)
    ring.producer.close()
    ring.producer = RingProducer(ring.seg.buf, 0, ring.capacity, lane=Lane.NORMAL, producer=3)
    assert ring.producer.put(b"b", 1, 0)
    frames = [ring.consumer.read_one() for _ in range(2)]
    assert [(f.payload, f.seq) for f in frames] == [(b"a", 0), (b"b", 1)]  # type: ignore[union-attr]
    assert ring.faults == []


def test_padding_is_committed_without_frames_outstanding(ring: RingPair) -> None:
    """A padding record at the end of the data area is freed even when nothing follows it."""
    assert ring.producer.put(bytes(100), 1, 0)
    ring.consumer.ack(ring.consumer.read_one())  # type: ignore[arg-type]
    payload = bytes(900)  # does not fit before the end, nor after a pad until it is freed
    assert not ring.producer.put(payload, 1, 0)  # empty ring: pads first and waits
    assert ring.consumer.read_one() is None  # only the pad: skipped and committed
    assert ring.consumer._c[C_HEAD] == ring.producer.tail
    assert ring.producer.put(payload, 1, 0)
    assert ring.consumer.read_one().payload == payload  # type: ignore[union-attr]


def test_statistics_count_sent_received_bytes(ring: RingPair) -> None:
    """Producer and consumer counters agree after traffic."""
    for i in range(10):
        assert ring.producer.put(bytes(i), 1, 0)
    for _ in range(10):
        ring.consumer.ack(ring.consumer.read_one())  # type: ignore[arg-type]
    ring.consumer.flush_stats()
    s = read_ring_statistics(ring.seg.buf, 0, ring.capacity, producer=3, lane=Lane.NORMAL)
    assert (s.sent, s.bytes_sent, s.received, s.bytes_received) == (10, 45, 10, 45)
    assert (s.rejected, s.redelivered, s.bytes_lost, s.queued_bytes, s.unread_bytes) == (0, 0, 0, 0, 0)
    assert s.latency_count == 10
    assert ring.seg.buf.cast("Q")[P_TAIL] == ring.producer.tail
    assert ring.consumer._c[C_READ] == ring.producer.tail


# --- latency histogram ---------------------------------------------------------------


def test_buckets_cover_values_contiguously() -> None:
    """Every value falls inside its bucket's bounds; buckets tile [0, 2**34)."""
    prev_hi = 0
    for i in range(HIST_BUCKETS):
        lo, hi = bucket_bounds(i)
        assert lo == prev_hi and hi > lo
        prev_hi = hi
    for v in [0, 1, 15, 16, 17, 99, 100, 1000, 12345, 10**6, 10**9, 10**10, 2**34 - 1]:
        lo, hi = bucket_bounds(latency_bucket(v))
        assert lo <= v < hi
    assert latency_bucket(10**12) == HIST_BUCKETS - 1


def test_bucket_resolution_is_within_12_5_percent_from_100ns_to_10s() -> None:
    """Buckets are narrow enough to quote percentiles to ~6 % anywhere in the range."""
    for v in [100, 999, 5_000, 77_777, 10**6, 3 * 10**8, 10**10]:
        lo, hi = bucket_bounds(latency_bucket(v))
        assert (hi - lo) / lo <= 0.125


def test_percentiles_of_known_inputs() -> None:
    """p50/p99/p99.9 of a known sample land in the buckets of the true quantiles."""
    counts = [0] * HIST_BUCKETS
    values = [1_000] * 500 + [2_000] * 490 + [50_000] * 9 + [3_000_000]
    for v in values:
        counts[latency_bucket(v)] += 1
    for q, true in ((0.5, 1_000), (0.99, 2_000), (0.995, 50_000), (1.0, 3_000_000)):
        got = percentile_from_histogram(counts, q)
        lo, hi = bucket_bounds(latency_bucket(true))
        assert got is not None and lo <= got < hi
    assert percentile_from_histogram([0] * HIST_BUCKETS, 0.5) is None
    with pytest.raises(ValueError):
        percentile_from_histogram(counts, 0.0)


def test_record_header_is_48_bytes_and_aligned(ring: RingPair) -> None:
    """Records are 8-byte aligned: the tail advances by align8(48 + n)."""
    for n in (0, 1, 8, 13):
        t0 = ring.producer.tail
        assert ring.producer.put(bytes(n), 1, 0)
        assert ring.producer.tail - t0 == (HDR + n + 7) // 8 * 8
