"""``FaultToleranceAgent``: anomaly detection on every telemetry series, failure
prediction from trends, and recovery orchestration with the supervisor.

Each cycle (``cycle_interval``, 0.5 s by default) the agent

1. samples the machine (psutil: CPU total and per core, memory, swap, load, disk
   and network rates; sysfs temperatures where the machine has sensors, else the
   thermal agent's model temperature from its status gauges);
2. reads every live agent's status row straight from shared memory (no round
   trip) and the statistics of its inbox: CPU %, RSS, heartbeat age, messages
   in/out per second, errors per second, tasks per second, cycle time, inbox
   latency p99 and inbox fill (the fullest data lane, as a share of its capacity);
3. scores every value with its own streaming detector (``sentinel`` from
   ``engine.anomaly``: strictly online, constant memory per series) and raises
   ``anomaly_detected`` when the score reaches ``anomaly_threshold`` *and* the
   value is off its recent mean by a practical floor for its kind (10 % CPU,
   16 MiB, 0.5 s...) -- a hold-off per series and a global rate limit prevent
   storms;
4. fits trend lines (``TrendPredictor``) and raises ``failure_predicted`` with the
   estimated seconds until a limit is crossed: an agent's RSS toward its
   ``rss_limit_mb``, machine memory toward 100 %, temperature toward
   ``performance_thresholds.thermal_critical``, an inbox toward its capacity;
5. hands every agent's health to :class:`engine.recovery.RecoveryPlanner` and
   carries out its actions through ``request_action`` (restart a leaking or hung
   agent before it fails, quarantine a crash-looping agent, take a failing
   compute agent out of dispatch while it drains, release it afterwards), each
   reported as a ``recovery_action`` event with its reason.

The detector and trend state is checkpointed (``snapshot``/``restore``): at most
``state_budget_kb`` of compressed detector state (machine series first), at most
every ``snapshot_interval_s``.  Gauges: ``series``, ``anomalies``, ``predictions``,
``actions``, ``quarantined``, ``cpu_pct`` (this process).  A compact summary is
published under the topic ``fault_tolerance``.  See docs/ADAPTIVE.md.

This module is the agent: sampling, events, actions, reporting, checkpoints.  The
per-series computation (``Series``, ``Trend``, ``KINDS``) is in
:mod:`engine.anomaly.health_signals`, the compact detector checkpoint in
:mod:`engine.anomaly.checkpoint`, and what is kept per observed agent (counters,
attached inbox, inbox readings) in :mod:`engine.agents.agent_tracking`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from engine.agents.agent_tracking import (
    AgentTrack,
    close_quietly,
    inbox_fill,
    interval_latency_p99_ms,
    rss_limit_bytes,
)
from engine.agents.base import BaseAgent
from engine.anomaly import make_detector
from engine.anomaly.checkpoint import pack_detector, unpack_detector
from engine.anomaly.health_signals import KINDS, MiB, Series, Trend
from engine.recovery import (
    QUARANTINE,
    RELEASE,
    RESTART,
    Action,
    AgentHealth,
    RecoveryPlanner,
    RecoveryPolicy,
)

STATE_VERSION = 1

_AGENT_UP = ("running", "throttled", "paused")


class FaultToleranceAgent(BaseAgent):
    """Watches every telemetry series, predicts failures and orchestrates recovery."""

    agent_type = "fault_tolerance"
    key_metric = "anomalies"

    def __init__(self, agent_id: str = "", **options: Any) -> None:
        super().__init__(agent_id, **options)
        o = self.options
        self.table_bits = int(o.get("table_bits", 8))
        self.threshold = float(o.get("anomaly_threshold", 0.5))
        self.holdoff_s = float(o.get("holdoff_s", 60.0))
        self.max_events_per_min = int(o.get("max_events_per_min", 20))
        self.halflife = float(o.get("trend_halflife_s", 60.0))
        self.horizon = float(o.get("prediction_horizon_s", 900.0))
        self.take_actions = bool(o.get("actions", True))
        self.state_budget = int(o.get("state_budget_kb", 96)) * 1024
        self.snapshot_interval = float(o.get("snapshot_interval_s", 30.0))
        self.grace_s = float(o.get("grace_s", 10.0))
        self.machine_warmup_s = float(o.get("machine_warmup_s", 30.0))
        self._policy_opts = {k: o[k] for k in (
            "hang_fraction", "restart_lead_s", "drain_lead_s", "crash_loop_restarts",
            "crash_loop_window_s", "max_restarts", "restart_window_s") if k in o}
        self.series: dict[str, Series] = {}
        self.trends: dict[str, Trend] = {}
        self.tracks: dict[str, AgentTrack] = {}
        self.policy = RecoveryPolicy()
        self.planner = RecoveryPlanner(self.policy)
        self.counts = {"anomalies": 0, "predictions": 0, "actions": 0, "points": 0}
        self.recent: deque[dict[str, Any]] = deque(maxlen=8)
        self._restored: dict[str, tuple[str, bytes]] = {}
        self._restored_trends: dict[str, dict[str, Any]] = {}
        self._planner_state: dict[str, Any] | None = None
        self._tokens = float(self.max_events_per_min)
        self._tokens_t: float | None = None
        self._last_snapshot = -math.inf
        self._snapshot_info = {"bytes": 0, "series": 0, "dropped": 0}
        self._cycles = 0
        self._next_slow = -math.inf
        self._mem_eta: float | None = None
        self.monitoring_interval = 1.0
        self._started = time.monotonic()
        self._cpu_pct = 0.0
        self._cycle_cpu_ms = 0.0
        self._proc_prev: tuple[float, float] | None = None
        self._orch_mailbox: Any = None
        self._orch_hist: tuple[int, ...] = ()
        self.psutil: Any = None
        self.thermal: Any = None
        self.thermal_reason = ""
        self._thermal_every = 1
        # set from the swarm configuration in on_start
        self.actions_enabled = self.take_actions
        self.action_timeout = 10.0
        self.thermal_critical = 85.0
        self.cycle_interval = 0.5
        self._publish_every = 2

    # --- lifecycle ----------------------------------------------------------------------

    def on_start(self) -> None:
        """Build the recovery policy, the collectors, and compile the detector kernel."""
        ctx = self.context
        cfg = ctx.config
        sup = cfg.supervisor
        self.policy = RecoveryPolicy(heartbeat_timeout_s=sup.heartbeat_timeout, **self._policy_opts)
        self.planner = RecoveryPlanner(self.policy)
        if self._planner_state is not None:
            try:
                self.planner.load_state(self._planner_state)
            except ValueError as exc:
                ctx.log.warning("planner state not restored: %s", exc)
        self.actions_enabled = self.take_actions and cfg.fault_tolerance
        self.action_timeout = sup.shutdown_timeout + sup.kill_timeout + 5.0
        self.thermal_critical = cfg.performance_thresholds.thermal_critical
        self.monitoring_interval = cfg.monitoring_interval
        self.state_budget = min(self.state_budget, cfg.channel_size // 2)
        self.cycle_interval = max(_configured_cycle_interval(cfg, ctx.agent_type), 1e-3)
        self._publish_every = max(1, round(1.0 / self.cycle_interval))
        self._thermal_every = max(1, round(2.0 / max(self.cycle_interval, self.monitoring_interval)))
        from engine.telemetry.psutil_collector import PsutilCollector

        self.psutil = PsutilCollector()
        try:
            from engine.telemetry.sysfs_thermal import ThermalCollector

            collector = ThermalCollector()
            if collector.available:
                self.thermal = collector
            else:
                self.thermal_reason = collector.reason
        except Exception as exc:  # a broken sysfs must not stop fault tolerance
            self.thermal_reason = f"unavailable: {type(exc).__name__}: {exc}"
        ctx.heartbeat()
        make_detector("sentinel", table_bits=self.table_bits).update(0.0, time.time())  # numba warm-up
        ctx.heartbeat()
        for name in ("series", "anomalies", "predictions", "actions", "quarantined", "cpu_pct"):
            self.set_gauge(name, 0.0)

    def on_stop(self) -> None:
        """Unmap the inboxes this agent reads."""
        for track in self.tracks.values():
            track.close()
        close_quietly(self._orch_mailbox)

    # --- the cycle ----------------------------------------------------------------------

    def execute_cycle(self) -> None:
        """Sample, score, predict, act, report (see the module docstring)."""
        cpu0 = time.process_time()
        now = time.monotonic()
        wall = time.time()
        self._cycles += 1
        slow = now >= self._next_slow  # machine and inboxes: every monitoring_interval
        if slow:
            self._next_slow = now + self.monitoring_interval
            self._mem_eta = self._sample_machine(now, wall)
        mem_eta = self._mem_eta
        healths = self._sample_agents(now, wall, slow)
        if self._restored and now - self._started > 60.0:
            self._restored.clear()  # states of series that did not come back
            self._restored_trends.clear()
        actions: list[Action] = []
        for h in healths:
            actions += self.planner.observe(h, now)
        growers = [(aid[:-4], tr.tp.slope or 0.0) for aid, tr in self.trends.items()
                   if aid.endswith("/rss") and tr.sustained]
        actions += self.planner.observe_machine_memory(mem_eta, growers, now)
        for action in actions:
            self._carry_out(action)
        self._account(cpu0, now)
        if self._cycles % self._publish_every == 0:
            self._report()

    # --- sampling -----------------------------------------------------------------------

    def _series(self, name: str, kind: str, target: str) -> Series:
        s = self.series.get(name)
        if s is None:
            det = None
            saved = self._restored.pop(name, None)
            if saved is not None and saved[0] == kind:
                try:
                    det = unpack_detector(saved[1])
                    if int(det.params["table_bits"]) != self.table_bits:
                        det = None
                except Exception as exc:  # a damaged checkpoint only costs learning time
                    self.context.log.warning("detector state of %s not restored: %s", name, exc)
                    det = None
            if det is None:
                det = make_detector("sentinel", table_bits=self.table_bits)
            s = self.series[name] = Series(name, kind, target, det)
        return s

    def _trend(self, name: str) -> Trend:
        tr = self.trends.get(name)
        if tr is None:
            saved = self._restored_trends.pop(name, None)
            if saved is not None:
                try:
                    tr = Trend.from_state(self.halflife, saved)
                except (KeyError, TypeError, ValueError):
                    tr = None
            tr = self.trends[name] = tr or Trend(self.halflife)
        return tr

    def _feed(self, name: str, kind: str, target: str, value: float | None, now: float, wall: float,
              quiet: bool = False) -> None:
        if value is None or not math.isfinite(value):
            return
        s = self._series(name, kind, target)
        score, dev = s.update(float(value), wall)
        self.counts["points"] += 1
        if quiet or score < self.threshold or dev < KINDS[kind].floor:
            return
        if now - s.last_event < self.holdoff_s or not self._take_token(now):
            return
        s.last_event = now
        self.counts["anomalies"] += 1
        unit = KINDS[kind].unit
        stat = getattr(s.det, "last_statistic", None) or "range"
        self.recent.append({"kind": "anomaly", "series": name, "value": round(value, 3),
                            "score": round(score, 3), "t": round(wall, 1)})
        self.emit_event(
            "anomaly_detected",
            f"{name} = {value:.4g}{unit} is anomalous (score {score:.2f}, recent mean {s.mean:.4g}{unit}, "
            f"{stat})", severity="warning", series=name, target=target, value=value,
            score=round(score, 4), statistic=stat, mean=s.mean, unit=unit)

    def _take_token(self, now: float) -> bool:
        rate = self.max_events_per_min / 60.0
        elapsed = max(0.0, now - self._tokens_t) if self._tokens_t is not None else 0.0
        self._tokens = min(float(self.max_events_per_min), self._tokens + elapsed * rate)
        self._tokens_t = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _predict(self, name: str, target: str, tr: Trend, value: float, limit: float, what: str,
                 unit: str, now: float, wall: float, *, need_sustained: bool = False,
                 scale: float = 1.0) -> float | None:
        """Update the prediction of ``tr`` reaching ``limit``; report it when new or much nearer."""
        eta = tr.time_to(limit, horizon=self.horizon)
        if eta is not None and need_sustained and not tr.sustained:
            eta = None
        if target == "machine" and now - self._started < self.machine_warmup_s:
            eta = None  # the swarm starting up moves every machine series
        tr.eta = eta
        if eta is None:
            tr.last_eta = None
            return None
        nearer = tr.last_eta is not None and eta < tr.last_eta / 2
        if now - tr.last_emit < self.holdoff_s and not nearer:
            return eta
        tr.last_emit, tr.last_eta = now, eta
        self.counts["predictions"] += 1
        rate = (tr.tp.slope or 0.0) * scale
        urgent = eta < self.policy.restart_lead_s
        self.recent.append({"kind": "prediction", "series": name, "eta_s": round(eta, 1),
                            "t": round(wall, 1)})
        self.emit_event(
            "failure_predicted",
            f"{what} in {eta:.0f} s: {name} at {value * scale:.4g}{unit}, limit {limit * scale:.4g}{unit}, "
            f"rising {rate * 60:.3g}{unit}/min", severity="error" if urgent else "warning",
            series=name, target=target, value=value * scale, limit=limit * scale, eta_s=round(eta, 2),
            rate_per_s=rate, unit=unit)
        return eta

    def _sample_machine(self, now: float, wall: float) -> float | None:
        """Machine series; returns the predicted seconds until machine memory runs out."""
        reading = self.psutil.sample()
        cpu, mem, io = reading.cpu, reading.memory, reading.io
        mem_eta = None
        if cpu.available:
            self._feed("machine/cpu", "cpu", "machine", cpu.total_percent, now, wall)
            for i, pct in enumerate(cpu.per_core_percent):
                self._feed(f"machine/cpu{i}", "cpu", "machine", pct, now, wall)
            self._feed("machine/load1", "load", "machine", cpu.load_1m, now, wall)
        if mem.available and mem.mem_percent is not None:
            self._feed("machine/memory", "mem", "machine", mem.mem_percent, now, wall)
            tr = self._trend("machine/memory")
            tr.update(mem.mem_percent, now)
            mem_eta = self._predict("machine/memory", "machine", tr, mem.mem_percent, 100.0,
                                    "machine memory runs out", "%", now, wall, need_sustained=True)
            if mem.swap_total_bytes:
                self._feed("machine/swap", "mem", "machine", mem.swap_percent, now, wall)
        if io.available:
            self._feed("machine/disk_read", "bps", "machine", io.disk_read_bps, now, wall)
            self._feed("machine/disk_write", "bps", "machine", io.disk_write_bps, now, wall)
            self._feed("machine/net_sent", "bps", "machine", io.net_sent_bps, now, wall)
            self._feed("machine/net_recv", "bps", "machine", io.net_recv_bps, now, wall)
        if self.thermal is not None and (self._cycles - 1) % self._thermal_every == 0:
            temps = [s.temperature_c for s in self.thermal.sample().sensors]
            if temps:
                self._temperature(max(temps), "sensors", now, wall)
        return mem_eta

    def _temperature(self, celsius: float, source: str, now: float, wall: float) -> None:
        self._feed("machine/temperature", "temp", "machine", celsius, now, wall)
        tr = self._trend("machine/temperature")
        tr.update(celsius, now)
        self._predict("machine/temperature", "machine", tr, celsius, self.thermal_critical,
                      f"temperature ({source}) reaches thermal_critical", "°C", now, wall)

    def _sample_agents(self, now: float, wall: float, slow: bool = True) -> list[AgentHealth]:
        """Every live agent's series and trends; their health for the recovery planner."""
        ctx = self.context
        table = ctx.status_table
        now_ns = time.monotonic_ns()
        healths: list[AgentHealth] = []
        live: set[str] = set()
        for entry in ctx.communicator.directory.live_entries():
            row = table.read(entry.slot)
            if row.torn or row.agent_id != entry.agent_id:
                continue
            live.add(entry.agent_id)
            health = self._sample_agent(entry, row, now, wall, now_ns, slow)
            if health is not None:
                healths.append(health)
        if slow:
            self._sample_orchestrator_inbox(now, wall)
        self._prune(live)
        return healths

    def _sample_agent(self, entry: Any, row: Any, now: float, wall: float, now_ns: int,
                      slow: bool) -> AgentHealth | None:
        """One agent's series and trends from its status ``row`` (and inbox when ``slow``);
        its health, or None for this agent itself."""
        aid = entry.agent_id
        track = self.tracks.get(aid)
        if track is None:
            track = self.tracks[aid] = AgentTrack()
        state = row.state.label
        new_life = track.is_new_life(row)
        if new_life:
            if track.incarnation >= 0:
                track.restarted_at = now
            for suffix in ("/rss", "/queue"):
                if aid + suffix in self.trends:
                    self.trends[aid + suffix].reset()
            track.cycle_max = 0.0
        quiet = now - track.restarted_at < self.grace_s
        up = state in _AGENT_UP
        stats = None
        if slow:
            stats = track.inbox_statistics(self.context.mailbox_name, entry.slot, entry.generation)
        if stats is not None:
            track.fill = inbox_fill(stats)
        fill = track.fill
        track.cycle_max = max(row.cycle_ms / 1000.0, track.cycle_max * 0.98)
        if up:
            self._feed_agent_series(aid, track, row, stats, new_life=new_life, quiet=quiet, now=now,
                                    wall=wall, now_ns=now_ns)
        track.remember(row, now)
        rss_eta = queue_eta = None
        rss_limit = rss_limit_bytes(self.context.config, entry.agent_type)
        sustained = False
        if up:
            rss_eta, queue_eta, sustained = self._predict_agent(aid, row, stats, fill, rss_limit, now, wall)
        if entry.agent_type == "thermal" and self.thermal is None and up and slow:
            temps = [v for k, v in row.gauges if k.startswith("temp")]
            if temps:
                self._temperature(max(temps), f"model of {aid}", now, wall)
        if aid == self.agent_id:
            return None
        return AgentHealth(
            agent_id=aid, agent_type=entry.agent_type, incarnation=row.incarnation, state=state,
            heartbeat_age_s=row.heartbeat_age_s(now_ns), cycle_s=track.cycle_max,
            rss_bytes=row.rss_bytes, rss_limit_bytes=rss_limit, rss_eta_s=rss_eta,
            rss_sustained=sustained, queue_fill=fill, queue_eta_s=queue_eta)

    def _feed_agent_series(self, aid: str, track: AgentTrack, row: Any, stats: Any, *, new_life: bool,
                           quiet: bool, now: float, wall: float, now_ns: int) -> None:
        """Score a running agent's values: RSS, heartbeat age, cycle time, inbox fill and
        latency, and the rates since the previous row of the same life."""
        def feed(name: str, kind: str, value: float | None) -> None:
            self._feed(f"{aid}/{name}", kind, aid, value, now, wall, quiet)

        feed("rss", "mib", row.rss_bytes / MiB)
        feed("heartbeat_age", "age", row.heartbeat_age_s(now_ns))
        feed("cycle_ms", "cycle", row.cycle_ms)
        if stats is not None:
            feed("queue", "fill", track.fill)
        dt = now - track.t
        if not new_life and dt > 0:
            feed("cpu", "cpu", (row.cpu_time_s - track.cpu) / dt * 100.0)
            feed("msgs_in", "rate", (row.msgs_in - track.msgs_in) / dt)
            feed("msgs_out", "rate", (row.msgs_out - track.msgs_out) / dt)
            feed("errors", "errors", (row.errors - track.errors) / dt)
            feed("tasks", "rate", (row.tasks_done - track.tasks) / dt)
        if stats is not None:
            hist = stats.total.latency_histogram
            feed("latency_p99", "latency", interval_latency_p99_ms(hist, track.hist))
            track.hist = tuple(hist)

    def _predict_agent(self, aid: str, row: Any, stats: Any, fill: float, rss_limit: int, now: float,
                       wall: float) -> tuple[float | None, float | None, bool]:
        """Extend a running agent's RSS and inbox trends; returns (seconds until its RSS
        limit, seconds until its inbox is full, whether its RSS rises steadily)."""
        rss_eta = None
        tr = self._trend(f"{aid}/rss")
        tr.update(float(row.rss_bytes), now)
        sustained = tr.sustained
        if rss_limit:
            rss_eta = self._predict(f"{aid}/rss", aid, tr, float(row.rss_bytes), float(rss_limit),
                                    f"{aid} reaches its RSS limit", " MiB", now, wall,
                                    need_sustained=True, scale=1.0 / MiB)
        qt = self._trend(f"{aid}/queue")
        if stats is not None:
            qt.update(fill, now)
            self._predict(f"{aid}/queue", aid, qt, fill, 1.0, f"{aid}'s inbox fills up",
                          "", now, wall, need_sustained=True)
        return rss_eta, qt.eta, sustained

    def _sample_orchestrator_inbox(self, now: float, wall: float) -> None:
        """The orchestrator's inbox: fill (and its trend toward full) and latency p99."""
        from engine.channels import Mailbox

        if self._orch_mailbox is None:
            try:
                self._orch_mailbox = Mailbox.attach(self.context.mailbox_name(0, 0))
            except Exception:
                return
        try:
            stats = self._orch_mailbox.statistics()
        except Exception:
            return
        fill = inbox_fill(stats)
        self._feed("orchestrator/queue", "fill", "orchestrator", fill, now, wall)
        tr = self._trend("orchestrator/queue")
        tr.update(fill, now)
        self._predict("orchestrator/queue", "orchestrator", tr, fill, 1.0,
                      "the orchestrator's inbox fills up", "", now, wall, need_sustained=True)
        hist = stats.total.latency_histogram
        p99 = interval_latency_p99_ms(hist, self._orch_hist)
        self._feed("orchestrator/latency_p99", "latency", "orchestrator", p99, now, wall)
        self._orch_hist = tuple(hist)

    def _prune(self, live: set[str]) -> None:
        """Forget agents that are gone: their series, trends, inbox mapping, planner record."""
        gone = [aid for aid in self.tracks if aid not in live]
        for aid in gone:
            self.tracks.pop(aid).close()
            prefix = aid + "/"
            for name in [n for n in self.series if n.startswith(prefix)]:
                del self.series[name]
            for name in [n for n in self.trends if n.startswith(prefix)]:
                del self.trends[name]
        if gone:
            self.planner.retain(live)

    # --- acting -------------------------------------------------------------------------

    def _carry_out(self, action: Action) -> None:
        if action.kind == RESTART:
            value: Any = None
        elif action.kind == QUARANTINE:
            value = {"reason": action.reason, "pause": action.pause}
        else:
            value = action.reason
        ok, error = False, ""
        if self.actions_enabled:
            try:
                timeout = self.action_timeout if action.kind == RESTART else 5.0
                result = self.request_action(action.kind, action.agent_id, value, timeout=timeout)
                ok, error = bool(result.get("ok")), str(result.get("error", ""))
            except Exception as exc:  # RequestTimeout, a full channel...
                error = f"{type(exc).__name__}: {exc}"
        else:
            error = "recovery actions are off (actions = false or fault_tolerance = false)"
        self.planner.completed(action, ok, time.monotonic())
        self._last_snapshot = -math.inf  # checkpoint the new planner state at the next chance
        self.counts["actions"] += 1 if ok else 0
        verb = {RESTART: "restart", QUARANTINE: "quarantine (paused)" if action.pause else "quarantine",
                RELEASE: "release"}[action.kind]
        outcome = "" if ok else f" -- not done: {error}"
        self.recent.append({"kind": "action", "action": action.kind, "target": action.agent_id,
                            "cause": action.cause, "ok": ok, "t": round(time.time(), 1)})
        self.emit_event(
            "recovery_action", f"{verb} {action.agent_id}: {action.reason}{outcome}",
            severity="info" if action.kind == RELEASE and ok else
            ("warning" if ok or not self.actions_enabled else "error"),
            action=action.kind, target=action.agent_id, cause=action.cause, reason=action.reason,
            pause=action.pause, ok=ok, error=error)

    # --- reporting ----------------------------------------------------------------------

    def _account(self, cpu0: float, now: float) -> None:
        cpu1 = time.process_time()
        self._cycle_cpu_ms += 0.1 * ((cpu1 - cpu0) * 1000.0 - self._cycle_cpu_ms)
        if self._proc_prev is not None and now > self._proc_prev[0]:
            pct = (cpu1 - self._proc_prev[1]) / (now - self._proc_prev[0]) * 100.0
            self._cpu_pct += 0.1 * (pct - self._cpu_pct) if self._cycles > 3 else pct - self._cpu_pct
        self._proc_prev = (now, cpu1)

    def _report(self) -> None:
        quarantined = self.planner.quarantined()
        self.set_gauge("series", len(self.series))
        self.set_gauge("anomalies", self.counts["anomalies"])
        self.set_gauge("predictions", self.counts["predictions"])
        self.set_gauge("actions", self.counts["actions"])
        self.set_gauge("quarantined", len(quarantined))
        self.set_gauge("cpu_pct", round(self._cpu_pct, 2))
        active = sorted(((tr.eta, name) for name, tr in self.trends.items() if tr.eta is not None))[:5]
        self.publish("fault_tolerance", {
            "series": len(self.series), "points": self.counts["points"],
            "anomalies": self.counts["anomalies"], "predictions": self.counts["predictions"],
            "actions": self.counts["actions"], "cpu_percent": round(self._cpu_pct, 2),
            "cycle_cpu_ms": round(self._cycle_cpu_ms, 3),
            "predicted": [{"series": name, "eta_s": round(eta, 1)} for eta, name in active],
            "quarantined": quarantined, "recent": list(self.recent),
            "actions_enabled": self.actions_enabled,
            "thermal": "sensors" if self.thermal is not None else self.thermal_reason,
            "state": dict(self._snapshot_info),
        })

    # --- persistence ------------------------------------------------------------------------

    def snapshot(self) -> Any:
        """Detector states (compressed, within ``state_budget_kb``), trends, planner, counters.

        Returns ``None`` (keep the previous checkpoint) until ``snapshot_interval_s``
        has passed since the last one.
        """
        now = time.monotonic()
        if now - self._last_snapshot < self.snapshot_interval or not self.series:
            return None
        self._last_snapshot = now
        budget = self.state_budget
        detectors: dict[str, list[Any]] = {}
        used = dropped = 0
        for name, s in self.series.items():
            blob = pack_detector(s.det)
            if used + len(blob) + len(name) + 16 > budget:
                dropped += 1
                continue
            used += len(blob) + len(name) + 16
            detectors[name] = [s.kind, blob]
        self._snapshot_info = {"bytes": used, "series": len(detectors), "dropped": dropped}
        return {
            "version": STATE_VERSION, "table_bits": self.table_bits, "detectors": detectors,
            "trends": {name: tr.state() for name, tr in self.trends.items()},
            "planner": self.planner.state(), "counts": dict(self.counts),
        }

    def restore(self, state: Any) -> None:
        """Take back what :meth:`snapshot` saved; series are rebuilt as they reappear."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            return
        if state.get("table_bits") == self.table_bits:
            self._restored = {str(n): (str(v[0]), bytes(v[1])) for n, v in dict(state["detectors"]).items()}
        self._restored_trends = {str(n): dict(v) for n, v in dict(state.get("trends", {})).items()}
        self._planner_state = state.get("planner")
        for key, value in dict(state.get("counts", {})).items():
            if key in self.counts:
                self.counts[key] = int(value)


def _configured_cycle_interval(cfg: Any, agent_type: str) -> float:
    """The configured cycle interval of ``agent_type`` (for reporting cadence only)."""
    section = cfg.agent_section(agent_type)
    return 0.5 if section is None else float(section.cycle_interval)

