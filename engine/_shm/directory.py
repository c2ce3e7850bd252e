"""The agent directory: which agent id lives in which slot, readable by every process.

Written only by the orchestrator (one writer), read by agents to resolve a
recipient id to a slot and mailbox without asking anyone.  Rows are seqlocked like
the status table; a global version number in the header changes on every update so
readers can cache the whole mapping and re-read it only when it changed.

Layout::

    0  u32 magic 'SWDR'  4 u32 version  8 u32 slots  12 u32 row_size  16 u64 dir_version
    64 + slot * 128: u64 seq, u32 generation, u8 live, 3x pad, 32s agent_id, 24s agent_type
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from engine._shm.segments import Segment

MAGIC = 0x52445753  # "SWDR"
VERSION = 1
HEADER = 64
ROW = 128
_HDR = struct.Struct("<IIII")
_VER = struct.Struct("<Q")
_ROW = struct.Struct("<QIB3x32s24s")


@dataclass(frozen=True)
class DirectoryEntry:
    """One slot of the directory."""

    slot: int
    generation: int
    live: bool
    agent_id: str
    agent_type: str


class Directory:
    """Shared slot -> agent mapping (orchestrator writes, everyone reads)."""

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
        magic, version, slots, row = _HDR.unpack_from(segment.buf, 0)
        if magic != MAGIC or version != VERSION or row != ROW:
            raise ValueError(f"segment {segment.name} is not an agent directory")
        self.slots = slots
        self._cache_version = -1
        self._by_id: dict[str, DirectoryEntry] = {}
        self._by_slot: dict[int, DirectoryEntry] = {}

    @classmethod
    def create(cls, name: str, slots: int) -> "Directory":
        """Create an empty directory with ``slots`` rows."""
        seg = Segment.create(name, HEADER + slots * ROW)
        _HDR.pack_into(seg.buf, 0, MAGIC, VERSION, slots, ROW)
        return cls(seg)

    @classmethod
    def attach(cls, name: str) -> "Directory":
        """Attach an existing directory."""
        return cls(Segment.attach(name))

    @property
    def version(self) -> int:
        """Changes whenever any row changes."""
        return _VER.unpack_from(self.segment.buf, 16)[0]

    def publish(self, entry: DirectoryEntry) -> None:
        """Write one row (orchestrator only)."""
        buf = self.segment.buf
        off = HEADER + entry.slot * ROW
        (seq,) = _VER.unpack_from(buf, off)
        seq |= 1
        # Pack privately: pack_into zero-fills its target first (see status_table).
        row = bytearray(_ROW.size)
        _ROW.pack_into(
            row, 0, 0, entry.generation, 1 if entry.live else 0,
            entry.agent_id.encode()[:32], entry.agent_type.encode()[:24],
        )  # fmt: skip
        _VER.pack_into(buf, off, seq)
        buf[off + 8 : off + _ROW.size] = row[8:]
        _VER.pack_into(buf, off, seq + 1)
        _VER.pack_into(buf, 16, self.version + 1)

    def read(self, slot: int) -> DirectoryEntry:
        """A consistent copy of one row."""
        buf = self.segment.buf
        off = HEADER + slot * ROW
        for _ in range(10_000):
            (s1,) = _VER.unpack_from(buf, off)
            if s1 & 1:
                continue
            raw = bytes(buf[off : off + ROW])
            (s2,) = _VER.unpack_from(buf, off)
            if s1 == s2:
                break
        _, gen, live, aid, atype = _ROW.unpack_from(raw, 0)
        return DirectoryEntry(
            slot, gen, bool(live), aid.rstrip(b"\0").decode(), atype.rstrip(b"\0").decode()
        )

    def _refresh(self) -> None:
        version = self.version
        if version == self._cache_version:
            return
        by_id: dict[str, DirectoryEntry] = {}
        by_slot: dict[int, DirectoryEntry] = {}
        for slot in range(self.slots):
            entry = self.read(slot)
            if entry.live:
                by_id[entry.agent_id] = entry
                by_slot[slot] = entry
        self._by_id, self._by_slot, self._cache_version = by_id, by_slot, version

    def lookup(self, agent_id: str) -> DirectoryEntry | None:
        """The live entry for ``agent_id``, or ``None``."""
        self._refresh()
        return self._by_id.get(agent_id)

    def lookup_slot(self, slot: int) -> DirectoryEntry | None:
        """The live entry in ``slot``, or ``None``."""
        self._refresh()
        return self._by_slot.get(slot)

    def live_entries(self) -> list[DirectoryEntry]:
        """Every live entry, by slot."""
        self._refresh()
        return [self._by_slot[s] for s in sorted(self._by_slot)]

    def close(self) -> None:
        """Unmap."""
        self.segment.close()
