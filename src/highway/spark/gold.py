"""Gold: windowed orders, units and revenue per product and event-time hour, with a watermark.

Per micro-batch of new silver rows (``GoldBatch``):
- the watermark W is the latest event time the app has seen minus ``watermark_minutes``; the batch is
  split with the W stored before it: an order with event time < W is *late* and goes to the
  late-events table, every other order adds to its window (update mode: only the windows the batch
  touched are written, and their counts grow as orders arrive);
- one PostgreSQL transaction adds the window increments, inserts the late events, advances W and
  writes the batch's ledger row, so a replayed batch changes nothing and every order is counted
  exactly once: sum(orders over windows) + late orders = distinct orders in silver.

The window state lives in the warehouse next to the ledger instead of Spark's state store: the
upsert, the late events and the watermark then commit atomically, and the late events are the rows
themselves, not a count after partial aggregation (Spark's ``numRowsDroppedByWatermark``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from highway import warehouse
from highway.catalog import GoldSpec
from highway.connection import Connection
from highway.core.windows import next_watermark
from highway.spark.lineage import Lineage
from highway.spark.sinks import SinkResult, SinkTally, WarehouseSink, collect_rows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

NO_GROUP = "(none)"


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


class GoldBatch:
    """The ``foreachBatch`` function of a gold app."""

    def __init__(self, spec: GoldSpec, conn: Connection, tally: SinkTally, lineage: Lineage) -> None:
        self.spec = spec
        self.lineage = lineage
        self.tally = tally
        self.group = spec.aggregation.group_by
        self.columns = ("window_start", "window_end", self.group, *warehouse.WINDOW_MEASURES)
        self.sink = WarehouseSink(
            conn,
            spec.name,
            spec.warehouse.table,
            self.columns,
            spec.warehouse.key,
            spec.warehouse.retry_seconds,
            templates=[
                (spec.warehouse.table, warehouse.WINDOWS_TABLE),
                (spec.late_table, warehouse.LATE_EVENTS_TABLE),
            ],
        )

    def split(self, batch: DataFrame, watermark: datetime | None) -> tuple[DataFrame, DataFrame]:
        """(on-time orders, late orders) of the batch, judged against ``watermark``."""
        from pyspark.sql import functions as F

        orders = batch.where(F.col("event_type") == self.spec.aggregation.event_type)
        if watermark is None:
            return orders, orders.limit(0)
        mark = F.timestamp_micros(F.lit(_micros(watermark)))
        return orders.where(F.col("event_time") >= mark), orders.where(F.col("event_time") < mark)

    def windows(self, orders: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        span = f"{self.spec.aggregation.window_minutes} minutes"
        return (
            orders.groupBy(
                F.window("event_time", span).alias("w"),
                F.coalesce(F.col(self.group), F.lit(NO_GROUP)).alias("g"),
            )
            .agg(
                F.count(F.lit(1)).alias("orders"),
                F.sum(F.coalesce(F.col("quantity"), F.lit(0))).cast("long").alias("units"),
                F.sum(F.coalesce(F.col("amount"), F.lit(0.0))).alias("revenue"),
            )
            .select(
                F.col("w.start").alias("window_start"),
                F.col("w.end").alias("window_end"),
                F.col("g").alias(self.group),
                "orders",
                "units",
                "revenue",
            )
        )

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        from pyspark.sql import functions as F

        from highway.adapters import postgres

        app = self.spec.name
        before, _ = self.sink.retrying(lambda pg: postgres.read_watermark(pg, app), f"{app}: read watermark")
        batch = batch.persist()
        try:
            latest = batch.agg(F.max(F.unix_micros("event_time")).alias("m")).first()
            on_time, late = self.split(batch, before)
            windows = collect_rows(self.windows(on_time))
            late_rows = collect_rows(
                late.select(
                    "event_id",
                    "event_type",
                    "event_time",
                    F.col(self.group).alias("group_key"),
                    "amount",
                )
            )
        finally:
            batch.unpersist()
        after = next_watermark(
            before,
            latest["m"] if latest is not None else None,
            timedelta(minutes=self.spec.aggregation.watermark_minutes),
        )
        work = postgres.WindowBatch(
            table=self.spec.warehouse.table,
            columns=self.columns,
            key_columns=self.spec.warehouse.key,
            sum_columns=warehouse.WINDOW_MEASURES,
            rows=[tuple(r[c] for c in self.columns) for r in windows],
            late_table=self.spec.late_table,
            late_columns=warehouse.LATE_EVENTS_COLUMNS,
            late_rows=[_late_tuple(app, r, before, batch_id) for r in late_rows],
            watermark_before=before,
            watermark_after=after,
        )
        outcome, retries = self.sink.retrying(
            lambda pg: postgres.write_window_batch(
                pg, app, batch_id, work, self.lineage.id, self.lineage.position_json(batch_id)
            ),
            f"batch {batch_id} -> PostgreSQL {self.spec.warehouse.table}",
        )
        self.tally.add(SinkResult("warehouse", len(work.rows), (), outcome.replayed, retries))
        if not outcome.replayed:
            self.tally.add(SinkResult("late", len(work.late_rows)))


def _late_tuple(app: str, row: dict[str, Any], watermark: datetime | None, batch_id: int) -> tuple[Any, ...]:
    return (
        app,
        row["event_id"],
        row["event_type"],
        row["event_time"],
        row["group_key"],
        row["amount"],
        watermark,
        batch_id,
    )
