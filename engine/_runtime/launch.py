"""``AgentLaunch``: everything an agent process needs to start, sent through the forkserver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import SwarmConfig


@dataclass(frozen=True)
class ResourceLimits:
    """Per-agent limits (0 = no limit).

    ``cpu_time_s`` and ``open_files`` are kernel limits (``setrlimit``) set in the
    agent process.  Linux ignores ``RLIMIT_RSS``, so ``rss_mb`` is enforced by the
    supervisor from the resident size each agent reports in its status row.
    """

    rss_mb: int = 0
    cpu_time_s: int = 0
    open_files: int = 0


@dataclass(frozen=True)
class AgentLaunch:
    """The start parameters of one incarnation of an agent (picklable)."""

    agent_id: str
    agent_type: str
    import_path: str
    options: dict[str, Any]
    slot: int
    generation: int
    incarnation: int
    prefix: str
    status_name: str
    directory_name: str
    orchestrator_pid: int
    config: "SwarmConfig"
    cycle_interval: float
    priority: int = 0
    duty_cycle: float = 1.0
    paused: bool = False
    affinity: tuple[int, ...] = ()
    checkpoint: bytes | None = None
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    log_level: str = "WARNING"
    # security (issue 8): the per-swarm secret for frame authentication/encryption.
    # Travels only through the forkserver socket; repr=False keeps it out of logs.
    secret: bytes | None = field(default=None, repr=False)


def mailbox_name(prefix: str, slot: int, generation: int) -> str:
    """The segment name of the mailbox of ``slot`` at ``generation``."""
    return f"{prefix}-mb{slot}-g{generation}"
