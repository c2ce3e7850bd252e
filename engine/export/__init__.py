"""Where a swarm's data leaves the process: recording, Prometheus metrics, the audit log.

:func:`attach_observers` wires whichever of them the options ask for onto an
orchestrator (or anything with its observer API) and returns an :class:`Observers`
to close at the end.  The headless runner uses it; a front end that owns its own
orchestrator (the TUI's live source) can call it the same way, before ``start()``::

    observers = attach_observers(swarm, ObserverOptions(record="run.swrec", metrics_port=9464))
    try:
        ...  # run the swarm
    finally:
        observers.close(reason="stopped")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("engine.export")

__all__ = ["ObserverOptions", "Observers", "attach_observers"]


@dataclass(frozen=True)
class ObserverOptions:
    """What to attach.

    Attributes:
        record: recording file to write (``None`` = no recording).
        record_interval: least seconds between recorded snapshots (``None`` = every
            snapshot, i.e. each ``monitoring_interval``).
        metrics_port: TCP port for ``/metrics`` (0 = no endpoint).
        metrics_host: address to bind (``127.0.0.1`` = this machine only).
        audit_log: audit log file (``None`` = none).
        description: free text stored in the recording's header.
        demo: the demo scenario running, stored in the recording's header.
    """

    record: str | None = None
    record_interval: float | None = None
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    audit_log: str | None = None
    description: str = ""
    demo: str | None = None


class Observers:
    """The observers attached to one swarm; ``close()`` finishes them all."""

    def __init__(self) -> None:
        self.recorder: Any = None
        self.exporter: Any = None
        self.audit: Any = None

    def close(self, *, reason: str = "stopped", summary: Mapping[str, Any] | None = None) -> None:
        """Finish the recording, stop the metrics server (idempotent)."""
        if self.recorder is not None:
            try:
                self.recorder.close(reason=reason, summary=summary)
            except Exception:
                log.exception("finishing the recording failed")
        if self.exporter is not None:
            self.exporter.close()


def attach_observers(swarm: Any, options: ObserverOptions) -> Observers:
    """Attach the recorder, the Prometheus exporter and the audit log that ``options`` name.

    Call before ``swarm.start()`` so the first events are seen.  Anything that
    cannot start (file not writable, port taken) raises before the swarm starts,
    and whatever was already attached is closed.

    Raises:
        engine.recording.RecordingError: the recording file cannot be created.
        OSError: the metrics port cannot be bound, or the audit log cannot be opened.
    """
    observers = Observers()
    try:
        if options.audit_log:
            from engine.audit import AuditLog

            observers.audit = AuditLog(options.audit_log)
            swarm.add_audit_sink(observers.audit.sink)
        if options.metrics_port:
            from engine.export.prometheus import PrometheusExporter
            from engine.recording import machine_identity

            observers.exporter = PrometheusExporter.attach(swarm, machine=machine_identity())
            observers.exporter.serve(options.metrics_host, options.metrics_port)
        if options.record:
            from engine.recording import Recorder, RecordingSettings

            settings = RecordingSettings(snapshot_interval=options.record_interval or 0.0)
            observers.recorder = Recorder.create(
                options.record, config=swarm.config, available_types=swarm.available_types(),
                settings=settings, description=options.description, demo=options.demo,
            )
            observers.recorder.attach(swarm)
    except BaseException:
        observers.close(reason="failed to start")
        raise
    return observers
