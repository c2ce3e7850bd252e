"""Who may do what, and a record of what was done: authorizers and audit sinks.

The orchestrator asks the guard before every action that changes the swarm and
reports the outcome afterwards.  Authorizers raise ``AccessDenied`` to refuse (the
refusal itself is audited); audit sinks receive one record per action.  Both lists
start empty: access rules and the audit log plug in from configuration.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from engine.errors import AccessDenied

log = logging.getLogger("engine.guard")

Authorizer = Callable[[str, str, str], None]
AuditSink = Callable[[dict[str, Any]], None]


class Guard:
    """Runs authorizers before actions and audit sinks after them."""

    def __init__(self) -> None:
        self.authorizers: list[Authorizer] = []
        self.audit_sinks: list[AuditSink] = []

    def authorize(self, actor: str, action: str, target: str) -> None:
        """Raise ``AccessDenied`` (and audit the denial) if any authorizer refuses."""
        for check in self.authorizers:
            try:
                check(actor, action, target)
            except AccessDenied as exc:
                self.audit(actor, action, target, "denied", reason=str(exc))
                raise

    def audit(self, actor: str, action: str, target: str, outcome: str, **details: Any) -> None:
        """Send one audit record to every sink (a failing sink is logged, not raised)."""
        if not self.audit_sinks:
            return
        record = {"time": time.time(), "actor": actor, "action": action, "target": target,
                  "outcome": outcome, **details}
        for sink in self.audit_sinks:
            try:
                sink(record)
            except Exception:
                log.exception("audit sink %r failed", sink)
