"""Load and chaos test of a real swarm (issue 8).

Usage::

    python tests/load_test.py --agents 32 --duration 300 --kill-rate 0.2 --hang-rate 0.02 \\
        --flood --seed 1 --json load.json

What runs: an orchestrator (in this process) with ``--agents`` agents -- compute
agents, plus one flooding agent with ``--flood`` -- and ``--concurrency`` submitters
that keep real compute tasks in flight: ``submit_task("execute_workload",
{"kernel": "triad", "n": N, "repeats": 1, "task_id": id})``, each a request over the
shared-memory bus answered by a compute agent after running the numba kernel.

Chaos: SIGKILL of a random compute agent at ``--kill-rate`` per second (Poisson),
``inject_hang`` at ``--hang-rate`` per second (the agent stops heartbeating; the
supervisor must notice, kill and restart it), and with ``--flood`` an agent that
sends as fast as it can to the orchestrator and two compute agents, from
``--flood-after`` (default 20 %) of the run on, so that the first part is the
no-flood baseline for the fairness figures.

What is verified, from the submitter's point of view:

* **exactly once** -- a task is retried (same task id) after a failed attempt
  (timeout, agent gone) until it completes: at-least-once.  Every reply carrying a
  task id is seen (the orchestrator's reply handler is observed, including late
  replies to attempts already given up on); the first reply completes the task,
  later ones are dropped by a duplicate filter keyed by task id and counted.
  ``lost`` = tasks never completed (after a grace period at the end).
* **recovery** -- from each kill (or hang injection) to the agent answering a ping
  again: median, p99, max.
* **bus latency** under load -- p50/p99/p99.9 from the send timestamps in every
  frame, for all channels, the flooder's channels, and all the others.
* **fairness** -- task latency before and during the flood, for the flooded
  compute agents and for the others, and the flooder's full-lane count.
* **the orchestrator** -- CPU (% of one core) and RSS sampled every second; open file
  descriptors and /dev/shm segments at start, during and at the end.

Exit status 0 only if: nothing was lost; the orchestrator did not die (its control
loops and inbox thread still ran at the end and no exception escaped); no agent was
given up; every kill/hang recovered; no /dev/shm segment of this process and no file
descriptor was left after shutdown (the baseline is taken after one warm-up start and
stop, so the forkserver's pipe is in it); and memory did not grow without bound.
Memory rule: over the second half of the run, the least-squares slope of the
orchestrator's RSS must stay below ``--rss-slope-limit`` MiB/min (default 2) **or**
the RSS must have grown by less than 5 % over that half -- a leak fails both.
Otherwise the exit status is 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil

FLOODER = "flooder-1"


# --- small statistics helpers ------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of ``values``, or None if empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def dist(values: list[float], scale: float = 1.0, nd: int = 3) -> dict[str, Any]:
    """count/median/p99/max of ``values`` times ``scale``."""
    def r(v: float | None) -> float | None:
        return None if v is None else round(v * scale, nd)
    return {"count": len(values), "median": r(pct(values, 0.5)), "p99": r(pct(values, 0.99)),
            "max": r(max(values) if values else None)}


class LatencyHist:
    """Fixed-memory latency histogram (the bus's log buckets, ~6 % wide) in seconds.

    The load test runs in the orchestrator's process, so its own bookkeeping must not
    grow with the number of tasks, or it would show up as orchestrator memory growth.
    """

    def __init__(self) -> None:
        self.counts = [0] * 256
        self.n = 0
        self.max_s = 0.0

    def add(self, seconds: float) -> None:
        from engine.channels import latency_bucket

        self.counts[latency_bucket(int(seconds * 1e9))] += 1
        self.n += 1
        self.max_s = max(self.max_s, seconds)

    def dist(self, scale: float = 1000.0, nd: int = 2) -> dict[str, Any]:
        from engine.channels import percentile_from_histogram

        def q(v: float) -> float | None:
            x = percentile_from_histogram(self.counts, v)
            return None if x is None else round(x / 1e9 * scale, nd)
        return {"count": self.n, "median": q(0.5), "p99": q(0.99),
                "max": round(self.max_s * scale, nd) if self.n else None}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than 3)."""
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def count_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def semaphore_files() -> set[str]:
    """POSIX named semaphores in /dev/shm (``sem.*``), whoever made them."""
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("sem.")}
    except OSError:
        return set()


def my_segments() -> list[str]:
    """Swarm segments in /dev/shm owned by this process."""
    from engine._shm.segments import list_segments

    return list_segments(f"swarm-{os.getpid()}-")


# --- configuration --------------------------------------------------------------------------------


def build_config(args: argparse.Namespace) -> Any:
    """The swarm configuration of the run (no agent started by the config itself)."""
    from engine.config import config_from_mapping

    builtin = ("compute", "resource", "thermal", "optimization", "fault_tolerance", "learning")
    data: dict[str, Any] = {
        "name": "load-test",
        "max_agents": args.agents,
        "channel_size": 65536,
        "monitoring_interval": 1.0,
        "optimization_interval": 3600.0,
        "auto_scaling": False,
        "supervisor": {
            "heartbeat_interval": 0.2,
            "heartbeat_timeout": args.heartbeat_timeout,
            "startup_timeout": 60.0,
            "shutdown_timeout": 3.0,
            "kill_timeout": 2.0,
            "checkpoint_interval": 5.0,
            "backoff_initial": 0.01,
            "backoff_max": 0.5,
            "max_restarts": 1000,
            "max_seconds": 60.0,
        },
        "bus": {"send_timeout": 0.2, "request_timeout": args.task_timeout},
        "agents": {name: {"count": 0} for name in builtin},
        "custom_agents": {"flooder": {"import_path": "tests.swarm_test_agents:FloodAgent",
                                      "cycle_interval": 0.001}},
        "security": {"allowed_agent_modules": ["tests"], "authenticate": args.authenticate,
                     "encrypt": args.encrypt},
    }
    data["agents"]["compute"] = {"count": 0, "background": False, "kernel": "triad", "size": args.n,
                                 "cycle_interval": 0.05}
    return config_from_mapping(data, "load-test")


# --- the task tracker (submitter's view) ---------------------------------------------------------


class Tracker:
    """Submitted tasks, their completions and the duplicate filter keyed by task id."""

    def __init__(self) -> None:
        self.next_id = 1
        self.submitted = 0
        self.state = bytearray(1)  # per task id: 0 unknown, 1 pending, 2 completed (1 byte a task)
        self.n_completed = 0
        self.duplicates_dropped = 0
        self.bad_replies = 0
        self.attempts = 0
        self.failed_attempts: dict[str, int] = {}
        self.latency = LatencyHist()  # submit -> first reply, retries included
        self.phases: dict[str, LatencyHist] = {}

    def new_task(self) -> int:
        tid = self.next_id
        self.next_id += 1
        self.submitted += 1
        self.state.append(1)
        return tid

    def is_done(self, tid: int) -> bool:
        return self.state[tid] == 2

    def record(self, phase: str, seconds: float) -> None:
        self.latency.add(seconds)
        self.phases.setdefault(phase, LatencyHist()).add(seconds)

    def on_reply(self, payload: Any) -> None:
        """Every reply frame that reaches the orchestrator (called on its loop)."""
        if not isinstance(payload, dict) or "task_id" not in payload:
            return
        tid = payload.get("task_id")
        if not isinstance(tid, int) or not 0 < tid < len(self.state):
            return
        if not payload.get("ok"):
            self.bad_replies += 1
            return
        if self.state[tid] == 2:
            self.duplicates_dropped += 1  # at-least-once: the filter drops the repeat
            return
        self.state[tid] = 2
        self.n_completed += 1


def observe_replies(swarm: Any, tracker: Tracker) -> None:
    """Instrumentation: see every REPLY frame the orchestrator handles, late ones included.

    Installed before ``start()`` so the inbox pump calls the wrapper.  Read-only: the
    frame is handed on unchanged.
    """
    from engine._runtime.protocol import Kind
    from engine.communicator import decode_message

    router = swarm._reports
    original = router.handle

    def handle(frame: Any) -> None:
        if frame.msg_type == Kind.REPLY:
            with contextlib.suppress(ValueError):  # undecodable: the router's business
                tracker.on_reply(decode_message(frame).payload)
        original(frame)

    router.handle = handle


# --- the run ------------------------------------------------------------------------------------------


class LoadTest:
    """One load-test run (see the module docstring)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.tracker = Tracker()
        self.kill_recoveries: list[float] = []
        self.hang_recoveries: list[float] = []
        self.hang_detections: list[float] = []
        self.unrecovered: list[str] = []
        self.kills = 0
        self.hangs = 0
        self.recovering: set[str] = set()
        self.samples: list[dict[str, float]] = []
        self.events: dict[str, int] = {}
        self.gave_up: list[str] = []
        self.failures: list[str] = []
        self.compute_ids: list[str] = []
        self.flooded: list[str] = []
        self.t_start = 0.0
        self.t_flood = float("inf")
        self.stop_at = 0.0
        self.hung_at: dict[str, float] = {}

    # -- helpers -----------------------------------------------------------------------------------

    def log(self, text: str) -> None:
        if not self.args.quiet:
            print(f"[{time.monotonic() - self.t_start:7.1f} s] {text}", file=sys.stderr, flush=True)

    def on_event(self, event: Any) -> None:
        self.events[event.name] = self.events.get(event.name, 0) + 1
        if event.name == "agent_gave_up":
            self.gave_up.append(event.agent_id)
        elif event.name == "agent_hung" and event.agent_id in self.hung_at:
            self.hang_detections.append(time.monotonic() - self.hung_at.pop(event.agent_id))

    # -- the workload -------------------------------------------------------------------------------

    async def submitter(self, swarm: Any) -> None:
        from engine.errors import SwarmError

        tr = self.tracker
        args = self.args
        while time.monotonic() < self.stop_at:
            tid = tr.new_task()
            payload = {"kernel": "triad", "n": args.n, "repeats": 1, "params": {"threads": 1},
                       "task_id": tid}
            t0 = time.monotonic()
            flood = "during_flood" if t0 >= self.t_flood else "before_flood"
            deadline = self.stop_at + args.grace
            while not tr.is_done(tid) and time.monotonic() < deadline:
                tr.attempts += 1
                try:
                    res = await swarm.submit_task("execute_workload", payload, timeout=args.task_timeout)
                    if tr.is_done(tid):
                        where = "flooded" if res.agent_id in self.flooded else "other"
                        tr.record(f"{flood}_{where}" if flood == "during_flood" else flood,
                                  time.monotonic() - t0)
                        break
                    tr.failed_attempts["bad_reply"] = tr.failed_attempts.get("bad_reply", 0) + 1
                except (SwarmError, asyncio.TimeoutError) as exc:
                    name = type(exc).__name__
                    tr.failed_attempts[name] = tr.failed_attempts.get(name, 0) + 1
                    if tr.is_done(tid):  # a late reply to an earlier attempt completed it
                        tr.record(flood if flood == "before_flood" else f"{flood}_late", time.monotonic() - t0)
                        break
                    await asyncio.sleep(0.05)

    # -- chaos ---------------------------------------------------------------------------------------------

    def _victim(self, swarm: Any) -> str | None:
        ready = []
        for aid in self.compute_ids:
            if aid in self.recovering:
                continue
            d = swarm.agent_details(aid)
            if d["state"] in ("running", "throttled") and d["pid"]:
                ready.append(aid)
        return self.rng.choice(sorted(ready)) if ready else None

    async def _recovery(self, swarm: Any, aid: str, old_incarnation: int, t0: float, out: list[float],
                        what: str) -> None:
        try:
            deadline = t0 + self.args.recovery_timeout
            while swarm.agent_details(aid)["incarnation"] <= old_incarnation:
                if time.monotonic() > deadline:
                    raise TimeoutError("no restart")
                await asyncio.sleep(0.005)
            await swarm.wait_ready(aid, timeout=max(0.1, deadline - time.monotonic()))
            await swarm.ping(aid, timeout=max(0.1, deadline - time.monotonic()))
            out.append(time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - any failure to come back is a finding
            self.unrecovered.append(f"{what} of {aid} at {t0 - self.t_start:.1f} s: {type(exc).__name__}: {exc}")
        finally:
            self.recovering.discard(aid)

    async def killer(self, swarm: Any, rate: float, hang: bool) -> None:
        tasks: list[asyncio.Task[None]] = []
        rng = random.Random(self.rng.random())  # its own stream: kills and hangs do not interact
        due = time.monotonic() + rng.expovariate(rate)
        while True:
            await asyncio.sleep(max(0.0, min(due, self.stop_at) - time.monotonic()))
            if time.monotonic() >= self.stop_at:
                break
            due += rng.expovariate(rate)
            aid = self._victim(swarm)
            if aid is None:
                continue
            d = swarm.agent_details(aid)
            self.recovering.add(aid)
            t0 = time.monotonic()
            if hang:
                self.hangs += 1
                self.hung_at[aid] = t0
                await swarm.inject_hang(aid, actor="load-test")
                out = self.hang_recoveries
            else:
                self.kills += 1
                try:
                    os.kill(d["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
                out = self.kill_recoveries
            tasks.append(asyncio.ensure_future(
                self._recovery(swarm, aid, d["incarnation"], t0, out, "hang" if hang else "kill")))
        if tasks:
            await asyncio.gather(*tasks)

    # -- sampling -------------------------------------------------------------------------------------------

    async def sampler(self, swarm: Any) -> None:
        proc = psutil.Process()
        last_cpu = sum(proc.cpu_times()[:2])
        last_t = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            cpu = sum(proc.cpu_times()[:2])
            self.samples.append({
                "t": round(now - self.t_start, 2),
                "cpu_percent": round(100.0 * (cpu - last_cpu) / max(now - last_t, 1e-6), 1),
                "rss_mb": round(proc.memory_info().rss / 2**20, 2),
                "fds": count_fds(),
                "threads": proc.num_threads(),
                "completed": self.tracker.n_completed,
            })
            last_cpu, last_t = cpu, now
            if not self.args.quiet and len(self.samples) % 10 == 0:
                s = self.samples[-1]
                self.log(f"tasks {s['completed']}/{self.tracker.submitted}, kills {self.kills}, hangs "
                         f"{self.hangs}, orchestrator cpu {s['cpu_percent']} % rss {s['rss_mb']} MiB fds {s['fds']}")

    # -- bus statistics -------------------------------------------------------------------------------------

    def bus_figures(self, swarm: Any) -> dict[str, Any]:
        from engine.channels import ChannelStatistics
        from engine.communicator import summarize

        names = {0: "orchestrator", **{slot: c.agent_id for slot, c in swarm._slots.items()}}
        flood_slot = next((s for s, n in names.items() if n == FLOODER), None)
        groups: dict[str, list[Any]] = {"all": [], "flooder": [], "others": [], "others_into_flooded": []}
        flooded_slots = {s for s, n in names.items() if n in self.flooded or n == "orchestrator"}
        for slot, mailbox in list(swarm._mailboxes.items()):
            for (prod, _lane), st in mailbox.statistics().channels.items():
                groups["all"].append(st)
                if prod == flood_slot:
                    groups["flooder"].append(st)
                else:
                    groups["others"].append(st)
                    if flood_slot is not None and slot in flooded_slots:
                        groups["others_into_flooded"].append(st)
        out = {k: summarize(ChannelStatistics.combine(v)) for k, v in groups.items() if v}
        for v in out.values():
            v.pop("queued_bytes", None)
        return out

    # -- main -----------------------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        from engine import Orchestrator

        args = self.args
        cfg = build_config(args)
        # Baseline after a warm-up start/stop: the forkserver (and its pipe) then exists.
        async with Orchestrator(cfg):
            pass
        fds_start = count_fds()
        shm_start = my_segments()
        sems_start = semaphore_files()
        self.load_at_start = list(os.getloadavg())
        self.t_start = time.monotonic()
        died: list[str] = []
        swarm = Orchestrator(cfg)
        observe_replies(swarm, self.tracker)
        summary: dict[str, Any] = {}
        try:
            await swarm.start()
            swarm.add_event_handler("*", self.on_event)
            n_compute = args.agents - (1 if args.flood else 0)
            self.compute_ids = [await swarm.create_agent("compute", id=f"compute-{i + 1}", actor="load-test")
                                for i in range(n_compute)]
            for aid in self.compute_ids:
                await swarm.wait_ready(aid, timeout=120)
            if args.flood:
                self.flooded = self.compute_ids[:2]
                flood_after = args.flood_after * args.duration
                await swarm.create_agent("flooder", id=FLOODER, actor="load-test",
                                         targets=["orchestrator", *self.flooded], start_after_s=flood_after)
                await swarm.wait_ready(FLOODER, timeout=60)
            ready_s = time.monotonic() - self.t_start
            self.log(f"{args.agents} agents ready in {ready_s:.1f} s; running for {args.duration:g} s")
            t_run = time.monotonic()
            self.stop_at = t_run + args.duration
            if args.flood:
                self.t_flood = t_run + args.flood_after * args.duration
            rss_run_start = psutil.Process().memory_info().rss / 2**20
            self.samples = []
            self.t_start = t_run
            sampler = asyncio.ensure_future(self.sampler(swarm))
            jobs = [asyncio.ensure_future(self.submitter(swarm)) for _ in range(args.concurrency)]
            if args.kill_rate > 0:
                jobs.append(asyncio.ensure_future(self.killer(swarm, args.kill_rate, hang=False)))
            if args.hang_rate > 0:
                jobs.append(asyncio.ensure_future(self.killer(swarm, args.hang_rate, hang=True)))
            await asyncio.gather(*jobs)
            t_end = time.monotonic()
            sampler.cancel()
            try:
                await sampler
            except asyncio.CancelledError:
                pass
            # orchestrator health: its loops and inbox thread must still be running
            loops = getattr(swarm, "_loops", None)
            if loops is not None and any(t.done() for t in loops.tasks):
                died.append("an orchestrator control loop ended: "
                            + "; ".join(repr(t.exception()) for t in loops.tasks if t.done() and not t.cancelled()))
            pump = getattr(swarm, "_pump", None)
            thread = getattr(pump, "_thread", None)
            if thread is not None and not thread.is_alive():
                died.append("the orchestrator's inbox thread died")
            status = swarm.get_system_status()
            flood_status = None
            if args.flood:
                try:
                    flood_status = (await swarm.communicator.request(FLOODER, "flood_status", timeout=10)).payload
                except Exception as exc:  # noqa: BLE001
                    flood_status = {"error": f"{type(exc).__name__}: {exc}"}
            bus = self.bus_figures(swarm)
            summary = self.summarize(args, t_run, t_end, bus, flood_status, status, rss_run_start, ready_s)
        except BaseException as exc:
            died.append(f"exception in the orchestrator's process: {type(exc).__name__}: {exc}")
            raise
        finally:
            try:
                await swarm.shutdown()
            except Exception as exc:  # noqa: BLE001
                died.append(f"shutdown failed: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2)
            fds_end = count_fds()
            shm_end = my_segments()
            leaked_shm = sorted(set(shm_end) - set(shm_start))
            # numba's threading layer makes one multiprocessing RLock (a named POSIX semaphore)
            # per agent process; a SIGKILLed agent cannot unlink it, so it stays in /dev/shm
            # until this process exits and multiprocessing's resource tracker removes it.
            # Reported, not judged: not a swarm segment, and gone after exit.
            sems_new = len(semaphore_files() - sems_start)
            summary["resources"] = {
                "fds_start": fds_start, "fds_end": fds_end,
                "fds_max_during": max((s["fds"] for s in self.samples), default=None),
                "shm_segments_start": len(shm_start), "shm_segments_end": len(shm_end),
                "shm_leaked": leaked_shm,
                "semaphores_left_until_exit": sems_new,
            }
            summary["orchestrator_died"] = died
        self.judge(summary, fds_start, fds_end, leaked_shm, died)
        return summary

    def summarize(self, args: argparse.Namespace, t_run: float, t_end: float, bus: dict[str, Any],
                  flood_status: Any, status: Any, rss_run_start: float, ready_s: float) -> dict[str, Any]:
        tr = self.tracker
        lost = tr.submitted - tr.n_completed
        empty = LatencyHist()
        half = (t_end - t_run) / 2
        second = [(s["t"] / 60.0, s["rss_mb"]) for s in self.samples if s["t"] >= half]
        rss_slope = slope(second)
        rss_mid = second[0][1] if second else None
        rss_last = second[-1][1] if second else None
        cpu = [s["cpu_percent"] for s in self.samples]
        thin = max(1, len(self.samples) // 60)
        return {
            "config": {
                "agents": args.agents, "compute_agents": len(self.compute_ids), "flood": args.flood,
                "duration_s": args.duration, "kill_rate": args.kill_rate, "hang_rate": args.hang_rate,
                "seed": args.seed, "concurrency": args.concurrency, "kernel": "triad", "n": args.n,
                "task_timeout_s": args.task_timeout, "authenticate": args.authenticate,
                "encrypt": args.encrypt, "cpus": os.cpu_count(), "load_avg_at_start": getattr(self, "load_at_start", None),
                "ready_s": round(ready_s, 2),
            },
            "tasks": {
                "submitted": tr.submitted, "completed": tr.n_completed, "lost": lost,
                "duplicates_dropped": tr.duplicates_dropped, "attempts": tr.attempts,
                "retried": tr.attempts - tr.submitted, "failed_attempts": tr.failed_attempts,
                "per_s": round(tr.n_completed / max(t_end - t_run, 1e-9), 1),
                "latency_ms": tr.latency.dist(),
            },
            "kills": {"count": self.kills, "recovery_s": dist(self.kill_recoveries)},
            "hangs": {"count": self.hangs, "detection_s": dist(self.hang_detections),
                      "recovery_s": dist(self.hang_recoveries)},
            "unrecovered": self.unrecovered,
            "agents_given_up": self.gave_up,
            "events": dict(sorted(self.events.items())),
            "bus_latency_us": bus,
            "fairness": {
                "flooder": flood_status,
                "flooded_agents": self.flooded,
                "task_latency_ms_before_flood": tr.phases.get("before_flood", empty).dist(),
                "task_latency_ms_during_flood_flooded_agents":
                    tr.phases.get("during_flood_flooded", empty).dist(),
                "task_latency_ms_during_flood_other_agents": tr.phases.get("during_flood_other", empty).dist(),
            },
            "orchestrator": {
                "cpu_percent_mean": round(statistics.fmean(cpu), 1) if cpu else None,
                "cpu_percent_p95": pct(cpu, 0.95),
                "rss_mb_run_start": round(rss_run_start, 2),
                "rss_mb_mid": rss_mid, "rss_mb_end": rss_last,
                "rss_mb_max": max((s["rss_mb"] for s in self.samples), default=None),
                "rss_slope_mb_per_min_second_half": round(rss_slope, 3),
                "samples": self.samples[::thin],
            },
            "bus_rejected": status.bus.rejected if hasattr(status, "bus") else None,
        }

    def judge(self, summary: dict[str, Any], fds_start: int, fds_end: int, leaked_shm: list[str],
              died: list[str]) -> None:
        f = self.failures
        tasks = summary.get("tasks", {})
        if tasks.get("lost", 1):
            f.append(f"{tasks.get('lost')} task(s) lost")
        if died:
            f.append("orchestrator died: " + "; ".join(died))
        if summary.get("agents_given_up"):
            f.append(f"agents given up: {summary['agents_given_up']}")
        if summary.get("unrecovered"):
            f.append(f"{len(summary['unrecovered'])} kill/hang(s) not recovered within "
                     f"{self.args.recovery_timeout:g} s")
        if leaked_shm:
            f.append(f"leaked /dev/shm segments: {leaked_shm}")
        if fds_end > fds_start:
            f.append(f"leaked file descriptors: {fds_start} at start, {fds_end} at the end")
        orch = summary.get("orchestrator", {})
        sl, mid, end = orch.get("rss_slope_mb_per_min_second_half"), orch.get("rss_mb_mid"), orch.get("rss_mb_end")
        if sl is not None and mid and end and sl > self.args.rss_slope_limit and end > 1.05 * mid:
            f.append(f"memory grows without bound: RSS slope {sl:.2f} MiB/min over the second half "
                     f"(limit {self.args.rss_slope_limit:g}) and {mid:.1f} -> {end:.1f} MiB (> +5 %)")
        summary["memory_rule"] = (f"fail if the least-squares RSS slope over the second half > "
                                  f"{self.args.rss_slope_limit:g} MiB/min AND RSS grew > 5 % over that half")
        summary["failures"] = f
        summary["ok"] = not f


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python tests/load_test.py", description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=32, help="agents in the swarm (default 32)")
    ap.add_argument("--duration", type=float, default=300.0, help="seconds of load (default 300)")
    ap.add_argument("--kill-rate", type=float, default=0.2, help="SIGKILLs per second (default 0.2)")
    ap.add_argument("--hang-rate", type=float, default=0.02, help="injected hangs per second (default 0.02)")
    ap.add_argument("--flood", action="store_true", help="add an agent that sends as fast as it can")
    ap.add_argument("--flood-after", type=float, default=0.2,
                    help="fraction of the run before the flood starts (baseline; default 0.2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="PATH", help="write the summary as JSON")
    ap.add_argument("--concurrency", type=int, default=0, help="tasks in flight (default 2 per compute agent)")
    ap.add_argument("--n", type=int, default=10000, help="triad size per task (default 10000)")
    ap.add_argument("--task-timeout", type=float, default=5.0, help="seconds per attempt (default 5)")
    ap.add_argument("--heartbeat-timeout", type=float, default=2.0)
    ap.add_argument("--recovery-timeout", type=float, default=30.0)
    ap.add_argument("--grace", type=float, default=30.0, help="seconds after the run to finish tasks")
    ap.add_argument("--rss-slope-limit", type=float, default=2.0, help="MiB/min (see the memory rule)")
    ap.add_argument("--authenticate", action="store_true", help="security.authenticate = true")
    ap.add_argument("--encrypt", action="store_true", help="security.encrypt = true")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--verbose", action="store_true", help="engine warnings and errors on stderr")
    args = ap.parse_args(argv)
    if args.agents < (3 if args.flood else 1):
        ap.error("--agents must be at least 1 (3 with --flood)")
    if args.duration <= 0 or args.kill_rate < 0 or args.hang_rate < 0:
        ap.error("--duration must be positive and the rates non-negative")
    if not args.concurrency:
        args.concurrency = 2 * (args.agents - (1 if args.flood else 0))
    return args


def headline(s: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    t, k, h, o = s.get("tasks", {}), s.get("kills", {}), s.get("hangs", {}), s.get("orchestrator", {})
    bus = s.get("bus_latency_us", {})
    lines = [
        (f"tasks {t.get('submitted')} submitted, {t.get('completed')} completed, {t.get('lost')} lost, "
         f"{t.get('duplicates_dropped')} duplicates dropped, {t.get('retried')} retries ({t.get('per_s')}/s)"),
        f"kills {k.get('count')}: recovery {k.get('recovery_s')}; hangs {h.get('count')}: {h.get('recovery_s')}",
        (f"bus latency us: all {_lat(bus.get('all'))}; others {_lat(bus.get('others'))}; "
         f"flooder {_lat(bus.get('flooder'))}"),
        (f"orchestrator cpu mean {o.get('cpu_percent_mean')} %, rss {o.get('rss_mb_run_start')} -> "
         f"{o.get('rss_mb_end')} MiB, slope 2nd half {o.get('rss_slope_mb_per_min_second_half')} MiB/min"),
        f"resources {s.get('resources')}",
        f"{'OK' if s.get('ok') else 'FAILED: ' + '; '.join(s.get('failures', []))}",
    ]
    return "\n".join(lines)


def _lat(d: Any) -> str:
    if not d:
        return "-"
    return f"p50 {d.get('latency_p50_us')} p99 {d.get('latency_p99_us')} p99.9 {d.get('latency_p999_us')}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL, stream=sys.stderr)
    test = LoadTest(args)
    try:
        summary = asyncio.run(test.run())
    except Exception as exc:  # noqa: BLE001 - the orchestrator died: report and fail
        summary = {"ok": False, "failures": [f"orchestrator died: {type(exc).__name__}: {exc}"]}
    print(headline(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
