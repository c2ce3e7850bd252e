"""Every exception the engine raises, in one module.

Each error names what was wrong and, where it helps, what is allowed, so that a
message shown to a user is actionable without a traceback.
"""

from __future__ import annotations


class SwarmError(Exception):
    """Base class of every error the engine raises on purpose."""


# --- configuration ---------------------------------------------------------------


class ConfigError(SwarmError):
    """A configuration file is unreadable, malformed or holds a bad value.

    Attributes:
        path: the file the error is in (``None`` for values built in code).
        key: the dotted key path (``performance_thresholds.cpu_critical``), if any.
        line: the 1-based line of a syntax error, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self.line = line
        where = path or "<config>"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{where}: "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)
        self.bare_message = message


# --- agents and the orchestrator ------------------------------------------------------


class AgentError(SwarmError):
    """Base class for errors about agents (creation, lookup, control)."""


class UnknownAgentType(AgentError):
    """``create_agent`` was given a type that is neither built in nor configured."""


class UnknownAgent(AgentError):
    """No agent with the given id exists."""


class DuplicateAgentId(AgentError):
    """An agent with the given id already exists."""


class MaxAgentsReached(AgentError):
    """Creating another agent would exceed ``max_agents``."""


class AgentNotRunning(AgentError):
    """The operation needs a live agent, but the agent is stopped or failed."""


class OrchestratorClosed(SwarmError):
    """The orchestrator has been shut down (or was never started)."""


# --- channels and the bus ----------------------------------------------------------


class ChannelError(SwarmError):
    """Base class for channel and bus errors."""


class ChannelFull(ChannelError):
    """The channel has no room for the message (after any blocking timeout)."""


class ChannelEmpty(ChannelError):
    """There is no message to receive (non-blocking receive, or timeout)."""


class ChannelClosed(ChannelError):
    """This endpoint, or the channel, has been closed."""


class PeerGone(ChannelError):
    """The process at the other end of the channel has exited."""


class MessageTooLarge(ChannelError):
    """The encoded message is larger than one lane of the channel can hold."""


class UnknownRecipient(ChannelError):
    """The message names a recipient that is not a live agent."""


class FrameCorrupt(ChannelError):
    """A frame read from shared memory failed validation (length, header, checksum)."""


class RequestTimeout(ChannelError):
    """A request/reply exchange got no reply within its timeout."""


class AccessDenied(SwarmError):
    """The configured access rules forbid this action."""
