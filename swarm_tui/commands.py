"""Command palette commands (``ctrl+p``): every action, ``spawn <type>``, ``open <agent>``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:  # pragma: no cover
    from swarm_tui.app import SwarmApp

#: (title, help, app action name) of the fixed commands.
ACTIONS = (
    ("Spawn agents…", "choose a type and a count", "spawn"),
    ("Kill agents", "stop the selected agents (or the one under the cursor) for good", "kill"),
    ("Pause / resume agents", "pause, or resume if all are paused", "pause_resume"),
    ("Restart agents", "graceful restart", "restart"),
    ("Priority up", "nice value -1 (needs privileges)", "priority_up"),
    ("Priority down", "nice value +1", "priority_down"),
    ("Pin agents to cores…", "choose CPU cores", "pin"),
    ("Agent details", "open the detail screen of the agent under the cursor", "detail"),
    ("Help: keys", "every key binding", "help"),
    ("Quit", "stop the swarm and leave", "quit"),
)


class SwarmCommands(Provider):
    """The swarm's commands for the command palette."""

    @property
    def swarm_app(self) -> SwarmApp:
        return self.app  # type: ignore[return-value]

    def _commands(self) -> Iterator[tuple[str, str, Callable[[], object]]]:
        app = self.swarm_app
        for title, help_text, action in ACTIONS:
            yield title, help_text, partial(app.run_action, action)
        for agent_type in app.agent_types():
            yield f"Spawn {agent_type}", f"start one {agent_type} agent", partial(app.spawn, agent_type, 1)
        frame = app.history.latest
        for agent in frame.snapshot.agents if frame else ():
            yield f"Open {agent.id}", f"{agent.type}, {agent.state}", partial(app.open_detail, agent.id)

    async def discover(self) -> Hits:
        """The fixed commands, shown before anything is typed."""
        for title, help_text, callback in list(self._commands())[: len(ACTIONS)]:
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Every command whose title fuzzily matches ``query``."""
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)
