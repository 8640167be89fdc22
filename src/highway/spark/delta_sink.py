"""Exactly-once Delta writes from ``foreachBatch``.

Delta records ``(txnAppId, txnVersion)`` in the commit; a replayed batch with a version the table
has already seen is skipped by Delta itself. The batch's Kafka offsets ride along in the commit's
``userMetadata`` so a lost checkpoint can be rebuilt from the table's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    )
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(path)
