"""``EchoAgent``: answers every request with its payload; the simplest real agent.

Used by the tests, the restart benchmark and the load test as a service whose
liveness and throughput can be checked end to end.
"""

from __future__ import annotations

from typing import Any

from engine.agents.base import BaseAgent
from engine.communicator import Message


class EchoAgent(BaseAgent):
    """Replies to each message with its payload and counts what it handled."""

    agent_type = "echo"
    key_metric = "handled"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        self.handled = 0

    def handle_message(self, message: Message) -> Any:
        """Echo the payload back (it becomes the reply to a request)."""
        self.handled += 1
        self.task_done()
        self.set_gauge("handled", self.handled)
        return message.payload

    def snapshot(self) -> Any:
        """Checkpoint the count of handled messages."""
        return {"handled": self.handled}

    def restore(self, state: Any) -> None:
        """Continue counting from the checkpoint."""
        self.handled = int(state.get("handled", 0))
