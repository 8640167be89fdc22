"""Exactly-once Delta writes from ``foreachBatch``.

Delta records ``(txnAppId, txnVersion)`` in the commit; a replayed batch with a version the table
has already seen is skipped by Delta itself. The batch's Kafka offsets ride along in the commit's
``userMetadata`` so a lost checkpoint can be rebuilt from the table's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def write_batch(
    df: DataFrame,
    path: str,
    app_id: str,
    batch_id: int,
    user_metadata: str,
    partition_by: tuple[str, ...] = (),
) -> None:
    writer = (
        df.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", batch_id)
        .option("userMetadata", user_metadata)
        .option("mergeSchema", "true")  # a column added by a newer highway (bronze's _rescued_data)
    )
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)


def table_exists(spark: Any, path: str) -> bool:
    """Whether ``path`` holds a Delta log, asked of Hadoop (``DeltaTable.isDeltaTable`` caches a "no").

    S3 that cannot be listed is a ``TransientError`` naming the path.
    """
    from py4j.protocol import Py4JJavaError

    from highway.errors import TransientError

    jvm = spark.sparkContext._jvm
    log = jvm.org.apache.hadoop.fs.Path(f"{path}/_delta_log")
    try:
        return bool(log.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(log))
    except Py4JJavaError as exc:
        cause = str(exc.java_exception).splitlines()[0]
        raise TransientError(
            f"cannot list {path} on S3: {cause} (is S3 up? try `highway stack up`)"
        ) from None


def committed_version(spark: Any, path: str, app_id: str) -> int | None:
    """The last ``txnVersion`` the table committed for ``app_id`` (None: never, or no table yet).

    Read from the table's snapshot through the JVM (Delta has no Python API for it); it lets a batch
    function know a replayed batch is already in the table before it writes, and count it as such.
    """
    from py4j.protocol import Py4JError

    jvm = spark.sparkContext._jvm
    try:
        log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
        snapshot = log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty())
        if snapshot.version() < 0:
            return None
        found = snapshot.transactions().get(app_id)
    except Py4JError:  # an internal API: if it moves, writes stay exactly-once, only the count may not
        return None
    return int(found.get()) if found.isDefined() else None


def already_committed(spark: Any, path: str, app_id: str, batch_id: int) -> bool:
    done = committed_version(spark, path, app_id)
    return done is not None and done >= batch_id
