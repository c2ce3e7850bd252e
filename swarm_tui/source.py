"""What the UI talks to: a *source* with the orchestrator's interface.

The dashboard never names ``engine.Orchestrator``.  It talks to a :class:`SwarmSource`
-- the live orchestrator (through :class:`LiveSource`, which also owns its start and
shutdown), a replay of a recorded session, or a fixed-data source for tests and
screenshots (:mod:`swarm_tui.fixed_source`) -- so the three are interchangeable.

Queries (``get_system_status``, ``agent_details``, ``available_types``) are cheap and
synchronous; a source may also push its snapshots (``add_status_handler``, optional:
the bridge polls sources without it); commands are coroutines and raise the engine's errors
(``MaxAgentsReached``, ``UnknownAgent``...), ``ValueError`` or ``PermissionError``,
which the app turns into notifications.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from engine import Event, Orchestrator, SwarmConfig, SwarmError, SwarmSnapshot
from engine.demo import stop_demo
from engine.export import ObserverOptions, Observers, attach_observers

log = logging.getLogger("swarm_tui.source")

EventHandler = Callable[[Event], Any]

#: Who the audit log says acted, for every command given through the UI.
UI_ACTOR = "ui"


@runtime_checkable
class SwarmSource(Protocol):
    """The interface the UI relies on (a subset of ``engine.Orchestrator`` plus a lifecycle).

    Attributes:
        config: the swarm's configuration (name, max_agents, intervals, thresholds).
        mode: ``"live"``, ``"replay"`` or ``"sample"``; shown in the header.
    """

    config: SwarmConfig
    mode: str

    async def start(self) -> None:
        """Start producing snapshots (for a live source: start the swarm)."""

    async def stop(self) -> None:
        """Stop; idempotent.  A live source shuts the swarm down and frees its shared memory."""

    def get_system_status(self) -> SwarmSnapshot:
        """The swarm now."""

    def add_event_handler(self, event: str, handler: EventHandler) -> None:
        """Call ``handler(event)`` for each event named ``event`` (``"*"`` = all)."""

    def available_types(self) -> list[str]:
        """Agent types that ``create_agent`` accepts."""

    def agent_details(self, agent_id: str) -> dict[str, Any]:
        """Supervisor-side facts: options, restarts, last exit, last traceback..."""

    async def create_agent(self, agent_type: str, id: str | None = None, **kwargs: Any) -> str:
        """Start an agent; returns its id."""

    async def destroy_agent(self, agent_id: str) -> None:
        """Stop an agent for good."""

    async def set_priority(self, agent_id: str, priority: int) -> None:
        """Set the agent's nice value (-20..19)."""

    async def pause_agent(self, agent_id: str) -> None:
        """Pause the agent's cycles."""

    async def resume_agent(self, agent_id: str) -> None:
        """Resume a paused agent."""

    async def restart_agent(self, agent_id: str) -> None:
        """Restart the agent gracefully."""

    async def pin_agent(self, agent_id: str, cpus: Sequence[int]) -> None:
        """Pin the agent to CPU cores (empty = all)."""


class LiveSource:
    """The live engine: an :class:`engine.Orchestrator` on the app's own event loop.

    ``start()`` attaches the observers (recording, Prometheus endpoint, audit log --
    whatever ``observers`` names), starts the swarm, the agents configured in
    ``swarm.toml`` and, with ``demo``, a demonstration scenario; ``stop()`` shuts it
    all down so that no process or shared-memory segment is left behind.

    Args:
        config: the swarm configuration (a demo scenario's overlay is applied here).
        demo: a scenario name from :mod:`engine.demo` (``True`` = the default one).
        log_level: the agents' log level.
        observers: what to record, export and audit.

    Raises:
        engine.demo.DemoUnavailable: unknown scenario, or it needs a missing agent type.
        ConfigError: the scenario's overlay does not fit the configuration.
    """

    mode = "live"

    def __init__(self, config: SwarmConfig, *, demo: str | bool | None = None, log_level: str | None = None,
                 observers: ObserverOptions | None = None) -> None:
        self.demo = demo or None
        if self.demo:
            from engine.demo import prepare_config

            config = prepare_config(config, self.demo)
        self.config = config
        self.observer_options = observers
        self.observers: Observers | None = None
        self.orchestrator = Orchestrator(config, log_level=log_level)
        self._demo_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

    @property
    def running(self) -> bool:
        """Started and not yet stopped."""
        return self._started and not self._stopped

    async def start(self) -> None:
        """Start the observers, the swarm, the configured agents and the demo scenario."""
        if self._started:
            return
        self._started = True
        if self.observer_options is not None:
            self.observers = attach_observers(self.orchestrator, self.observer_options)
        await self.orchestrator.start()
        try:
            await self.orchestrator.start_configured()
        except SwarmError as exc:  # the swarm runs; say why some agents are missing
            log.error("not every configured agent started: %s", exc)
        if self.demo:
            from engine.demo import start_demo

            self._demo_task = await start_demo(self.orchestrator, self.demo)

    async def stop(self) -> None:
        """Shut the swarm down and finish the observers (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            await stop_demo(self._demo_task)
            await self.orchestrator.shutdown()
        finally:
            if self.observers is not None:
                self.observers.close(reason="stopped")

    # --- the orchestrator's interface, delegated ---------------------------------------

    def get_system_status(self) -> SwarmSnapshot:
        """See :meth:`engine.Orchestrator.get_system_status`."""
        return self.orchestrator.get_system_status()

    def add_event_handler(self, event: str, handler: EventHandler) -> None:
        """See :meth:`engine.Orchestrator.add_event_handler`."""
        self.orchestrator.add_event_handler(event, handler)

    def add_status_handler(self, handler: Callable[[SwarmSnapshot], object]) -> None:
        """See :meth:`engine.Orchestrator.add_status_handler`."""
        self.orchestrator.add_status_handler(handler)  # type: ignore[arg-type]
    def available_types(self) -> list[str]:
        """See :meth:`engine.Orchestrator.available_types`."""
        return self.orchestrator.available_types()

    def agent_details(self, agent_id: str) -> dict[str, Any]:
        """See :meth:`engine.Orchestrator.agent_details`."""
        return self.orchestrator.agent_details(agent_id)

    async def create_agent(self, agent_type: str, id: str | None = None, **kwargs: Any) -> str:
        """See :meth:`engine.Orchestrator.create_agent`."""
        return await self.orchestrator.create_agent(agent_type, id, actor=UI_ACTOR, **kwargs)

    async def destroy_agent(self, agent_id: str) -> None:
        """See :meth:`engine.Orchestrator.destroy_agent`."""
        await self.orchestrator.destroy_agent(agent_id, actor=UI_ACTOR)

    async def set_priority(self, agent_id: str, priority: int) -> None:
        """See :meth:`engine.Orchestrator.set_priority`."""
        await self.orchestrator.set_priority(agent_id, priority, actor=UI_ACTOR)

    async def pause_agent(self, agent_id: str) -> None:
        """See :meth:`engine.Orchestrator.pause_agent`."""
        await self.orchestrator.pause_agent(agent_id, actor=UI_ACTOR)

    async def resume_agent(self, agent_id: str) -> None:
        """See :meth:`engine.Orchestrator.resume_agent`."""
        await self.orchestrator.resume_agent(agent_id, actor=UI_ACTOR)

    async def restart_agent(self, agent_id: str) -> None:
        """See :meth:`engine.Orchestrator.restart_agent`."""
        await self.orchestrator.restart_agent(agent_id, actor=UI_ACTOR)

    async def pin_agent(self, agent_id: str, cpus: Sequence[int]) -> None:
        """See :meth:`engine.Orchestrator.pin_agent`."""
        await self.orchestrator.pin_agent(agent_id, list(cpus), actor=UI_ACTOR)
