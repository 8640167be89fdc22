"""Silver: bronze rows -> one row per event id, cleaned, into Delta, Elasticsearch and the warehouse.

Per micro-batch (``SilverBatch``):
1. dedup within the batch by ``event_id`` (the lowest Kafka offset wins: the first send);
2. MERGE into the silver Delta table on ``event_id``, insert-only: an id already there is skipped,
   so a duplicate re-sent hours later is dropped and a late event (new id) is always kept;
3. the same rows to Elasticsearch (``_id`` = event id, ``create``) and to the warehouse (insert with
   ON CONFLICT DO NOTHING + batch ledger): like the MERGE, both keep the first copy of an id, so an id
   re-sent later (even with other values) changes no store and the three hold the same values.
Each step is idempotent for a replayed batch, so the three stores converge on exactly the distinct
valid events, value for value. Documents Elasticsearch refuses for good go to the app's DLQ table
with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from highway.catalog import SilverSpec
from highway.connection import Connection
from highway.core.checkpoint import commit_metadata
from highway.core.search import index_template
from highway.spark.lineage import Lineage
from highway.spark.sinks import (
    ElasticsearchSink,
    MicroBatch,
    Refusal,
    Sink,
    SinkResult,
    SinkTally,
    StepTimer,
    WarehouseSink,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


KEY = "event_id"
LOWER = ("event_type",)
UPPER = ("currency",)
MONEY = ("price", "amount")
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
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
    # bronze's rescued fields stay in bronze: silver, its index and its table hold the schema's columns
    extra = [c for c in bronze.columns if c not in {f.name for f in spec.schema} and c != "_rescued_data"]
    return bronze.select(*columns, *extra)


def first_per_key(batch: DataFrame) -> DataFrame:
    """One row per event id: the one read first from Kafka (lowest partition, then offset)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(KEY).orderBy("kafka_partition", "kafka_offset")
    return batch.withColumn("_rank", F.row_number().over(order)).where("_rank = 1").drop("_rank")


class DeltaMergeSink:
    """The silver Delta table: insert the rows whose event id it does not hold yet (MERGE, insert-only).

    A replayed batch inserts nothing (its ids are there), so the table holds each event id once.
    """

    name = "silver"

    def __init__(self, app: str, path: str, partition_by: Sequence[str]) -> None:
        self.app = app
        self.path = path
        self.partition_by = tuple(partition_by)
        self.created = False  # the table exists (checked once per run: it costs a Delta log read)

    def write(self, batch: MicroBatch) -> SinkResult:
        from delta.tables import DeltaTable

        rows, spark = batch.df, batch.df.sparkSession
        if not self.created:
            DeltaTable.createIfNotExists(spark).location(self.path).addColumns(rows.schema).partitionedBy(
                *self.partition_by
            ).execute()
            self.created = True
        condition = f"t.{KEY} = s.{KEY}"
        if "event_date" in self.partition_by:  # prune: the same event always lands in the same date
            dates = sorted({r["event_date"] for r in batch.rows if r["event_date"] is not None})
            if dates:
                listed = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
                condition = f"t.event_date IN ({listed}) AND t.event_date = s.event_date AND {condition}"
        merge = DeltaTable.forPath(spark, self.path).alias("t").merge(rows.alias("s"), condition)
        position = json.loads(batch.sources) if batch.sources else {}
        meta = commit_metadata(self.app, batch.lineage, batch.batch_id, "silver", position)
        spark.conf.set(USER_METADATA, json.dumps(meta, sort_keys=True))  # MERGE takes no writer option
        try:
            metrics = merge.whenNotMatchedInsertAll().execute()
        finally:
            spark.conf.unset(USER_METADATA)
        first = metrics.first() if metrics is not None else None
        inserted = int(first["num_inserted_rows"]) if first is not None else 0
        return SinkResult(self.name, inserted)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def refused_rows(refusals: Sequence[Refusal], sink: str, batch_id: int) -> list[tuple[Any, ...]]:
    """DLQ rows for ``DLQ_COLUMNS``: id, sink, reason (at most 4,000 characters), status, row as JSON."""
    return [
        (
            r.row_id,
            sink,
            r.reason[:4000],
            r.status,
            json.dumps(r.row, default=_json_default, sort_keys=True),
            batch_id,
        )
        for r in refusals
    ]


class SilverBatch:
    """The ``foreachBatch`` function of a silver app."""

    def __init__(self, spec: SilverSpec, conn: Connection, tally: SinkTally, lineage: Lineage) -> None:
        from highway import warehouse

        self.spec = spec
        self.lineage = lineage
        self.tally = tally
        self.path = conn.lake_path(spec.sink.table)
        self.dlq_path = conn.lake_path(spec.dlq.table)
        fields = [(f.name, f.type) for f in spec.schema]
        template = index_template(spec.search.alias, fields)
        search = ElasticsearchSink(conn, spec.search, template, first_wins=True)
        stored = WarehouseSink(
            conn,
            spec.name,
            spec.warehouse.table,
            warehouse.SHOP_EVENTS_COLUMNS,
            spec.warehouse.key,
            spec.warehouse.retry_seconds,
            templates=[(spec.warehouse.table, warehouse.SHOP_EVENTS_TABLE)],
            first_wins=True,
        )
        # in this order: the silver table first (gold reads it), then search, then the warehouse
        self.sinks: tuple[Sink, ...] = (
            DeltaMergeSink(spec.name, self.path, spec.sink.partition_by),
            search,
            stored,
        )
        self.warehouse = stored

    def __call__(self, df: DataFrame, batch_id: int) -> None:
        timer = StepTimer(f"{self.spec.name} batch {batch_id}")
        lineage, sources = self.lineage.id, self.lineage.position_json(batch_id)
        batch = MicroBatch(first_per_key(clean(df, self.spec)).persist(), batch_id, lineage, sources)
        try:
            timer.lap(f"read {len(batch.rows):,} distinct events")
            if not batch.rows:
                return
            # every sink's refusals go to the DLQ in one write per batch (one Delta txn version), made
            # inside the warehouse's transaction before it commits: no crash can lose one of them
            dead: list[tuple[Any, ...]] = []
            for sink in self.sinks:
                if sink is self.warehouse:
                    flush = partial(self._all_dead_letters, batch, tuple(dead))
                    result = self.warehouse.write(batch, flush)
                    if result.replayed and dead:  # its first attempt wrote them before committing
                        self._dead_letters(batch, dead)  # (Delta skips the replayed version)
                else:
                    result = sink.write(batch)
                    dead += refused_rows(result.refused, sink.name, batch_id)
                self.tally.add(result)
                timer.lap(result.summary())
        finally:
            batch.df.unpersist()
        timer.report()

    def _all_dead_letters(
        self, batch: MicroBatch, earlier: tuple[tuple[Any, ...], ...], refused: tuple[Refusal, ...]
    ) -> None:
        """The earlier sinks' refusals and the warehouse's, in the one DLQ write of the batch."""
        self._dead_letters(batch, [*earlier, *refused_rows(refused, self.warehouse.name, batch.batch_id)])

    def _dead_letters(self, batch: MicroBatch, rows: list[tuple[Any, ...]]) -> None:
        """Refused rows into the DLQ table, once per batch (Delta's txnAppId/txnVersion)."""
        from pyspark.sql import functions as F

        if not rows:
            return
        from highway.spark.delta_sink import write_batch

        spark = batch.df.sparkSession
        position = json.loads(batch.sources) if batch.sources else {}
        meta = json.dumps(commit_metadata(self.spec.name, batch.lineage, batch.batch_id, "dlq", position))
        df = spark.createDataFrame(rows, DLQ_COLUMNS).withColumn("failed_at", F.current_timestamp())
        txn = self.lineage.txn_app_id()
        write_batch(df, self.dlq_path, txn, batch.batch_id, meta, self.spec.dlq.partition_by)
        self.tally.add(SinkResult("dlq", len(rows)))
