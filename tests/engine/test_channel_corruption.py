"""Garbage in shared memory: the receiver stays safe, counts it, and recovers.

Property tests write random bytes and flip random bits in a ring's data area
(record headers and payloads) and in its control words, then check that the
receiver raises nothing but the documented errors, never loops without bound,
delivers only frames that were really sent (in order), accounts for every lost
frame with a fault, and that a frame sent afterwards arrives.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine._shm.ring import C_HEAD, C_READ, P_TAIL, RING_HEADER_BYTES
from engine._shm.segments import list_segments, new_swarm_prefix
from engine.channels import ChannelEmpty, ChannelFull, Lane, Mailbox

LANE_BYTES = 4096
MAX_CALLS = 2000  # any loop over the receiver is bounded by this many calls

PREFIX = new_swarm_prefix()


@pytest.fixture(autouse=True)
def nothing_left_behind() -> object:
    """No segment with this module's prefix survives a test."""
    yield
    assert list_segments(PREFIX) == []


class Scenario:
    """A mailbox with one producer (index 1) on the NORMAL lane and its receiver."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.mb = Mailbox.create(f"{PREFIX}-c{seed}", producers=2, lane_bytes=LANE_BYTES)
        self.tx = self.mb.sender(1, send_timeout=0.05)
        self.rx = self.mb.receiver(spin_us=0, sleep_s=0.005)
        self.ring_off = self.mb.ring_offset(1, Lane.NORMAL)
        self.data_off = self.ring_off + RING_HEADER_BYTES
        self.buf = self.mb._seg.buf
        self.counter = 0

    def payload(self) -> bytes:
        self.counter += 1
        size = self.rng.choice([0, 3, 16, 60, 200, self.rng.randrange(0, 900)])
        return struct.pack("<I", self.counter) + self.rng.randbytes(size)

    def send(self, payload: bytes) -> None:
        self.tx.send(payload, msg_type=7, lane=Lane.NORMAL, recipient=0)

    def drain(self) -> list[bytes]:
        """Receive and acknowledge everything; only ChannelEmpty may end it."""
        got = []
        for _ in range(MAX_CALLS):
            try:
                f = self.rx.receive_nowait()
            except ChannelEmpty:
                return got
            got.append(f.payload)
            self.rx.ack(f)
        raise AssertionError("receiver did not run dry within the call budget")

    def warm_up(self, n: int) -> None:
        """Move the ring position so corruption hits different offsets."""
        for _ in range(n):
            self.send(self.payload())
            self.drain()

    def close(self) -> None:
        self.mb.close()
        self.mb.unlink()


def is_subsequence(sub: list[bytes], seq: list[bytes]) -> bool:
    it = iter(seq)
    return all(x in it for x in sub)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, LANE_BYTES - 1), st.integers(0, 7)),
    st.tuples(st.just("write"), st.integers(0, LANE_BYTES - 1), st.binary(min_size=1, max_size=64)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    warm=st.integers(0, 40),
    n_frames=st.integers(1, 12),
    mutations=st.lists(mutation, min_size=1, max_size=8),
)
def test_garbage_in_data_area_is_rejected_and_the_ring_recovers(
    seed: int, warm: int, n_frames: int, mutations: list[tuple]
) -> None:
    """Random bytes and bit flips in record headers/payloads never crash or hang the receiver."""
    sc = Scenario(seed)
    try:
        sc.warm_up(warm)
        sent = []
        for _ in range(n_frames):
            p = sc.payload()
            try:
                sc.send(p)
            except ChannelFull:
                break
            sent.append(p)
        for kind, off, arg in mutations:
            pos = sc.data_off + off
            if kind == "flip":
                sc.buf[pos] ^= 1 << arg
            else:
                chunk = arg[: LANE_BYTES - off]
                sc.buf[pos : pos + len(chunk)] = chunk
        got = sc.drain()
        assert is_subsequence(got, sent), "a frame that was never sent (or out of order) came out"
        faults = sc.rx.take_faults()
        stats = sc.mb.statistics().channels[(1, Lane.NORMAL)]
        if got != sent:
            assert faults and stats.rejected >= 1
            assert sum(f.bytes_lost for f in faults) > 0 and stats.bytes_lost > 0
        assert stats.rejected == len([f for f in faults if f.reason])
        fresh = b"fresh" + bytes(20)
        sc.send(fresh)
        assert sc.rx.receive(timeout=1.0).payload == fresh
    finally:
        sc.close()


control_word = st.sampled_from(["tail", "head", "read"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    warm=st.integers(0, 40),
    unread=st.integers(0, 6),
    hits=st.lists(
        st.tuples(control_word, st.one_of(st.integers(0, 2**64 - 1), st.integers(-3 * LANE_BYTES, 3 * LANE_BYTES))),
        min_size=1,
        max_size=3,
    ),
)
def test_garbage_in_control_words_is_survived(
    seed: int, warm: int, unread: int, hits: list[tuple[str, int]]
) -> None:
    """Random tail/head/read-cursor values: bounded, documented errors only, then recovery."""
    sc = Scenario(seed)
    try:
        sc.warm_up(warm)
        for _ in range(unread):
            sc.send(sc.payload())
        p_words = sc.buf[sc.ring_off : sc.ring_off + 64].cast("Q")
        c_words = sc.buf[sc.ring_off + 128 : sc.ring_off + 192].cast("Q")
        base = p_words[P_TAIL]
        for word, value in hits:
            v = value if value >= 2**12 * LANE_BYTES else (base + value) % 2**64
            if word == "tail":
                p_words[P_TAIL] = v
            elif word == "head":
                c_words[C_HEAD] = v
            else:
                c_words[C_READ] = v
        p_words.release()
        c_words.release()
        sc.drain()
        arrived = False
        for i in range(20):
            fresh = b"fresh-%d" % i
            try:
                sc.send(fresh)
            except ChannelFull:
                pass
            for _ in range(50):
                try:
                    f = sc.rx.receive(timeout=0.01)
                except ChannelEmpty:
                    break
                sc.rx.ack(f)
                if f.payload.startswith(b"fresh-"):
                    arrived = True
            if arrived:
                break
        assert arrived, f"no frame got through after corrupting {hits}"
        sc.rx.take_faults()
    finally:
        sc.close()


def test_checksum_flip_is_reported_with_producer_lane_and_loss() -> None:
    """A single flipped payload bit yields one fault naming producer, lane and bytes lost."""
    sc = Scenario(1)
    try:
        sc.send(b"A" * 40)
        sc.send(b"B" * 40)
        sc.buf[sc.data_off + 48 + 5] ^= 0x10  # inside the first payload
        assert sc.drain() == []
        (fault,) = sc.rx.take_faults()
        assert (fault.producer, fault.lane) == (1, Lane.NORMAL)
        assert "checksum" in fault.reason and fault.bytes_lost == 2 * 88
        s = sc.mb.statistics().channels[(1, Lane.NORMAL)]
        assert (s.rejected, s.bytes_lost) == (1, 176)
        sc.send(b"C")
        assert sc.rx.receive(timeout=1).payload == b"C"
    finally:
        sc.close()
