"""An append-only, hash-chained audit log of every action that changes the swarm.

Each entry is one JSON line::

    {"seq": 7, "time": 1715240125.31, "utc": "2026-05-09T07:35:25.310Z",
     "actor": "ui", "action": "destroy", "target": "compute-3", "outcome": "ok",
     "details": {"exit": "stopped"}, "prev": "<hash of entry 6>", "hash": "<this entry's hash>"}

``hash`` is the SHA-256 of ``prev`` followed by the canonical JSON of the entry
without ``hash`` (sorted keys, no spaces), so changing, inserting, removing or
reordering any entry breaks the chain from there on.  The first entry's ``prev`` is
64 zeros.  Removing entries *from the end* leaves a valid chain, so after every
append the writer also records the last ``seq`` and ``hash`` in a sidecar file,
``<log>.head`` (replaced atomically); :func:`verify` compares the two and reports a
log that is shorter than its head says.  Someone who rewrites both files consistently
is not detected: this is tamper *evidence* for an operator, not a signature.

Durability (fsync policy): each entry is written with a single ``write`` on a file
opened ``O_APPEND`` and then fsynced before :meth:`AuditLog.append` returns -- audit
entries are rare (human and autoscaler actions), so an acknowledged action is on
disk even if the machine dies right after.  ``fsync=False`` trades that for speed
(the OS writes it back later).  Appends take an exclusive ``flock`` and read the
chain's tail from the file itself, so several processes may share one log.

``python -m engine.audit verify FILE`` (or ``swarm-tui audit verify FILE``) checks a
log: exit status 0 if intact, 1 if not, 2 if it cannot be read.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("engine.audit")

GENESIS = "0" * 64
_TAIL_READ = 65536
_CORE = ("time", "actor", "action", "target", "outcome")


def _canonical(entry: Mapping[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """The hash of an entry: SHA-256 of its ``prev`` and its canonical JSON without ``hash``."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(str(entry.get("prev", "")).encode() + _canonical(body)).hexdigest()


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(v) for v in value]
    return value


def _last_entry(fd: int) -> tuple[int, str, bool]:
    """(seq, hash, torn) of the last complete entry of the open log (-1, GENESIS if empty)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return -1, GENESIS, False
    start = max(0, size - _TAIL_READ)
    data = os.pread(fd, size - start, start)
    torn = not data.endswith(b"\n")
    lines = data.split(b"\n")
    if torn:
        lines = lines[:-1]
    for raw in reversed(lines):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
            return int(entry["seq"]), str(entry["hash"]), torn
        except (ValueError, KeyError, TypeError):
            break
    if start > 0:
        raise OSError(f"cannot find the last entry within the final {_TAIL_READ} bytes")
    raise OSError("the last entry is not valid JSON")


class AuditLog:
    """Appends hash-chained entries to a file (see module docstring).

    Args:
        path: the log file (created if missing, mode 0600).
        fsync: fsync after every entry (default) so an acknowledged action survives a
            power loss.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self.fsync = fsync
        self.entries_written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.close(fd)
        except OSError as exc:
            raise OSError(f"cannot open audit log {str(self.path)!r}: {exc.strerror or exc}") from None

    def append(self, actor: str, action: str, target: str, outcome: str, *,
               when: float | None = None, **details: Any) -> dict[str, Any]:
        """Append one entry and return it (with its ``seq`` and ``hash``).

        Raises:
            OSError: the file cannot be written (or its tail is unreadable).
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev, torn = _last_entry(fd)
            if torn:
                log.warning("audit log %s ends with an incomplete entry (a crash while writing); "
                            "appending after it -- 'audit verify' will report it", self.path)
                os.write(fd, b"\n")
            t = time.time() if when is None else float(when)
            entry: dict[str, Any] = {
                "seq": seq + 1, "time": t, "utc": _utc(t), "actor": str(actor), "action": str(action),
                "target": str(target), "outcome": str(outcome), "details": _json_safe(details), "prev": prev,
            }  # fmt: skip
            entry["hash"] = entry_hash(entry)
            os.write(fd, _canonical(entry) + b"\n")
            if self.fsync:
                os.fsync(fd)
            self._write_head(entry)
        finally:
            os.close(fd)  # closing releases the lock
        self.entries_written += 1
        return entry

    def _write_head(self, entry: Mapping[str, Any]) -> None:
        tmp = self.head_path.with_name(self.head_path.name + f".{os.getpid()}.tmp")
        data = json.dumps({"seq": entry["seq"], "hash": entry["hash"], "time": entry["time"]}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.head_path)

    def sink(self, record: Mapping[str, Any]) -> None:
        """An ``Orchestrator.add_audit_sink`` sink: ``time``, ``actor``, ``action``, ``target``,
        ``outcome``, everything else becomes ``details``."""
        details = {k: v for k, v in record.items() if k not in _CORE}
        self.append(str(record.get("actor", "?")), str(record.get("action", "?")),
                    str(record.get("target", "")), str(record.get("outcome", "?")),
                    when=record.get("time"), **details)


@dataclass
class VerifyResult:
    """What :func:`verify` found.

    Attributes:
        path: the log.
        entries: complete entries read.
        problems: one line per problem (empty = intact).
        first_time, last_time: times of the first and last entry.
        head_checked: a ``.head`` sidecar was found and compared.
    """

    path: Path
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    first_time: float | None = None
    last_time: float | None = None
    head_checked: bool = False

    @property
    def ok(self) -> bool:
        """The chain is intact (and matches its head, if there is one)."""
        return not self.problems

    def summary(self) -> str:
        """One line for the user."""
        if self.ok:
            span = ""
            if self.first_time is not None and self.last_time is not None:
                span = f", {_utc(self.first_time)} .. {_utc(self.last_time)}"
            head = "" if self.head_checked else " (no .head file: truncation at the end cannot be checked)"
            return f"{self.path}: ok, {self.entries} entries, chain intact{span}{head}"
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.path}: NOT INTACT: {self.problems[0]}{more}"


def verify(path: str | os.PathLike[str], *, check_head: bool = True) -> VerifyResult:
    """Check every entry's hash and link, the sequence numbers, and the ``.head`` sidecar.

    Raises:
        OSError: the log cannot be read.
    """
    p = Path(path)
    data = p.read_bytes()
    result = VerifyResult(p)
    prev, expected_seq = GENESIS, 0
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines and data:
        result.problems.append(f"line {len(lines)}: incomplete last entry (the file was cut mid-entry)")
        lines.pop()
    last_hash = GENESIS
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            result.problems.append(f"line {number}: empty line")
            continue
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            result.problems.append(f"line {number}: not a valid entry (an incomplete write or an edit)")
            continue
        seq = entry.get("seq")
        if seq != expected_seq:
            result.problems.append(f"line {number}: sequence number {seq}, expected {expected_seq} "
                                   "(entries removed, inserted or reordered)")
        if entry.get("prev") != prev:
            result.problems.append(f"line {number}: does not chain to the entry before it "
                                   "(an entry before it was changed or removed)")
        if entry.get("hash") != entry_hash(entry):
            result.problems.append(f"line {number}: hash mismatch (this entry was changed)")
        prev = str(entry.get("hash"))
        last_hash = prev
        expected_seq = (seq + 1) if isinstance(seq, int) else expected_seq + 1
        result.entries += 1
        when = entry.get("time")
        if isinstance(when, (int, float)):
            result.first_time = when if result.first_time is None else result.first_time
            result.last_time = when
    head_path = p.with_name(p.name + ".head")
    if check_head and head_path.exists():
        result.head_checked = True
        try:
            head = json.loads(head_path.read_text())
            head_seq, head_hash = int(head["seq"]), str(head["hash"])
        except (ValueError, KeyError, TypeError, OSError):
            result.problems.append(f"{head_path.name} is unreadable")
        else:
            if head_seq > expected_seq - 1:
                result.problems.append(f"the log ends at entry {expected_seq - 1} but {head_path.name} "
                                       f"records entry {head_seq}: entries were removed from the end")
            elif head_seq == expected_seq - 1 and head_hash != last_hash:
                result.problems.append(f"the last entry does not match {head_path.name} (it was changed)")
    return result


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m engine.audit") -> int:
    """``verify FILE``: check an audit log; 0 intact, 1 not intact, 2 unreadable or bad usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "verify" or args[1].startswith("-"):
        print(f"usage: {prog} verify FILE", file=sys.stderr)
        return 2
    try:
        result = verify(args[1])
    except OSError as exc:
        print(f"{prog.split()[0]}: cannot read audit log {args[1]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(result.summary())
    for problem in result.problems[1:]:
        print(f"  {problem}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
