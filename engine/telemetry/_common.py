"""Shared pieces of the telemetry collectors: metric declarations and file reads.

Every collector declares its metrics once, in a ``FIELDS`` table of :class:`Field`
(name, unit, description, and the label that carries identity when the metric has
one value per core/device/sensor). The UI, the help screen and the Prometheus
exporter read those tables instead of repeating names and units.

All sysfs/procfs reads go through :func:`read_text` (looked up as a module
attribute by the collectors), so a test can make one file fail with EIO or EACCES
even when the suite runs as root, where file modes cannot forbid a read.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

Clock = Callable[[], float]
"""A monotonic clock in seconds (``time.monotonic`` or a test's fake)."""

UNAVAILABLE = "unavailable: "


@dataclass(frozen=True)
class Field:
    """One metric, declared once.

    Attributes:
        name: the attribute name on the collector's reading (``total_percent``).
        unit: the unit (``%``, ``B``, ``B/s``, ``°C``, ``W``, ``MHz``, ``RPM``, ``s``,
            ``count``, ``ratio``, ``text``).
        description: one sentence for help text and Prometheus ``HELP``.
        per: the identity label when there is one value per thing (``core``,
            ``gpu``, ``sensor``, ``domain``, ``pid``, ``counter``), else ``""``.
    """

    name: str
    unit: str
    description: str
    per: str = ""


def declare(*fields: Field) -> Mapping[str, Field]:
    """Build a read-only ``FIELDS`` table keyed by name; names must be unique."""
    table: dict[str, Field] = {}
    for f in fields:
        if f.name in table:
            raise ValueError(f"metric {f.name!r} declared twice")
        table[f.name] = f
    return MappingProxyType(table)


def unavailable(reason: str) -> str:
    """Return the standard ``"unavailable: <reason>"`` text."""
    return UNAVAILABLE + reason


def errno_name(exc: OSError) -> str:
    """Return ``EACCES``-style text for an OSError (``OSError`` if it has no errno)."""
    if exc.errno is None:
        return type(exc).__name__
    return errno.errorcode.get(exc.errno, f"errno {exc.errno}")


def read_text(path: Path) -> str:
    """Read a small sysfs/procfs file and strip surrounding whitespace.

    Raises:
        OSError: the file is missing or unreadable (EIO, EACCES, ENODATA ...).
        UnicodeDecodeError: the file is not text.
    """
    with open(path, "rb", buffering=0) as fh:
        return fh.read(65536).decode("utf-8").strip()


def try_read(path: Path) -> tuple[str | None, str | None]:
    """Read ``path`` via :func:`read_text`; return ``(text, None)`` or ``(None, why)``."""
    try:
        return read_text(path), None
    except OSError as exc:
        return None, f"{path}: unreadable ({errno_name(exc)})"
    except UnicodeDecodeError:
        return None, f"{path}: not text"


def try_read_int(path: Path) -> tuple[int | None, str | None]:
    """Read an integer file; return ``(value, None)`` or ``(None, why)``."""
    text, why = try_read(path)
    if text is None:
        return None, why
    try:
        return int(text), None
    except ValueError:
        return None, f"{path}: not an integer ({text[:20]!r})"


def sorted_numerically(paths: list[Path]) -> list[Path]:
    """Sort ``thermal_zone10`` after ``thermal_zone9`` (by the digits in the name)."""

    def key(p: Path) -> tuple[list[int], str]:
        digits = "".join(c if c.isdigit() else " " for c in p.name).split()
        return [int(d) for d in digits], p.name

    return sorted(paths, key=key)

