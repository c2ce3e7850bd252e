"""The status table: one shared-memory row per agent slot, read without round trips.

Design note
-----------
Each row has exactly one writer -- the agent process in that slot -- and any number
of readers (orchestrator, UI bridge, exporters).  Rows are protected by a *seqlock*:
the writer makes the row's sequence number odd, writes the fields, then makes it
even again; a reader copies the row and accepts the copy only if the sequence
number was even and unchanged across the copy.  On x86-64 (TSO) stores are seen in
program order and loads are not reordered with other loads, which is all a seqlock
needs; there are no locks, so a reader can never block the writer and a writer that
dies mid-update cannot wedge anyone (readers give up after a bounded number of
retries and report the row as torn; the next incarnation rewrites the row).

Byte layout of the segment (little endian)::

    0   u32 magic 'SWST'   4  u32 version   8  u32 slots   12 u32 row_size
    16..63  reserved
    64 + slot * ROW_SIZE   one row (ROW_SIZE = 512, a multiple of the cache line)

Row layout: see ``_ROW`` below (seq first, then fixed fields, then 8 named gauges).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from enum import IntEnum

from engine._shm.segments import Segment

MAGIC = 0x54535753  # "SWST"
VERSION = 1
HEADER_SIZE = 64
ROW_SIZE = 512
MAX_GAUGES = 8
GAUGE_NAME_BYTES = 16

_HEADER = struct.Struct("<IIII")
_SEQ = struct.Struct("<Q")
# seq, pid, state, flags, priority, incarnation, agent_id, agent_type,
# started_ns, heartbeat_ns, cycles, tasks_done, errors, msgs_in, msgs_out,
# bytes_in, bytes_out, cpu_time_s, rss_bytes, duty_cycle, cycle_ms,
# latency_p50_us, latency_p99_us, n_gauges
_FIXED = struct.Struct("<QiBBhI32s24sQQQQQQQQQdQdddd B7x")
_GAUGE = struct.Struct(f"<{GAUGE_NAME_BYTES}sd")
assert _FIXED.size + MAX_GAUGES * _GAUGE.size <= ROW_SIZE


class AgentState(IntEnum):
    """Lifecycle state of an agent as written by the agent (or inferred by the supervisor)."""

    EMPTY = 0
    STARTING = 1
    WARMING = 2
    RUNNING = 3
    PAUSED = 4
    THROTTLED = 5
    STOPPING = 6
    STOPPED = 7
    CRASHED = 8
    RESTARTING = 9
    FAILED = 10

    @property
    def label(self) -> str:
        """Lower-case name for display."""
        return self.name.lower()


@dataclass(frozen=True)
class StatusRow:
    """One consistent copy of an agent's status row."""

    slot: int
    pid: int
    state: AgentState
    priority: int
    incarnation: int
    agent_id: str
    agent_type: str
    started_ns: int
    heartbeat_ns: int
    cycles: int
    tasks_done: int
    errors: int
    msgs_in: int
    msgs_out: int
    bytes_in: int
    bytes_out: int
    cpu_time_s: float
    rss_bytes: int
    duty_cycle: float
    cycle_ms: float
    latency_p50_us: float
    latency_p99_us: float
    gauges: tuple[tuple[str, float], ...]
    torn: bool = False

    def heartbeat_age_s(self, now_ns: int | None = None) -> float:
        """Seconds since the last heartbeat (monotonic clock)."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        return max(0.0, (now - self.heartbeat_ns) / 1e9) if self.heartbeat_ns else float("inf")

    def gauge(self, name: str, default: float | None = None) -> float | None:
        """Value of the named custom gauge, or ``default``."""
        for key, value in self.gauges:
            if key == name:
                return value
        return default


def _encode_text(text: str, size: int) -> bytes:
    raw = text.encode("utf-8")[:size]
    # Never cut a multi-byte character in half.
    return raw.decode("utf-8", "ignore").encode("utf-8")


def _decode_text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("utf-8", "replace")


def table_size(slots: int) -> int:
    """Bytes needed for a table with ``slots`` rows."""
    return HEADER_SIZE + slots * ROW_SIZE


class StatusTable:
    """A view of the status table segment (created by the orchestrator, attached by agents)."""

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        self._buf = segment.buf
        magic, version, slots, row_size = _HEADER.unpack_from(self._buf, 0)
        if magic != MAGIC or version != VERSION or row_size != ROW_SIZE:
            raise ValueError(f"segment {segment.name} is not a status table (v{VERSION})")
        self.slots = slots

    @classmethod
    def create(cls, name: str, slots: int) -> "StatusTable":
        """Create a zeroed table with ``slots`` rows."""
        seg = Segment.create(name, table_size(slots))
        _HEADER.pack_into(seg.buf, 0, MAGIC, VERSION, slots, ROW_SIZE)
        return cls(seg)

    @classmethod
    def attach(cls, name: str) -> "StatusTable":
        """Attach an existing table by segment name."""
        return cls(Segment.attach(name))

    def _offset(self, slot: int) -> int:
        if not 0 <= slot < self.slots:
            raise IndexError(f"status slot {slot} out of range 0..{self.slots - 1}")
        return HEADER_SIZE + slot * ROW_SIZE

    def read(self, slot: int, *, retries: int = 1000) -> StatusRow:
        """Return a consistent copy of ``slot``'s row (``torn=True`` if the writer never settled)."""
        off = self._offset(slot)
        buf = self._buf
        raw = b""
        torn = True
        for _ in range(retries):
            (seq1,) = _SEQ.unpack_from(buf, off)
            if seq1 & 1:
                continue
            raw = bytes(buf[off : off + ROW_SIZE])
            (seq2,) = _SEQ.unpack_from(buf, off)
            if seq1 == seq2:
                torn = False
                break
        if torn:
            raw = bytes(buf[off : off + ROW_SIZE])
        return _decode_row(slot, raw, torn)

    def read_all(self) -> list[StatusRow]:
        """Consistent copies of every non-empty row."""
        rows = []
        for slot in range(self.slots):
            row = self.read(slot)
            if row.state != AgentState.EMPTY:
                rows.append(row)
        return rows

    def writer(self, slot: int) -> "StatusWriter":
        """The single writer for ``slot`` (use it only in the slot's agent process)."""
        return StatusWriter(self, slot)

    def clear(self, slot: int) -> None:
        """Zero a row whose agent is gone for good (orchestrator only, after the process exited)."""
        off = self._offset(slot)
        self._buf[off : off + ROW_SIZE] = bytes(ROW_SIZE)

    def close(self) -> None:
        """Unmap the table."""
        self._buf = memoryview(b"")
        self.segment.close()


def _decode_row(slot: int, raw: bytes, torn: bool) -> StatusRow:
    f = _FIXED.unpack_from(raw, 0)
    n_gauges = min(f[23], MAX_GAUGES)
    gauges = []
    for i in range(n_gauges):
        name, value = _GAUGE.unpack_from(raw, _FIXED.size + i * _GAUGE.size)
        gauges.append((_decode_text(name), value))
    try:
        state = AgentState(f[2])
    except ValueError:
        state = AgentState.EMPTY
        torn = True
    return StatusRow(
        slot=slot,
        pid=f[1],
        state=state,
        priority=f[4],
        incarnation=f[5],
        agent_id=_decode_text(f[6]),
        agent_type=_decode_text(f[7]),
        started_ns=f[8],
        heartbeat_ns=f[9],
        cycles=f[10],
        tasks_done=f[11],
        errors=f[12],
        msgs_in=f[13],
        msgs_out=f[14],
        bytes_in=f[15],
        bytes_out=f[16],
        cpu_time_s=f[17],
        rss_bytes=f[18],
        duty_cycle=f[19],
        cycle_ms=f[20],
        latency_p50_us=f[21],
        latency_p99_us=f[22],
        gauges=tuple(gauges),
        torn=torn,
    )


class StatusWriter:
    """Writes one slot's row; keeps the last values so partial updates are cheap to express."""

    FIELDS = (
        "pid", "state", "priority", "incarnation", "agent_id", "agent_type",
        "started_ns", "heartbeat_ns", "cycles", "tasks_done", "errors", "msgs_in",
        "msgs_out", "bytes_in", "bytes_out", "cpu_time_s", "rss_bytes", "duty_cycle",
        "cycle_ms", "latency_p50_us", "latency_p99_us",
    )  # fmt: skip

    def __init__(self, table: StatusTable, slot: int) -> None:
        self._buf = table._buf
        self._off = table._offset(slot)
        self.values: dict[str, object] = {name: 0 for name in self.FIELDS}
        self.values.update(agent_id="", agent_type="", duty_cycle=1.0, state=AgentState.STARTING)
        self.gauges: dict[str, float] = {}
        (seq,) = _SEQ.unpack_from(self._buf, self._off)
        self._seq = seq + 1 if seq & 1 else seq  # recover from a writer that died mid-write
        self._scratch = bytearray(ROW_SIZE)

    def update(self, gauges: dict[str, float] | None = None, **fields: object) -> None:
        """Set some fields (and gauges) and publish the whole row atomically."""
        unknown = set(fields) - set(self.FIELDS)
        if unknown:
            raise KeyError(f"unknown status fields: {sorted(unknown)}")
        self.values.update(fields)
        if gauges:
            self.gauges.update(gauges)
            if len(self.gauges) > MAX_GAUGES:
                raise ValueError(f"at most {MAX_GAUGES} gauges per agent, got {len(self.gauges)}")
        self._publish()

    def _publish(self) -> None:
        # Pack into a private buffer first: struct.pack_into zero-fills its target
        # before writing fields, which would briefly make the shared sequence number
        # even (0) in the middle of an update.  Only plain copies touch the row.
        v = self.values
        row = self._scratch
        items = list(self.gauges.items())
        _FIXED.pack_into(
            row, 0, 0,
            int(v["pid"]), int(v["state"]), 0, int(v["priority"]), int(v["incarnation"]),
            _encode_text(str(v["agent_id"]), 32), _encode_text(str(v["agent_type"]), 24),
            int(v["started_ns"]), int(v["heartbeat_ns"]), int(v["cycles"]),
            int(v["tasks_done"]), int(v["errors"]), int(v["msgs_in"]), int(v["msgs_out"]),
            int(v["bytes_in"]), int(v["bytes_out"]), float(v["cpu_time_s"]),
            int(v["rss_bytes"]), float(v["duty_cycle"]), float(v["cycle_ms"]),
            float(v["latency_p50_us"]), float(v["latency_p99_us"]), len(items),
        )  # fmt: skip
        for i, (name, value) in enumerate(items):
            _GAUGE.pack_into(
                row, _FIXED.size + i * _GAUGE.size, _encode_text(name, GAUGE_NAME_BYTES), float(value)
            )
        buf, off = self._buf, self._off
        self._seq += 1
        _SEQ.pack_into(buf, off, self._seq)  # odd: write in progress
        buf[off + 8 : off + ROW_SIZE] = row[8:]
        self._seq += 1
        _SEQ.pack_into(buf, off, self._seq)  # even: row consistent
