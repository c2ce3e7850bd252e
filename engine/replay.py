"""Replay a recorded session through the live orchestrator's interface.

:class:`ReplaySource` offers what the UI reads from a live swarm --
``get_system_status()``, ``add_event_handler``, ``add_status_handler``,
``agent_details``, ``available_types``, ``config``, ``start``/``stop`` -- so a
dashboard cannot tell a recording from a live swarm, plus transport controls (play,
pause, speed 0.25x..16x, step, seek, next/previous event or alert).  The actions that
only make sense live (spawn, kill, priority, pause an agent...) raise
:class:`ReplayReadOnly`, a :class:`~engine.errors.SwarmError` naming the action.

Time: the *position* is seconds from the start of the recording.  While playing it
advances with the injected clock times the speed; a task on the running loop (started
by ``start()``) sleeps exactly until the next recorded record is due and delivers it,
so events reach handlers at their recorded pace.  ``get_system_status()`` also brings
the position up to date, so a poller without the task sees the same thing.

Moves are of two kinds:

* **continuous** (playing, ``step(+1)``): every event crossed goes to the event
  handlers and every snapshot crossed to the status handlers, in recorded order;
* **jumps** (``seek``, ``step(-1)``, next/previous event or alert): nothing is
  delivered; the position handlers are told (``ReplayState.jumped``), and a view
  rebuilds itself from ``recent_snapshots()`` / ``recent_events()``, which return
  what was recorded up to the new position.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engine import events as ev
from engine.config import SwarmConfig, config_from_mapping, default_config
from engine.errors import ConfigError, SwarmError, UnknownAgent
from engine.events import Event, EventDispatcher, Severity
from engine.model import BusInfo, MachineInfo, SwarmSnapshot
from engine.recording import Recording, open_recording

log = logging.getLogger("engine.replay")

#: The speeds ``faster()``/``slower()`` step through; any value in [0.25, 16] is accepted.
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
MIN_SPEED, MAX_SPEED = SPEEDS[0], SPEEDS[-1]

#: Events that count as alerts for ``next_alert``/``prev_alert`` (besides any event of
#: severity warning or worse).
ALERT_EVENTS = frozenset({
    ev.PERFORMANCE_ALERT, ev.THERMAL_THROTTLE, ev.ANOMALY_DETECTED, ev.FAILURE_PREDICTED,
    ev.AGENT_CRASHED, ev.AGENT_HUNG, ev.AGENT_GAVE_UP, ev.LIMIT_EXCEEDED, ev.CHANNEL_FAULT,
})  # fmt: skip


class ReplayReadOnly(SwarmError):
    """An action that changes a live swarm was asked of a replay.

    Attributes:
        action: what was asked (``"spawn"``, ``"kill"``, ``"set priority"``...).
    """

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"{action} is not available in replay: this is a recording, not a running swarm")


def is_alert(event: Event) -> bool:
    """Whether ``event`` is an alert (a warning or worse, or an alert-type event)."""
    return event.name in ALERT_EVENTS or event.severity in (Severity.WARNING, Severity.ERROR,
                                                            Severity.CRITICAL)


@dataclass(frozen=True)
class Marker:
    """An event on the timeline: where (seconds from the start) and what."""

    position: float
    name: str
    severity: str
    agent_id: str | None
    message: str
    alert: bool


@dataclass(frozen=True)
class ReplayState:
    """Where the replay is, for a status line or a timeline.

    Attributes:
        position: seconds from the start of the recording.
        duration: length of the readable recording, in seconds.
        playing: the position is advancing.
        speed: playback speed (1.0 = as recorded).
        at_end: the position is at the end (playing stops there).
        jumped: this change was a jump (seek, step back, next/previous event): views
            showing history should rebuild it from ``recent_snapshots()``.
        truncated: the recording was cut off (a crash while recording).
        warnings: the reader's warnings (corrupt chunk skipped, torn tail...).
    """

    position: float
    duration: float
    playing: bool
    speed: float
    at_end: bool
    jumped: bool
    truncated: bool
    warnings: tuple[str, ...]


def _recording_config(recording: Recording) -> tuple[SwarmConfig, str]:
    data = recording.header.get("config")
    if isinstance(data, dict):
        try:
            return config_from_mapping(data, source=f"{recording.path} (recorded config)"), ""
        except ConfigError as exc:
            warning = f"the recorded configuration does not load here ({exc}); showing defaults"
        else:  # pragma: no cover
            warning = ""
    else:
        warning = "the recording has no configuration; showing defaults"
    name = recording.name
    try:
        return default_config().with_overrides(name=name), warning
    except ConfigError:
        return default_config(), warning


class ReplaySource:
    """A recorded session with the orchestrator's read interface (see module docstring).

    Args:
        recording: an opened :class:`~engine.recording.Recording`, or a path to open.
        speed: initial speed (0.25..16).
        autoplay: start playing when ``start()`` is called.
        clock: monotonic seconds (injectable for tests).
    """

    mode = "replay"

    def __init__(self, recording: Recording | str | os.PathLike[str], *, speed: float = 1.0,
                 autoplay: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.recording = recording if isinstance(recording, Recording) else open_recording(recording)
        self.config, config_warning = _recording_config(self.recording)
        self.warnings: tuple[str, ...] = tuple(self.recording.warnings) + ((config_warning,) if config_warning else ())
        self.events = EventDispatcher()
        self.autoplay = autoplay
        self._clock = clock
        self._status_handlers: list[Callable[[SwarmSnapshot], Any]] = []
        self._position_handlers: list[Callable[[ReplayState], Any]] = []
        self._start = self.recording.start_time
        self._duration = self.recording.duration
        self._event_times = [e.time - self._start for e in self.recording.events]
        self._snap_times = [t - self._start for t in self.recording.snapshot_times]
        self._pos = 0.0
        self._anchor_pos = 0.0
        self._anchor_clock = 0.0
        self._playing = False
        self._speed = 1.0
        self._delivered_event = 0   # events [0, n) have been delivered (or jumped over)
        self._delivered_snap = 0
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._started = False
        self._stopped = False
        self._cached: tuple[int, SwarmSnapshot] | None = None
        self.set_speed(speed)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering records on the running loop (and play, unless ``autoplay=False``)."""
        if self._started:
            return
        self._started = True
        self._wake = asyncio.Event()
        self.events.emit(Event("replay_started", self._start, Severity.INFO, None,
                               f"replaying {self.recording.describe()}",
                               {"path": str(self.recording.path), "warnings": list(self.warnings)}))
        for warning in self.warnings:
            self.events.emit(Event("replay_warning", self._start, Severity.WARNING, None, warning))
        self._deliver_until(0.0)
        if self.autoplay:
            self.play()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop delivering (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._playing = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def __aenter__(self) -> ReplaySource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopped:
            self._tick()
            delay = self._next_due()
            self._wake.clear()
            try:
                if delay is None:
                    await self._wake.wait()
                else:
                    await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    def _next_due(self) -> float | None:
        """Real seconds until the next record is due (``None`` when paused or at the end)."""
        if not self._playing:
            return None
        upcoming = [self._duration]
        if self._delivered_event < len(self._event_times):
            upcoming.append(self._event_times[self._delivered_event])
        if self._delivered_snap < len(self._snap_times):
            upcoming.append(self._snap_times[self._delivered_snap])
        return max(0.0, (min(upcoming) - self._pos) / self._speed)

    def _tick(self) -> None:
        """Bring the position up to the clock and deliver what it crossed."""
        if not self._playing:
            return
        target = self._anchor_pos + (self._clock() - self._anchor_clock) * self._speed
        if target >= self._duration:
            self._deliver_until(self._duration)
            self._playing = False
            self._notify(jumped=False)
        else:
            self._deliver_until(target)

    def _deliver_until(self, target: float) -> None:
        """Move forward to ``target``, delivering events and snapshots in recorded order."""
        target = min(max(target, self._pos), self._duration)
        events, snaps = self._event_times, self._snap_times
        while True:
            next_e = events[self._delivered_event] if self._delivered_event < len(events) else math.inf
            next_s = snaps[self._delivered_snap] if self._delivered_snap < len(snaps) else math.inf
            if min(next_e, next_s) > target:
                break
            if next_e <= next_s:
                self.events.emit(self.recording.events[self._delivered_event])
                self._delivered_event += 1
            else:
                index = self._delivered_snap
                self._delivered_snap += 1
                if self._status_handlers:
                    snapshot = self._snapshot(index)
                    for handler in list(self._status_handlers):
                        try:
                            handler(snapshot)
                        except Exception:
                            log.exception("status handler %r failed", handler)
        self._pos = target

    # --- the orchestrator's read interface ------------------------------------------------

    def get_system_status(self) -> SwarmSnapshot:
        """The last snapshot recorded at or before the position (an empty swarm before the first)."""
        self._tick()
        index = bisect.bisect_right(self._snap_times, self._pos) - 1
        if index < 0:
            return SwarmSnapshot(name=self.config.name, time=self._start + self._pos, uptime_s=0.0,
                                 agents=(), bus=BusInfo(), machine=MachineInfo(),
                                 max_agents=self.config.max_agents)
        return self._snapshot(index)

    def _snapshot(self, index: int) -> SwarmSnapshot:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        snapshot = self.recording.snapshot(index)
        self._cached = (index, snapshot)
        return snapshot

    def add_event_handler(self, event: str, handler: ev.Handler) -> None:
        """Call ``handler(event)`` for each recorded event named ``event`` (``"*"`` = all) as it plays.

        Besides the recorded events, the replay itself emits ``replay_started`` and,
        for each reader warning, ``replay_warning`` when ``start()`` runs.
        """
        self.events.add(event, handler)

    def remove_event_handler(self, event: str, handler: ev.Handler) -> None:
        """Unregister an event handler."""
        self.events.remove(event, handler)

    def add_status_handler(self, handler: Callable[[SwarmSnapshot], Any]) -> None:
        """Call ``handler(snapshot)`` for each recorded snapshot as it plays."""
        self._status_handlers.append(handler)

    def add_position_handler(self, handler: Callable[[ReplayState], Any]) -> None:
        """Call ``handler(state)`` on every play/pause, speed change, jump, and at the end."""
        self._position_handlers.append(handler)

    def available_types(self) -> list[str]:
        """The agent types the recorded swarm had."""
        types = self.recording.header.get("agent_types")
        return [str(t) for t in types] if isinstance(types, list) else []

    def agent_ids(self) -> list[str]:
        """Ids of the agents at the position."""
        return [a.id for a in self.get_system_status().agents]

    def agent_details(self, agent_id: str) -> dict[str, Any]:
        """The agent's supervisor details as recorded, updated with its row at the position.

        Raises:
            UnknownAgent: no agent with that id at the position.
        """
        agent = self.get_system_status().agent(agent_id)
        if agent is None:
            raise UnknownAgent(f"no agent with id {agent_id!r} at this point of the recording")
        now = self._start + self._pos
        details: dict[str, Any] = {}
        for when, who, recorded in self.recording.details:
            if when > now:
                break
            if who == agent_id:
                details = dict(recorded)
        details.update(id=agent.id, type=agent.type, slot=agent.slot, pid=agent.pid, state=agent.state,
                       restarts=agent.restarts, priority=agent.priority, duty_cycle=agent.duty_cycle,
                       affinity=list(agent.affinity), last_error=agent.last_error or details.get("last_error", ""),
                       replay=True)
        details.setdefault("options", {})
        return details

    def recent_snapshots(self, limit: int = 600) -> list[SwarmSnapshot]:
        """Up to ``limit`` snapshots recorded up to the position, oldest first (a view's backlog)."""
        end = bisect.bisect_right(self._snap_times, self._pos)
        return [self._snapshot(i) if i == end - 1 else self.recording.snapshot(i)
                for i in range(max(0, end - limit), end)]

    def recent_events(self, limit: int = 500) -> list[Event]:
        """Up to ``limit`` events recorded up to the position, oldest first."""
        end = bisect.bisect_right(self._event_times, self._pos)
        return list(self.recording.events[max(0, end - limit):end])

    def markers(self, *, alerts_only: bool = False) -> list[Marker]:
        """Every event (or only the alerts) as a timeline marker."""
        out = []
        for offset, event in zip(self._event_times, self.recording.events):
            alert = is_alert(event)
            if alert or not alerts_only:
                out.append(Marker(offset, event.name, event.severity.value, event.agent_id, event.message, alert))
        return out

    # --- transport ---------------------------------------------------------------------

    @property
    def position(self) -> float:
        """Seconds from the start of the recording."""
        self._tick()
        return self._pos

    @property
    def duration(self) -> float:
        """Seconds the readable recording lasts."""
        return self._duration

    @property
    def playing(self) -> bool:
        """Whether the position is advancing."""
        return self._playing

    @property
    def speed(self) -> float:
        """Playback speed (1.0 = as recorded)."""
        return self._speed

    @property
    def at_end(self) -> bool:
        """The position is at the end of the recording."""
        return self._pos >= self._duration

    def state(self, *, jumped: bool = False) -> ReplayState:
        """Where the replay is now."""
        return ReplayState(self._pos, self._duration, self._playing, self._speed, self.at_end, jumped,
                           self.recording.truncated, self.warnings)

    def play(self) -> None:
        """Play from the position (from the start again if at the end)."""
        if self._playing:
            return
        rewound = self.at_end and self._duration > 0
        if rewound:
            self._jump(0.0)
        self._playing = True
        self._anchor()
        self._notify(jumped=rewound)

    def pause(self) -> None:
        """Stop advancing."""
        self._tick()
        if self._playing:
            self._playing = False
            self._notify(jumped=False)

    def toggle(self) -> None:
        """Play if paused, pause if playing."""
        self.pause() if self._playing else self.play()

    def set_speed(self, speed: float) -> None:
        """Set the speed, from 0.25 to 16.

        Raises:
            ValueError: outside that range.
        """
        if not (isinstance(speed, (int, float)) and MIN_SPEED <= speed <= MAX_SPEED):
            raise ValueError(f"replay speed must be from {MIN_SPEED:g}x to {MAX_SPEED:g}x, got {speed!r}")
        self._tick()
        self._speed = float(speed)
        self._anchor()
        if self._started:
            self._notify(jumped=False)

    def faster(self) -> float:
        """The next speed in :data:`SPEEDS` (stays at the top); returns it."""
        higher = [s for s in SPEEDS if s > self._speed]
        self.set_speed(higher[0] if higher else MAX_SPEED)
        return self._speed

    def slower(self) -> float:
        """The previous speed in :data:`SPEEDS` (stays at the bottom); returns it."""
        lower = [s for s in SPEEDS if s < self._speed]
        self.set_speed(lower[-1] if lower else MIN_SPEED)
        return self._speed

    def step(self, n: int = 1) -> None:
        """Pause and move ``n`` snapshots forward (delivering what is crossed) or back (a jump)."""
        self.pause()
        index = bisect.bisect_right(self._snap_times, self._pos) - 1
        target_index = index + n
        if n > 0:
            target = self._snap_times[target_index] if target_index < len(self._snap_times) else self._duration
            self._deliver_until(target)
            self._notify(jumped=False)
        elif n < 0:
            target = self._snap_times[target_index] if target_index >= 0 else 0.0
            self._jump(target)
            self._notify(jumped=True)

    def seek(self, position: float) -> None:
        """Jump to ``position`` seconds from the start (clamped to the recording)."""
        if not isinstance(position, (int, float)) or math.isnan(position):
            raise ValueError(f"seek position must be a number of seconds, got {position!r}")
        self._tick()
        self._jump(min(max(0.0, float(position)), self._duration))
        self._notify(jumped=True)

    def seek_fraction(self, fraction: float) -> None:
        """Jump to ``fraction`` (0..1) of the recording (a timeline click)."""
        self.seek(min(max(0.0, fraction), 1.0) * self._duration)

    def next_event(self) -> bool:
        """Jump to the next event; returns ``False`` (and stays) if there is none."""
        return self._jump_to_marker(+1, alerts=False)

    def prev_event(self) -> bool:
        """Jump to the previous event; returns ``False`` if there is none."""
        return self._jump_to_marker(-1, alerts=False)

    def next_alert(self) -> bool:
        """Jump to the next alert; returns ``False`` if there is none."""
        return self._jump_to_marker(+1, alerts=True)

    def prev_alert(self) -> bool:
        """Jump to the previous alert; returns ``False`` if there is none."""
        return self._jump_to_marker(-1, alerts=True)

    def _jump_to_marker(self, direction: int, *, alerts: bool) -> bool:
        self._tick()
        pos, events = self._pos, self.recording.events
        candidates: Iterable[int]
        if direction > 0:
            candidates = range(bisect.bisect_right(self._event_times, pos + 1e-9), len(events))
        else:
            candidates = range(bisect.bisect_left(self._event_times, pos - 1e-9) - 1, -1, -1)
        for i in candidates:
            if not alerts or is_alert(events[i]):
                self._jump(self._event_times[i])
                self._notify(jumped=True)
                return True
        return False

    def _jump(self, position: float) -> None:
        """Move to ``position`` without delivering anything."""
        self._pos = position
        self._delivered_event = bisect.bisect_right(self._event_times, position)
        self._delivered_snap = bisect.bisect_right(self._snap_times, position)
        self._anchor()

    def _anchor(self) -> None:
        self._anchor_pos = self._pos
        self._anchor_clock = self._clock()

    def _notify(self, *, jumped: bool) -> None:
        if self._wake is not None:
            self._wake.set()
        state = self.state(jumped=jumped)
        for handler in list(self._position_handlers):
            try:
                handler(state)
            except Exception:
                log.exception("position handler %r failed", handler)

    # --- live-only actions ----------------------------------------------------------------

    async def create_agent(self, agent_type: str, id: str | None = None, **kwargs: Any) -> str:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("spawn")

    async def destroy_agent(self, agent_id: str, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("kill")

    async def set_priority(self, agent_id: str, priority: int, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("set priority")

    async def pause_agent(self, agent_id: str, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly` (``pause()`` pauses the replay itself)."""
        raise ReplayReadOnly("pause agent")

    async def resume_agent(self, agent_id: str, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("resume agent")

    async def restart_agent(self, agent_id: str, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("restart")

    async def pin_agent(self, agent_id: str, cpus: Any = (), **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("pin")

    async def throttle_agent(self, agent_id: str, duty_cycle: float, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("throttle")

    async def inject_hang(self, agent_id: str, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("inject hang")

    async def perform_action(self, action: str, agent_id: str, value: Any = None, **kwargs: Any) -> None:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly(action or "action")

    async def submit_task(self, kind: str, payload: Any = None, **kwargs: Any) -> Any:
        """Raises :class:`ReplayReadOnly`."""
        raise ReplayReadOnly("submit task")

    @property
    def communicator(self) -> Any:
        """Raises :class:`ReplayReadOnly`: a recording has no bus to send on."""
        raise ReplayReadOnly("send message")
