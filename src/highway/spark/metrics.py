"""Prometheus metrics of one app's driver (served over HTTP by the driver process)."""

from __future__ import annotations

import os
import socket
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class AppMetrics:
    """The driver's gauges and counters, in a registry of its own (no global state)."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.registry = CollectorRegistry()
        labels = ["app"]
        self.batch_id = Gauge("highway_batch_id", "Last completed batch id", labels, registry=self.registry)
        self.last_progress = Gauge(
            "highway_last_progress_timestamp_seconds",
            "When the last batch finished",
            labels,
            registry=self.registry,
        )
        self.input_rows = Counter(
            "highway_input_rows", "Rows read from the source", labels, registry=self.registry
        )
        self.input_rate = Gauge(
            "highway_input_rows_per_second", "Input rate of the last batch", labels, registry=self.registry
        )
        self.processed_rate = Gauge(
            "highway_processed_rows_per_second",
            "Processing rate of the last batch",
            labels,
            registry=self.registry,
        )
        self.batch_duration = Gauge(
            "highway_batch_duration_seconds", "Duration of the last batch", labels, registry=self.registry
        )
        self.offset = Gauge(
            "highway_kafka_offset",
            "Next offset to read",
            [*labels, "topic", "partition"],
            registry=self.registry,
        )
        self.rows_written = Counter(
            "highway_rows_written", "Rows committed per table", [*labels, "table"], registry=self.registry
        )
        self.sink_failed = Counter(
            "highway_sink_rows_refused",
            "Rows a sink refused for good (sent to the DLQ)",
            [*labels, "sink"],
            registry=self.registry,
        )
        self.heartbeat_failures = Counter(
            "highway_heartbeat_failures",
            "Heartbeats that could not be written",
            labels,
            registry=self.registry,
        )
        self.port: int | None = None

    def serve(self, port: int | None) -> int:
        """Serve /metrics on ``port`` (0 or None: any free port). Returns the port in use.

        Loopback only, unless ``HIGHWAY_METRICS_ADDR`` says otherwise (a pod's probes need 0.0.0.0)."""
        chosen = port or _free_port()
        start_http_server(
            chosen, addr=os.environ.get("HIGHWAY_METRICS_ADDR", "127.0.0.1"), registry=self.registry
        )
        self.port = chosen
        return chosen

    def observe(self, hb: dict[str, Any]) -> None:
        app = self.app
        if hb.get("batch_id") is not None:
            self.batch_id.labels(app).set(hb["batch_id"])
        self.last_progress.labels(app).set(hb["written_at"])
        self.input_rows.labels(app).inc(hb["input_rows"])
        self.input_rate.labels(app).set(hb["input_rows_per_second"])
        self.processed_rate.labels(app).set(hb["processed_rows_per_second"])
        self.batch_duration.labels(app).set(hb["batch_duration_ms"] / 1000.0)
        for topic, parts in hb["offsets"].items():
            for partition, offset in parts.items():
                self.offset.labels(app, topic, str(partition)).set(offset)

    def written(self, table: str, rows: int) -> None:
        self.rows_written.labels(self.app, table).inc(rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
