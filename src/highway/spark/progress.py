"""Streaming progress -> heartbeat on S3 + Prometheus metrics, from a query listener."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from highway.core.progress import failure_summary, heartbeat
from highway.spark.metrics import AppMetrics

log = logging.getLogger(__name__)

HeartbeatWriter = Callable[[dict[str, Any]], None]


class ProgressReporter(StreamingQueryListener):
    """Turns each progress event into a heartbeat, writes it, and updates the metrics.

    A failed heartbeat write is counted and logged, never raised: the stream must not stop
    because its status could not be written.
    """

    def __init__(
        self,
        app: str,
        write: HeartbeatWriter,
        metrics: AppMetrics,
        clock: Callable[[], float] = time.time,
        sinks: Callable[[], dict[str, Any]] | None = None,
        identity: dict[str, str] | None = None,
    ):
        self.identity = dict(identity or {})  # spec digest, pod uid: on every heartbeat this driver writes
        self.app = app
        self.write = write
        self.metrics = metrics
        self.clock = clock
        self.sinks = sinks  # totals per sink (written, refused, replayed batches) for the heartbeat
        self.last_active = clock()
        self.last_heartbeat: dict[str, Any] | None = None
        self.batches = 0
        self.finished = False
        self._lock = threading.Lock()

    def resume(self, previous: dict[str, Any] | None) -> None:
        """Carry the previous driver's last batch (id, offsets) into this driver's idle ticks, so a restarted
        app that has no new input yet still reports where it is (and its lag) instead of nothing."""
        if previous:
            with self._lock:
                dropped = ("state", "error", "spec_digest", "pod_uid")  # the previous driver's, not ours
                self.last_heartbeat = {k: v for k, v in previous.items() if k not in dropped}

    def onQueryStarted(self, event: Any) -> None:
        self.last_active = self.clock()

    def onQueryProgress(self, event: Any) -> None:
        hb = heartbeat(self.app, json.loads(event.progress.json), self.clock())
        hb["state"] = "running"
        if self.sinks is not None:
            hb["sinks"] = self.sinks()
        with self._lock:
            self.last_heartbeat = hb
            self.batches += 1
            if hb["input_rows"] > 0:
                self.last_active = hb["written_at"]
        self.metrics.observe(hb)
        self._write(hb)

    def onQueryIdle(self, event: Any) -> None:
        """No new input: say the driver is alive (the health check tells idle from stuck by this)."""
        with self._lock:
            if self.finished:
                return
            hb = dict(self.last_heartbeat or {"app": self.app, "offsets": {}, "batch_id": None})
        hb["state"] = "idle"
        hb["written_at"] = self.clock()
        self._write(hb)

    def onQueryTerminated(self, event: Any) -> None:
        # listener events arrive asynchronously; the driver also calls finish() itself before it
        # exits, so the final state is written even if this event comes too late
        self.finish(failure_summary(event.exception) if event.exception else None)

    def finish(self, error: str | None) -> None:
        """Write the final heartbeat (state stopped or failed) once."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            hb = dict(self.last_heartbeat or {"app": self.app, "offsets": {}})
        if self.sinks is not None:
            hb["sinks"] = self.sinks()
        hb["state"] = "failed" if error else "stopped"
        hb["error"] = error
        hb["written_at"] = self.clock()
        self._write(hb)

    def _write(self, hb: dict[str, Any]) -> None:
        hb.update(self.identity)  # this driver's, never the previous driver's carried over by resume()
        try:
            self.write(hb)
        except Exception as exc:  # the stream goes on; the failure is counted and logged
            self.metrics.heartbeat_failures.labels(self.app).inc()
            log.warning("heartbeat of %s not written: %s", self.app, exc)
