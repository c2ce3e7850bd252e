"""``BaseAgent``: the class every agent (built-in or custom) derives from.

An agent runs in its own process.  The runtime calls, in that process:

* ``on_start()`` once, after ``restore(state)`` if a checkpoint exists;
* ``execute_cycle()`` every ``cycle_interval`` seconds while running (not paused);
* ``handle_message(message)`` for each message addressed to it;
* ``optimize_performance()`` every ``optimization_interval`` seconds (by default it
  calls ``_agent_specific_optimization()`` if the subclass defines one);
* ``snapshot()`` periodically and on a clean stop, if the subclass overrides it;
* ``on_stop()`` once on a clean stop.

Each of these may be a plain method or an ``async def`` coroutine method.  An
exception escaping ``execute_cycle`` or ``handle_message`` crashes the agent (the
traceback is sent to the orchestrator) and the supervisor restarts it as configured:
let it crash, as in Erlang/OTP.  Keep each call shorter than the heartbeat timeout,
or the supervisor will take the agent for hung.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from engine.agents.context import AgentContext
    from engine.communicator import Communicator, Message


class BaseAgent:
    """Base class for agents.

    Subclasses set ``agent_type`` (the name used in ``create_agent`` and
    ``swarm.toml``) and override the hooks they need.  Constructor keyword
    arguments are the agent's options (from ``create_agent(type, **kwargs)`` or the
    ``options`` table in ``swarm.toml``); they are also available as ``self.options``.
    """

    agent_type: ClassVar[str] = "base"
    #: Key metric shown in the UI for this agent type (a gauge name), if any.
    key_metric: ClassVar[str | None] = None

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        self.agent_id = agent_id
        self.options: dict[str, Any] = dict(options)
        self._context: AgentContext | None = None

    # --- wiring (done by the runtime) --------------------------------------------------

    def bind(self, context: "AgentContext") -> None:
        """Attach the runtime context (called by the runtime before ``on_start``)."""
        self._context = context
        if not self.agent_id:
            self.agent_id = context.agent_id

    @property
    def context(self) -> "AgentContext":
        """The runtime context: communicator, config, status gauges, events."""
        if self._context is None:
            raise RuntimeError(f"agent {self.agent_id!r} is not running inside the swarm runtime")
        return self._context

    @property
    def communicator(self) -> "Communicator":
        """This agent's endpoint on the bus (``send_message``, ``broadcast_message``...)."""
        return self.context.communicator

    @property
    def id(self) -> str:
        """The agent's id."""
        return self.agent_id

    # --- hooks -------------------------------------------------------------------------

    def on_start(self) -> Any:
        """Called once when the agent starts (after ``restore``)."""

    def execute_cycle(self) -> Any:
        """Do one unit of the agent's periodic work.  Default: nothing."""

    def handle_message(self, message: "Message") -> Any:
        """Handle one message addressed to this agent.  Default: ignore it.

        Return a value to reply when the message is a request (it is sent back to the
        requester); ``None`` sends an empty reply to a request and nothing otherwise.
        """

    def optimize_performance(self) -> Any:
        """Periodic self-optimisation; calls ``_agent_specific_optimization`` if defined."""
        hook = getattr(self, "_agent_specific_optimization", None)
        if hook is not None:
            return hook()
        return None

    def snapshot(self) -> Any:
        """Return state to checkpoint (msgspec-serialisable), or ``None`` for none."""
        return None

    def restore(self, state: Any) -> Any:
        """Restore from the last checkpoint taken by ``snapshot()``."""

    def on_stop(self) -> Any:
        """Called once on a clean stop (after the last checkpoint)."""

    def on_throttle(self, duty_cycle: float) -> Any:
        """Called when the swarm asks this agent to run at ``duty_cycle`` (0..1]."""

    # --- helpers for subclasses --------------------------------------------------------------

    def set_gauge(self, name: str, value: float) -> None:
        """Publish a named number in this agent's status row (at most 8 per agent)."""
        self.context.set_gauge(name, value)

    def task_done(self, count: int = 1) -> None:
        """Count completed units of work (shown as tasks/s)."""
        self.context.task_done(count)

    def emit_event(self, name: str, message: str = "", *, severity: str = "info", **data: Any) -> None:
        """Send an event to the orchestrator (it reaches every event handler and the UI)."""
        self.context.emit_event(name, message, severity=severity, **data)

    def publish(self, topic: str, value: Any) -> None:
        """Publish a value under ``topic``; the latest one per agent appears in
        ``get_system_status().extra[topic][agent_id]`` (and so in the UI and JSON output)."""
        self.context.publish(topic, value)

    def request_action(self, action: str, agent_id: str, value: Any = None, *, timeout: float = 5.0) -> dict[str, Any]:
        """Ask the orchestrator to act on an agent (``throttle``, ``pause``, ``resume``,
        ``restart``, ``priority``, ``pin``, ``destroy``, ``create``); returns
        ``{"ok": True}`` or ``{"ok": False, "error": ...}``.  The action is audited with
        this agent as the actor and subject to the configured access rules."""
        return self.context.request_action(action, agent_id, value, timeout=timeout)

    @property
    def duty_cycle(self) -> float:
        """The fraction of time this agent may compute (set by throttling)."""
        return self.context.duty_cycle
