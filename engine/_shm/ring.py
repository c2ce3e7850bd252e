"""Single-producer / single-consumer byte ring in a region of a shared-memory segment.

This module is longer than most because the byte layout, the producer and the
consumer must be read together: every offset below is used by both sides.

Region layout (``offset`` is 4096-aligned inside a mailbox; all integers little-endian)
------------------------------------------------------------------------------------

==========  =====  =========================================================  ========
offset      size   field                                                      writer
==========  =====  =========================================================  ========
+0          8      tail: bytes ever published (monotonic, multiple of 8)      producer
+8          8      next_seq: sequence number of the next record (= sent)      producer
+16         8      bytes_sent: payload bytes published                        producer
+24         8      full_events: sends that found the ring full                producer
+32         8      producer pid (diagnostics)                                 producer
+128        8      head: committed bytes (space before it is free)            consumer
+136        8      read: read cursor (frames in [head, read) were handed out)  consumer
+144        8      received (frames)                                          consumer
+152        8      bytes_received (payload bytes)                             consumer
+160        8      rejected (corrupt frames / control words)                  consumer
+168        8      redelivered (frames handed out again after a restart)      consumer
+176        8      bytes_lost (skipped while resynchronising)                 consumer
+184        8      sequence_errors                                            consumer
+256        4      waiting: producer sleeps for space (flag)                  producer
+260        4      space: futex word the producer sleeps on                   consumer
+384        2048   latency histogram, 256 x u64 (see :func:`latency_bucket`)   consumer
+4096       cap    data area, ``cap`` a power of two                          producer
==========  =====  =========================================================  ========

The producer line (+0) and the consumer line (+128) are 128 bytes apart, not
just 64, so that the adjacent-line prefetcher of Intel cores does not pull the
other side's line along with ours.  The wait line (+256) is written only when a
producer goes to sleep for space, so reading it on every commit costs no miss.

Records in the data area are 8-byte aligned; ``rec = align8(48 + payload_len)``:

======  ====  ==========================================================
offset  size  field
======  ====  ==========================================================
0       4     checksum over bytes [4, 48 + payload_len) of the record
4       4     payload_len
8       8     seq (per ring, assigned by the producer, from 0)
16      8     msg_id
24      8     correlation_id
32      8     send_ns (``time.monotonic_ns()`` of the producer)
40      2     msg_type
42      2     recipient (consumer slot)
44      2     sender (producer index)   -- 44..47 are read as one u32 "tag"
46      1     lane
47      1     flags: 0x01 PAD, 0x02 checksum is Adler-32 (else CRC-32)
48      n     payload
======  ====  ==========================================================

Design note
-----------
*Publication and memory ordering.*  The producer writes a whole record
(checksum, header, payload) and only then stores the new ``tail``; the consumer
loads ``tail`` and only then reads the bytes below it.  x86-64 is TSO: stores
become visible to other cores in program order and loads are not reordered with
older loads, so a consumer that sees a tail sees every byte before it.  The
consumer copies a record out before it stores ``head``; a store is never
reordered before an earlier load, so the producer cannot overwrite bytes the
consumer is still reading.  Every shared word is an aligned 8-byte (or 4-byte)
slot accessed through a ``memoryview.cast("Q")`` item, which CPython compiles
into one aligned ``mov``: no torn values.  This is an x86-64 design; a weakly
ordered CPU would need real fences, which pure Python cannot issue.

Sender, lane and flags are read as one 32-bit tag so that the consumer checks
"this ring's producer and lane, a plain frame, checksum kind" with one integer
comparison per frame.

*Wrap-around.*  A record never straddles the end of the data area.  If fewer
than 48 bytes remain before the end, both sides skip them by rule; otherwise
the producer fills the rest with a PAD record (header only, its own checksum)
and starts again at offset 0.  A padding record costs at most one record's size
per lap, and in exchange every record is one contiguous slice: one copy out,
one checksum call.  The largest payload is ``cap - 48`` bytes; if the ring is
empty but the tail sits mid-ring, the producer pads, and the record goes in as
soon as the consumer has skipped the pad.

*At-least-once.*  ``read`` (the cursor) moves when frames are handed out;
``head`` moves only when they are acknowledged, in ring order, and only
``head`` frees space.  A consumer that restarts begins at ``head`` and marks the
frames below the dead consumer's ``read`` as redelivered.

*Checksum.*  Measured on this project's hardware (CPython 3.11, zlib 1.2.13):
``zlib.crc32`` costs 150-170 ns for 64-108 bytes but is faster than Adler-32
from about 1.5 KiB up (4 KiB: crc32 1.08 us, adler32 1.21 us); ``zlib.adler32``
costs 45-60 ns for small frames.  So records whose checksummed span is below
1 KiB use Adler-32 and larger ones CRC-32, recorded in a flag bit.  Both detect
every single-bit error and every burst up to 16 bits; Adler-32 is weaker than
CRC-32 against many scattered flips in short records (it is a real checksum,
not a cryptographic one).  Adler-32 of an all-zero span is never 0, so zeroed
memory never passes as a record.

*Corruption.*  Every length is checked against the record's room before the
end of the data area and against the published tail *before* any payload byte
is read, and all reads are bounds-checked slices of this ring's own data view,
so a garbage header can never make the consumer read outside the ring.  A bad
record (length, header, checksum, or a sequence number other than the expected
one -- a stale record of an earlier lap reached through a corrupt tail) is
counted as rejected, reported as a :class:`ChannelFault`, and the consumer
resynchronises by skipping to the producer's published tail, counting the
skipped bytes as lost; the sequence check restarts with the next frame.

Control words are validated too.  Each side keeps its own positions locally and
only publishes them, so garbage in a shared word is repaired by the next store
of its owner.  A tail that is not 8-aligned, more than ``cap`` ahead, or more
than ``cap`` behind the read cursor is ignored (one fault) until the producer
publishes again; a tail at most ``cap`` *behind* the cursor means the cursor was
moved by an earlier garbage tail, so the consumer goes back to it (a new
"epoch": frames handed out before are void, their acks ignored).  A producer
that reads an impossible head re-publishes its tail and reports "full"; the
consumer re-stores its head on every commit and every time it goes to sleep.
Garbage in the mailbox header (closed flag, doorbell) is not repaired: a stray
closed flag makes senders fail loudly with ``ChannelClosed``.
"""

from __future__ import annotations

import enum
import os
import struct
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter

from engine._shm.futex import address_of, futex_wake
from engine.errors import MessageTooLarge

__all__ = [
    "HIST_BUCKETS",
    "RECORD_HEADER_BYTES",
    "RING_HEADER_BYTES",
    "ChannelFault",
    "ChannelStatistics",
    "Frame",
    "FrameBatch",
    "Lane",
    "RingConsumer",
    "RingProducer",
    "bucket_bounds",
    "latency_bucket",
    "max_payload",
    "percentile_from_histogram",
    "read_ring_statistics",
    "ring_region_size",
]


class Lane(enum.IntEnum):
    """Priority lanes; a receiver always drains lower values first."""

    CONTROL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


LANE_NAMES = tuple(lane.name for lane in Lane)

# --- layout ------------------------------------------------------------------

RING_HEADER_BYTES = 4096
_PROD_LINE = 0
_CONS_LINE = 128
_WAIT_LINE = 256
_HIST_OFF = 384

# producer line, u64 words
P_TAIL, P_SEQ, P_BYTES, P_FULL, P_PID = range(5)
# consumer line, u64 words
C_HEAD, C_READ, C_RECV, C_BYTES, C_REJECTED, C_REDELIVERED, C_LOST, C_SEQERR = range(8)
# wait line, u32 words
W_WAITING, W_SPACE = 0, 1

HIST_BUCKETS = 256
RECORD_HEADER_BYTES = HDR = 48
REC = struct.Struct("<IIQQQQHHI")  # the last u32 is the tag: sender | lane << 16 | flags << 24
BODY = struct.Struct("<IQQQQHHI")  # REC without the checksum
CK = struct.Struct("<I")
F_PAD = 0x01
F_ADLER = 0x02


def make_tag(sender: int, lane: int, flags: int) -> int:
    """The u32 at record offset 44: sender (u16), lane (u8), flags (u8), little-endian."""
    return sender | lane << 16 | flags << 24
ADLER_BELOW = 1024 - 44  # payload bytes below which Adler-32 is used (span < 1 KiB)
MIN_CAPACITY = 256
MAX_CAPACITY = 1 << 30

assert REC.size == HDR and BODY.size == HDR - 4

# Hot-path bindings: one global lookup instead of a module attribute lookup.
_mono = time.monotonic_ns
_adler = zlib.adler32
_crc = zlib.crc32
_body_pack = BODY.pack
_rec_unpack = REC.unpack_from
LAT_FLUSH_EVERY = 64  # frames between lazy statistics flushes on the read_one path


def ring_region_size(capacity: int) -> int:
    """Bytes a ring with a ``capacity``-byte data area occupies in a segment."""
    return RING_HEADER_BYTES + capacity


def max_payload(capacity: int) -> int:
    """Largest payload a ring with this data capacity can ever carry."""
    return (capacity - HDR) & ~7


def _check_capacity(capacity: int) -> None:
    if capacity < MIN_CAPACITY or capacity > MAX_CAPACITY or capacity & (capacity - 1):
        raise ValueError(
            f"ring capacity must be a power of two in [{MIN_CAPACITY}, {MAX_CAPACITY}], "
            f"got {capacity}"
        )


# --- latency histogram -----------------------------------------------------------


def latency_bucket(ns: int) -> int:
    """Histogram bucket of a latency in nanoseconds.

    Values below 16 ns get one bucket each; above, every power of two is split
    into 8 log-spaced sub-buckets (at most 12.5 % wide), up to 2**34 ns (17 s);
    larger values land in the last bucket.  From 100 ns to 10 s that is 27
    octaves x 8 = 216 buckets, so a percentile is known to within ~6 %.
    """
    if ns < 16:
        return ns if ns > 0 else 0
    b = ns.bit_length()
    i = 16 + ((b - 5) << 3) + ((ns >> (b - 4)) & 7)
    return i if i < HIST_BUCKETS else HIST_BUCKETS - 1


def bucket_bounds(i: int) -> tuple[int, int]:
    """``[low, high)`` nanoseconds covered by histogram bucket ``i``."""
    if not 0 <= i < HIST_BUCKETS:
        raise ValueError(f"bucket index must be in [0, {HIST_BUCKETS}), got {i}")
    if i < 16:
        return i, i + 1
    k = i - 16
    shift = (k >> 3) + 1
    sub = k & 7
    return (8 + sub) << shift, (9 + sub) << shift


def percentile_from_histogram(counts: tuple[int, ...] | list[int], q: float) -> float | None:
    """The ``q``-quantile (0 < q <= 1) of a latency histogram, in ns, or ``None`` if empty.

    Returns the midpoint of the bucket that holds the quantile.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    acc = 0
    for i, c in enumerate(counts):
        acc += c
        if c and acc >= rank:
            lo, hi = bucket_bounds(i)
            return (lo + hi) / 2.0
    lo, hi = bucket_bounds(len(counts) - 1)  # pragma: no cover - rounding guard
    return (lo + hi) / 2.0


# --- value types -------------------------------------------------------------------


class Frame(tuple):
    """One received message.

    A tuple underneath (created in one C call on the hot path); use the
    attributes.  ``payload`` is a private copy; ``redelivered`` is true when a
    previous consumer process already had this frame before it died.
    """

    __slots__ = ()

    msg_type: int = property(itemgetter(0))  # type: ignore[assignment]
    """Application message type (u16)."""
    lane_index: int = property(itemgetter(1))  # type: ignore[assignment]
    """Lane as a plain int (0 = CONTROL ... 3 = LOW)."""
    flags: int = property(itemgetter(2))  # type: ignore[assignment]
    """Record flag bits (checksum kind)."""
    sender: int = property(itemgetter(3))  # type: ignore[assignment]
    """Producer index that sent the frame (0 = orchestrator, k = agent slot k)."""
    recipient: int = property(itemgetter(4))  # type: ignore[assignment]
    """Recipient slot written by the sender."""
    seq: int = property(itemgetter(5))  # type: ignore[assignment]
    """Per-ring sequence number assigned by the producer."""
    msg_id: int = property(itemgetter(6))  # type: ignore[assignment]
    """Application message id (u64)."""
    correlation_id: int = property(itemgetter(7))  # type: ignore[assignment]
    """Id of the message this one answers, or 0."""
    send_ns: int = property(itemgetter(8))  # type: ignore[assignment]
    """``time.monotonic_ns()`` when the producer framed the message."""
    payload: bytes = property(itemgetter(9))  # type: ignore[assignment]
    """The message bytes (a copy; stays valid after ``ack``)."""
    redelivered: bool = property(itemgetter(10))  # type: ignore[assignment]
    """True if a consumer that died had already received this frame."""
    recv_ns: int = property(itemgetter(11))  # type: ignore[assignment]
    """``time.monotonic_ns()`` when the consumer read the frame."""

    @property
    def lane(self) -> Lane:
        """The frame's :class:`Lane`."""
        return Lane(self[1])

    @property
    def latency_ns(self) -> int:
        """Receive time minus send time (same clock in every process)."""
        return self[11] - self[8]

    def __repr__(self) -> str:
        return (
            f"Frame(sender={self[3]}, lane={LANE_NAMES[self[1]]}, seq={self[5]}, "
            f"msg_type={self[0]}, msg_id={self[6]}, correlation_id={self[7]}, "
            f"payload={len(self[9])}B, redelivered={self[10]})"
        )


_tnew = tuple.__new__
F_RING, F_EPOCH, F_SPAN, F_END = 12, 13, 14, 15


class FrameBatch(Sequence[Frame]):
    """Frames from one ``receive_batch`` call: a sequence of :class:`Frame`.

    ``payloads`` is the list of payloads in the same order, ready at no extra
    cost; the :class:`Frame` objects are built on first indexing or iteration.
    Pass the batch itself to ``Receiver.ack_batch`` to acknowledge it all with
    one store per ring.
    """

    __slots__ = ("_frames", "_segments", "payloads")

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self._segments: list[tuple] = []
        self._frames: list[Frame] | None = None

    def __len__(self) -> int:
        return len(self.payloads)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self.frames()[i]

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames())

    def __repr__(self) -> str:
        return f"FrameBatch({len(self.payloads)} frames)"

    @classmethod
    def of(cls, frames: list[Frame]) -> FrameBatch:
        """A batch holding already-built frames."""
        b = cls()
        b.payloads = [f[9] for f in frames]
        b._frames = list(frames)
        return b

    def frames(self) -> list[Frame]:
        """The frames as a list (built once)."""
        if self._frames is None:
            out: list[Frame] = []
            payloads = self.payloads
            for ring, epoch, span, now, nred, start, heads, ends in self._segments:
                out.extend(_segment_frames(ring, epoch, span, now, nred, payloads, start, heads, ends))
            self._frames = out
        return self._frames

    def segment_frames(self, k: int) -> list[Frame]:
        """The frames of segment ``k`` (one ring's run)."""
        ring, epoch, span, now, nred, start, heads, ends = self._segments[k]
        return _segment_frames(ring, epoch, span, now, nred, self.payloads, start, heads, ends)


def _segment_frames(
    ring: object, epoch: int, span: int, now: int, nred: int,
    payloads: list[bytes], start: int, heads: list[tuple], ends: list[int],
) -> list[Frame]:  # fmt: skip
    out = []
    for k, h in enumerate(heads):
        _ck, _plen, seq, mid, cid, sns, mt, rcp, tag = h
        end = ends[k]
        fields = (
            mt, (tag >> 16) & 0xFF, tag >> 24, tag & 0xFFFF, rcp, seq, mid, cid, sns, payloads[start + k],
            k < nred, now, ring, epoch, span, end,
        )  # fmt: skip
        out.append(_tnew(Frame, fields))
        span = end
    return out


@dataclass(frozen=True)
class ChannelFault:
    """A corrupt frame or control word the consumer detected and skipped.

    Attributes:
        producer: producer index of the ring.
        lane: lane of the ring.
        reason: what failed validation.
        bytes_lost: bytes skipped to resynchronise (0 if nothing was skipped).
        position: ring byte position (monotonic) where the problem was seen.
        time_ns: ``time.monotonic_ns()`` of detection.
    """

    producer: int
    lane: Lane
    reason: str
    bytes_lost: int
    position: int
    time_ns: int


@dataclass(frozen=True)
class ChannelStatistics:
    """Counters of one ring (or a sum of rings), read without locks.

    Attributes:
        producer: producer index, or -1 for a sum over producers.
        lane: lane, or ``None`` for a sum over lanes.
        capacity: data bytes (summed for totals).
        sent: frames published by the producer.
        bytes_sent: payload bytes published.
        full_events: sends that found the ring full (each counted once).
        received: frames handed to the consumer (redeliveries included).
        bytes_received: payload bytes handed to the consumer.
        rejected: corrupt frames or control words detected.
        redelivered: frames handed out again after a consumer restart.
        bytes_lost: bytes skipped while resynchronising after corruption.
        sequence_errors: gaps or repeats in the sequence numbers.
        queued_bytes: published but not yet acknowledged (tail - head).
        unread_bytes: published but not yet read (tail - read cursor).
        latency_histogram: counts per :func:`latency_bucket`.
    """

    producer: int
    lane: Lane | None
    capacity: int
    sent: int
    bytes_sent: int
    full_events: int
    received: int
    bytes_received: int
    rejected: int
    redelivered: int
    bytes_lost: int
    sequence_errors: int
    queued_bytes: int
    unread_bytes: int
    latency_histogram: tuple[int, ...]

    @property
    def latency_count(self) -> int:
        """Number of latency samples."""
        return sum(self.latency_histogram)

    def latency_percentile_ns(self, q: float) -> float | None:
        """Latency quantile ``q`` in ns (bucket midpoint), ``None`` if no samples."""
        return percentile_from_histogram(self.latency_histogram, q)

    @staticmethod
    def combine(
        items: list[ChannelStatistics], *, producer: int = -1, lane: Lane | None = None
    ) -> ChannelStatistics:
        """Sum several statistics into one."""
        hists = [s.latency_histogram for s in items]
        hist = [sum(column) for column in zip(*hists)] if hists else [0] * HIST_BUCKETS

        def tot(field: str) -> int:
            return sum(getattr(s, field) for s in items)

        return ChannelStatistics(
            producer=producer,
            lane=lane,
            capacity=tot("capacity"),
            sent=tot("sent"),
            bytes_sent=tot("bytes_sent"),
            full_events=tot("full_events"),
            received=tot("received"),
            bytes_received=tot("bytes_received"),
            rejected=tot("rejected"),
            redelivered=tot("redelivered"),
            bytes_lost=tot("bytes_lost"),
            sequence_errors=tot("sequence_errors"),
            queued_bytes=tot("queued_bytes"),
            unread_bytes=tot("unread_bytes"),
            latency_histogram=tuple(hist),
        )


def read_ring_statistics(
    buf: memoryview, offset: int, capacity: int, *, producer: int, lane: Lane
) -> ChannelStatistics:
    """Snapshot the counters of the ring at ``offset`` (any process, no locks)."""
    p = struct.unpack_from("<5Q", buf, offset + _PROD_LINE)
    c = struct.unpack_from("<8Q", buf, offset + _CONS_LINE)
    hist = struct.unpack_from(f"<{HIST_BUCKETS}Q", buf, offset + _HIST_OFF)
    tail, head, read = p[P_TAIL], c[C_HEAD], c[C_READ]
    return ChannelStatistics(
        producer=producer,
        lane=lane,
        capacity=capacity,
        sent=p[P_SEQ],
        bytes_sent=p[P_BYTES],
        full_events=p[P_FULL],
        received=c[C_RECV],
        bytes_received=c[C_BYTES],
        rejected=c[C_REJECTED],
        redelivered=c[C_REDELIVERED],
        bytes_lost=c[C_LOST],
        sequence_errors=c[C_SEQERR],
        queued_bytes=min(max(tail - head, 0), capacity),
        unread_bytes=min(max(tail - read, 0), capacity),
        latency_histogram=hist,
    )


class _Views:
    """Memoryviews of one ring region (released together on close)."""

    def __init__(self, buf: memoryview, offset: int, capacity: int) -> None:
        _check_capacity(capacity)
        if offset < 0 or offset % 64 or offset + ring_region_size(capacity) > len(buf):
            raise ValueError(
                f"ring region [{offset}, {offset + ring_region_size(capacity)}) "
                f"does not fit a {len(buf)}-byte buffer at a 64-byte boundary"
            )
        base = offset + RING_HEADER_BYTES
        self.data = buf[base : base + capacity]
        self.d32 = self.data.cast("I")  # checksum word of a record: d32[offset >> 2]
        self.p = buf[offset + _PROD_LINE : offset + _PROD_LINE + 64].cast("Q")
        self.c = buf[offset + _CONS_LINE : offset + _CONS_LINE + 64].cast("Q")
        self.w = buf[offset + _WAIT_LINE : offset + _WAIT_LINE + 8].cast("I")
        self.hist = buf[offset + _HIST_OFF : offset + _HIST_OFF + 8 * HIST_BUCKETS].cast("Q")
        self.space_addr = address_of(buf, offset + _WAIT_LINE + 4 * W_SPACE)

    def release(self) -> None:
        for v in (self.d32, self.data, self.p, self.c, self.w, self.hist):
            v.release()


# --- producer ------------------------------------------------------------------------


class RingProducer:
    """The writing end of one ring.  Not thread-safe: one producer per ring.

    ``tail``, ``seq`` and the byte counter are kept locally and stored after each
    publication; on creation they are loaded from shared memory, so a restarted
    producer process continues where the dead one stopped.
    """

    def __init__(
        self, buf: memoryview, offset: int, capacity: int, *, lane: int, producer: int, label: str = ""
    ) -> None:
        v = self._views = _Views(buf, offset, capacity)
        self._data = v.data
        self._d32 = v.d32
        self._p = v.p
        self._c = v.c
        self._w = v.w
        self.space_addr = v.space_addr
        self._cap = capacity
        self._mask = capacity - 1
        self._lane = int(lane)
        self._producer = producer
        self._tag_adler = make_tag(producer, self._lane, F_ADLER)
        self._tag_crc = make_tag(producer, self._lane, 0)
        self.label = label or f"ring producer={producer} lane={LANE_NAMES[self._lane]}"
        self.closed = False
        head = v.c[C_HEAD]
        tail = v.p[P_TAIL]
        if tail & 7 or not 0 <= tail - head <= capacity:
            # The published tail is garbage; continue from the consumer's cursor.
            read = v.c[C_READ]
            tail = read if (not read & 7 and 0 <= read - head <= capacity) else head & ~7
            v.p[P_TAIL] = tail
        self.tail = tail
        self.head = head if 0 <= tail - head <= capacity else tail
        self.seq = v.p[P_SEQ]
        self.nbytes = v.p[P_BYTES]
        v.p[P_PID] = os.getpid()

    @property
    def capacity(self) -> int:
        """Data bytes of the ring."""
        return self._cap

    def put(
        self,
        payload: bytes | memoryview,
        msg_type: int,
        recipient: int,
        msg_id: int = 0,
        correlation_id: int = 0,
    ) -> bool:
        """Frame and publish one message; ``False`` if the ring has no room now.

        Raises:
            MessageTooLarge: the payload can never fit this ring.
        """
        n = len(payload)
        rec = (n + 55) & -8
        tail = self.tail
        o = tail & self._mask
        if tail + rec - self.head > self._cap or o + rec > self._cap or n >= ADLER_BELOW:
            return self._put_general(payload, msg_type, recipient, msg_id, correlation_id)
        # Fast path: fits before the end without wrapping, small frame (Adler-32).
        seq = self.seq
        body = _body_pack(n, seq, msg_id, correlation_id, _mono(), msg_type, recipient, self._tag_adler) + payload
        self._d32[o >> 2] = _adler(body)
        self._data[o + 4 : o + 48 + n] = body
        self.tail = tail = tail + rec
        self.seq = seq = seq + 1
        self.nbytes = nb = self.nbytes + n
        p = self._p
        p[P_SEQ] = seq
        p[P_BYTES] = nb
        p[P_TAIL] = tail  # publication: everything above is visible before this store
        return True

    def _put_general(
        self,
        payload: bytes | memoryview,
        msg_type: int,
        recipient: int,
        msg_id: int,
        correlation_id: int,
    ) -> bool:
        """:meth:`put` for every case: full ring, wrap-around, large frames."""
        n = len(payload)
        rec = (n + 55) & -8
        tail = self.tail
        cap = self._cap
        o = tail & self._mask
        rem = cap - o
        if tail + (rec if rec <= rem else rem + rec) - self.head > cap:
            if not self._make_room(rec, rem, n):
                return False
            tail = self.tail
        if rec > rem:
            self._pad(o, rem)
            tail += rem
            o = 0
        seq = self.seq
        if n < ADLER_BELOW:
            body = _body_pack(n, seq, msg_id, correlation_id, _mono(), msg_type, recipient, self._tag_adler)
            body += payload
            ck = _adler(body)
        else:
            body = _body_pack(n, seq, msg_id, correlation_id, _mono(), msg_type, recipient, self._tag_crc)
            body += payload
            ck = _crc(body)
        self._d32[o >> 2] = ck
        self._data[o + 4 : o + 48 + n] = body
        tail += rec
        self.tail = tail
        self.seq = seq + 1
        self.nbytes += n
        p = self._p
        p[P_SEQ] = seq + 1
        p[P_BYTES] = self.nbytes
        p[P_TAIL] = tail  # publication: everything above is visible before this store
        return True

    def put_many(
        self,
        payloads: list[bytes] | tuple[bytes, ...],
        start: int,
        msg_type: int,
        recipient: int,
    ) -> int:
        """Frame ``payloads[start:]`` (msg_id = correlation_id = 0) until the ring is full.

        Every message gets its own record, sequence number and checksum; the
        records are assembled in local memory and copied into the ring with one
        slice assignment per contiguous run, and the tail is published once.
        Returns how many payloads were published.
        """
        cap = self._cap
        mask = self._mask
        pack = BODY.pack
        adler = zlib.adler32
        crc = zlib.crc32
        ckp = CK.pack
        tag_a = self._tag_adler
        tag_c = self._tag_crc
        now = time.monotonic_ns()
        tail = self.tail
        seq = self.seq
        nbytes = self.nbytes
        run_start = tail  # ring position where the pending run begins
        parts: list[bytes] = []
        i = start
        end = len(payloads)
        while i < end:
            payload = payloads[i]
            n = len(payload)
            rec = (n + 55) & -8
            o = tail & mask
            rem = cap - o
            need = rec if rec <= rem else rem + rec
            if tail + need - self.head > cap:
                if parts:  # publish what we have so the consumer can free space
                    self._flush_run(parts, run_start, tail, seq, nbytes)
                    parts = []
                    run_start = tail
                if not self._make_room(rec, rem, n):
                    break
            if rec > rem:
                if parts:
                    self._flush_run(parts, run_start, tail, seq, nbytes)
                    parts = []
                self._pad(o, rem)
                tail += rem
                run_start = tail
            elif o == 0 and parts:
                # issue 8 fix: the previous record ended exactly at the end of the data
                # area (a record size dividing the capacity, e.g. 128 bytes); a run is one
                # contiguous slice, so it must end there too.
                self._flush_run(parts, run_start, tail, seq, nbytes)
                parts = []
                run_start = tail
            if n < ADLER_BELOW:
                body = pack(n, seq, 0, 0, now, msg_type, recipient, tag_a) + payload
                parts.append(ckp(adler(body)))
            else:
                body = pack(n, seq, 0, 0, now, msg_type, recipient, tag_c) + payload
                parts.append(ckp(crc(body)))
            parts.append(body)
            if rec - 48 - n:
                parts.append(bytes(rec - 48 - n))
            tail += rec
            seq += 1
            nbytes += n
            i += 1
        if parts:
            self._flush_run(parts, run_start, tail, seq, nbytes)
        return i - start

    def _flush_run(self, parts: list[bytes], run_start: int, tail: int, seq: int, nbytes: int) -> None:
        blob = b"".join(parts)
        o = run_start & self._mask
        self._data[o : o + len(blob)] = blob
        self.tail = tail
        self.seq = seq
        self.nbytes = nbytes
        p = self._p
        p[P_SEQ] = seq
        p[P_BYTES] = nbytes
        p[P_TAIL] = tail

    def _pad(self, o: int, rem: int) -> None:
        """Fill ``rem`` bytes at data offset ``o`` up to the end (no record fits there)."""
        if rem >= HDR:
            body = BODY.pack(rem - HDR, 0, 0, 0, 0, 0, 0, make_tag(self._producer, self._lane, F_PAD | F_ADLER))
            CK.pack_into(self._data, o, zlib.adler32(body))
            self._data[o + 4 : o + HDR] = body

    def _make_room(self, rec: int, rem: int, n: int) -> bool:
        """Re-read the consumer's head; ``True`` if the record fits now."""
        cap = self._cap
        if rec > cap:
            raise MessageTooLarge(
                f"{self.label}: payload of {n} bytes exceeds the lane limit of "
                f"{max_payload(cap)} bytes ({cap}-byte ring, {HDR}-byte frame header)"
            )
        tail = self.tail
        h = self._c[C_HEAD]
        d = tail - h
        if d < 0 or d > cap or h & 7:
            # The head word is garbage (or moved by a confused consumer): re-publish
            # our tail so the consumer can resynchronise, and report "full".
            self._p[P_TAIL] = tail
            return False
        self.head = h
        need = rec if rec <= rem else rem + rec
        if d + need <= cap:
            return True
        if rec > rem and d == 0:
            # Empty ring but the record does not fit before the end: pad now so it
            # can start at offset 0 once the consumer has skipped the pad.
            self._pad(tail & self._mask, rem)
            self.tail = tail + rem
            self._p[P_TAIL] = self.tail
        return False

    def count_full(self) -> None:
        """Count one send that found the ring full."""
        self._p[P_FULL] += 1

    def used_bytes(self) -> int:
        """Bytes published but not yet committed by the consumer (as last seen)."""
        return self.tail - self.head

    # waiting for space (used by the Sender's blocking path)
    def space_word(self) -> int:
        """Current value of the futex word the consumer bumps after freeing space."""
        return self._w[W_SPACE]

    def set_waiting(self, flag: int) -> None:
        """Tell the consumer whether this producer sleeps for space."""
        self._w[W_WAITING] = flag

    def close(self) -> None:
        """Release the views (idempotent)."""
        if not self.closed:
            self.closed = True
            self._data = self._d32 = self._p = self._c = self._w = None  # type: ignore[assignment]
            self._views.release()


# --- consumer ------------------------------------------------------------------------


class RingConsumer:
    """The reading end of one ring.  Not thread-safe: one consumer per ring.

    Reads frames from the read cursor, checks each (lengths, header, checksum,
    sequence) and hands out :class:`Frame` objects; :meth:`ack` moves the
    committed head.  Faults go to ``fault_sink``.

    The read cursor and the received/bytes counters are stored before a frame
    is handed out.  The latency histogram of single reads is updated lazily by
    :meth:`flush_stats` -- every ``LAT_FLUSH_EVERY`` frames and whenever the
    receiver is about to wait -- to keep that arithmetic off the latency-critical
    path; a consumer killed in between loses at most that many samples.
    """

    def __init__(
        self,
        buf: memoryview,
        offset: int,
        capacity: int,
        *,
        lane: int,
        producer: int,
        fault_sink: list[ChannelFault],
        max_faults: int = 1024,
        owner: object = None,
    ) -> None:
        v = self._views = _Views(buf, offset, capacity)
        self._data = v.data
        self._p = v.p
        self._c = v.c
        self._w = v.w
        self._hist = v.hist
        self.space_addr = v.space_addr
        self.cap = capacity
        self.mask = capacity - 1
        self.lane = int(lane)
        self.producer = producer
        self.tag_adler = make_tag(producer, self.lane, F_ADLER)
        self.tag_crc = make_tag(producer, self.lane, 0)
        self.tag_pad = make_tag(producer, self.lane, F_PAD | F_ADLER)
        self.owner = owner
        self._faults = fault_sink
        self._max_faults = max_faults
        self.faults_dropped = 0
        self.closed = False
        self.epoch = 0
        self._bad_tail_seen = -1
        self._ooo: dict[int, int] = {}
        self._one: list[Frame] = []
        self._lat: list[int] = []  # latencies not yet in the shared histogram
        c = v.c
        self.received = c[C_RECV]
        self.nbytes = c[C_BYTES]
        self.rejected = c[C_REJECTED]
        self.redelivered = c[C_REDELIVERED]
        self.lost = c[C_LOST]
        self.seq_errors = c[C_SEQERR]
        head, read, tail = c[C_HEAD], c[C_READ], v.p[P_TAIL]
        if head & 7:
            # Garbage in our own committed head: start at the producer's tail if it
            # is plausible, else at 0, and let read_into resynchronise from there.
            self._fault(f"committed head {head} is not 8-aligned", 0, head)
            self.rejected += 1
            c[C_REJECTED] = self.rejected
            head = tail if not tail & 7 else 0
            c[C_HEAD] = head
        self.head = head
        self.r = head
        self.last_end = head
        self.exp = -1  # next expected seq; -1 = take the first frame's
        ok_read = not read & 7 and head < read <= head + capacity
        self.redeliver_until = read if ok_read else head

    # -- reading ------------------------------------------------------------------

    def has_data(self) -> bool:
        """Whether the producer has published bytes beyond the read cursor."""
        return self._p[P_TAIL] != self.r

    def read_one(self) -> Frame | None:
        """Return the next frame, or ``None``.

        The common case (a plain small frame, in sequence, before the end of the
        data area) is handled inline; anything else -- padding, a large or
        redelivered frame, the first frame after attaching, or any validation
        failure -- goes through :meth:`read_into`, which re-validates from scratch.
        """
        t = self._p[P_TAIL]
        r = self.r
        if t == r:
            return None
        o = r & self.mask
        rem = self.cap - o
        if rem < HDR or r < self.redeliver_until:
            return self._read_one_general()
        # No separate check of the tail word: a record is taken here only if it
        # ends at or before the tail, carries the expected sequence number and
        # its checksum matches -- a garbage tail cannot pass all three, and any
        # failure re-runs the fully validating general path.
        data = self._data
        ck, plen, seq, mid, cid, sns, mt, rcp, tag = _rec_unpack(data, o)
        e = plen + 48
        r2 = r + ((e + 7) & -8)
        if r2 > t or e > rem or seq != self.exp or tag != self.tag_adler:
            return self._read_one_general()
        rb = data[o + 4 : o + e].tobytes()
        if _adler(rb) != ck:
            return self._read_one_general()
        now = _mono()
        self.exp = seq + 1
        self.r = r2
        c = self._c
        c[C_READ] = r2  # before the frame leaves: a successor redelivers it
        self.received = k = self.received + 1
        c[C_RECV] = k
        self.nbytes = k = self.nbytes + plen
        c[C_BYTES] = k
        span = self.last_end
        self.last_end = r2
        lat = self._lat
        lat.append(now - sns)
        if len(lat) >= LAT_FLUSH_EVERY:
            self.flush_stats()
        return _tnew(
            Frame,
            (mt, self.lane, F_ADLER, self.producer, rcp, seq, mid, cid, sns, rb[44:], False, now, self,
             self.epoch, span, r2),
        )  # fmt: skip

    def _read_one_general(self) -> Frame | None:
        one = self._one
        if self.read_into(one, 1):
            return one.pop()
        return None

    def read_into(self, out: list[Frame], max_n: int) -> int:
        """Append up to ``max_n`` valid frames to ``out``; return how many."""
        batch = FrameBatch()
        n = self.read_batch(batch, max_n)
        if n:
            out.extend(batch.frames())
        return n

    def read_batch(self, batch: FrameBatch, max_n: int) -> int:
        """Validate up to ``max_n`` frames into ``batch`` (one segment); return how many.

        This is the fully validating reader behind every path.  It keeps each
        frame's unpacked header tuple and payload in the batch's lists and builds
        :class:`Frame` objects only if someone asks for them -- a bulk consumer
        that reads ``batch.payloads`` never pays for them.  Statistics are
        stored before returning.
        """
        t = self._p[P_TAIL]
        r = self.r
        if t == r:
            return 0
        cap = self.cap
        if t & 7 or not 0 < t - r <= cap:
            self._bad_tail(t)
            return 0
        data = self._data
        mask = self.mask
        tag_a = self.tag_adler
        tag_c = self.tag_crc
        unpack = _rec_unpack
        adler = _adler
        crc = _crc
        heads: list[tuple] = []
        ends: list[int] = []
        payloads = batch.payloads
        start_index = len(payloads)
        add_head = heads.append
        add_end = ends.append
        add_payload = payloads.append
        red_until = self.redeliver_until
        exp = self.exp
        span0 = self.last_end
        now = _mono()
        last_sns = -1
        run = 0
        n = 0
        nbytes = 0
        nred = 0
        while r < t and n < max_n:
            o = r & mask
            rem = cap - o
            if rem < HDR:
                r += rem  # nothing is ever written in the last < 48 bytes
                continue
            h = unpack(data, o)
            ck, plen, seq, _mid, _cid, sns, _mt, _rcp, tag = h
            if tag != tag_a and tag != tag_c:
                if (
                    tag == self.tag_pad
                    and plen == rem - HDR
                    and r + rem <= t
                    and adler(data[o + 4 : o + HDR]) == ck
                ):
                    r += rem  # a valid padding record
                    continue
                r = self._corrupt(
                    r, t, f"bad frame header (payload_len={plen}, tag={tag:#010x}, expected "
                    f"sender {self.producer} lane {self.lane})",
                )  # fmt: skip
                exp = -1
                break
            e = plen + 48
            rec = (e + 7) & -8
            if rec > rem or r + rec > t:
                r = self._corrupt(r, t, f"bad frame length (payload_len={plen}, {rem} bytes to the end)")
                exp = -1
                break
            rb = data[o + 4 : o + e].tobytes()
            if (adler(rb) if tag == tag_a else crc(rb)) != ck:
                r = self._corrupt(r, t, f"checksum mismatch (seq field {seq})")
                exp = -1
                break
            if seq != exp and exp >= 0:
                # A valid checksum with the wrong sequence number is a stale record
                # from an earlier lap, reached through a corrupt tail: never deliver it.
                self._seq_error(exp, seq, r)
                r = self._corrupt(r, t, f"sequence discontinuity: expected {exp}, got {seq}")
                exp = -1
                break
            exp = seq + 1
            if sns != last_sns:  # frames of one batch share a send time: count runs
                if run:
                    self._hist_add(now - last_sns, run)
                last_sns = sns
                run = 1
            else:
                run += 1
            if r < red_until:
                nred += 1  # redelivered frames are always a prefix of the segment
            r += rec
            add_head(h)
            add_payload(rb[44:])
            add_end(r)
            n += 1
            nbytes += plen
        if run:
            self._hist_add(now - last_sns, run)
        self.r = r
        self.exp = exp
        c = self._c
        c[C_READ] = r
        if n:
            self.last_end = ends[-1]
            batch._segments.append((self, self.epoch, span0, now, nred, start_index, heads, ends))
            self.received += n
            self.nbytes += nbytes
            c[C_RECV] = self.received
            c[C_BYTES] = self.nbytes
            if nred:
                self.redelivered += nred
                c[C_REDELIVERED] = self.redelivered
        elif self.head == self.last_end and r != self.head:
            # Only padding / skipped bytes and nothing outstanding: free them now.
            self.head = self.last_end = r
            c[C_HEAD] = r
            self._wake_producer()
        return n

    def ack_segment(self, epoch: int, span0: int, end: int, frames: Sequence[Frame]) -> None:
        """Acknowledge a whole segment read by :meth:`read_batch` (``frames`` if not in order)."""
        if epoch == self.epoch and span0 == self.head and not self._ooo:
            if end == self.last_end:
                end = self.last_end = self.r
            self.head = end
        else:
            for f in frames:
                self.ack_local(f)
        self.commit()

    def _hist_add(self, v: int, k: int) -> None:
        self._hist[latency_bucket(v)] += k

    def flush_stats(self) -> None:
        """Add the pending latency samples of :meth:`read_one` to the shared histogram."""
        lat = self._lat
        if lat:
            hist = self._hist
            last = -1
            bucket = 0
            for v in lat:
                if v != last:
                    last = v
                    if v < 16:
                        bucket = v if v > 0 else 0
                    else:
                        b = v.bit_length()
                        bucket = 16 + ((b - 5) << 3) + ((v >> (b - 4)) & 7)
                        if bucket > 255:
                            bucket = 255
                hist[bucket] += 1
            lat.clear()

    # -- acknowledging ------------------------------------------------------------

    def ack(self, frame: Frame) -> None:
        """Mark ``frame`` handled and store the new committed head.

        The head moves over every leading handled frame, so out-of-order acks
        are fine; acknowledging the same frame twice is a no-op.
        """
        if frame[F_SPAN] == self.head and frame[F_EPOCH] == self.epoch and not self._ooo:
            h = frame[F_END]
            if h == self.last_end:
                h = self.last_end = self.r  # also commit padding / skipped bytes
            self.head = h
            self._c[C_HEAD] = h
            if self._w[W_WAITING]:
                self._wake_producer()
        else:
            self.ack_local(frame)
            self.commit()

    def ack_local(self, frame: Frame) -> None:
        """:meth:`ack` without the shared-memory store (see :meth:`commit`)."""
        if frame[F_EPOCH] != self.epoch:
            return  # from before a resynchronisation; its bytes are already gone
        span = frame[F_SPAN]
        if span == self.head:
            h = frame[F_END]
            ooo = self._ooo
            if ooo:
                while h in ooo:
                    h = ooo.pop(h)
            if h == self.last_end:
                h = self.last_end = self.r
            self.head = h
        elif self.head < span < self.last_end:
            self._ooo[span] = frame[F_END]

    def commit(self) -> None:
        """Store the committed head and wake the producer if it waits for space."""
        if self._c[C_HEAD] != self.head:
            self._c[C_HEAD] = self.head
            if self._w[W_WAITING]:
                self._wake_producer()

    def _wake_producer(self) -> None:
        w = self._w
        if w[W_WAITING]:
            w[W_SPACE] = (w[W_SPACE] + 1) & 0xFFFFFFFF
            futex_wake(self.space_addr, 1)

    def reassert(self) -> None:
        """Rewrite our positions into shared memory if something overwrote them."""
        c = self._c
        if c[C_HEAD] != self.head:
            c[C_HEAD] = self.head
            self._wake_producer()
        if c[C_READ] != self.r:
            c[C_READ] = self.r

    # -- faults ---------------------------------------------------------------------

    def _fault(self, reason: str, lost: int, position: int) -> None:
        if len(self._faults) >= self._max_faults:
            self.faults_dropped += 1
            return
        self._faults.append(
            ChannelFault(self.producer, Lane(self.lane), reason, lost, position, time.monotonic_ns())
        )

    def _corrupt(self, r: int, t: int, reason: str) -> int:
        """Skip from ``r`` to the published tail ``t``; return the new cursor."""
        lost = t - r
        self.rejected += 1
        self.lost += lost
        c = self._c
        c[C_REJECTED] = self.rejected
        c[C_LOST] = self.lost
        self._fault(reason, lost, r)
        return t

    def _seq_error(self, expected: int, got: int, r: int) -> None:
        self.seq_errors += 1
        self._c[C_SEQERR] = self.seq_errors

    def _bad_tail(self, t: int) -> None:
        r = self.r
        if not t & 7 and t < r and r - t <= self.cap:
            # Our cursor is ahead of the producer: an earlier garbage tail moved it.
            self._resync_to(t, f"published tail {t} is behind the read cursor {r}; resynchronised")
        elif t == self._bad_tail_seen:
            return
        elif self._bad_tail_seen >= 0 and not t & 7:
            # A second, different impossible tail: only the producer writes this
            # word, so it is alive and this is its real position (our cursor was
            # the garbage).  Follow it; what lay between is unknown and lost.
            self._resync_to(t, f"published tail moved to {t}, far from read cursor {r}; resynchronised")
        else:
            self._bad_tail_seen = t
            self.rejected += 1
            self._c[C_REJECTED] = self.rejected
            self._fault(f"published tail {t} is inconsistent with read cursor {r}", 0, r)

    def _resync_to(self, t: int, reason: str) -> None:
        """Restart at position ``t`` in a new epoch: frames handed out before are void."""
        self.rejected += 1
        self._c[C_REJECTED] = self.rejected
        self._fault(reason, 0, self.r)
        self._bad_tail_seen = -1
        self.epoch += 1
        self._ooo.clear()
        self.r = self.head = self.last_end = t
        self.exp = -1
        self._c[C_HEAD] = t
        self._c[C_READ] = t
        self._wake_producer()

    def close(self) -> None:
        """Flush statistics and release the views (idempotent)."""
        if not self.closed:
            self.flush_stats()
            self.closed = True
            self.owner = None
            self._data = self._p = self._c = self._w = self._hist = None  # type: ignore[assignment]
            self._views.release()
