"""The Textual app: ``make_app(...)`` builds it for the CLI and for the tests alike.

Data flow: source -> :class:`~swarm_tui.bridge.SnapshotBridge` (a task on this app's
loop) -> ``SnapshotUpdated`` / ``EventReceived`` messages -> :class:`History` ->
one immutable :class:`~swarm_tui.history.Frame` -> the screens, whose widgets bind to
it.  Commands go back the other way: key -> ``action_*`` here -> the source's API, in
a worker, with the outcome (or the error, never a traceback) as a notification.

Lifecycle: the source starts in a worker from ``on_mount``; it is stopped by
``q``/``ctrl+c`` (and SIGTERM/SIGINT/SIGHUP in a real terminal) before the app
exits, and again -- idempotently -- from ``on_unmount`` whatever ended the app, so
no agent process or shared-memory segment outlives it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.filter import LineFilter
from textual.screen import ModalScreen

from engine import SwarmConfig, SwarmError, default_config
from engine.export import ObserverOptions
from swarm_tui import charts
from swarm_tui.bridge import SnapshotBridge
from swarm_tui.commands import SwarmCommands
from swarm_tui.glyphs import AsciiFilter
from swarm_tui.history import Frame, History
from swarm_tui.logs import LogCapture, default_log_path, start_forkserver
from swarm_tui.messages import EventReceived, ReplayMoved, SnapshotUpdated, SourceFailed
from swarm_tui.render import error_text, fmt_cores, outcome
from swarm_tui.screens import (
    AgentDetailScreen,
    ConfirmDialog,
    DashboardScreen,
    HelpScreen,
    PinDialog,
    SpawnDialog,
    SpawnRequest,
)
from swarm_tui.source import LiveSource, SwarmSource

log = logging.getLogger("swarm_tui.app")

#: Actions that act on agents; they are off while a dialog is open.
AGENT_ACTIONS = frozenset({"spawn", "kill", "pause_resume", "restart", "priority_up", "priority_down", "pin",
                           "detail"})
#: Actions that change a live swarm: hidden in a replay.
LIVE_ONLY_ACTIONS = AGENT_ACTIONS - {"detail", "pause_resume"}
#: Actions that move a replay: hidden when live.
REPLAY_ACTIONS = frozenset({"replay_faster", "replay_slower", "replay_alert", "replay_step"})
#: Events that also pop up a notification when they happen live.
LOUD_EVENTS = frozenset({"agent_crashed", "agent_gave_up", "agent_hung", "thermal_throttle", "performance_alert"})
#: Errors a command may raise on purpose; anything else is logged with its traceback too.
EXPECTED_ERRORS = (SwarmError, ValueError, PermissionError, OSError, TimeoutError)


class SwarmApp(App[int]):
    """The swarm dashboard (see module docstring); build it with :func:`make_app`."""

    CSS_PATH = "styles/app.tcss"
    TITLE = "swarm-tui"
    COMMANDS = App.COMMANDS | {SwarmCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("s", "spawn", "Spawn"),
        Binding("k", "kill", "Kill"),
        Binding("p", "pause_resume", "Pause"),
        Binding("r", "restart", "Restart"),
        Binding("plus", "priority_up", "Prio+", key_display="+", show=False),
        Binding("minus", "priority_down", "Prio-", key_display="-", show=False),
        Binding("c", "pin", "Pin", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, system=True),
        # replay only (hidden when live):
        Binding("right_square_bracket", "replay_faster", "Faster", key_display="]"),
        Binding("left_square_bracket", "replay_slower", "Slower", key_display="["),
        Binding("n", "replay_alert(1)", "Next alert"),
        Binding("N", "replay_alert(-1)", "Prev alert", show=False),
        Binding("full_stop", "replay_step(1)", "Step", key_display=".", show=False),
        Binding("comma", "replay_step(-1)", "Step back", key_display=",", show=False),
    ]

    def __init__(self, source: SwarmSource, *, refresh: float, duration: float | None = None,
                 log_level: str = "WARNING", log_file: str | os.PathLike[str] | None = None,
                 ascii: bool = False) -> None:
        super().__init__()
        self.ascii = ascii
        charts.set_ascii(ascii)
        self._ascii_filter = AsciiFilter() if ascii else None
        self.source = source
        self.refresh_interval = refresh
        self.duration = duration
        self.log_level = log_level
        self.log_file = log_file
        self.history = History()
        self.bridge = SnapshotBridge(source, self.post_message, interval=refresh)
        self.logs = LogCapture(self.post_message, level=log_level, log_file=log_file)
        self.source_running = False
        self.source_error = ""
        self._stopping: asyncio.Task[None] | None = None
        self._signals: list[int] = []
        self._types: list[str] | None = None
        self.replay: Any = source if callable(getattr(source, "add_position_handler", None)) else None
        """The source, when it is a replay (it has transport controls), else ``None``."""
        self.dashboard = DashboardScreen(mode=source.mode, name=source.config.name,
                                         thermal_critical=source.config.performance_thresholds.thermal_critical)

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Textual's filters (colour, NO_COLOR), then ASCII mode's: every drawn line goes through them."""
        filters = super().get_line_filters()
        return filters if self._ascii_filter is None else [*filters, self._ascii_filter]

    # --- lifecycle -------------------------------------------------------------------------

    def run(self, *args: Any, **kwargs: Any) -> int | None:  # type: ignore[override]
        """Run in the terminal: logs and agents' stderr go to the log file, signals quit cleanly.

        A headless run (snapshot tests) is left alone.
        """
        if kwargs.get("headless"):
            return super().run(*args, **kwargs)
        if self.log_file is None:
            self.log_file = default_log_path()
            self.logs.log_file = self.log_file
        if isinstance(self.source, LiveSource):
            start_forkserver(self.log_file)
        self._handle_signals = True
        return super().run(*args, **kwargs)

    def get_default_screen(self) -> DashboardScreen:
        """The dashboard is the bottom of the screen stack."""
        return self.dashboard

    async def on_mount(self) -> None:
        self.logs.install()
        if getattr(self, "_handle_signals", False):
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                try:
                    loop.add_signal_handler(sig, self._hung_up if sig == signal.SIGHUP else self._quit_soon)
                    self._signals.append(sig)
                except (ValueError, RuntimeError, NotImplementedError):
                    pass
        self.dashboard.status = "starting the swarm…" if self.source.mode == "live" else ""
        self.bridge.attach()
        if self.replay is not None:
            self.replay.add_position_handler(lambda state: self.post_message(ReplayMoved(state)))
        self.run_worker(self._run_source(), name="source", group="source", exit_on_error=False)
        if self.duration:
            self.set_timer(self.duration, self._quit_soon)

    async def _run_source(self) -> None:
        """Start the source, load its backlog, then poll it until it stops."""
        if isinstance(self.source, LiveSource):
            start_forkserver()  # no-op after run() started it; needed under run_test
        try:
            await self.source.start()
        except Exception as exc:
            if not isinstance(exc, EXPECTED_ERRORS):
                log.exception("the swarm did not start")
            self.post_message(SourceFailed(error_text(exc)))
            return
        self.source_running = True
        self.bridge.live = True
        backlog = getattr(self.source, "recent_snapshots", None)
        if callable(backlog):
            for snapshot in backlog():
                self.history.add(snapshot)
            self._show(self.history.latest)
        self.dashboard.status = ""
        await self.bridge.run()

    def on_source_failed(self, message: SourceFailed) -> None:
        """Say why the engine is not running, in the header and as a notification."""
        self.source_error = message.reason
        self.dashboard.status = f"engine not running: {message.reason}"
        self.notify(message.reason, title="the swarm did not start", severity="error", timeout=15)

    def _hung_up(self) -> None:
        """The terminal is gone: stop the swarm, then leave without drawing on the dead terminal.

        Textual's own shutdown would write to the closed terminal; its writer thread dies
        on the first EIO and the app would hang for ever on the next write.
        """
        async def stop_and_leave() -> None:
            try:
                await self.stop_source()
            finally:
                self.logs.restore()
                logging.shutdown()
                os._exit(128 + signal.SIGHUP)

        self.run_worker(stop_and_leave(), group="quit", exit_on_error=False)

    def _quit_soon(self) -> None:
        self.run_worker(self.action_quit(), group="quit", exit_on_error=False)

    async def action_quit(self) -> None:
        """Stop the swarm (every agent, the shared memory), then exit."""
        self.dashboard.status = "stopping the swarm…"
        await self.stop_source()
        self.exit(0)

    async def stop_source(self) -> None:
        """Stop the bridge and the source once, however many callers ask."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop_source())
        await asyncio.shield(self._stopping)

    async def _stop_source(self) -> None:
        self.workers.cancel_group(self, "source")
        try:
            await self.source.stop()
        except Exception:
            log.exception("stopping the swarm failed")
        self.source_running = False

    async def on_unmount(self) -> None:
        try:
            await self.stop_source()
        finally:
            loop = asyncio.get_running_loop()
            for sig in self._signals:
                loop.remove_signal_handler(sig)
            self.logs.restore()

    # --- data from the bridge --------------------------------------------------------------

    def on_snapshot_updated(self, message: SnapshotUpdated) -> None:
        """Record the snapshot and hand the new frame to every screen that shows one."""
        self._show(self.history.add(message.snapshot))
        if self.replay is not None:
            self.dashboard.replay = self.replay.state()
        self.call_after_refresh(self.bridge.drawn)

    def on_replay_moved(self, message: ReplayMoved) -> None:
        """Show where the replay is; after a jump, rebuild history and the log from the recording."""
        self.dashboard.replay = message.state
        if message.state.jumped and self.replay is not None:
            self.history = History()
            for snapshot in self.replay.recent_snapshots():
                self.history.add(snapshot)
            if self.history.latest is None:  # before the first recorded snapshot
                self.history.add(self.replay.get_system_status())
            self._show(self.history.latest)
            self.dashboard.event_log.reset(self.replay.recent_events())

    def _show(self, frame: Frame | None) -> None:
        if frame is None:
            return
        for screen in self.screen_stack:
            if isinstance(screen, (DashboardScreen, AgentDetailScreen)):
                screen.frame = frame

    def on_event_received(self, message: EventReceived) -> None:
        """Log the event; a crash or alert that happens now also pops up."""
        event = message.event
        self.dashboard.log_event(event)
        if message.live and event.name in LOUD_EVENTS:
            severity = "error" if event.severity.value in ("error", "critical") else "warning"
            self.notify(event.message or event.name, title=event.name.replace("_", " "), severity=severity)

    # --- helpers for actions -----------------------------------------------------------------

    def agent_types(self) -> list[str]:
        """The source's agent types (asked once)."""
        if self._types is None:
            try:
                self._types = list(self.source.available_types())
            except Exception as exc:
                log.warning("cannot list agent types: %s", exc)
                return []
        return self._types

    def _targets(self) -> list[str]:
        """The agents an action applies to, from the top-most screen that shows agents."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, (DashboardScreen, AgentDetailScreen)):
                return screen.target_agent_ids()
        return []

    def _agent(self, agent_id: str) -> Any:
        frame = self.history.latest
        return frame.snapshot.agent(agent_id) if frame else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Agent actions are hidden while a dialog is open and greyed out without a running swarm.

        A replay hides what would change a swarm and shows its transport keys instead.
        """
        if action in REPLAY_ACTIONS:
            return self.replay is not None and not isinstance(self.screen, ModalScreen)
        if self.replay is not None and action in LIVE_ONLY_ACTIONS:
            return False
        if action in AGENT_ACTIONS:
            if isinstance(self.screen, ModalScreen):
                return False
            if not self.source_running:
                return None
        return True

    def run_command(self, verb: str, agent_ids: Sequence[str], call: Callable[[str], Awaitable[object]],
                    *, suffix: str = "") -> None:
        """Apply ``call`` to each agent in a worker; notify what worked and what did not."""
        self.run_worker(self._command(verb, list(agent_ids), call, suffix), group="commands", exit_on_error=False)

    async def _command(self, verb: str, agent_ids: list[str], call: Callable[[str], Awaitable[object]],
                       suffix: str = "") -> None:
        done: list[str] = []
        failed: list[tuple[str, BaseException]] = []
        for agent_id in agent_ids:
            try:
                await call(agent_id)
            except EXPECTED_ERRORS as exc:
                failed.append((agent_id, exc))
            except Exception as exc:
                log.exception("%s %s failed", verb, agent_id)
                failed.append((agent_id, exc))
            else:
                done.append(agent_id)
        message, severity = outcome(verb, done, failed, suffix=suffix)
        self.notify(message, severity=severity)  # type: ignore[arg-type]
        self.bridge.poll_now()

    def _need_targets(self) -> list[str]:
        ids = self._targets()
        if not ids:
            self.notify("no agent under the cursor or selected", severity="warning")
        return ids

    # --- agent actions -------------------------------------------------------------------------

    def action_spawn(self) -> None:
        """Ask for a type and a count, then create the agents."""
        frame = self.history.latest
        count = len(frame.snapshot.agents) if frame else 0
        room = max(0, self.source.config.max_agents - count)
        current = self._agent(self._targets()[0]) if self._targets() else None

        def chosen(request: SpawnRequest | None) -> None:
            if request is not None:
                self.spawn(request.agent_type, request.count)

        self.push_screen(SpawnDialog(self.agent_types(), room=room, default=current.type if current else None),
                         chosen)

    def spawn(self, agent_type: str, count: int = 1) -> None:
        """Create ``count`` agents of ``agent_type`` (stops at the first failure)."""
        self.run_worker(self._spawn(agent_type, count), group="commands", exit_on_error=False)

    async def _spawn(self, agent_type: str, count: int) -> None:
        created: list[str] = []
        failed: list[tuple[str, BaseException]] = []
        for _ in range(count):
            try:
                created.append(await self.source.create_agent(agent_type))
            except Exception as exc:
                if not isinstance(exc, EXPECTED_ERRORS):
                    log.exception("spawning %s failed", agent_type)
                failed.append(("", exc))
                break
        message, severity = outcome("spawned", created, failed)
        self.notify(message, severity=severity)  # type: ignore[arg-type]
        self.bridge.poll_now()

    def action_kill(self) -> None:
        """Confirm, then destroy the target agents."""
        ids = self._need_targets()
        if not ids:
            return
        what = ids[0] if len(ids) == 1 else f"{len(ids)} agents"

        def confirmed(yes: bool | None) -> None:
            if yes:
                if isinstance(self.screen, AgentDetailScreen) and self.screen.agent_id in ids:
                    self.pop_screen()
                self.run_command("killed", ids, self.source.destroy_agent)

        self.push_screen(ConfirmDialog(f"Kill {what}?", detail=", ".join(ids) if len(ids) > 1 else
                                       "It is stopped for good and not restarted.", yes="Kill"), confirmed)

    def action_pause_resume(self) -> None:
        """Pause the targets, or resume them if every one of them is paused (a replay: play/pause)."""
        if self.replay is not None:
            self.replay.toggle()
            return
        ids = self._need_targets()
        if not ids:
            return
        states = [getattr(self._agent(i), "state", "") for i in ids]
        if all(s == "paused" for s in states):
            self.run_command("resumed", ids, self.source.resume_agent)
        else:
            self.run_command("paused", ids, self.source.pause_agent)

    def action_restart(self) -> None:
        """Restart the targets gracefully."""
        ids = self._need_targets()
        if ids:
            self.run_command("restarted", ids, self.source.restart_agent)

    def action_priority_up(self) -> None:
        """More CPU for the targets: nice value -1."""
        self._change_priority(-1)

    def action_priority_down(self) -> None:
        """Less CPU for the targets: nice value +1."""
        self._change_priority(+1)

    def _change_priority(self, step: int) -> None:
        ids = self._need_targets()
        if not ids:
            return

        async def change(agent_id: str) -> None:
            agent = self._agent(agent_id)
            if agent is None:
                raise ValueError("it is gone")
            new = agent.priority + step
            if not -20 <= new <= 19:
                raise ValueError(f"already at the {'highest' if step < 0 else 'lowest'} priority "
                                 f"(nice {agent.priority})")
            await self.source.set_priority(agent_id, new)

        self.run_command("raised the priority of" if step < 0 else "lowered the priority of", ids, change)

    def action_pin(self) -> None:
        """Ask which cores, then pin the targets to them."""
        ids = self._need_targets()
        if not ids:
            return
        frame = self.history.latest
        cores = list(range(len(frame.snapshot.machine.per_cpu_percent))) if frame else []
        if not cores:
            cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        first = self._agent(ids[0])

        def chosen(selected: list[int] | None) -> None:
            if selected is not None:
                self.run_command("pinned", ids, lambda i: self.source.pin_agent(i, selected),
                                 suffix=f" to cores {fmt_cores(selected)}")

        self.push_screen(PinDialog(ids, cores=cores, current=first.affinity if first else ()), chosen)

    def action_detail(self) -> None:
        """Open the detail screen of the agent under the cursor."""
        ids = self._need_targets()
        if ids:
            self.open_detail(ids[0])

    def open_detail(self, agent_id: str) -> None:
        """Push the detail screen of ``agent_id``."""
        screen = AgentDetailScreen(agent_id, details=self.source.agent_details,
                                   series=lambda aid: self.history.agent_series(aid))
        screen.frame = self.history.latest
        self.push_screen(screen)

    # --- replay transport --------------------------------------------------------------------

    def action_replay_faster(self) -> None:
        """Play the replay faster (up to 16x)."""
        self.notify(f"speed ×{self.replay.faster():g}", timeout=1.5)

    def action_replay_slower(self) -> None:
        """Play the replay slower (down to 0.25x)."""
        self.notify(f"speed ×{self.replay.slower():g}", timeout=1.5)

    def action_replay_alert(self, direction: int) -> None:
        """Jump to the next (1) or previous (-1) alert of the recording."""
        moved = self.replay.next_alert() if direction > 0 else self.replay.prev_alert()
        if not moved:
            self.notify(f"no {'later' if direction > 0 else 'earlier'} alert", severity="warning", timeout=2)

    def action_replay_step(self, n: int) -> None:
        """Pause and step one snapshot forward (1) or back (-1)."""
        self.replay.step(n)

    def action_help(self) -> None:
        """Show the key map."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


def make_app(
    config: SwarmConfig | None = None,
    demo: str | bool | None = None,
    duration: float | None = None,
    log_level: str = "WARNING",
    *,
    source: SwarmSource | None = None,
    refresh: float | None = None,
    log_file: str | os.PathLike[str] | Path | None = None,
    observers: ObserverOptions | None = None,
    ascii: bool = False,
) -> SwarmApp:
    """Build the app exactly as the ``swarm-tui`` command does.

    Args:
        config: the swarm configuration (default: the built-in defaults).
        demo: a demo scenario to run once the swarm is up (``True`` = the default one).
        duration: quit (cleanly) after this many seconds.
        log_level: least level of log records shown in the event log / written to the file.
        source: what to show instead of a new live swarm (a replay or fixed-data source).
        refresh: seconds between two snapshots (default: ``config.monitoring_interval``).
        log_file: where logs (and, in a terminal, agents' stderr) go; ``None`` = only the
            event log when testing, ``default_log_path()`` when run in a terminal.
        observers: what a live swarm records, exports and audits.
        ascii: draw with ASCII characters only (a terminal without Unicode; see
            :mod:`swarm_tui.glyphs`).

    Raises:
        engine.demo.DemoUnavailable: unknown demo scenario, or it needs a missing agent type.
        ConfigError: the scenario's settings do not fit the configuration.
    """
    if source is None:
        source = LiveSource(config or default_config(), demo=demo, log_level=log_level, observers=observers)
    interval = refresh if refresh is not None else source.config.monitoring_interval
    return SwarmApp(source, refresh=interval, duration=duration, log_level=log_level, log_file=log_file,
                     ascii=ascii)
