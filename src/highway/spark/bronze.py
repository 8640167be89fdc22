"""Bronze: classify raw Kafka records into valid rows and dead letters, then write both exactly once.

A record is classified in this order (the first rule that matches gives its stable reason code):
``oversize`` (value longer than the app's limit), ``invalid_json`` (not a JSON object),
``wrong_type`` (a field does not fit the schema's type: a number that is not one, a bad timestamp, an
object or array where the schema says string), ``missing_field`` (a required field is absent or null).
Everything else is valid. Nothing of a valid record is dropped: fields the schema does not name are kept
in its ``_rescued_data`` column (a JSON object of their raw values; null when there are none) and
counted (``bronze_rescued`` in the heartbeat and in ``highway_rows_written_total``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from highway.catalog import BronzeSpec
from highway.connection import Connection
from highway.core.progress import PartitionRange, batch_metadata
from highway.spark.lineage import Lineage
from highway.spark.sinks import SinkResult, SinkTally

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

SPARK_TYPES = {
    "string": "STRING",
    "int": "INT",
    "long": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "STRING",  # parsed separately, so a bad timestamp is a wrong_type, not a silent null
}
CORRUPT = "_corrupt_record"
RESCUED = "_rescued_data"
KAFKA_COLUMNS = ("topic", "partition", "offset", "timestamp")
# ISO-8601 with an offset ('Z' for UTC) and optional fraction; anything else is a wrong_type
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS][.SSS][.SS][.S]XXX"


def json_schema_ddl(spec: BronzeSpec) -> str:
    fields = [f"`{f.name}` {SPARK_TYPES[f.type]}" for f in spec.schema]
    return ", ".join([*fields, f"`{CORRUPT}` STRING"])


def _reason(spec: BronzeSpec) -> Column:
    from pyspark.sql import functions as F

    missing = None
    for name in spec.required_fields:
        cond = F.col(f"event.{name}").isNull()
        missing = cond if missing is None else (missing | cond)
    bad_time = None
    for f in spec.schema:
        if f.type == "timestamp":
            cond = F.col(f"event.{f.name}").isNotNull() & F.col(f"_ts_{f.name}").isNull()
            bad_time = cond if bad_time is None else (bad_time | cond)
        if f.type == "string":  # Spark would keep an object or array as its JSON text: not a string
            kind = F.expr(f"schema_of_variant(variant_get(_variant, '$.{f.name}', 'variant'))")
            cond = kind.startswith("OBJECT") | kind.startswith("ARRAY")
            bad_time = cond if bad_time is None else (bad_time | cond)
    return (
        F.when(F.octet_length("value") > spec.source.max_event_bytes, F.lit("oversize"))
        .when(F.col("value").isNull() | F.col("_as_map").isNull(), F.lit("invalid_json"))
        .when(
            F.col(f"event.{CORRUPT}").isNotNull() | (bad_time if bad_time is not None else F.lit(False)),
            F.lit("wrong_type"),
        )
        .when(missing if missing is not None else F.lit(False), F.lit("missing_field"))
    )


def classify(raw: DataFrame, spec: BronzeSpec) -> DataFrame:
    """Kafka rows -> one row per record with the parsed event columns and ``dlq_reason`` (null = valid)."""
    from pyspark.sql import functions as F

    text = F.col("value").cast("string")
    small = F.octet_length("value") <= spec.source.max_event_bytes
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    parsed = raw.select(
        *KAFKA_COLUMNS,
        "key",
        "value",
        F.when(small, F.from_json(text, json_schema_ddl(spec), options)).alias("event"),
        F.when(small, F.from_json(text, "MAP<STRING, STRING>")).alias("_as_map"),
        F.when(small, F.try_parse_json(text)).alias("_variant"),
    )
    known = [f.name for f in spec.schema]
    unknown = F.map_filter("_as_map", lambda key, _value: ~key.isin(known))
    parsed = parsed.withColumn(RESCUED, F.when(F.size(unknown) > 0, F.to_json(unknown)))
    for f in spec.schema:
        if f.type == "timestamp":
            parsed = parsed.withColumn(
                f"_ts_{f.name}", F.try_to_timestamp(F.col(f"event.{f.name}"), F.lit(TIMESTAMP_FORMAT))
            )
    return parsed.withColumn("dlq_reason", _reason(spec))


def valid_rows(classified: DataFrame, spec: BronzeSpec) -> DataFrame:
    """Typed event columns + UTC partition columns + the Kafka coordinates of each row."""
    from pyspark.sql import functions as F

    columns = [
        F.col(f"_ts_{f.name}").alias(f.name)
        if f.type == "timestamp"
        else F.col(f"event.{f.name}").alias(f.name)
        for f in spec.schema
    ]
    event_time = F.col("_ts_event_time")
    return classified.where(F.col("dlq_reason").isNull()).select(
        *columns,
        F.to_date(event_time).alias("event_date"),
        F.hour(event_time).alias("event_hour"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("ingested_at"),
        F.col(RESCUED),
    )


def dead_letters(classified: DataFrame) -> DataFrame:
    """The raw bytes of every rejected record, where it came from, and why."""
    from pyspark.sql import functions as F

    return classified.where(F.col("dlq_reason").isNotNull()).select(
        F.col("key").alias("raw_key"),
        F.col("value").alias("raw_value"),
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("dlq_reason").alias("reason"),
        F.current_timestamp().alias("ingested_at"),
    )


class BronzeBatch:
    """The ``foreachBatch`` function of a bronze app: classify, then commit both tables exactly once."""

    def __init__(self, spec: BronzeSpec, conn: Connection, tally: SinkTally, lineage: Lineage) -> None:
        self.spec = spec
        self.lineage = lineage
        self.bronze_path = conn.lake_path(spec.sink.table)
        self.dlq_path = conn.lake_path(spec.dlq.table)
        self.tally = tally  # rows per table to the heartbeat and /metrics, like every app's sinks

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        from pyspark.sql import functions as F

        from highway.spark.delta_sink import already_committed, write_batch

        classified = classify(batch, self.spec).persist()
        try:
            stats = (
                classified.groupBy("topic", "partition")
                .agg(
                    F.min("offset").alias("first"),
                    F.max("offset").alias("last"),
                    F.count(F.lit(1)).alias("rows"),
                    F.sum(F.col("dlq_reason").isNull().cast("long")).alias("valid"),
                    F.sum((F.col("dlq_reason").isNull() & F.col(RESCUED).isNotNull()).cast("long")).alias(
                        "rescued"
                    ),
                )
                .collect()
            )
            ranges = [
                PartitionRange(r["topic"], r["partition"], r["first"], r["last"], r["rows"]) for r in stats
            ]
            n_valid = sum(r["valid"] for r in stats)
            n_rescued = sum(r["rescued"] for r in stats)
            n_invalid = sum(r["rows"] for r in stats) - n_valid
            app, spark = self.spec.name, batch.sparkSession
            txn = self.lineage.txn_app_id()  # (app, lineage): a new checkpoint's batch 0 is not a replay
            lineage = {"lineage": self.lineage.id, **self.lineage.position(batch_id)}
            # a replay of a committed batch: Delta would skip it; report it as replayed, not written again
            if n_valid and already_committed(spark, self.bronze_path, txn, batch_id):
                self.tally.add(SinkResult("bronze", 0, replayed=True))
                n_valid = 0
            if n_invalid and already_committed(spark, self.dlq_path, txn, batch_id):
                self.tally.add(SinkResult("dlq", 0, replayed=True))
                n_invalid = 0
            if n_valid:
                meta = batch_metadata(app, batch_id, "bronze", ranges, **lineage)
                write_batch(valid_rows(classified, self.spec), self.bronze_path, txn, batch_id, meta,
                            self.spec.sink.partition_by)  # fmt: skip
                self.tally.add(SinkResult("bronze", n_valid))
                if n_rescued:  # valid rows that kept fields the schema does not name
                    self.tally.add(SinkResult("bronze_rescued", n_rescued))
            if n_invalid:
                meta = batch_metadata(app, batch_id, "dlq", ranges, **lineage)
                write_batch(
                    dead_letters(classified), self.dlq_path, txn, batch_id, meta, self.spec.dlq.partition_by
                )
                self.tally.add(SinkResult("dlq", n_invalid))
        finally:
            classified.unpersist()
