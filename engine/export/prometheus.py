"""Prometheus ``/metrics`` for a swarm: per-agent, bus, machine, thermal and event metrics.

Design: a custom collector (the "proxy" pattern of prometheus_client) over the last
immutable :class:`~engine.model.SwarmSnapshot`.  The exporter is an observer: its
status handler keeps the latest snapshot (and samples the bus's latency histogram on
the orchestrator's loop), its event handler counts events; the HTTP thread only
reads those immutable values, so nothing is locked and a scrape never touches the
engine.  Every metric is declared once in :data:`METRICS` (name, type, unit, help,
labels); identity goes in labels (``agent="compute-3"``, ``type="compute"``), never
in names.  The registry is private to the exporter (not prometheus_client's global
one), so several swarms -- or tests -- in one process do not collide.

Honesty notes: CPU is exported as a ratio of one core (Prometheus base unit for
percentages); per-agent counters come from the agent's own status row and restart
from zero when the agent's process restarts (Prometheus' ``rate()`` handles counter
resets); the bus latency histogram has exact bucket edges (every power of two of
nanoseconds, the edges of the bus's own log-spaced buckets) and no ``_sum``, because
the bus does not record sums -- ``histogram_quantile`` works, an average does not.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from engine.events import Event
from engine.model import SwarmSnapshot

log = logging.getLogger("engine.export.prometheus")

PREFIX = "swarm"
AGENT_LABELS = ("agent", "type")


@dataclass(frozen=True)
class MetricSpec:
    """One exported metric: declared once, used for collection and documentation.

    Attributes:
        name: full name as exposed (counters end in ``_total``).
        kind: ``gauge``, ``counter``, ``histogram`` or ``info``.
        unit: the unit (``seconds``, ``bytes``, ``ratio``, ``celsius``) or ``""``.
        help: one sentence.
        labels: label names.
    """

    name: str
    kind: str
    unit: str
    help: str
    labels: tuple[str, ...] = ()

    @property
    def exposed(self) -> str:
        """The name as it appears in the exposition."""
        if self.kind == "counter" and not self.name.endswith("_total"):
            return self.name + "_total"
        return self.name


def _m(name: str, kind: str, unit: str, help: str, labels: tuple[str, ...] = ()) -> MetricSpec:
    return MetricSpec(f"{PREFIX}_{name}", kind, unit, help, labels)


def _a(name: str, kind: str, unit: str, help: str, *more: str) -> MetricSpec:
    """A per-agent metric: labelled ``agent`` and ``type`` (plus ``more``)."""
    return MetricSpec(f"{PREFIX}_{name}", kind, unit, help, (*AGENT_LABELS, *more))


METRICS: tuple[MetricSpec, ...] = (
    _m("info", "info", "", "The swarm: name and engine version.", ("swarm", "version")),
    _m("up", "gauge", "", "1 while the exporter has a snapshot of a running swarm."),
    _m("uptime_seconds", "gauge", "seconds", "Time since the swarm started."),
    _m("snapshot_timestamp_seconds", "gauge", "seconds", "Wall-clock time of the snapshot exported."),
    _m("max_agents", "gauge", "", "Most agents the swarm may run (max_agents)."),
    _m("agents", "gauge", "", "Agents in each state.", ("state",)),
    _m("events_total", "counter", "", "Swarm events seen by the exporter, by name and severity.",
       ("event", "severity")),
    _m("alerts_total", "counter", "", "Alerts raised since the swarm started (from the snapshot)."),
    _a("agent_state", "gauge", "", "1 for the agent's current state.", "state"),
    _a("agent_cpu_ratio", "gauge", "ratio", "CPU used by the agent's process, in cores (1.0 = one core busy)."),
    _a("agent_resident_memory_bytes", "gauge", "bytes", "Resident memory of the agent's process."),
    _a("agent_tasks_total", "counter", "", "Tasks the agent finished (resets when its process restarts)."),
    _a("agent_messages_received_total", "counter", "", "Messages the agent handled (resets on restart)."),
    _a("agent_messages_sent_total", "counter", "", "Messages the agent sent (resets on restart)."),
    _a("agent_errors_total", "counter", "", "Errors the agent counted (resets on restart)."),
    _a("agent_restarts_total", "counter", "", "Times the supervisor restarted the agent."),
    _a("agent_heartbeat_age_seconds", "gauge", "seconds", "Time since the agent's last heartbeat."),
    _a("agent_uptime_seconds", "gauge", "seconds", "Time since the agent's process started."),
    _a("agent_duty_cycle_ratio", "gauge", "ratio", "Fraction of time the agent may compute (1 = not throttled)."),
    _a("agent_nice", "gauge", "", "The agent's priority as a nice value (-20 highest .. 19 lowest)."),
    _a("agent_message_latency_seconds", "gauge", "seconds",
       "Delivery latency of the messages the agent received: recent quantiles computed by the agent.",
       "quantile"),
    _a("agent_gauge", "gauge", "", "A value the agent publishes itself (set_gauge); its name is the label.",
       "name"),
    _m("bus_messages_sent_total", "counter", "", "Messages sent over the bus (live mailboxes)."),
    _m("bus_messages_received_total", "counter", "", "Messages received over the bus (live mailboxes)."),
    _m("bus_sent_bytes_total", "counter", "", "Payload bytes sent over the bus (live mailboxes)."),
    _m("bus_full_events_total", "counter", "", "Sends that found a channel full (backpressure)."),
    _m("bus_rejected_frames_total", "counter", "", "Corrupt frames or control words detected."),
    _m("bus_redeliveries_total", "counter", "", "Messages delivered again after a consumer restart."),
    _m("bus_messages_per_second", "gauge", "", "Messages received per second over the last interval."),
    _m("bus_latency_seconds", "histogram", "seconds",
       "Send-to-receive latency of bus messages (monotonic timestamps), from the bus's own histogram."),
    _m("machine_cpu_ratio", "gauge", "ratio", "CPU utilisation of each logical CPU.", ("cpu",)),
    _m("machine_memory_used_bytes", "gauge", "bytes", "Memory in use (total minus available)."),
    _m("machine_memory_total_bytes", "gauge", "bytes", "Total memory."),
    _m("machine_load_average", "gauge", "", "System load average.", ("period",)),
    _m("machine_info", "info", "", "The machine's CPU identity.", ("brand", "identity_key")),
    _m("thermal_temperature_celsius", "gauge", "celsius",
       "Temperatures: machine sensors and thermal agents' readings (modelled=\"true\" for a model).",
       ("source", "sensor", "modelled")),
    _m("thermal_critical_celsius", "gauge", "celsius", "The configured thermal_critical threshold."),
)
SPECS: dict[str, MetricSpec] = {spec.name[len(PREFIX) + 1:]: spec for spec in METRICS}

#: Histogram upper bounds, in ns: every power of two from 256 ns to 2**34 ns (17 s).
LATENCY_BOUNDS_NS = tuple(1 << k for k in range(8, 35))


def _family(key: str) -> Metric:
    spec = SPECS[key]
    labels = list(spec.labels)
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=labels)
    if spec.kind in ("gauge", "info"):
        # info metrics are exposed as gauges of value 1 named *_info (portable to every scraper)
        return GaugeMetricFamily(spec.name, spec.help, labels=labels)
    return Metric(spec.name, spec.help, spec.kind)


def cumulative_latency_buckets(histogram: Iterable[int]) -> list[tuple[float, int]]:
    """(upper bound in seconds, cumulative count) per :data:`LATENCY_BOUNDS_NS`, then (+inf, total).

    A bus bucket ``[lo, hi)`` counts towards every bound ``>= hi``.  The bounds are
    powers of two, which are edges of the bus's own buckets, so no bucket is split
    and the counts are exact, not interpolated.  The last bus bucket is open-ended
    and counts only towards ``+Inf``.
    """
    from engine._shm.ring import bucket_bounds

    counts = list(histogram)
    highs = [bucket_bounds(i)[1] for i in range(len(counts) - 1)] + [math.inf]
    out: list[tuple[float, int]] = []
    acc, i = 0, 0
    for bound in LATENCY_BOUNDS_NS:
        while i < len(counts) and highs[i] <= bound:
            acc += counts[i]
            i += 1
        out.append((bound / 1e9, acc))
    out.append((math.inf, sum(counts)))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def thermal_readings(snapshot: SwarmSnapshot) -> Iterator[tuple[str, str, bool, float]]:
    """(source, sensor, modelled, celsius) for every temperature in a snapshot.

    Read tolerantly from ``snapshot.extra["thermal"]`` -- either a telemetry reading
    (``{"sensors": [{"label", "temperature_c", "modelled", ...}]}``) or, as the thermal
    agent publishes it, that shape per agent id with its modelled packages under
    ``model_packages`` -- and from agents' gauges whose names end in ``_c`` (the
    thermal agent's ``temp_c`` and ``predicted_c``).
    """
    thermal = snapshot.extra.get("thermal") if isinstance(snapshot.extra, Mapping) else None

    def from_reading(source: str, reading: Any, modelled_default: bool) -> Iterator[tuple[str, str, bool, float]]:
        if not isinstance(reading, Mapping):
            return
        for sensor in [*(reading.get("sensors") or ()), *(reading.get("model_packages") or ())]:
            if isinstance(sensor, Mapping):
                value = _number(sensor.get("temperature_c"))
                if value is not None and math.isfinite(value):
                    label = str(sensor.get("label") or sensor.get("id") or "sensor")
                    yield source, label, bool(sensor.get("modelled", modelled_default)), value

    if isinstance(thermal, Mapping):
        if "sensors" in thermal:
            yield from from_reading("machine", thermal, False)
        else:
            for agent_id, reading in thermal.items():
                yield from from_reading(str(agent_id), reading, True)
    for agent in snapshot.agents:
        for name, raw in agent.gauges.items():
            value = _number(raw)
            if name.endswith("_c") and value is not None and math.isfinite(value):
                yield agent.id, name[:-2], True, value


class SwarmCollector:
    """The prometheus_client collector (see module docstring)."""

    def __init__(self, *, version: str, thermal_critical: float | None = None,
                 machine: Mapping[str, Any] | None = None) -> None:
        self.version = version
        self.thermal_critical = thermal_critical
        self.machine = dict(machine or {})
        self.snapshot: SwarmSnapshot | None = None
        self.latency_histogram: tuple[int, ...] | None = None
        self.event_counts: Counter[tuple[str, str]] = Counter()
        self.running = False

    # observer side (the orchestrator's loop) ------------------------------------------

    def on_status(self, snapshot: SwarmSnapshot) -> None:
        """Keep the latest snapshot."""
        self.snapshot = snapshot
        self.running = True

    def on_event(self, event: Event) -> None:
        """Count an event."""
        self.event_counts[(event.name, event.severity.value)] += 1
        if event.name == "swarm_stopped":
            self.running = False

    # scrape side (the HTTP thread) ------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family from the latest snapshot."""
        snap = self.snapshot
        info = _family("info")
        info.add_metric([snap.name if snap else "", self.version], 1.0)
        yield info
        up = _family("up")
        up.add_metric([], 1.0 if (snap is not None and self.running) else 0.0)
        yield up
        events = _family("events_total")
        for (name, severity), count in sorted(self.event_counts.copy().items()):
            events.add_metric([name, severity], count)
        yield events
        if self.machine:
            machine = _family("machine_info")
            machine.add_metric([str(self.machine.get("brand", "")), str(self.machine.get("identity_key", ""))], 1.0)
            yield machine
        if self.thermal_critical is not None:
            crit = _family("thermal_critical_celsius")
            crit.add_metric([], self.thermal_critical)
            yield crit
        if snap is None:
            return
        yield from self._swarm(snap)
        yield from self._agents(snap)
        yield from self._bus(snap)
        yield from self._machine(snap)

    def _swarm(self, snap: SwarmSnapshot) -> Iterator[Metric]:
        for key, value in (("uptime_seconds", snap.uptime_s), ("snapshot_timestamp_seconds", snap.time),
                           ("max_agents", snap.max_agents), ("alerts_total", snap.alerts_total)):
            family = _family(key)
            family.add_metric([], float(value))
            yield family
        states = _family("agents")
        for state, count in sorted(snap.count_by_state().items()):
            states.add_metric([state], count)
        yield states

    def _agents(self, snap: SwarmSnapshot) -> Iterator[Metric]:
        simple: dict[str, Callable[[Any], float]] = {
            "agent_cpu_ratio": lambda a: a.cpu_percent / 100.0,
            "agent_resident_memory_bytes": lambda a: a.rss_bytes,
            "agent_tasks_total": lambda a: a.tasks_done,
            "agent_messages_received_total": lambda a: a.messages_in,
            "agent_messages_sent_total": lambda a: a.messages_out,
            "agent_errors_total": lambda a: a.errors,
            "agent_restarts_total": lambda a: a.restarts,
            "agent_heartbeat_age_seconds": lambda a: a.heartbeat_age_s,
            "agent_uptime_seconds": lambda a: a.uptime_s,
            "agent_duty_cycle_ratio": lambda a: a.duty_cycle,
            "agent_nice": lambda a: a.priority,
        }
        for key, get in simple.items():
            family = _family(key)
            for a in snap.agents:
                family.add_metric([a.id, a.type], float(get(a)))
            yield family
        state = _family("agent_state")
        latency = _family("agent_message_latency_seconds")
        gauges = _family("agent_gauge")
        for a in snap.agents:
            state.add_metric([a.id, a.type, a.state], 1.0)
            latency.add_metric([a.id, a.type, "0.5"], a.latency_p50_us / 1e6)
            latency.add_metric([a.id, a.type, "0.99"], a.latency_p99_us / 1e6)
            for name, value in sorted(a.gauges.items()):
                number = _number(value)
                if number is not None:
                    gauges.add_metric([a.id, a.type, str(name)], number)
        yield from (state, latency, gauges)

    def _bus(self, snap: SwarmSnapshot) -> Iterator[Metric]:
        bus = snap.bus
        for key, value in (("bus_messages_sent_total", bus.sent), ("bus_messages_received_total", bus.received),
                           ("bus_sent_bytes_total", bus.bytes), ("bus_full_events_total", bus.full_events),
                           ("bus_rejected_frames_total", bus.rejected),
                           ("bus_redeliveries_total", bus.redeliveries),
                           ("bus_messages_per_second", bus.messages_per_s)):
            family = _family(key)
            family.add_metric([], float(value))
            yield family
        hist = self.latency_histogram
        if hist is not None:
            family = _family("bus_latency_seconds")
            name = SPECS["bus_latency_seconds"].name
            buckets = cumulative_latency_buckets(hist)
            for bound, count in buckets:
                le = "+Inf" if math.isinf(bound) else repr(bound)
                family.add_sample(name + "_bucket", {"le": le}, float(count))
            family.add_sample(name + "_count", {}, float(buckets[-1][1]))
            yield family

    def _machine(self, snap: SwarmSnapshot) -> Iterator[Metric]:
        m = snap.machine
        cpu = _family("machine_cpu_ratio")
        for i, pct in enumerate(m.per_cpu_percent):
            cpu.add_metric([str(i)], pct / 100.0)
        yield cpu
        for key, value in (("machine_memory_used_bytes", m.memory_used_bytes),
                           ("machine_memory_total_bytes", m.memory_total_bytes)):
            family = _family(key)
            family.add_metric([], float(value))
            yield family
        load = _family("machine_load_average")
        for period, value in zip(("1m", "5m", "15m"), m.load_average):
            load.add_metric([period], float(value))
        yield load
        temps = _family("thermal_temperature_celsius")
        seen: set[tuple[str, str]] = set()
        for source, sensor, modelled, celsius in thermal_readings(snap):
            if (source, sensor) not in seen:
                seen.add((source, sensor))
                temps.add_metric([source, sensor, "true" if modelled else "false"], celsius)
        yield temps


def bus_latency_histogram(swarm: Any) -> tuple[int, ...] | None:
    """The bus's cumulative latency histogram (summed over live mailboxes), or ``None``.

    Uses ``swarm.bus_statistics()`` when the orchestrator offers it; until then it
    reads the orchestrator's mailboxes directly (called on the orchestrator's loop,
    the only thread that creates and closes them).
    """
    public = getattr(swarm, "bus_statistics", None)
    try:
        if callable(public):
            return tuple(public().latency_histogram)
        mailboxes = getattr(swarm, "_mailboxes", None)
        if not mailboxes:
            return None
        from engine.bus_meter import totals_of
        from engine.channels import ChannelStatistics

        return tuple(ChannelStatistics.combine(totals_of(list(mailboxes.values()))).latency_histogram)
    except Exception as exc:  # a mailbox closed under us: skip this sample
        log.debug("bus histogram not sampled: %s", exc)
        return None


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class MetricsServer:
    """``/metrics`` over HTTP in a daemon thread; ``close()`` stops it."""

    def __init__(self, registry: CollectorRegistry, *, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type("_Server", (_ThreadingServer,), {"address_family": family})
        app = make_wsgi_app(registry)
        try:
            self._server = make_server(host, port, app, server_cls, handler_class=_QuietHandler)
        except OSError as exc:
            raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The URL of the metrics page."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


class PrometheusExporter:
    """Attach to a swarm, then serve: ``PrometheusExporter.attach(swarm).serve(host, port)``."""

    def __init__(self, collector: SwarmCollector) -> None:
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)  # type: ignore[arg-type]
        self.server: MetricsServer | None = None
        self._swarm: Any = None

    @classmethod
    def attach(cls, swarm: Any, *, machine: Mapping[str, Any] | None = None) -> PrometheusExporter:
        """An exporter fed by ``swarm``'s status and event handlers (attach before ``start``)."""
        from engine import __version__

        config = getattr(swarm, "config", None)
        thermal = getattr(getattr(config, "performance_thresholds", None), "thermal_critical", None)
        exporter = cls(SwarmCollector(version=__version__, thermal_critical=thermal, machine=machine))
        exporter._swarm = swarm
        swarm.add_status_handler(exporter._on_status)
        swarm.add_event_handler("*", exporter.collector.on_event)
        return exporter

    def _on_status(self, snapshot: SwarmSnapshot) -> None:
        if self._swarm is not None:
            hist = bus_latency_histogram(self._swarm)
            if hist is not None:
                self.collector.latency_histogram = hist
        self.collector.on_status(snapshot)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
        """Start the HTTP server (port 0 = any free port; see ``server.port``).

        Raises:
            OSError: the address cannot be bound (with the reason).
        """
        self.server = MetricsServer(self.registry, host=host, port=port)
        log.info("serving Prometheus metrics at %s", self.server.url)
        return self.server

    def close(self) -> None:
        """Stop the HTTP server, if any."""
        if self.server is not None:
            self.server.close()
            self.server = None
