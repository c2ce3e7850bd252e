"""Recovery decisions of the fault-tolerance agent: pure logic, no I/O, any clock.

The fault-tolerance agent (``engine/agents/fault_tolerance.py``) measures; this
module decides.  Each agent cycle it hands the :class:`RecoveryPlanner` one
:class:`AgentHealth` per live agent (what the status table, the agent's mailbox
and the trend predictors say now) and gets back the :class:`Action` values to
carry out, each with a cause and a one-sentence reason.  Nothing here touches a
process, a clock or the bus, so every rule is tested with synthetic observations
and a fake clock (``tests/engine/test_fault_tolerance.py``).

The rules
---------
* **Crash loop** -- restarts of an agent that the planner did not ask for
  (incarnation increments minus its own requested restarts) are counted in a
  sliding window.  ``crash_loop_restarts`` of them within
  ``crash_loop_window_s`` quarantine the agent *paused*: it stops running its
  cycles and handling data (messages wait in its inbox, unacknowledged, so none
  are lost) and the dispatcher stops choosing it.  The supervisor's own restart
  intensity (``supervisor.max_restarts`` in ``max_seconds``) only catches fast
  loops; this rule also catches the slow loop of an agent that crashes every
  ten seconds forever.
* **Leak** -- when the RSS trend of an agent with an ``rss_limit_mb`` says the
  limit is ``rss_eta_s`` seconds away and the growth is *sustained* (most recent
  samples rose), the agent is restarted gracefully once the ETA is below
  ``restart_lead_s`` -- before the supervisor would kill it at the limit.  An
  agent of a *drain type* (compute) is first quarantined (not paused) when the
  ETA falls below ``drain_lead_s``: no new work goes to it while it finishes what
  it has, and it is restarted as soon as its inbox is empty or the ETA is below
  ``restart_lead_s``; it is released once the new incarnation is healthy.
* **Hang** -- a running agent whose heartbeat age exceeds
  ``max(hang_fraction * heartbeat_timeout, 2 * its recent longest cycle)`` on two
  consecutive observations, still growing, is restarted gracefully before the
  supervisor SIGKILLs it at ``heartbeat_timeout`` (a graceful stop checkpoints it,
  and a requested restart does not count against the restart intensity).
* **Queue** -- a drain-type agent whose inbox fills (fill >= ``queue_high``, or
  the fill trend reaches capacity within ``drain_lead_s`` while at least half of
  ``queue_high`` is used) is quarantined so that new tasks go elsewhere; it is
  released when the fill is back under ``queue_low``.
* **Machine memory** -- when machine memory is predicted to run out within
  ``restart_lead_s``, the agent whose RSS grows fastest (sustained) is restarted.
* **Budget** -- at most ``max_restarts`` planner-initiated restarts per agent in
  ``restart_window_s``; an agent that needs more (it leaks again right after each
  restart) is quarantined paused instead.  After restarting an agent the planner
  waits ``cooldown_s`` before restarting it again.  An agent the planner paused
  that is seen running again (an operator resumed or released it) starts with a
  clean record.

The planner keeps a small record per agent (bounded deques), forgets agents that
are gone (:meth:`RecoveryPlanner.forget`), and its state is JSON-safe
(:meth:`RecoveryPlanner.state` / :meth:`RecoveryPlanner.from_state`) so decisions
survive a restart of the fault-tolerance agent.  Times are the caller's monotonic
clock (``time.monotonic`` is system-wide on Linux, so a restarted agent continues
on the same time line).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Action", "AgentHealth", "RecoveryPlanner", "RecoveryPolicy"]

RESTART = "restart"
QUARANTINE = "quarantine"
RELEASE = "release"

#: States (status-table labels) in which an agent is up and may be judged.
_UP = frozenset({"running", "throttled", "paused"})
_RUNNING = frozenset({"running", "throttled"})


@dataclass(frozen=True)
class RecoveryPolicy:
    """The knobs of the recovery rules (see the module docstring)."""

    heartbeat_timeout_s: float = 5.0
    hang_fraction: float = 0.5
    restart_lead_s: float = 30.0
    drain_lead_s: float = 60.0
    drain_types: tuple[str, ...] = ("compute",)
    crash_loop_restarts: int = 3
    crash_loop_window_s: float = 300.0
    max_restarts: int = 3
    restart_window_s: float = 600.0
    cooldown_s: float = 10.0
    queue_high: float = 0.8
    queue_low: float = 0.2

    def __post_init__(self) -> None:
        if self.restart_lead_s > self.drain_lead_s:
            raise ValueError("restart_lead_s must not exceed drain_lead_s")
        if not 0.0 < self.queue_low < self.queue_high <= 1.0:
            raise ValueError("need 0 < queue_low < queue_high <= 1")
        if self.crash_loop_restarts < 1 or self.max_restarts < 0:
            raise ValueError("crash_loop_restarts >= 1 and max_restarts >= 0 required")


@dataclass(frozen=True)
class AgentHealth:
    """One observation of one agent.

    Attributes:
        agent_id, agent_type: who.
        incarnation: from its status row (grows by one per restart of any kind).
        state: its status-table state label (running, paused, starting, crashed...).
        heartbeat_age_s: seconds since its last heartbeat.
        cycle_s: its recent longest ``execute_cycle`` duration (a long cycle also
            delays heartbeats, so it widens the hang limit).
        rss_bytes, rss_limit_bytes: resident size and its limit (0 = none).
        rss_eta_s: seconds until the RSS trend reaches the limit, or None.
        rss_sustained: whether the growth behind ``rss_eta_s`` is sustained.
        queue_fill: fullest data lane of its inbox, 0..1.
        queue_eta_s: seconds until the fill trend reaches capacity, or None.
    """

    agent_id: str
    agent_type: str
    incarnation: int
    state: str
    heartbeat_age_s: float = 0.0
    cycle_s: float = 0.0
    rss_bytes: int = 0
    rss_limit_bytes: int = 0
    rss_eta_s: float | None = None
    rss_sustained: bool = False
    queue_fill: float = 0.0
    queue_eta_s: float | None = None


@dataclass(frozen=True)
class Action:
    """Something the agent should ask the orchestrator to do.

    ``kind`` is ``restart``, ``quarantine`` or ``release``; ``pause`` (quarantine
    only) also pauses the agent; ``cause`` is a short tag (crash_loop, leak, hang,
    queue, machine_memory, recurring); ``reason`` is the sentence for the event.
    """

    kind: str
    agent_id: str
    cause: str
    reason: str
    pause: bool = False


@dataclass
class _Track:
    incarnation: int
    crashes: deque[float] = field(default_factory=deque)
    restarts: deque[float] = field(default_factory=deque)  # planner-initiated
    pending_own: int = 0  # restarts requested and not yet seen as incarnation increments
    last_restart: float = -math.inf
    last_quarantine: float = -math.inf
    failed_at: float = -math.inf  # when an action on it last failed (refused, timed out, actions off)
    quarantine: str = ""  # cause, "" = not quarantined by us
    paused: bool = False
    quarantined_incarnation: int = -1
    hang_age: float = 0.0  # heartbeat age at the previous observation if it was over the limit

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["crashes"] = list(self.crashes)
        d["restarts"] = list(self.restarts)
        for key in ("last_restart", "last_quarantine", "failed_at"):
            d[key] = None if d[key] == -math.inf else d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Track:
        t = cls(incarnation=int(d["incarnation"]))
        t.crashes = deque(float(x) for x in d.get("crashes", ()))
        t.restarts = deque(float(x) for x in d.get("restarts", ()))
        t.pending_own = int(d.get("pending_own", 0))
        for key in ("last_restart", "last_quarantine", "failed_at"):
            value = d.get(key)
            setattr(t, key, -math.inf if value is None else float(value))
        t.quarantine = str(d.get("quarantine", ""))
        t.paused = bool(d.get("paused", False))
        t.quarantined_incarnation = int(d.get("quarantined_incarnation", -1))
        return t


class RecoveryPlanner:
    """Turns observations into recovery actions (see the module docstring)."""

    def __init__(self, policy: RecoveryPolicy | None = None) -> None:
        self.policy = policy or RecoveryPolicy()
        self._tracks: dict[str, _Track] = {}

    # --- bookkeeping ----------------------------------------------------------------

    def forget(self, agent_id: str) -> None:
        """Drop the record of an agent that no longer exists."""
        self._tracks.pop(agent_id, None)

    def retain(self, agent_ids: Iterable[str]) -> None:
        """Forget every agent not in ``agent_ids``."""
        keep = set(agent_ids)
        for aid in [a for a in self._tracks if a not in keep]:
            del self._tracks[aid]

    def quarantined(self) -> dict[str, str]:
        """Agents this planner quarantined, with the cause."""
        return {aid: t.quarantine for aid, t in self._tracks.items() if t.quarantine}

    def recent_crashes(self, agent_id: str) -> int:
        """Crashes (restarts not requested by the planner) counted in the window."""
        t = self._tracks.get(agent_id)
        return len(t.crashes) if t else 0

    def completed(self, action: Action, ok: bool, now: float) -> None:
        """Report whether the orchestrator carried ``action`` out.  When it did not
        (refused, timed out, actions off), the planner's assumptions are undone and
        it proposes nothing for that agent for ``6 * cooldown_s``, so a refusal
        cannot turn into an action storm."""
        t = self._tracks.get(action.agent_id)
        if t is None or ok:
            return
        t.failed_at = now
        if action.kind == RESTART:
            t.pending_own = max(0, t.pending_own - 1)
            if t.restarts:
                t.restarts.pop()
        elif action.kind == QUARANTINE:
            t.quarantine, t.paused = "", False
        elif action.kind == RELEASE:
            t.quarantine = action.cause  # still quarantined; the release is tried again later

    # --- the rules ------------------------------------------------------------------

    def observe(self, h: AgentHealth, now: float) -> list[Action]:
        """Judge one observation taken at ``now``; returns the actions to take."""
        p = self.policy
        t = self._tracks.get(h.agent_id)
        if t is None or h.incarnation < t.incarnation:  # new, or re-created under the same id
            t = self._tracks[h.agent_id] = _Track(incarnation=h.incarnation)
        if h.incarnation > t.incarnation:
            bumps = h.incarnation - t.incarnation
            own = min(bumps, t.pending_own)
            t.pending_own -= own
            t.crashes.extend([now] * (bumps - own))
            t.incarnation = h.incarnation
            t.hang_age = 0.0
        if h.state == "crashed":
            # Seen dead between two restarts; it is counted when the incarnation grows.
            return []
        _expire(t.crashes, now - p.crash_loop_window_s)
        _expire(t.restarts, now - p.restart_window_s)

        backing_off = now - t.failed_at < 6.0 * p.cooldown_s
        if len(t.crashes) >= p.crash_loop_restarts and not t.paused and not backing_off:
            reason = (f"crash loop: {len(t.crashes)} crashes within {p.crash_loop_window_s:g} s "
                      f"(limit {p.crash_loop_restarts}); paused and taken out of dispatch until "
                      f"released")
            return [self._quarantine(t, h.agent_id, "crash_loop", reason, pause=True, now=now)]
        if t.paused and h.state in _RUNNING and now - t.last_quarantine >= p.cooldown_s:
            # Someone resumed or released it (the pause reached it long ago): start afresh.
            t.quarantine, t.paused = "", False
            t.crashes.clear()
        if t.paused or h.state not in _UP or backing_off:
            return []
        may_restart = now - t.last_restart >= p.cooldown_s

        # Hang: the heartbeat is late, and later than at the previous observation.
        hang_limit = max(p.hang_fraction * p.heartbeat_timeout_s, 2.0 * h.cycle_s)
        if h.state in _RUNNING and h.heartbeat_age_s > hang_limit:
            if t.hang_age and h.heartbeat_age_s > t.hang_age and may_restart:
                t.hang_age = 0.0
                return [self._restart(t, h.agent_id, "hang", (
                    f"no heartbeat for {h.heartbeat_age_s:.1f} s (hang limit {hang_limit:.1f} s; the "
                    f"supervisor kills at {p.heartbeat_timeout_s:g} s): restarting it gracefully first"),
                    now)]
            t.hang_age = h.heartbeat_age_s
        else:
            t.hang_age = 0.0

        drain = h.agent_type in p.drain_types
        leak_eta = h.rss_eta_s if (h.rss_limit_bytes > 0 and h.rss_sustained) else None
        if leak_eta is not None and leak_eta < p.drain_lead_s:
            what = (f"RSS {h.rss_bytes / 2**20:.0f} MiB grows toward its limit "
                    f"{h.rss_limit_bytes / 2**20:.0f} MiB, reached in {leak_eta:.0f} s")
            drained = t.quarantine == "leak" and h.queue_fill <= 0.0
            if (leak_eta < p.restart_lead_s or drained) and may_restart:
                why = "its inbox is empty" if drained and leak_eta >= p.restart_lead_s else \
                    f"less than restart_lead_s={p.restart_lead_s:g} s"
                return [self._restart(t, h.agent_id, "leak", f"{what} ({why}): restarting it before it fails",
                                      now)]
            if drain and not t.quarantine:
                return [self._quarantine(t, h.agent_id, "leak", (
                    f"{what}: no new work goes to it while it finishes its queue, then it is restarted"),
                    pause=False, now=now)]

        if drain:
            filling = h.queue_eta_s is not None and h.queue_eta_s < p.drain_lead_s \
                and h.queue_fill >= p.queue_high / 2
            if not t.quarantine and (h.queue_fill >= p.queue_high or filling):
                eta = "" if h.queue_eta_s is None else f", full in {h.queue_eta_s:.0f} s"
                return [self._quarantine(t, h.agent_id, "queue", (
                    f"inbox {h.queue_fill:.0%} full{eta}: it cannot keep up, new work goes to other "
                    f"agents until it drains below {p.queue_low:.0%}"), pause=False, now=now)]

        # Release a drain quarantine once its cause is gone.
        if t.quarantine == "queue" and h.queue_fill <= p.queue_low and \
                (h.queue_eta_s is None or h.queue_eta_s > p.drain_lead_s):
            return [self._release(t, h.agent_id, f"inbox drained to {h.queue_fill:.0%}", now)]
        if t.quarantine == "leak" and h.incarnation > t.quarantined_incarnation and \
                (leak_eta is None or leak_eta > p.drain_lead_s):
            return [self._release(t, h.agent_id, "restarted; its memory is no longer heading for the limit",
                                  now)]
        return []

    def observe_machine_memory(self, eta_s: float | None, growers: Iterable[tuple[str, float]],
                               now: float) -> list[Action]:
        """Machine memory runs out in ``eta_s`` seconds: restart the fastest-growing agent.

        ``growers`` are ``(agent_id, bytes_per_s)`` of agents whose RSS growth is
        sustained.  Acts only when ``eta_s < restart_lead_s``.
        """
        p = self.policy
        if eta_s is None or eta_s >= p.restart_lead_s:
            return []
        ranked = sorted(((rate, aid) for aid, rate in growers if rate > 0), reverse=True)
        for rate, aid in ranked:
            t = self._tracks.get(aid)
            if t is None or t.paused or now - t.last_restart < p.cooldown_s or \
                    now - t.failed_at < 6.0 * p.cooldown_s:
                continue
            return [self._restart(t, aid, "machine_memory", (
                f"machine memory runs out in {eta_s:.0f} s and {aid} grows fastest "
                f"({rate / 2**20 * 60:.1f} MiB/min): restarting it"), now)]
        return []

    # --- actions ------------------------------------------------------------------------

    def _restart(self, t: _Track, agent_id: str, cause: str, reason: str, now: float) -> Action:
        p = self.policy
        t.last_restart = now
        if len(t.restarts) >= p.max_restarts:
            return self._quarantine(t, agent_id, "recurring", (
                f"{reason.split(':')[0]}, but it was already restarted {len(t.restarts)} times within "
                f"{p.restart_window_s:g} s (max_restarts={p.max_restarts}): paused and taken out of "
                f"dispatch until released"), pause=True, now=now)
        t.restarts.append(now)
        t.pending_own += 1
        return Action(RESTART, agent_id, cause, reason)

    def _quarantine(self, t: _Track, agent_id: str, cause: str, reason: str, *, pause: bool,
                    now: float) -> Action:
        t.last_quarantine = now
        t.quarantine = cause
        t.paused = pause
        t.quarantined_incarnation = t.incarnation
        return Action(QUARANTINE, agent_id, cause, reason, pause=pause)

    def _release(self, t: _Track, agent_id: str, reason: str, now: float) -> Action:
        cause = t.quarantine
        t.quarantine, t.paused = "", False
        return Action(RELEASE, agent_id, cause, reason)

    # --- persistence ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """JSON-safe snapshot of every agent's record (the policy is not included)."""
        return {"version": 1, "agents": {aid: t.to_dict() for aid, t in self._tracks.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the records with those from :meth:`state` (bad input raises ValueError)."""
        if not isinstance(state, dict) or state.get("version") != 1:
            raise ValueError("not a RecoveryPlanner state (version 1)")
        try:
            self._tracks = {str(aid): _Track.from_dict(d) for aid, d in dict(state["agents"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad RecoveryPlanner state: {exc}") from None

    @classmethod
    def from_state(cls, state: dict[str, Any], policy: RecoveryPolicy | None = None) -> RecoveryPlanner:
        """A planner with ``policy`` and the records from :meth:`state`."""
        planner = cls(policy)
        planner.load_state(state)
        return planner


def _expire(times: deque[float], before: float) -> None:
    while times and times[0] < before:
        times.popleft()
