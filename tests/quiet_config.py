"""A swarm.toml for CLI tests: fast monitoring, no scaling, none of the built-in agents."""

from __future__ import annotations

from pathlib import Path

BUILTIN_TYPES = ("compute", "resource", "thermal", "optimization", "fault_tolerance", "learning")

QUIET_CONFIG = "monitoring_interval = 0.2\nauto_scaling = false\n" + "".join(
    f"[agents.{name}]\ncount = 0\n" for name in BUILTIN_TYPES
)


def write_quiet_config(directory: Path, extra: str = "") -> Path:
    """Write ``swarm.toml`` (top-level ``extra`` lines first) into ``directory``; return its path."""
    path = directory / "swarm.toml"
    path.write_text(extra + QUIET_CONFIG)
    return path
