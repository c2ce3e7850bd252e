"""A consumer's mailbox: one segment holding an SPSC ring per (producer, lane).

Layout (little-endian)
----------------------

==============  ====  ===========================================================
offset          size  field
==============  ====  ===========================================================
0               4     magic ``b"SWMB"``
4               2     version (1)
6               2     n_producers
8               1     lanes (4: CONTROL, HIGH, NORMAL, LOW)
12              4     lane_bytes (data bytes of a HIGH/NORMAL/LOW ring)
16              4     control_bytes (data bytes of a CONTROL ring)
20              4     header_bytes (where the first ring starts; page multiple)
24              8     total segment size
32              4     creator pid
64              4     doorbell: futex word the consumer sleeps on
68              4     consumer asleep flag
72              4     closed flag (set by :meth:`Mailbox.mark_closed`)
76              4     active generation (bumped when a ring becomes active)
80              4     consumer pid
84              4     receiver epoch (bumped by every new receiver)
128             4*N   active bytes, one per ring, set by its producer on first use
header_bytes    ...   rings: for producer p in 0..N-1, lanes CONTROL, HIGH, NORMAL,
                      LOW, each ``4096 + data bytes`` (see :mod:`engine._shm.ring`)
==============  ====  ===========================================================

Producer index 0 is the orchestrator, index ``k`` is agent slot ``k``.

This module is long because the mailbox, its sender and its receiver share one
wake-up protocol (doorbell, asleep flag, barrier, space words) that is easier to
check when it is all in one place.

Design note
-----------
*Lazy memory.*  The segment is a sparse tmpfs file: a page costs memory only once
touched.  Creating a mailbox writes just the first header page; a ring's pages are
touched by its producer's first send, and the consumer, :meth:`Mailbox.statistics`
and everything else look at a ring only after its active byte says it was used.
A mailbox for 65 producers x 4 lanes x 256 KiB maps 53 MB but costs 4 KiB plus
the pages of the rings that carry traffic.

*Finding data.*  The receiver keeps, per lane, a list of active rings and polls
only those, in lane order (CONTROL first), rotating among producers of a lane so
one busy producer cannot starve another.  It re-reads the active bytes when the
active generation changes, after every sleep, and every 4096 polls (the
generation bump is a plain read-modify-write that two producers could race).

*Wake-up.*  The receiver spins for ``spin_us`` (checking the clock every 16
polls), then reads the doorbell value, sets the asleep flag, re-checks every
active ring, and sleeps in ``futex_wait(doorbell, value, sleep_s)``.  A producer,
after publishing, bumps the doorbell and calls ``futex_wake`` only if the asleep
flag is set, so a busy consumer costs its producers no system call.

The race: the consumer's "store asleep=1; load tail" and the producer's "store
tail; load asleep" are the store-buffer (Dekker) pattern, and x86-TSO may let a
load overtake an earlier store to another address -- both sides can then miss
each other.  Measured here without a fence, about one sleep in seven lost its
wake-up under a throughput load, so this is not a theoretical race.  Pure Python
cannot issue ``mfence``; instead the side about to sleep calls
``membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`` (see :mod:`engine._shm.futex`)
between announcing its sleep and re-checking for work, which forces a full
barrier on every running bus process, so the hot side needs no fence at all.
The sleep is still bounded by ``sleep_s`` (50 ms by default) as a safety net
where ``membarrier`` is unavailable (old kernel, seccomp): on timeout the
consumer re-checks every ring, so delivery stays correct and only an unlucky
message waits up to ``sleep_s``.  A futex wait itself fails at once if the
doorbell changed after it was read, so a bump between the re-check and the wait
is never lost.  An idle consumer wakes 20 times a second and polls its active
rings: a few hundredths of a percent of a core.

*Quiet sends.*  ``send(..., wake=False)`` publishes the frame but skips the
doorbell, so a sleeping consumer stays asleep; it receives the frame at its next
wake-up (another producer's waking send, or its ``sleep_s`` timeout, after which
it re-checks every ring).  The latency bound is thus ``sleep_s``; order within a
ring is unaffected, and a later waking send on the same lane delivers the quiet
frames before it.  A quiet send that finds its ring full still rings (the
consumer has to drain).  Used for "latest value" traffic nobody waits for: an
agent's publications and checkpoints to the orchestrator.

*Backpressure.*  A send that finds its ring full counts a full event, spins for
``spin_us`` re-reading the consumer's head, then sets the ring's waiting flag,
issues the same barrier, and sleeps on the ring's space word (bounded by 10 ms);
the consumer bumps that word and wakes the producer when it commits while the
flag is set.  After the timeout the sender
raises :class:`~engine.errors.ChannelFull`; nothing is ever dropped.
"""

from __future__ import annotations

import os
import struct
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

from engine._shm.futex import (
    address_of,
    futex_wait,
    futex_wake,
    membarrier_register,
    process_barrier,
)
from engine._shm.ring import (
    LANE_NAMES,
    RING_HEADER_BYTES,
    ChannelFault,
    ChannelStatistics,
    Frame,
    FrameBatch,
    Lane,
    RingConsumer,
    RingProducer,
    max_payload,
    read_ring_statistics,
)
from engine._shm.segments import Segment
from engine.errors import ChannelClosed, ChannelEmpty, ChannelError, ChannelFull

__all__ = [
    "DEFAULT_SEND_TIMEOUT_S",
    "DEFAULT_SLEEP_S",
    "DEFAULT_SPIN_US",
    "Mailbox",
    "MailboxLayoutError",
    "MailboxStatistics",
    "Receiver",
    "Sender",
]

MAGIC = b"SWMB"
VERSION = 1
N_LANES = 4
PAGE = 4096
MAX_PRODUCERS = 4096
MIN_LANE_BYTES = 4096
MAX_LANE_BYTES = 1 << 30
DEFAULT_CONTROL_BYTES = 16384
DEFAULT_SPIN_US = 50.0
DEFAULT_SLEEP_S = 0.05
DEFAULT_SEND_TIMEOUT_S = 1.0
PRODUCER_SLEEP_S = 0.01
REFRESH_EVERY_POLLS = 0xFFF

_STATIC = struct.Struct("<4sHHB3xIIIQI")
_HOT_OFF = 64
H_DOORBELL, H_ASLEEP, H_CLOSED, H_ACTIVE_GEN, H_CONSUMER_PID, H_EPOCH = range(6)
_ACTIVE_OFF = 128


class MailboxLayoutError(ChannelError):
    """A segment attached as a mailbox does not hold a valid mailbox header."""


def _page_align(n: int) -> int:
    return (n + PAGE - 1) // PAGE * PAGE


def _check_lane_bytes(what: str, n: int) -> None:
    if n < MIN_LANE_BYTES or n > MAX_LANE_BYTES or n & (n - 1):
        raise ValueError(
            f"{what} must be a power of two in [{MIN_LANE_BYTES}, {MAX_LANE_BYTES}], got {n}"
        )


class _Default:
    def __repr__(self) -> str:
        return "<sender default>"


DEFAULT: Any = _Default()
"""Sentinel: use the sender's configured ``send_timeout``."""


@dataclass(frozen=True)
class MailboxStatistics:
    """A lock-free snapshot of a mailbox's counters.

    Attributes:
        name: segment name.
        closed: whether the mailbox is marked closed.
        consumer_pid: pid of the last receiver (0 if none yet).
        channels: per (producer index, lane) statistics of the rings ever used.
        lanes: per lane, summed over producers.
        total: everything summed.
    """

    name: str
    closed: bool
    consumer_pid: int
    channels: dict[tuple[int, Lane], ChannelStatistics]
    lanes: dict[Lane, ChannelStatistics]
    total: ChannelStatistics


class Mailbox:
    """The shared-memory inbox of one consumer.

    The orchestrator creates every mailbox (:meth:`create`) and unlinks it;
    agents :meth:`attach`.  ``sender(k)`` writes as producer ``k``;
    ``receiver()`` is the single consumer.
    """

    def __init__(
        self,
        seg: Segment,
        *,
        n_producers: int,
        lane_bytes: int,
        control_bytes: int,
        header_bytes: int,
    ) -> None:
        self._seg = seg
        self.name = seg.name
        self.n_producers = n_producers
        self.lane_bytes = lane_bytes
        self.control_bytes = control_bytes
        self._header_bytes = header_bytes
        self._control_stride = RING_HEADER_BYTES + control_bytes
        self._lane_stride = RING_HEADER_BYTES + lane_bytes
        self._producer_stride = self._control_stride + 3 * self._lane_stride
        self._hot = seg.buf[_HOT_OFF : _HOT_OFF + 64].cast("I")
        self._active = seg.buf[_ACTIVE_OFF : _ACTIVE_OFF + N_LANES * n_producers]
        self._doorbell_addr = address_of(seg.buf, _HOT_OFF + 4 * H_DOORBELL)
        self._children: weakref.WeakSet[Sender | Receiver] = weakref.WeakSet()
        self._closed = False
        membarrier_register()  # every bus user: see the wake-up note above

    # -- construction -----------------------------------------------------------------

    @staticmethod
    def segment_size(producers: int, lane_bytes: int, control_bytes: int = DEFAULT_CONTROL_BYTES) -> int:
        """Bytes of the segment for this geometry (virtual; touched lazily)."""
        header = _page_align(_ACTIVE_OFF + N_LANES * producers)
        return header + producers * (RING_HEADER_BYTES * N_LANES + control_bytes + 3 * lane_bytes)

    @classmethod
    def create(
        cls, name: str, *, producers: int, lane_bytes: int, control_bytes: int = DEFAULT_CONTROL_BYTES
    ) -> Mailbox:
        """Create a mailbox segment for ``producers`` producers (index 0 .. producers-1).

        Args:
            name: segment name (use the swarm prefix).
            producers: number of producer indices (orchestrator + agent slots).
            lane_bytes: data bytes of each HIGH/NORMAL/LOW ring (power of two >= 4096).
            control_bytes: data bytes of each CONTROL ring (power of two >= 4096).
        """
        if not 1 <= producers <= MAX_PRODUCERS:
            raise ValueError(f"producers must be in [1, {MAX_PRODUCERS}], got {producers}")
        _check_lane_bytes("lane_bytes", lane_bytes)
        _check_lane_bytes("control_bytes", control_bytes)
        header = _page_align(_ACTIVE_OFF + N_LANES * producers)
        size = cls.segment_size(producers, lane_bytes, control_bytes)
        seg = Segment.create(name, size)
        try:
            _STATIC.pack_into(
                seg.buf, 0, MAGIC, VERSION, producers, N_LANES, lane_bytes, control_bytes,
                header, size, os.getpid(),
            )
            return cls(
                seg, n_producers=producers, lane_bytes=lane_bytes,
                control_bytes=control_bytes, header_bytes=header,
            )
        except BaseException:
            seg.close()
            seg.unlink()
            raise

    @classmethod
    def attach(cls, name: str) -> Mailbox:
        """Map an existing mailbox; raises ``FileNotFoundError`` or :class:`MailboxLayoutError`."""
        seg = Segment.attach(name)
        try:
            if seg.size < PAGE:
                raise MailboxLayoutError(f"{name}: {seg.size} bytes is too small for a mailbox")
            magic, version, n, lanes, lane_bytes, control_bytes, header, size, _pid = (
                _STATIC.unpack_from(seg.buf, 0)
            )
            if magic != MAGIC or version != VERSION or lanes != N_LANES:
                raise MailboxLayoutError(
                    f"{name}: not a version-{VERSION} mailbox (magic {magic!r}, version {version}, "
                    f"lanes {lanes})"
                )
            try:
                _check_lane_bytes("lane_bytes", lane_bytes)
                _check_lane_bytes("control_bytes", control_bytes)
            except ValueError as exc:
                raise MailboxLayoutError(f"{name}: {exc}") from None
            expected = cls.segment_size(n, lane_bytes, control_bytes)
            if not 1 <= n <= MAX_PRODUCERS or size != seg.size or size != expected:
                raise MailboxLayoutError(
                    f"{name}: header says {n} producers and {size} bytes, segment has "
                    f"{seg.size} bytes, geometry needs {expected}"
                )
            return cls(
                seg, n_producers=n, lane_bytes=lane_bytes, control_bytes=control_bytes,
                header_bytes=header,
            )
        except BaseException:
            seg.close()
            raise

    # -- geometry -------------------------------------------------------------------

    def ring_offset(self, producer: int, lane: int) -> int:
        """Byte offset of the ring of ``producer`` on ``lane``."""
        if not 0 <= producer < self.n_producers:
            raise ValueError(f"producer index must be in [0, {self.n_producers}), got {producer}")
        off = self._header_bytes + producer * self._producer_stride
        if lane:
            off += self._control_stride + (lane - 1) * self._lane_stride
        return off

    def ring_capacity(self, lane: int) -> int:
        """Data bytes of a ring on ``lane``."""
        return self.control_bytes if lane == Lane.CONTROL else self.lane_bytes

    def max_payload(self, lane: Lane) -> int:
        """Largest payload a message on ``lane`` can carry."""
        return max_payload(self.ring_capacity(lane))

    # -- endpoints --------------------------------------------------------------------

    def sender(
        self,
        producer_index: int,
        *,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT_S,
        spin_us: float = DEFAULT_SPIN_US,
    ) -> Sender:
        """The sending endpoint for producer ``producer_index`` (one per index at a time)."""
        self._check_open()
        s = Sender(self, producer_index, send_timeout=send_timeout, spin_us=spin_us)
        self._children.add(s)
        return s

    def receiver(
        self,
        *,
        spin_us: float = DEFAULT_SPIN_US,
        sleep_s: float = DEFAULT_SLEEP_S,
        max_faults: int = 1024,
    ) -> Receiver:
        """The receiving endpoint (one per mailbox at a time, across all processes)."""
        self._check_open()
        r = Receiver(self, spin_us=spin_us, sleep_s=sleep_s, max_faults=max_faults)
        self._children.add(r)
        return r

    # -- state ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the mailbox is marked closed for senders."""
        self._check_open()
        return bool(self._hot[H_CLOSED])

    def mark_closed(self) -> None:
        """Refuse further sends (``ChannelClosed``) and wake every sleeper.

        The receiver can still drain what was sent; then it gets ``ChannelClosed``.
        """
        self._check_open()
        hot = self._hot
        hot[H_CLOSED] = 1
        hot[H_DOORBELL] = (hot[H_DOORBELL] + 1) & 0xFFFFFFFF
        futex_wake(self._doorbell_addr, 0x7FFFFFFF)
        for k in self._active_indices():
            p, lane = divmod(k, N_LANES)
            off = self.ring_offset(p, lane) + 256 + 4
            word = self._seg.buf[off : off + 4].cast("I")
            word[0] = (word[0] + 1) & 0xFFFFFFFF
            word.release()
            futex_wake(address_of(self._seg.buf, off), 0x7FFFFFFF)

    def _active_indices(self) -> list[int]:
        act = self._active.tobytes()
        return [i for i, b in enumerate(act) if b]

    def ring_statistics(self) -> list[ChannelStatistics]:
        """Counters of every ring ever used, one per (producer, lane); no per-lane sums.

        What a caller that only wants totals reads (the bus meter, each second):
        ``ChannelStatistics.combine`` over the rings of every mailbox at once.
        """
        self._check_open()
        stats = []
        for k in self._active_indices():
            p, lane_i = divmod(k, N_LANES)
            lane = Lane(lane_i)
            stats.append(read_ring_statistics(
                self._seg.buf, self.ring_offset(p, lane), self.ring_capacity(lane), producer=p, lane=lane,
            ))  # fmt: skip
        return stats

    def statistics(self) -> MailboxStatistics:
        """Counters of every ring ever used (readable from any process, no locks)."""
        values = self.ring_statistics()
        chans = {(s.producer, s.lane): s for s in values}
        lanes = {
            lane: ChannelStatistics.combine([s for s in values if s.lane == lane], lane=lane)
            for lane in Lane
        }
        hot = self._hot
        return MailboxStatistics(
            name=self.name,
            closed=bool(hot[H_CLOSED]),
            consumer_pid=hot[H_CONSUMER_PID],
            channels=chans,
            lanes=lanes,
            total=ChannelStatistics.combine(values),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ChannelClosed(f"mailbox {self.name} is closed in this process")

    def close(self) -> None:
        """Close every endpoint made from this mailbox and unmap it (idempotent)."""
        if self._closed:
            return
        for child in list(self._children):
            child.close()
        self._closed = True
        self._hot.release()
        self._active.release()
        self._seg.close()

    def unlink(self) -> None:
        """Remove the segment name (the creator's job; idempotent)."""
        self._seg.unlink()

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Mailbox({self.name!r}, producers={self.n_producers}, lane_bytes={self.lane_bytes}, "
            f"control_bytes={self.control_bytes})"
        )


def _as_bytes(payload: Any) -> Any:
    """Accept bytes, bytearray or any contiguous buffer; return something ``len``-correct."""
    if isinstance(payload, (bytes, bytearray)):
        return payload
    mv = memoryview(payload)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv


def _field_error(exc: struct.error) -> ValueError:
    return ValueError(
        f"header field out of range ({exc}): msg_type and recipient must fit in 16 bits, "
        f"msg_id and correlation_id in 64 bits (unsigned)"
    )


class Sender:
    """Sends framed messages into one mailbox as one producer index.

    Not thread-safe; one ``Sender`` per (mailbox, producer index) at a time.
    """

    def __init__(
        self, mailbox: Mailbox, producer_index: int, *, send_timeout: float | None, spin_us: float
    ) -> None:
        if not 0 <= producer_index < mailbox.n_producers:
            raise ValueError(
                f"producer index must be in [0, {mailbox.n_producers}) for mailbox "
                f"{mailbox.name}, got {producer_index}"
            )
        self._mb = mailbox
        self.producer_index = producer_index
        self.send_timeout = send_timeout
        self._spin_ns = int(spin_us * 1000)
        self._rings: list[RingProducer | None] = [None] * N_LANES
        self._hot = mailbox._hot
        self._bell = mailbox._doorbell_addr
        self._closed = False

    def _open(self, lane: int) -> RingProducer:
        if self._closed:
            raise ChannelClosed(f"sender {self.producer_index} to {self._mb.name} is closed")
        lane = Lane(lane)
        mb = self._mb
        k = self.producer_index * N_LANES + lane
        ring = RingProducer(
            mb._seg.buf, mb.ring_offset(self.producer_index, lane), mb.ring_capacity(lane),
            lane=lane, producer=self.producer_index,
            label=f"mailbox {mb.name}: lane {lane.name} from producer {self.producer_index}",
        )
        if not mb._active[k]:
            mb._active[k] = 1
            self._hot[H_ACTIVE_GEN] = (self._hot[H_ACTIVE_GEN] + 1) & 0xFFFFFFFF
        self._rings[lane] = ring
        return ring

    def send(
        self,
        payload: bytes | memoryview,
        *,
        msg_type: int,
        lane: Lane,
        recipient: int,
        msg_id: int = 0,
        correlation_id: int = 0,
        timeout: float | None = DEFAULT,
        wake: bool = True,
    ) -> None:
        """Send one message, waiting up to ``timeout`` seconds for room.

        Args:
            payload: the bytes (any contiguous buffer).
            msg_type: application type (u16).
            lane: priority lane.
            recipient: the consumer's slot (u16), recorded in the frame.
            msg_id: application id (u64).
            correlation_id: id of the message this answers (u64).
            timeout: seconds to wait for room; ``None`` waits forever, 0 does not
                wait; by default the sender's ``send_timeout``.
            wake: ``False`` makes a *quiet send*: the frame is published to the
                ring exactly as usual (same sequence number, checksum, statistics),
                but the doorbell is not rung, so a sleeping consumer is not woken
                (no doorbell bump, no ``futex_wake``).  The consumer finds the frame
                at its next wake-up, i.e. when any other send rings the doorbell or
                its sleep times out: the latency bound is the receiver's
                ``sleep_s``.  Order within a lane is unchanged: a later waking send
                on the same lane wakes the consumer, which then receives the quiet
                frames before it, in order.  Exception: a quiet send that finds its
                ring full still rings the doorbell, since the consumer must drain to
                make room.  For "latest value" data nobody waits for (agents'
                publications and checkpoints to the orchestrator).

        Raises:
            ChannelFull: still no room after ``timeout`` (counted as a full event).
            MessageTooLarge: the payload can never fit the lane.
            ChannelClosed: the mailbox is marked closed, or this sender is closed.
        """
        ring = self._rings[lane]
        if ring is None:
            ring = self._open(lane)
        if type(payload) is not bytes:
            payload = _as_bytes(payload)
        hot = self._hot
        if hot[H_CLOSED]:
            raise self._closed_error(lane, recipient)
        try:
            if not ring.put(payload, msg_type, recipient, msg_id, correlation_id):
                self._block(
                    ring, lane, recipient, timeout,
                    lambda: ring.put(payload, msg_type, recipient, msg_id, correlation_id),
                )
        except struct.error as exc:
            raise _field_error(exc) from None
        if wake and hot[H_ASLEEP]:
            self._ring_bell()

    def send_nowait(
        self,
        payload: bytes | memoryview,
        *,
        msg_type: int,
        lane: Lane,
        recipient: int,
        msg_id: int = 0,
        correlation_id: int = 0,
        wake: bool = True,
    ) -> None:
        """Like :meth:`send` but raise ``ChannelFull`` at once if there is no room."""
        self.send(
            payload, msg_type=msg_type, lane=lane, recipient=recipient, msg_id=msg_id,
            correlation_id=correlation_id, timeout=0, wake=wake,
        )

    def send_batch(
        self,
        payloads: Sequence[bytes],
        *,
        msg_type: int,
        lane: Lane,
        recipient: int,
        timeout: float | None = DEFAULT,
        wake: bool = True,
    ) -> int:
        """Send many messages (msg_id = correlation_id = 0) with few shared-memory writes.

        Each message is still its own frame with its own sequence number and
        checksum.  Returns ``len(payloads)``.  ``wake=False`` sends quietly, as
        :meth:`send` describes (a full ring still rings the doorbell).

        Raises:
            ChannelFull: with attribute ``sent`` = how many went out before the timeout.
            MessageTooLarge, ChannelClosed: as :meth:`send` (``sent`` set likewise
                is not needed: nothing after the oversized payload is sent).
        """
        ring = self._rings[lane]
        if ring is None:
            ring = self._open(lane)
        if not isinstance(payloads, (list, tuple)):
            payloads = list(payloads)
        payloads = [p if type(p) is bytes else _as_bytes(p) for p in payloads]
        hot = self._hot
        if hot[H_CLOSED]:
            raise self._closed_error(lane, recipient)
        total = len(payloads)
        try:
            sent = ring.put_many(payloads, 0, msg_type, recipient)
        except struct.error as exc:
            raise _field_error(exc) from None
        if sent < total:
            done = [sent]

            def attempt() -> bool:
                done[0] += ring.put_many(payloads, done[0], msg_type, recipient)
                return done[0] >= total

            try:
                self._block(ring, lane, recipient, timeout, attempt)
            except ChannelFull as exc:
                exc.sent = done[0]  # type: ignore[attr-defined]
                raise
        if wake and hot[H_ASLEEP]:
            self._ring_bell()
        return total

    def _ring_bell(self) -> None:
        hot = self._hot
        hot[H_DOORBELL] = (hot[H_DOORBELL] + 1) & 0xFFFFFFFF
        futex_wake(self._bell, 1)

    def _closed_error(self, lane: int, recipient: int) -> ChannelClosed:
        return ChannelClosed(
            f"mailbox {self._mb.name} (recipient {recipient}) is closed; "
            f"lane {LANE_NAMES[lane]} refuses messages"
        )

    def _block(
        self,
        ring: RingProducer,
        lane: int,
        recipient: int,
        timeout: float | None,
        attempt: Callable[[], bool],
    ) -> None:
        """Wait for room: spin, then sleep on the ring's space word; raise on timeout."""
        ring.count_full()
        if timeout is DEFAULT:
            timeout = self.send_timeout
        hot = self._hot
        if hot[H_ASLEEP]:
            self._ring_bell()
        if timeout is not None and timeout <= 0:
            raise self._full_error(ring, lane, recipient, 0.0)
        start = perf_counter_ns()
        deadline = None if timeout is None else start + int(timeout * 1e9)
        spin_end = start + self._spin_ns
        if deadline is not None:
            spin_end = min(spin_end, deadline)
        while perf_counter_ns() < spin_end:
            if attempt():
                return
        while True:
            if hot[H_CLOSED]:
                raise self._closed_error(lane, recipient)
            value = ring.space_word()
            ring.set_waiting(1)
            try:
                process_barrier()  # the consumer now sees waiting=1, or we see its head
                if attempt():
                    return
                if hot[H_ASLEEP]:
                    self._ring_bell()
                now = perf_counter_ns()
                if deadline is not None and now >= deadline:
                    raise self._full_error(ring, lane, recipient, timeout)
                wait = PRODUCER_SLEEP_S
                if deadline is not None:
                    wait = min(wait, (deadline - now) / 1e9)
                futex_wait(ring.space_addr, value, wait)
            finally:
                ring.set_waiting(0)

    def _full_error(
        self, ring: RingProducer, lane: int, recipient: int, timeout: float | None
    ) -> ChannelFull:
        return ChannelFull(
            f"mailbox {self._mb.name}: lane {LANE_NAMES[lane]} to recipient {recipient} "
            f"(from producer {self.producer_index}) is full: {ring.used_bytes()} of "
            f"{ring.capacity} bytes unacknowledged after waiting {timeout} s"
        )

    def close(self) -> None:
        """Release this endpoint (idempotent); further sends raise ``ChannelClosed``."""
        if self._closed:
            return
        self._closed = True
        for ring in self._rings:
            if ring is not None:
                ring.close()
        self._rings = [None] * N_LANES

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Receiver:
    """Receives from every producer of one mailbox, CONTROL lane first.

    Frames stay in the ring until acknowledged (:meth:`ack`); a receiver that
    replaces a dead one gets the unacknowledged frames again, flagged
    ``redelivered``.  Not thread-safe.
    """

    def __init__(self, mailbox: Mailbox, *, spin_us: float, sleep_s: float, max_faults: int) -> None:
        if sleep_s <= 0:
            raise ValueError(f"sleep_s must be positive, got {sleep_s}")
        self._mb = mailbox
        self._hot = mailbox._hot
        self._bell = mailbox._doorbell_addr
        self._spin_ns = int(spin_us * 1000)
        self._sleep_s = sleep_s
        self._max_faults = max_faults
        self._rings: dict[int, RingConsumer] = {}
        self._lanes: list[list[RingConsumer]] = [[] for _ in range(N_LANES)]
        self._active_lanes: list[list[RingConsumer]] = []
        self._faults: list[ChannelFault] = []
        self._gen = -1
        self._polls = 0
        self._closed = False
        hot = self._hot
        hot[H_CONSUMER_PID] = os.getpid()
        hot[H_EPOCH] = (hot[H_EPOCH] + 1) & 0xFFFFFFFF
        self._refresh_active()

    # -- discovery ----------------------------------------------------------------------

    def _refresh_active(self) -> None:
        mb = self._mb
        self._gen = self._hot[H_ACTIVE_GEN]
        act = mb._active.tobytes()
        if len(act) - act.count(0) == len(self._rings):
            return
        for k, b in enumerate(act):
            if b and k not in self._rings:
                p, lane = divmod(k, N_LANES)
                ring = RingConsumer(
                    mb._seg.buf, mb.ring_offset(p, lane), mb.ring_capacity(lane),
                    lane=lane, producer=p, fault_sink=self._faults,
                    max_faults=self._max_faults, owner=self,
                )
                self._rings[k] = ring
                self._lanes[lane].append(ring)
        self._active_lanes = [rings for rings in self._lanes if rings]

    # -- receiving ------------------------------------------------------------------------

    def _poll(self, out: FrameBatch, max_n: int) -> int:
        self._polls += 1
        if self._hot[H_ACTIVE_GEN] != self._gen or not self._polls & REFRESH_EVERY_POLLS:
            self._refresh_active()
        got = 0
        for rings in self._active_lanes:
            if len(rings) == 1:
                got += rings[0].read_batch(out, max_n - got)
            else:
                for j, ring in enumerate(rings):
                    k = ring.read_batch(out, max_n - got)
                    if k:
                        got += k
                        if got >= max_n:
                            rings.append(rings.pop(j))  # served last goes to the back
                            return got
                if got and len(rings) > 1:
                    rings.append(rings.pop(0))
            if got >= max_n:
                return got
        return got

    def _poll_one(self) -> Frame | None:
        """The single-frame version of :meth:`_poll` (the latency path)."""
        self._polls += 1
        if self._hot[H_ACTIVE_GEN] != self._gen or not self._polls & REFRESH_EVERY_POLLS:
            self._refresh_active()
        for rings in self._active_lanes:
            for ring in rings:
                f = ring.read_one()
                if f is not None:
                    if len(rings) > 1:
                        rings.remove(ring)
                        rings.append(ring)  # served last goes to the back
                    return f
        return None

    def _poll_closed(self, out: FrameBatch | None = None, max_n: int = 1) -> int:
        raise ChannelClosed(f"receiver of {self._mb.name} is closed")

    def receive_nowait(self) -> Frame:
        """The next frame, or raise ``ChannelEmpty`` (``ChannelClosed`` once closed and drained)."""
        f = self._poll_one()
        if f is None:
            self._raise_empty()
        return f  # type: ignore[return-value]

    def receive(self, timeout: float | None = None) -> Frame:
        """The next frame, waiting up to ``timeout`` seconds (``None``: forever).

        Raises:
            ChannelEmpty: nothing arrived in time.
            ChannelClosed: this receiver is closed, or the mailbox is marked closed
                and drained.
        """
        f = self._poll_one()
        if f is not None:
            return f
        batch = FrameBatch()
        return self._wait(batch, 1, timeout) or batch[0]

    def receive_batch(self, max_n: int = 256, timeout: float | None = None) -> FrameBatch:
        """Up to ``max_n`` frames, lanes in priority order; waits for at least one.

        The result is a sequence of :class:`Frame`; its ``payloads`` list is the
        cheap way to read bulk data, and ``ack_batch(batch)`` acknowledges it all.
        """
        if max_n < 1:
            raise ValueError(f"max_n must be >= 1, got {max_n}")
        batch = FrameBatch()
        if self._poll(batch, max_n):
            return batch
        f = self._wait(batch, max_n, timeout)
        if f is not None:  # pragma: no cover - only the max_n == 1 paths return frames
            batch = FrameBatch.of([f])
        return batch

    def _raise_empty(self) -> None:
        if self._hot[H_CLOSED]:
            raise ChannelClosed(f"mailbox {self._mb.name} is closed and drained")
        raise ChannelEmpty(f"no message in mailbox {self._mb.name}")

    def _wait(self, out: FrameBatch, max_n: int, timeout: float | None) -> Frame | None:
        """Spin, then sleep, until frames arrive: either returns one frame (the
        ``max_n == 1`` fast paths) or fills ``out`` and returns ``None``."""
        hot = self._hot
        poll = self._poll
        start = perf_counter_ns()
        if timeout is not None and timeout <= 0:
            self._raise_empty()
        deadline = None if timeout is None else start + int(timeout * 1e9)
        spin_end = start + self._spin_ns
        if deadline is not None:
            spin_end = min(spin_end, deadline)
        for ring in self._rings.values():
            ring.flush_stats()  # idle time: do the deferred bookkeeping now
        i = 0
        if max_n == 1 and len(self._rings) == 1:
            # One active ring: spin on its tail word alone (a few bytecodes per
            # iteration), leaving for the general loop if another ring appears.
            (ring,) = self._rings.values()
            tail_word = ring._p
            gen = self._gen
            read_one = ring.read_one
            while True:
                if tail_word[0] != ring.r:
                    f = read_one()  # the only ring, so lane order holds
                    if f is not None:
                        return f
                i += 1
                if not i & 31 and (perf_counter_ns() >= spin_end or hot[H_ACTIVE_GEN] != gen):
                    break
        if max_n == 1:
            poll_one = self._poll_one
            while perf_counter_ns() < spin_end:
                for _ in range(16):
                    f = poll_one()
                    if f is not None:
                        return f
        else:
            while perf_counter_ns() < spin_end:
                for _ in range(16):
                    if poll(out, max_n):
                        return None
        while True:
            value = hot[H_DOORBELL]
            hot[H_ASLEEP] = 1
            try:
                process_barrier()  # producers now see asleep=1, or we see their tail
                self._refresh_active()
                if poll(out, max_n):
                    return None
                if hot[H_CLOSED]:
                    self._raise_empty()
                for ring in self._rings.values():
                    ring.reassert()
                wait = self._sleep_s
                if deadline is not None:
                    left = (deadline - perf_counter_ns()) / 1e9
                    if left <= 0:
                        self._raise_empty()
                    wait = min(wait, left)
                futex_wait(self._bell, value, wait)
            finally:
                hot[H_ASLEEP] = 0
            if poll(out, max_n):
                return None

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a frame may be ready, without receiving it.

        For a watcher thread that wakes an event loop which then calls
        :meth:`receive_nowait`: this method only reads shared memory and the
        receiver's cursors, so it may run in another thread than the one that
        receives.  Returns ``True`` when a known ring holds unread bytes, a new
        ring became active, or the mailbox is marked closed (so the caller gets
        ``ChannelClosed`` from its next receive); ``False`` on timeout.  No spinning.
        """
        if self._closed:
            raise ChannelClosed(f"receiver of {self._mb.name} is closed")
        hot = self._hot
        deadline = None if timeout is None else perf_counter_ns() + int(timeout * 1e9)
        while True:
            if self._ready():
                return True
            value = hot[H_DOORBELL]
            hot[H_ASLEEP] = 1
            try:
                process_barrier()
                if self._ready():
                    return True
                wait = self._sleep_s
                if deadline is not None:
                    left = (deadline - perf_counter_ns()) / 1e9
                    if left <= 0:
                        return False
                    wait = min(wait, left)
                futex_wait(self._bell, value, wait)
            finally:
                hot[H_ASLEEP] = 0

    def _ready(self) -> bool:
        if self._closed:
            raise ChannelClosed(f"receiver of {self._mb.name} is closed")
        hot = self._hot
        if hot[H_CLOSED] or hot[H_ACTIVE_GEN] != self._gen:
            return True
        rings = list(self._rings.values())
        act = self._mb._active.tobytes()
        if len(act) - act.count(0) != len(rings):
            return True
        return any(ring.has_data() for ring in rings if not ring.closed)

    # -- acknowledging ------------------------------------------------------------------

    def ack(self, frame: Frame) -> None:
        """Mark ``frame`` handled; its bytes are freed once every earlier frame of
        its ring is handled too.  Acknowledging twice is harmless."""
        ring = frame[12]
        if ring.owner is not self:  # a closed ring has no owner
            self._bad_ack(ring)
        ring.ack(frame)

    def ack_batch(self, frames: Sequence[Frame]) -> None:
        """:meth:`ack` every frame, with one shared-memory store per ring.

        Given the :class:`FrameBatch` from :meth:`receive_batch` itself, whole
        runs are acknowledged without building the frames.
        """
        if type(frames) is FrameBatch and frames._segments:
            for k, (ring, epoch, span0, _now, _nred, _start, _heads, ends) in enumerate(frames._segments):
                if ring.owner is not self:
                    self._bad_ack(ring)
                if epoch == ring.epoch and span0 == ring.head and not ring._ooo:
                    ring.ack_segment(epoch, span0, ends[-1], ())
                else:
                    ring.ack_segment(epoch, span0, ends[-1], frames.segment_frames(k))
            return
        cur: RingConsumer | None = None
        head = epoch = 0
        for f in frames:
            ring = f[12]
            if ring is not cur:
                if cur is not None:
                    cur.head = head
                    cur.commit()
                if ring.owner is not self:
                    self._bad_ack(ring)
                cur = ring
                head, epoch = ring.head, ring.epoch
            if f[14] == head and f[13] == epoch and not ring._ooo:
                head = f[15]  # in order: the common case, no method call
                if head == ring.last_end:
                    head = ring.last_end = ring.r
            else:
                ring.head = head
                ring.ack_local(f)
                head = ring.head
        if cur is not None:
            cur.head = head
            cur.commit()

    def _bad_ack(self, ring: RingConsumer) -> None:
        if self._closed or ring.closed:
            raise ChannelClosed(f"receiver of {self._mb.name} is closed")
        raise ValueError("frame was not received by this receiver")

    # -- faults and state -------------------------------------------------------------------

    def take_faults(self) -> list[ChannelFault]:
        """Return and forget the faults recorded since the last call."""
        faults = list(self._faults)
        self._faults.clear()
        return faults

    @property
    def faults_dropped(self) -> int:
        """Faults not recorded because ``max_faults`` were already pending."""
        return sum(r.faults_dropped for r in self._rings.values())

    def close(self) -> None:
        """Release this endpoint (idempotent).  Unacknowledged frames stay in the
        rings for the next receiver.  Does not mark the mailbox closed."""
        if self._closed:
            return
        self._closed = True
        self._poll = self._poll_closed  # type: ignore[method-assign]
        self._poll_one = self._poll_closed  # type: ignore[method-assign, assignment]
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()
        self._lanes = [[] for _ in range(N_LANES)]
        self._active_lanes = []

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

