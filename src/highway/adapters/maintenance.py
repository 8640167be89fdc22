"""highway's own small Delta tables (the checkpoint audit), written without Spark through delta-rs.

Several processes may append (each app's driver, the CLI, Airflow): delta-rs commits with a conditional
PUT (``If-None-Match``) of the next log entry, so two writers can never both take one version; s3proxy
and S3 both honour it. Spark (``highway sql``) reads the tables like any other Delta table. The S3 keys
go to delta-rs in process memory, never to a command line or a log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from highway.connection import Connection
from highway.errors import TerminalError, TransientError

CHECKPOINT_AUDIT = "_maintenance/checkpoint_audit"
CHECKPOINT_AUDIT_SCHEMA = pa.schema(
    [
        ("app", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
        ("who", pa.string()),
        ("why", pa.string()),
        ("mode", pa.string()),
        ("backup", pa.string()),
        ("actions", pa.int32()),
        ("skipped", pa.int64()),  # reset: offsets it skipped (not read by the app), counted per range
        ("reread", pa.int64()),  # reset: offsets it reads a second time
        ("lineage_before", pa.string()),
        ("lineage_after", pa.string()),
        ("batch_before", pa.int64()),  # the last committed batch
        ("batch_after", pa.int64()),
        ("findings_before", pa.string()),  # the codes, comma-separated
        ("findings_after", pa.string()),
        ("ranges", pa.string()),  # JSON: per partition, from, to, skipped, reread
        ("entry", pa.string()),  # JSON: the whole entry (actions with their reasons, both inspections)
    ]
)


def _options(conn: Connection) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": conn.s3_endpoint,
        "AWS_ACCESS_KEY_ID": conn.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": conn.s3_secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true" if conn.s3_endpoint.startswith("http://") else "false",
    }


def _uri(conn: Connection, table: str) -> str:
    return f"s3://{conn.lake_bucket}/{table}"


def append(conn: Connection, table: str, schema: pa.Schema, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` (one commit), creating the table on first use."""
    from deltalake import write_deltalake
    from deltalake.exceptions import DeltaError, DeltaProtocolError, SchemaMismatchError

    data = pa.Table.from_pylist([dict(r) for r in rows], schema=schema)
    try:
        write_deltalake(_uri(conn, table), data, mode="append", storage_options=_options(conn))
    except (OSError, DeltaError) as exc:  # S3 out of reach, a lost commit race: worth a retry
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        what = f"append to {table} at {conn.s3_endpoint}: {first}"
        if isinstance(exc, DeltaProtocolError | SchemaMismatchError):
            raise TerminalError(what) from None
        raise TransientError(what) from None


def read(conn: Connection, table: str) -> list[dict[str, Any]]:
    """Every row, oldest commit first ([] when the table does not exist yet)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        found = DeltaTable(_uri(conn, table), storage_options=_options(conn))
    except TableNotFoundError:
        return []
    return list(found.to_pyarrow_table().to_pylist())
