"""Silver: bronze rows -> one row per event id, cleaned, into Delta, Elasticsearch and the warehouse.

Per micro-batch (``SilverBatch``):
1. dedup within the batch by ``event_id`` (the lowest Kafka offset wins: the first send);
2. MERGE into the silver Delta table on ``event_id``, insert-only: an id already there is skipped,
   so a duplicate re-sent hours later is dropped and a late event (new id) is always kept;
3. the same rows to Elasticsearch (``_id`` = event id) and to the warehouse (upsert + batch ledger).
Each step is idempotent for a replayed batch, so the three stores converge on exactly the distinct
valid events. Documents Elasticsearch refuses for good go to the app's DLQ table with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from highway.catalog import SilverSpec
from highway.connection import Connection
from highway.core.search import index_template
from highway.spark.metrics import AppMetrics
from highway.spark.sinks import (
    ElasticsearchSink,
    SinkResult,
    SinkTally,
    StepTimer,
    WarehouseSink,
    collect_rows,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from highway.adapters.elasticsearch import BulkFailure

KEY = "event_id"
LOWER = ("event_type",)
UPPER = ("currency",)
MONEY = ("price", "amount")
DLQ_COLUMNS = "event_id STRING, sink STRING, reason STRING, status INT, document STRING, batch_id BIGINT"


def clean(bronze: DataFrame, spec: SilverSpec) -> DataFrame:
    """Typed columns of the catalog schema, strings trimmed, codes normalised, money rounded to cents."""
    from pyspark.sql import functions as F

    columns = []
    for field in spec.schema:
        col = F.col(field.name)
        if field.type == "string":
            col = F.trim(col)
            if field.name in LOWER:
                col = F.lower(col)
            if field.name in UPPER:
                col = F.upper(col)
        if field.name in MONEY:
            col = F.round(col, 2)
        columns.append(col.alias(field.name))
    extra = [c for c in bronze.columns if c not in {f.name for f in spec.schema}]
    return bronze.select(*columns, *extra)


def first_per_key(batch: DataFrame) -> DataFrame:
    """One row per event id: the one read first from Kafka (lowest partition, then offset)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(KEY).orderBy("kafka_partition", "kafka_offset")
    return batch.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


def merge_new(spark: SparkSession, rows: DataFrame, path: str, partition_by: Sequence[str]) -> int:
    """Insert the rows whose event id the table does not hold yet; how many were inserted."""
    from delta.tables import DeltaTable

    (
        DeltaTable.createIfNotExists(spark)
        .location(path)
        .addColumns(rows.schema)
        .partitionedBy(*partition_by)
        .execute()
    )
    condition = f"t.{KEY} = s.{KEY}"
    if "event_date" in partition_by:  # prune: the same event always lands in the same date
        dates = sorted({r[0] for r in rows.select("event_date").distinct().collect() if r[0] is not None})
        if dates:
            listed = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
            condition = f"t.event_date IN ({listed}) AND t.event_date = s.event_date AND {condition}"
    metrics = (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(rows.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )
    first = metrics.first() if metrics is not None else None
    return int(first["num_inserted_rows"]) if first is not None else 0


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def refused_rows(failures: Sequence[BulkFailure], sink: str, batch_id: int) -> list[tuple[Any, ...]]:
    return [
        (
            f.doc_id,
            sink,
            f"{f.error_type}: {f.reason}"[:4000],
            f.status,
            json.dumps(f.doc, default=_json_default, sort_keys=True),
            batch_id,
        )
        for f in failures
    ]


class SilverBatch:
    """The ``foreachBatch`` function of a silver app."""

    def __init__(self, spec: SilverSpec, conn: Connection, metrics: AppMetrics, tally: SinkTally) -> None:
        from highway import warehouse

        self.spec = spec
        self.conn = conn
        self.tally = tally
        self.path = conn.lake_path(spec.sink.table)
        self.dlq_path = conn.lake_path(spec.dlq.table)
        fields = [(f.name, f.type) for f in spec.schema]
        self.search = ElasticsearchSink(
            conn, spec.search.alias, index_template(spec.search.alias, fields), spec.search
        )
        self.warehouse = WarehouseSink(
            conn,
            spec.name,
            spec.warehouse.table,
            warehouse.SHOP_EVENTS_COLUMNS,
            spec.warehouse.key,
            spec.warehouse.retry_seconds,
            templates=[(spec.warehouse.table, warehouse.SHOP_EVENTS_TABLE)],
        )

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        timer = StepTimer(f"{self.spec.name} batch {batch_id}")
        rows_df = first_per_key(clean(batch, self.spec)).persist()
        try:
            spark = rows_df.sparkSession
            rows = collect_rows(rows_df)
            timer.lap(f"read {len(rows):,} distinct events")
            if not rows:
                return
            inserted = merge_new(spark, rows_df, self.path, self.spec.sink.partition_by)
            self.tally.add(SinkResult("silver", inserted))
            timer.lap(f"silver MERGE +{inserted:,}")
            search = self.search.write(rows_df, rows, batch_id)
            self.tally.add(search)
            if self.search.refused:
                refused = refused_rows(self.search.refused, "elasticsearch", batch_id)
                self._dead_letters(spark, refused, batch_id)
            timer.lap(f"elasticsearch {search.written:,} ({search.failed} refused)")
            stored = self.warehouse.write(rows_df, rows, batch_id)
            self.tally.add(stored)
            timer.lap(f"warehouse {stored.written:,}" + (" (replayed)" if stored.replayed else ""))
        finally:
            rows_df.unpersist()
        timer.report()

    def _dead_letters(self, spark: SparkSession, rows: list[tuple[Any, ...]], batch_id: int) -> None:
        from pyspark.sql import functions as F

        from highway.spark.delta_sink import write_batch

        meta = json.dumps({"highway": 1, "app": self.spec.name, "table": "dlq", "batch_id": batch_id})
        df = spark.createDataFrame(rows, DLQ_COLUMNS).withColumn("failed_at", F.current_timestamp())
        write_batch(df, self.dlq_path, self.spec.name, batch_id, meta, self.spec.dlq.partition_by)
        self.tally.add(SinkResult("dlq", len(rows)))
