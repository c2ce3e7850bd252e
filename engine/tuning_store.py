"""Best kernel configurations per machine, persisted as JSON so a restart does not search again.

Layout: ``<root>/<cpu identity key>/<kernel>.json``, one file per (machine, kernel),
holding one record per problem size and thread cap::

    {"schema": 1, "identity": "x86_64-AuthenticAMD-25.17.1-...", "kernel": "triad",
     "entries": {"n=1000000,cores=1": {...TunedConfig...}}}

The root defaults to ``$SWARM_TUNING_DIR``, else ``$XDG_CACHE_HOME/swarm-tui/tuning``
(``~/.cache/swarm-tui/tuning``).  The CPU identity comes from
:meth:`engine.telemetry.cpu_identity.CpuIdentity.identity_key`, so a file copied to a
different CPU is simply never read.  Writes are atomic (temporary file + ``os.replace``);
an unreadable or foreign file reads as empty rather than failing the agent.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = 1
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]+")


def default_store_dir() -> Path:
    """``$SWARM_TUNING_DIR``, else ``$XDG_CACHE_HOME/swarm-tui/tuning``."""
    env = os.environ.get("SWARM_TUNING_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "swarm-tui" / "tuning"


def entry_key(n: int, cores: int) -> str:
    """The key of one record inside a kernel's file."""
    return f"n={int(n)},cores={int(cores)}"


@dataclass(frozen=True)
class TunedConfig:
    """One measured tuning result.

    Attributes:
        kernel: kernel name.
        n: problem size it was tuned at.
        cores: the thread cap it was tuned under (cores the compute agent may use).
        params: the chosen tunable parameters.
        default_params: the kernel's default tunable parameters.
        seconds: median seconds of one run with ``params`` (final A/B check).
        default_seconds: median seconds with ``default_params`` in the same A/B check.
        gain: ``default_seconds / seconds`` as measured (1.0 = no gain).
        evaluations: kernel runs the search spent.
        exhaustive_evaluations: runs an exhaustive search at the same final fidelity
            would have spent.
        configs: size of the search space.
        method: search method (``"successive_halving"``).
        objective: what was minimised (``"wall-clock median seconds"``).
        measured_at: UNIX time of the measurement.
        notes: anything a reader should know (e.g. hardware counters unavailable).
    """

    kernel: str
    n: int
    cores: int
    params: dict[str, Any]
    default_params: dict[str, Any]
    seconds: float
    default_seconds: float
    gain: float
    evaluations: int
    exhaustive_evaluations: int
    configs: int
    method: str = "successive_halving"
    objective: str = "wall-clock median seconds"
    measured_at: float = field(default_factory=time.time)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TunedConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored.

        Raises:
            KeyError, TypeError, ValueError: a malformed record.
        """
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        record = cls(**kwargs)
        if not isinstance(record.params, dict) or not isinstance(record.default_params, dict):
            raise TypeError("params must be tables")
        return record


class TuningStore:
    """Reads and writes :class:`TunedConfig` records for one machine."""

    def __init__(self, identity: str, root: Path | str | None = None) -> None:
        if not identity:
            raise ValueError("a tuning store needs the machine's CPU identity key")
        self.identity = identity
        self.root = Path(root) if root is not None else default_store_dir()

    def path(self, kernel: str) -> Path:
        """The file holding ``kernel``'s records on this machine."""
        return self.root / _SAFE.sub("_", self.identity) / f"{_SAFE.sub('_', kernel)}.json"

    def _load(self, kernel: str) -> dict[str, Any]:
        try:
            data = json.loads(self.path(kernel).read_text())
        except (OSError, ValueError):
            return {}
        if (not isinstance(data, dict) or data.get("schema") != SCHEMA
                or data.get("identity") != self.identity or not isinstance(data.get("entries"), dict)):
            return {}
        return data["entries"]  # type: ignore[no-any-return]

    def get(self, kernel: str, n: int, cores: int) -> TunedConfig | None:
        """The record for ``(kernel, n, cores)``, or ``None``."""
        raw = self._load(kernel).get(entry_key(n, cores))
        if not isinstance(raw, dict):
            return None
        try:
            return TunedConfig.from_dict(raw)
        except (KeyError, TypeError, ValueError):
            return None

    def records(self, kernel: str) -> list[TunedConfig]:
        """Every readable record for ``kernel``."""
        out = []
        for raw in self._load(kernel).values():
            try:
                out.append(TunedConfig.from_dict(raw))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def put(self, record: TunedConfig) -> Path:
        """Store ``record`` (replacing one with the same key); returns the file written.

        Raises:
            OSError: the directory or file cannot be written.
        """
        entries = dict(self._load(record.kernel))
        entries[entry_key(record.n, record.cores)] = record.to_dict()
        path = self.path(record.kernel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"schema": SCHEMA, "identity": self.identity, "kernel": record.kernel,
                                   "entries": entries}, indent=1, sort_keys=True, default=str))
        os.replace(tmp, path)
        return path
