"""swarm-tui engine: a supervised swarm of agent processes talking over shared memory.

This module is the public API; everything not listed in ``__all__`` is internal.
The engine never imports Textual or Rich.
"""

from __future__ import annotations

__version__ = "0.1.0"

from engine.agents.base import BaseAgent
from engine.communicator import Communicator, DuplicateFilter, Message
from engine.config import SwarmConfig, default_config, load_config
from engine.errors import (
    AccessDenied,
    AgentError,
    AgentNotRunning,
    ChannelClosed,
    ChannelEmpty,
    ChannelError,
    ChannelFull,
    ConfigError,
    DuplicateAgentId,
    FrameCorrupt,
    MaxAgentsReached,
    MessageTooLarge,
    OrchestratorClosed,
    PeerGone,
    RequestTimeout,
    SwarmError,
    UnknownAgent,
    UnknownAgentType,
    UnknownRecipient,
)
from engine.events import ALL_EVENTS, Event, Severity
from engine.model import AgentInfo, BusInfo, MachineInfo, SwarmSnapshot
from engine.orchestrator import Orchestrator
from engine.recording import RecordingError, open_recording
from engine.replay import ReplayReadOnly, ReplaySource

__all__ = [
    "ALL_EVENTS", "AccessDenied", "AgentError", "AgentInfo", "AgentNotRunning", "BaseAgent",
    "BusInfo", "ChannelClosed", "ChannelEmpty", "ChannelError", "ChannelFull", "Communicator",
    "ConfigError", "DuplicateAgentId", "DuplicateFilter", "Event", "FrameCorrupt",
    "MachineInfo", "MaxAgentsReached", "Message", "MessageTooLarge", "Orchestrator",
    "OrchestratorClosed", "PeerGone", "RecordingError", "ReplayReadOnly", "ReplaySource",
    "RequestTimeout", "Severity", "SwarmConfig", "open_recording",
    "SwarmError", "SwarmSnapshot", "UnknownAgent", "UnknownAgentType", "UnknownRecipient",
    "__version__", "default_config", "load_config",
]
