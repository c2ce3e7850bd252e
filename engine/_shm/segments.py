"""Named shared-memory segments: creation, attachment, ownership and stale clean-up.

Design note
-----------
We map files under ``/dev/shm`` ourselves instead of using
``multiprocessing.shared_memory.SharedMemory`` because, before Python 3.13, every
process that merely *attaches* a ``SharedMemory`` registers it with the resource
tracker, which then unlinks it when that process exits -- an agent crash would
destroy the orchestrator's segments.  Opening ``/dev/shm/<name>`` with
``O_CREAT | O_EXCL`` and mode ``0600`` is exactly what glibc's ``shm_open`` does,
and it lets us set owner-only permissions atomically at creation.

Ownership rule (as in CPython's ``shared_memory`` docs): the creator unlinks,
everyone else only closes.  In the swarm the orchestrator process creates every
segment, so one process is responsible for leaving nothing behind.

Names are ``swarm-<pid>-<start>-<token>-<role>``: the creating process's pid and
start time (clock ticks since boot, from ``/proc/<pid>/stat``) make a segment's owner
checkable after a crash, and the random token makes names unguessable by other
local users.  :func:`remove_stale_segments` unlinks segments whose owner process
is gone (or whose pid was reused by another process).
"""

from __future__ import annotations

import mmap
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SHM_DIR = Path("/dev/shm")
PREFIX = "swarm-"
MODE = 0o600


def process_start_ticks(pid: int) -> int | None:
    """Return the start time of ``pid`` in clock ticks since boot, or ``None`` if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(rest[19])  # field 22 overall: starttime
    except (IndexError, ValueError):
        return None


def new_swarm_prefix() -> str:
    """Return a fresh, unguessable name prefix owned by the calling process."""
    pid = os.getpid()
    start = process_start_ticks(pid) or 0
    return f"{PREFIX}{pid}-{start}-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class SegmentOwner:
    """The owner encoded in a segment name."""

    pid: int
    start_ticks: int
    token: str

    def is_alive(self) -> bool:
        """Whether the owning process still exists (and is the same process)."""
        return process_start_ticks(self.pid) == self.start_ticks


def parse_owner(name: str) -> SegmentOwner | None:
    """Parse the owner out of a swarm segment name, or ``None`` if it is not one."""
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX) :].split("-", 3)
    if len(parts) < 3:
        return None
    try:
        return SegmentOwner(int(parts[0]), int(parts[1]), parts[2])
    except ValueError:
        return None


class Segment:
    """A mapped shared-memory segment.

    Use :meth:`create` in the owning process and :meth:`attach` elsewhere.  ``buf``
    is a writable memoryview over the whole segment.
    """

    def __init__(self, name: str, mm: mmap.mmap, *, owner: bool) -> None:
        self.name = name
        self.size = len(mm)
        self.owner = owner
        self._mmap = mm
        self.buf: memoryview = memoryview(mm)

    @classmethod
    def create(cls, name: str, size: int) -> "Segment":
        """Create a new zero-filled segment of ``size`` bytes with mode 0600."""
        if size <= 0:
            raise ValueError(f"segment size must be positive, got {size}")
        path = SHM_DIR / name
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, MODE)
        try:
            os.fchmod(fd, MODE)  # umask cannot widen 0600, but be explicit
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            try:
                path.unlink()
            except OSError:
                pass
            raise
        os.close(fd)
        return cls(name, mm, owner=True)

    @classmethod
    def attach(cls, name: str) -> "Segment":
        """Map an existing segment; raises ``FileNotFoundError`` if it is gone."""
        fd = os.open(SHM_DIR / name, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(name, mm, owner=False)

    def close(self) -> None:
        """Unmap the segment (idempotent).  Views taken from ``buf`` must be released first."""
        if self._mmap.closed:
            return
        try:
            self.buf.release()
            self._mmap.close()
        except BufferError:
            # Someone still holds a view; the mapping goes when they release it.
            pass

    def unlink(self) -> None:
        """Remove the name from /dev/shm (idempotent).  Mapped views stay valid."""
        try:
            (SHM_DIR / self.name).unlink()
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, size={self.size}, owner={self.owner})"


def list_segments(prefix: str = PREFIX) -> list[str]:
    """Names of swarm segments currently in /dev/shm that start with ``prefix``."""
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def remove_stale_segments() -> list[str]:
    """Unlink swarm segments whose owning process is gone; return their names."""
    removed: list[str] = []
    for name in list_segments():
        owner = parse_owner(name)
        if owner is None or owner.is_alive():
            continue
        try:
            (SHM_DIR / name).unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


def unlink_all(prefix: str) -> list[str]:
    """Unlink every segment whose name starts with ``prefix`` (an owner's last resort)."""
    removed = []
    for name in list_segments(prefix):
        try:
            (SHM_DIR / name).unlink()
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed
