"""Session recordings: a crash-safe, compressed file of a swarm's events and snapshots.

Design note -- the file format (version 1)::

    offset  size  field
    0       8     signature  b"\\x89SWARM\\r\\n"  (the 0x89 and CR LF catch text-mode copies)
    8       2     format version, u16 little-endian
    10      2     reserved (0)
    12      ...   frames, back to back

    frame = 44-byte frame header + payload
      0   4s  marker b"SWFR"
      4   B   kind: 1 header, 2 chunk, 3 end
      5   B   codec: 0 none, 1 zlib
      6   2x  reserved
      8   I   sequence number (0 for the header frame, then 1, 2, ...)
      12  I   payload length in bytes
      16  d   t0: wall-clock time of the first record in the frame
      24  d   t1: wall-clock time of the last record in the frame
      32  I   number of events in the frame
      36  I   number of snapshots in the frame
      40  I   CRC-32 of bytes 0..39 of this header followed by the payload

    header payload: JSON (uncompressed, so ``head -c 4k`` shows it): format
        version, engine version, swarm name, configuration, machine identity,
        agent types, recording settings, start time, description.
    chunk payload:  zlib(msgpack([record, ...])); a record is
        ``["e", time, event.to_dict()]``, ``["s", time, snapshot.to_dict()]``,
        ``["a", time, audit record]`` or ``["d", time, agent_details(id)]``.
    end payload:    JSON summary (records written, why the recording stopped).

Why this shape: every chunk is written whole with one ``write`` and flushed (and,
by default, fsynced), so after a crash the file is valid up to its last complete
chunk; the reader detects the torn tail (no end frame) and reports the recording as
truncated.  The CRC covers the frame header too, so a corrupt chunk whose length
field survived is skipped (the next marker is where the length says), and one whose
length did not ends the readable part.  zlib (stdlib) is used: the snapshots are
highly repetitive, and at level 6 a chunk of ~10 one-second snapshots shrinks about
tenfold (see ``docs/OBSERVABILITY.md`` for the measured hour).

Reading validates every frame up front (cheap: a CRC and a decompress per chunk)
and keeps only events, agent details and an index of snapshot times in memory;
snapshots are decoded from their chunk on demand (a small LRU cache), so a long
recording costs little memory to replay.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import logging
import math
import os
import platform
import struct
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from engine.errors import SwarmError
from engine.events import Event, Severity
from engine.model import AgentInfo, BusInfo, MachineInfo, SwarmSnapshot

log = logging.getLogger("engine.recording")

SIGNATURE = b"\x89SWARM\r\n"
FORMAT_VERSION = 1
FILE_SUFFIX = ".swrec"
_PREAMBLE = struct.Struct("<8sHH")
_FRAME = struct.Struct("<4sBBxxIIddII")  # everything but the CRC
_CRC = struct.Struct("<I")
FRAME_HEADER_SIZE = _FRAME.size + _CRC.size
MARKER = b"SWFR"
KIND_HEADER, KIND_CHUNK, KIND_END = 1, 2, 3
CODEC_NONE, CODEC_ZLIB = 0, 1
#: No frame may claim a payload larger than this (guards against a corrupt length).
MAX_PAYLOAD = 64 * 1024 * 1024

EVENT, SNAPSHOT, AUDIT, DETAILS = "e", "s", "a", "d"
#: Events after which the recorder also stores the agent's supervisor details.
DETAIL_EVENTS = frozenset({"agent_created", "agent_crashed", "agent_restarted", "agent_gave_up", "agent_hung"})


class RecordingError(SwarmError):
    """A recording cannot be read (missing, not a recording, too new, damaged header).

    The message is one line meant for the user, naming the file and what is wrong.
    """


# --- writing -----------------------------------------------------------------------------


def machine_identity() -> dict[str, Any]:
    """Who recorded: CPU brand, stable identity key, cores, OS and Python (no host name)."""
    out: dict[str, Any] = {"os": f"{platform.system()} {platform.release()}",
                           "python": platform.python_version()}
    try:
        from engine.telemetry.cpu_identity import CpuIdentityCollector

        ident = CpuIdentityCollector().sample()
        out.update(brand=ident.brand, identity_key=ident.identity_key(), arch=ident.arch,
                   logical_cores=ident.logical_cores, physical_cores=ident.physical_cores)
    except Exception as exc:  # identity is informative, never worth failing a recording
        out.update(brand="unknown", identity_key="unknown", error=f"{type(exc).__name__}: {exc}")
    return out


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_decoder = msgspec.msgpack.Decoder()


def _frame(kind: int, codec: int, seq: int, payload: bytes, t0: float, t1: float,
           n_events: int, n_snapshots: int) -> bytes:
    head = _FRAME.pack(MARKER, kind, codec, seq, len(payload), t0, t1, n_events, n_snapshots)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + _CRC.pack(crc) + payload


@dataclass(frozen=True)
class RecordingSettings:
    """How a recording is written.

    Attributes:
        snapshot_interval: least time between two recorded snapshots (s); 0 records
            every snapshot the swarm produces (one per ``monitoring_interval``).
        chunk_seconds: a chunk is written at least this often (s): the most a crash
            can lose.
        compress_level: zlib level 1..9.
        fsync: fsync after every chunk, so a chunk written is a chunk kept even if
            the machine (not only the process) dies.
        max_bytes: stop recording (cleanly, with an end frame) beyond this size.
    """

    snapshot_interval: float = 0.0
    chunk_seconds: float = 5.0
    compress_level: int = 6
    fsync: bool = True
    max_bytes: int = 1 << 30

    def __post_init__(self) -> None:
        if not (self.snapshot_interval >= 0 and math.isfinite(self.snapshot_interval)):
            raise ValueError(f"snapshot interval must be >= 0 s, got {self.snapshot_interval!r}")
        if not self.chunk_seconds > 0:
            raise ValueError(f"chunk interval must be > 0 s, got {self.chunk_seconds!r}")
        if not 1 <= self.compress_level <= 9:
            raise ValueError(f"compression level must be 1..9, got {self.compress_level!r}")


class RecordingWriter:
    """Writes a recording: ``open()``, then ``add_*`` records, then ``close()``.

    Not thread-safe: call it from one thread (the orchestrator's event loop, where
    its handlers run).  Chunks are written when ``chunk_seconds`` have passed since
    the first buffered record, so the file lags the swarm by at most that much.
    """

    def __init__(self, path: str | os.PathLike[str], *, header: Mapping[str, Any],
                 settings: RecordingSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.settings = settings or RecordingSettings()
        self._header = dict(header)
        self._clock = clock
        self._file: Any = None
        self._buffer: list[list[Any]] = []
        self._buffer_started = 0.0
        self._seq = 0
        self._last_snapshot_time = -math.inf
        self.bytes_written = 0
        self.counts = {EVENT: 0, SNAPSHOT: 0, AUDIT: 0, DETAILS: 0}
        self.stopped_reason = ""

    @property
    def closed(self) -> bool:
        """No more records are accepted (closed, or stopped at the size limit)."""
        return self._file is None

    def open(self) -> None:
        """Create (or replace) the file and write the preamble and the header frame.

        Raises:
            RecordingError: the file cannot be created (with the OS reason).
        """
        header = {"format_version": FORMAT_VERSION, "started": time.time(), **self._header,
                  "settings": dataclasses.asdict(self.settings)}
        self._header = header
        payload = json.dumps(header, default=str, sort_keys=True).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb")  # noqa: SIM115 - kept open for the session
        except OSError as exc:
            raise RecordingError(f"cannot write recording {str(self.path)!r}: {exc.strerror or exc}") from None
        started = float(header["started"])
        self._write(_PREAMBLE.pack(SIGNATURE, FORMAT_VERSION, 0)
                    + _frame(KIND_HEADER, CODEC_NONE, 0, payload, started, started, 0, 0))

    def add_event(self, event: Event) -> None:
        """Buffer one event."""
        self._add([EVENT, event.time, event.to_dict()])

    def add_snapshot(self, snapshot: SwarmSnapshot) -> None:
        """Buffer one snapshot (skipped if closer than ``snapshot_interval`` to the last)."""
        if snapshot.time - self._last_snapshot_time < self.settings.snapshot_interval:
            return
        self._last_snapshot_time = snapshot.time
        self._add([SNAPSHOT, snapshot.time, snapshot.to_dict()])

    def add_audit(self, record: Mapping[str, Any]) -> None:
        """Buffer one audit record (who did what)."""
        self._add([AUDIT, float(record.get("time", time.time())), dict(record)])

    def add_details(self, when: float, details: Mapping[str, Any]) -> None:
        """Buffer one agent's supervisor details (options, restart policy, traceback)."""
        self._add([DETAILS, when, dict(details)])

    def _add(self, record: list[Any]) -> None:
        if self._file is None:
            return
        if not self._buffer:
            self._buffer_started = self._clock()
        self._buffer.append(record)
        self.counts[record[0]] += 1
        if self._clock() - self._buffer_started >= self.settings.chunk_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered records as one chunk now (nothing if the buffer is empty)."""
        if self._file is None or not self._buffer:
            return
        records, self._buffer = self._buffer, []
        payload = zlib.compress(_encoder.encode(records), self.settings.compress_level)
        times = [r[1] for r in records]
        n_events = sum(1 for r in records if r[0] == EVENT)
        n_snaps = sum(1 for r in records if r[0] == SNAPSHOT)
        self._seq += 1
        data = _frame(KIND_CHUNK, CODEC_ZLIB, self._seq, payload, min(times), max(times), n_events, n_snaps)
        if self.bytes_written + len(data) > self.settings.max_bytes:
            log.warning("recording %s reached its size limit (%d bytes); recording stopped",
                        self.path, self.settings.max_bytes)
            self.close(reason="size limit")
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
            self._file.flush()
            if self.settings.fsync:
                os.fsync(self._file.fileno())
        except OSError as exc:
            log.error("writing recording %s failed (%s); recording stopped", self.path, exc)
            self.stopped_reason = f"write error: {exc.strerror or exc}"
            self._abandon()
            return
        self.bytes_written += len(data)

    def _abandon(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass
        self._file = None

    def close(self, *, reason: str = "stopped", summary: Mapping[str, Any] | None = None) -> None:
        """Write the last chunk and the end frame, fsync and close (idempotent)."""
        if self._file is None:
            return
        if reason != "size limit":
            self.flush()
        if self._file is None:  # the flush hit the size limit and closed already
            return
        now = time.time()
        end = {"reason": reason, "ended": now, "records": dict(self.counts), **(summary or {})}
        self.stopped_reason = reason
        self._write(_frame(KIND_END, CODEC_NONE, self._seq + 1, json.dumps(end, default=str).encode(),
                           now, now, self.counts[EVENT], self.counts[SNAPSHOT]))
        self._abandon()


class Recorder:
    """Observer glue: records a live swarm's events, snapshots, audit records and details.

    ``attach`` before ``start`` to catch the ``swarm_started`` event.  Only the
    public observer API is used (``add_event_handler``, ``add_status_handler``,
    ``add_audit_sink``, ``agent_details``).
    """

    def __init__(self, writer: RecordingWriter) -> None:
        self.writer = writer
        self._swarm: Any = None

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, config: Any, available_types: list[str],
               settings: RecordingSettings | None = None, description: str = "",
               demo: str | None = None) -> Recorder:
        """A recorder whose file is created now (raises :class:`RecordingError` if it cannot be)."""
        from engine import __version__
        from engine.config import config_to_dict

        header = {
            "engine_version": __version__, "name": config.name, "config": config_to_dict(config),
            "machine": machine_identity(), "agent_types": list(available_types),
            "description": description, "demo": demo,
        }  # fmt: skip
        writer = RecordingWriter(path, header=header, settings=settings)
        writer.open()
        return cls(writer)

    def attach(self, swarm: Any) -> None:
        """Register with ``swarm`` (an :class:`~engine.orchestrator.Orchestrator`)."""
        self._swarm = swarm
        swarm.add_event_handler("*", self.on_event)
        swarm.add_status_handler(self.on_status)
        if hasattr(swarm, "add_audit_sink"):
            swarm.add_audit_sink(self.on_audit)

    def on_event(self, event: Event) -> None:
        """Record an event (and, for lifecycle events, the agent's details)."""
        self.writer.add_event(event)
        if event.agent_id and event.name in DETAIL_EVENTS and self._swarm is not None:
            try:
                details = self._swarm.agent_details(event.agent_id)
            except SwarmError:
                return
            self.writer.add_details(event.time, details)

    def on_status(self, snapshot: SwarmSnapshot) -> None:
        """Record a snapshot."""
        self.writer.add_snapshot(snapshot)

    def on_audit(self, record: dict[str, Any]) -> None:
        """Record an audit record."""
        self.writer.add_audit(record)

    def close(self, *, reason: str = "stopped", summary: Mapping[str, Any] | None = None) -> None:
        """Finish the file."""
        self.writer.close(reason=reason, summary=summary)


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkInfo:
    """Where one valid chunk is and what it covers."""

    seq: int
    offset: int
    length: int
    t0: float
    t1: float
    n_events: int
    n_snapshots: int


@dataclass
class Recording:
    """An opened recording: its header, what could be read, and access to its records.

    Attributes:
        path: the file.
        header: the header frame (format and engine version, config, machine...).
        chunks: the chunks that passed their checks, in order.
        events: every event, in time order.
        details: ``(time, agent id, details)`` records, in time order.
        audit: every recorded audit record, in time order.
        snapshot_times: time of every snapshot, in order (``snapshot(i)`` decodes one).
        end: the end frame's summary, or ``None`` if the recording was cut off.
        truncated: the file ends without an end frame (the recorder did not finish).
        warnings: one line per problem found (corrupt chunk skipped, torn tail...).
    """

    path: Path
    header: dict[str, Any]
    chunks: list[ChunkInfo] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    details: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    snapshot_times: list[float] = field(default_factory=list)
    end: dict[str, Any] | None = None
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    _snapshot_where: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _cache: OrderedDict[int, list[Any]] = field(default_factory=OrderedDict, repr=False)

    # --- facts ---------------------------------------------------------------------------

    @property
    def format_version(self) -> int:
        """The file's format version."""
        return int(self.header.get("format_version", 0))

    @property
    def engine_version(self) -> str:
        """The version of the engine that wrote it."""
        return str(self.header.get("engine_version", "?"))

    @property
    def name(self) -> str:
        """The recorded swarm's name."""
        return str(self.header.get("name", "swarm"))

    @property
    def start_time(self) -> float:
        """Wall-clock time the recording starts at (the recorder's start)."""
        started = float(self.header.get("started", 0.0))
        firsts = [c.t0 for c in self.chunks[:1]]
        return min([started, *firsts]) if started else (firsts[0] if firsts else 0.0)

    @property
    def end_time(self) -> float:
        """Wall-clock time of the last record that could be read."""
        return max([self.start_time, *(c.t1 for c in self.chunks[-1:])])

    @property
    def duration(self) -> float:
        """Seconds from the start to the last readable record."""
        return max(0.0, self.end_time - self.start_time)

    def describe(self) -> str:
        """One line: swarm, engine version, when, where, how long, how much."""
        machine = self.header.get("machine") or {}
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.start_time))
        return (f"swarm {self.name!r} recorded {when} by engine {self.engine_version} "
                f"(format {self.format_version}) on {machine.get('brand', 'an unknown CPU')}: "
                f"{self.duration:.1f} s, {len(self.snapshot_times)} snapshots, {len(self.events)} events"
                + (" [truncated]" if self.truncated else ""))

    # --- access ----------------------------------------------------------------------------

    def _chunk_records(self, index: int) -> list[Any]:
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        chunk = self.chunks[index]
        with open(self.path, "rb") as f:
            f.seek(chunk.offset + FRAME_HEADER_SIZE)
            records = _decode_chunk(f.read(chunk.length))
        self._cache[index] = records
        while len(self._cache) > 4:
            self._cache.popitem(last=False)
        return records

    def snapshot_dict(self, i: int) -> dict[str, Any]:
        """The ``i``-th snapshot as recorded (a dict)."""
        chunk_index, record_index = self._snapshot_where[i]
        return dict(self._chunk_records(chunk_index)[record_index][2])

    def snapshot(self, i: int) -> SwarmSnapshot:
        """The ``i``-th snapshot as a :class:`~engine.model.SwarmSnapshot`."""
        return snapshot_from_dict(self.snapshot_dict(i))

    def snapshot_index_at(self, t: float) -> int:
        """Index of the last snapshot taken at or before wall-clock time ``t`` (-1 if none)."""
        return bisect.bisect_right(self.snapshot_times, t) - 1

    def snapshots(self) -> Iterator[SwarmSnapshot]:
        """Every snapshot, in order."""
        for i in range(len(self.snapshot_times)):
            yield self.snapshot(i)


def _decode_chunk(payload: bytes) -> list[Any]:
    records = _decoder.decode(zlib.decompress(payload))
    if not isinstance(records, list):
        raise ValueError("chunk is not a list of records")
    return records


def _read_header(path: Path, data: bytes) -> tuple[dict[str, Any], int]:
    """Parse preamble + header frame; returns (header, offset of the first chunk)."""
    shown = str(path)
    if len(data) < _PREAMBLE.size or data[:8] != SIGNATURE:
        if not data:
            raise RecordingError(f"{shown!r} is empty, not a swarm-tui recording")
        raise RecordingError(f"{shown!r} is not a swarm-tui recording (it does not start with the "
                             "recording signature)")
    _sig, version, _reserved = _PREAMBLE.unpack_from(data, 0)
    if version > FORMAT_VERSION:
        raise RecordingError(f"{shown!r} is a recording of format version {version}, newer than this "
                             f"swarm-tui reads (up to {FORMAT_VERSION}); upgrade swarm-tui to play it")
    if version < 1:
        raise RecordingError(f"{shown!r} has an invalid format version {version}")
    frame = _parse_frame(data, _PREAMBLE.size)
    if frame is None or frame[0] != KIND_HEADER or not frame[5]:
        raise RecordingError(f"{shown!r} is a damaged recording: its header is missing or corrupt")
    start, end = frame[3], frame[4]
    try:
        header = json.loads(data[start:end])
        if not isinstance(header, dict):
            raise ValueError("not an object")
    except ValueError:
        raise RecordingError(f"{shown!r} is a damaged recording: its header is not readable") from None
    return header, end


def _parse_frame(data: bytes, offset: int) -> tuple[int, int, int, int, int, bool, float, float, int, int] | None:
    """The frame at ``offset``: (kind, codec, seq, payload start, payload end, crc ok, t0, t1,
    events, snapshots), or ``None`` if no complete frame header is there."""
    if offset + FRAME_HEADER_SIZE > len(data):
        return None
    marker, kind, codec, seq, length, t0, t1, ne, ns = _FRAME.unpack_from(data, offset)
    if marker != MARKER or length > MAX_PAYLOAD:
        return None
    start = offset + FRAME_HEADER_SIZE
    end = start + length
    if end > len(data):
        return None
    (crc,) = _CRC.unpack_from(data, offset + _FRAME.size)
    ok = zlib.crc32(data[start:end], zlib.crc32(data[offset:offset + _FRAME.size])) == crc
    return kind, codec, seq, start, end, ok, t0, t1, ne, ns


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Open and check a recording.

    A damaged or cut-off file is opened as far as it is readable, with
    ``truncated`` and ``warnings`` saying what was lost.

    Raises:
        RecordingError: missing or unreadable file, not a recording, a newer format,
            or a damaged header -- with a one-line message.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RecordingError(f"cannot open recording {str(p)!r}: {exc.strerror or exc}") from None
    header, offset = _read_header(p, data)
    rec = Recording(path=p, header=header)
    expected_seq = 1
    while offset < len(data):
        frame = _parse_frame(data, offset)
        if frame is None:
            rec.truncated = True
            rec.warnings.append(_tail_warning(data, offset, rec))
            break
        kind, codec, seq, start, end, ok, t0, t1, ne, ns = frame
        if not ok:
            nxt = _parse_frame(data, end)
            lost = f" ({t0 - rec.start_time:.1f}-{t1 - rec.start_time:.1f} s)" if math.isfinite(t0 + t1) else ""
            if end == len(data) or nxt is not None:
                rec.warnings.append(f"chunk {seq} at byte {offset} is corrupt (checksum mismatch); "
                                    f"skipped it{lost}")
                offset = end
                expected_seq = seq + 1
                continue
            rec.truncated = True
            rec.warnings.append(f"the recording is corrupt from byte {offset} on; playing the first "
                                f"{rec.duration:.1f} s")
            break
        if kind == KIND_END:
            try:
                rec.end = json.loads(data[start:end])
            except ValueError:
                rec.end = {"reason": "unknown"}
            if end < len(data):
                rec.warnings.append(f"{len(data) - end} bytes after the end of the recording ignored")
            break
        if kind != KIND_CHUNK or codec != CODEC_ZLIB:
            rec.warnings.append(f"frame {seq} at byte {offset} has an unknown kind/codec ({kind}/{codec}); skipped")
            offset = end
            continue
        try:
            records = _decode_chunk(data[start:end])
        except (zlib.error, msgspec.DecodeError, ValueError) as exc:
            rec.warnings.append(f"chunk {seq} at byte {offset} cannot be decoded ({exc}); skipped it")
            offset = end
            continue
        if seq != expected_seq:
            rec.warnings.append(f"chunk {seq} follows chunk {expected_seq - 1}: chunks are missing")
        expected_seq = seq + 1
        _index_chunk(rec, len(rec.chunks), records)
        rec.chunks.append(ChunkInfo(seq, offset, end - start, t0, t1, ne, ns))
        offset = end
    else:
        if rec.end is None:
            rec.truncated = True
            rec.warnings.append(_tail_warning(data, offset, rec))
    return rec


def _tail_warning(data: bytes, offset: int, rec: Recording) -> str:
    torn = len(data) - offset
    extra = f"; {torn} bytes of an incomplete chunk ignored" if torn > 0 else ""
    return (f"the recording was cut off (no end marker: the recorder stopped without finishing{extra}); "
            f"playing up to its last complete chunk at {rec.duration:.1f} s")


def _index_chunk(rec: Recording, chunk_index: int, records: list[Any]) -> None:
    for i, record in enumerate(records):
        if not isinstance(record, list) or len(record) != 3:
            continue
        kind, when, body = record
        if not isinstance(when, (int, float)) or not isinstance(body, dict):
            continue
        if kind == SNAPSHOT:
            # snapshots arrive in time order; keep the index sorted even if a clock jumped
            if rec.snapshot_times and when < rec.snapshot_times[-1]:
                when = rec.snapshot_times[-1]
            rec.snapshot_times.append(float(when))
            rec._snapshot_where.append((chunk_index, i))
        elif kind == EVENT:
            rec.events.append(event_from_dict(body))
        elif kind == AUDIT:
            rec.audit.append(body)
        elif kind == DETAILS:
            rec.details.append((float(when), str(body.get("id", "")), body))


# --- turning records back into values ---------------------------------------------------


_EVENT_KEYS = frozenset({"event", "time", "severity", "agent_id", "message"})


def event_from_dict(d: Mapping[str, Any]) -> Event:
    """Invert :meth:`engine.events.Event.to_dict` (unknown severities become ``info``)."""
    try:
        severity = Severity(d.get("severity", "info"))
    except ValueError:
        severity = Severity.INFO
    agent = d.get("agent_id")
    return Event(str(d.get("event", "unknown")), float(d.get("time", 0.0)), severity,
                 str(agent) if agent is not None else None, str(d.get("message", "")),
                 {k: v for k, v in d.items() if k not in _EVENT_KEYS})


def _fill(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of dataclass ``cls`` from ``d``: lists become tuples where the field is a
    tuple, unknown keys are dropped, missing required fields get a zero value."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        is_tuple = str(f.type).startswith(("tuple", "Tuple"))
        if f.name in d:
            value = d[f.name]
            out[f.name] = tuple(value) if is_tuple and isinstance(value, list) else value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            out[f.name] = "" if f.type in ("str", str) else () if is_tuple else 0
    return out


def _agent_from_dict(d: Mapping[str, Any]) -> AgentInfo:
    values = _fill(AgentInfo, d)
    values["gauges"] = dict(values.get("gauges") or {})
    if values.get("heartbeat_age_s") is None:
        values["heartbeat_age_s"] = math.inf
    return AgentInfo(**values)


def snapshot_from_dict(d: Mapping[str, Any]) -> SwarmSnapshot:
    """Invert :meth:`engine.model.SwarmSnapshot.to_dict`, tolerating missing or extra keys."""
    machine = {k: tuple(v) if isinstance(v, list) else v
               for k, v in _fill(MachineInfo, d.get("machine") or {}).items()}
    load = tuple(machine.get("load_average") or (0.0, 0.0, 0.0))
    machine["load_average"] = (load + (0.0, 0.0, 0.0))[:3]
    return SwarmSnapshot(
        name=str(d.get("name", "swarm")), time=float(d.get("time", 0.0)),
        uptime_s=float(d.get("uptime_s", 0.0)),
        agents=tuple(_agent_from_dict(a) for a in d.get("agents") or () if isinstance(a, dict)),
        bus=BusInfo(**_fill(BusInfo, d.get("bus") or {})), machine=MachineInfo(**machine),
        events_total=int(d.get("events_total", 0)), alerts_total=int(d.get("alerts_total", 0)),
        max_agents=int(d.get("max_agents", 0)), extra=dict(d.get("extra") or {}),
    )  # fmt: skip
