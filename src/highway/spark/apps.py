"""Run a catalog app: build the session, start its query, report progress, stop cleanly."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from highway import catalog, connection
from highway.catalog import AppSpec, BronzeSpec, GoldSpec, SilverSpec
from highway.connection import Connection
from highway.core.k8s.common import DRIVER_STOP_WAIT_SECONDS
from highway.core.progress import failure_summary
from highway.core.release import driver_identity
from highway.errors import TerminalError, TransientError
from highway.spark.bronze import BronzeBatch
from highway.spark.lineage import Lineage
from highway.spark.metrics import AppMetrics
from highway.spark.sinks import SinkTally

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

log = logging.getLogger(__name__)
STOP_GRACE_SECONDS = float(DRIVER_STOP_WAIT_SECONDS)  # the pod's grace period covers it


def table_path(conn: Connection, relative: str) -> str:
    return conn.lake_path(relative)


def kafka_stream(spark: SparkSession, spec: BronzeSpec, conn: Connection) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", conn.kafka_bootstrap)
        .option("subscribe", spec.source.topic)
        .option("startingOffsets", spec.source.starting_offsets)
        .option("maxOffsetsPerTrigger", spec.source.max_offsets_per_trigger)
        .option("failOnDataLoss", "true")
        .load()
    )


def start_bronze(
    spark: SparkSession,
    spec: BronzeSpec,
    conn: Connection,
    tally: SinkTally,
    lineage: Lineage,
    available_now: bool = False,
) -> StreamingQuery:
    """Start the bronze query; ``available_now`` drains what the topic holds, then stops (bench, backfill)."""
    writer = (
        kafka_stream(spark, spec, conn)
        .writeStream.queryName(spec.name)
        .foreachBatch(BronzeBatch(spec, conn, tally, lineage))
        .option("checkpointLocation", table_path(conn, spec.checkpoint))
    )
    if available_now:
        return writer.trigger(availableNow=True).start()
    return writer.trigger(processingTime=f"{spec.trigger.interval_seconds} seconds").start()


def _delta_source_path(spark: SparkSession, spec: SilverSpec | GoldSpec, conn: Connection) -> str:
    """The source table's path; a clear error if the upstream app has not created it yet."""
    from highway.spark.delta_sink import table_exists

    path = conn.lake_path(spec.source.table)
    if not table_exists(spark, path):
        raise TerminalError(
            f"app {spec.name}: its source table {spec.source.table} ({path}) does not exist yet; "
            "run the app that writes it first"
        )
    return path


def start_streaming(
    spark: SparkSession,
    spec: AppSpec,
    conn: Connection,
    tally: SinkTally,
    lineage: Lineage,
) -> StreamingQuery:
    """Start the app's query by kind: bronze reads Kafka, silver and gold read a Delta table."""
    if isinstance(spec, BronzeSpec):
        return start_bronze(spark, spec, conn, tally, lineage)
    from highway.spark.gold import GoldBatch
    from highway.spark.silver import SilverBatch

    path = _delta_source_path(spark, spec, conn)
    batch_fn = (
        SilverBatch(spec, conn, tally, lineage)
        if isinstance(spec, SilverSpec)
        else GoldBatch(spec, conn, tally, lineage)
    )
    source = (
        spark.readStream.format("delta")
        .option("maxFilesPerTrigger", spec.source.max_files_per_trigger)
        .load(path)
    )
    return (
        source.writeStream.queryName(spec.name)
        .foreachBatch(batch_fn)
        .option("checkpointLocation", table_path(conn, spec.checkpoint))
        .trigger(processingTime=f"{spec.trigger.interval_seconds} seconds")
        .start()
    )


def heartbeat_writer(spec: AppSpec, conn: Connection) -> Any:
    from highway.adapters import s3

    client = s3.client(conn)
    key = f"{spec.status_prefix}/heartbeat.json"

    def write(hb: dict[str, Any]) -> None:
        s3.put_json(client, conn.lake_bucket, key, hb)

    return write


def previous_heartbeat(spec: AppSpec, conn: Connection) -> dict[str, Any] | None:
    """The heartbeat the app's previous driver left (best effort: None when absent or unreadable)."""
    from highway.adapters import s3

    try:
        doc = s3.get_json_or_none(s3.client(conn), conn.lake_bucket, f"{spec.status_prefix}/heartbeat.json")
    except (TerminalError, TransientError, ValueError) as exc:
        log.warning("previous heartbeat of %s not read: %s", spec.name, exc)
        return None
    return doc if isinstance(doc, dict) else None


class StopRequest:
    """Set by SIGTERM/SIGINT: stop the query after the batch in flight."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.event.set())


def _stop_gracefully(query: StreamingQuery) -> None:
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()


def _wait(query: StreamingQuery, reporter: Any, stop: StopRequest, until_idle: float | None) -> str:
    from pyspark.errors import StreamingQueryException

    busy_at = 0.0
    while True:
        try:
            if query.awaitTermination(1):
                return "finished"
        except StreamingQueryException as exc:
            raise TransientError(f"app {query.name} failed: {failure_summary(str(exc))}") from None
        if stop.event.is_set():
            _stop_gracefully(query)
            return "stopped on request"
        status = query.status
        if status.get("isTriggerActive") or status.get("isDataAvailable"):
            busy_at = time.time()  # a batch in flight (maybe retrying a sink through an outage) is not idle
        idle_for = time.time() - max(reporter.last_active, busy_at)
        if until_idle is not None and reporter.batches > 0 and idle_for > until_idle:
            _stop_gracefully(query)
            return f"stopped after {idle_for:.0f}s without new input"


def run_app(name: str, until_idle: float | None = None, metrics_port: int | None = None) -> None:
    from highway.spark.guard import checked_start, hold_lease
    from highway.spark.progress import ProgressReporter
    from highway.spark.session import build_session

    spec = catalog.get(name)
    conn = connection.load()
    hold_lease(spec)  # one driver per checkpoint: refused here, naming the holder
    stop = StopRequest()
    stop.install()
    metrics = AppMetrics(spec.name)
    identity = driver_identity(dict(os.environ))
    reporter = ProgressReporter(spec.name, heartbeat_writer(spec, conn), metrics, identity=identity)
    reporter.resume(previous_heartbeat(spec, conn))
    checked_start(spec, conn, reporter)  # before Spark: a refused checkpoint costs no JVM
    spark = build_session(conn, spec.name, spec.resources.shuffle_partitions, spec.resources.driver_memory)
    tally = SinkTally(metrics)
    reporter.sinks = tally.snapshot
    port = metrics.serve(metrics_port)
    spark.streams.addListener(reporter)
    lineage = Lineage(conn, spec.name, spec.checkpoint)
    query = start_streaming(spark, spec, conn, tally, lineage)
    lineage.bind(query.id)
    print(f"{spec.name}: running (query {query.id}); metrics on http://127.0.0.1:{port}/metrics", flush=True)
    try:
        outcome = _wait(query, reporter, stop, until_idle)
    except TransientError as exc:
        reporter.finish(str(exc))
        raise
    reporter.finish(None)
    print(f"{spec.name}: {outcome}; {reporter.batches} batches", flush=True)
    spark.stop()
