"""Thin wrapper over psycopg 3 for the warehouse: connect, migrate, and write a micro-batch exactly once.

Client errors leave this module as ``TransientError`` (server down or restarting, connection lost,
serialization failure: retry later) or ``TerminalError`` (wrong password, unknown database, bad data:
retrying will not help). No message ever holds the password: libpq's own text is used only after the
password, if it appears, is masked, and the original exception is not chained.

The SQL text comes from ``highway.core.warehouse`` (identifiers checked and quoted there); values only
travel through COPY or as query parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from highway import warehouse
from highway.connection import Connection
from highway.core import warehouse as plan
from highway.errors import HighwayError, TerminalError, TransientError

CONNECT_TIMEOUT = 5
STAGING_TABLE = "highway_staging"
# libpq has no SQLSTATE for a refused login, only its text: these say "the settings are wrong"
_TERMINAL_LOGIN_TEXT = (
    "password authentication failed",
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "not permitted to log in",
    "permission denied",
    "no password supplied",
)

PgConnection = psycopg.Connection[Any]


@dataclass(frozen=True)
class BatchOutcome:
    """What ``write_batch`` did: rows inserted or updated, or nothing because the batch was already there."""

    written: int
    replayed: bool
    refused: tuple[tuple[int, str], ...] = ()  # (index of the row in the batch, the database's reason)


def _reason(exc: Exception, password: str = "") -> str:
    """libpq's reason in one line, e.g. ``Connection refused``, with the password masked."""
    text = str(exc).split(" failed: ")[-1].replace("FATAL:", "").strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line.replace(password, "***") if password else line


def _login_error(exc: psycopg.Error, conn: Connection) -> HighwayError:
    where = (
        f"PostgreSQL at {conn.pg_host}:{conn.pg_port}, database {conn.pg_database!r}, user {conn.pg_user!r}"
    )
    reason = _reason(exc, conn.pg_password)
    if any(text in reason.lower() for text in _TERMINAL_LOGIN_TEXT):
        return TerminalError(f"{where}: login refused: {reason}")
    return TransientError(f"{where} is not reachable: {reason}")


def connect(conn: Connection, timeout: int = CONNECT_TIMEOUT) -> PgConnection:
    """An autocommit connection; ``migrate`` and ``write_batch`` open their own transactions."""
    try:
        return psycopg.connect(
            host=conn.pg_host,
            port=conn.pg_port,
            user=conn.pg_user,
            password=conn.pg_password,
            dbname=conn.pg_database,
            connect_timeout=timeout,
            application_name="highway",
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise _login_error(exc, conn) from None


def _wrap(exc: psycopg.Error, action: str) -> HighwayError:
    reason = _reason(exc)
    if exc.sqlstate:
        reason = f"{reason} (SQLSTATE {exc.sqlstate})"
    if isinstance(exc, psycopg.OperationalError):
        return TransientError(f"PostgreSQL: {action}: {reason}")
    return TerminalError(f"PostgreSQL: {action}: {reason}")


def _require_idle(pgconn: PgConnection) -> None:
    """Our transactions must be top-level: inside a caller's one they would only be savepoints."""
    status = pgconn.info.transaction_status
    if status != TransactionStatus.IDLE:
        raise TerminalError(
            f"PostgreSQL: the connection is not idle ({status.name}); the warehouse writes commit their own "
            "transactions, pass a connection from highway.adapters.postgres.connect"
        )


# --- migrations ------------------------------------------------------------------------------


def _applied_versions(cur: psycopg.Cursor[Any]) -> set[int]:
    exists = cur.execute("SELECT to_regclass(%s)", [warehouse.MIGRATIONS_TABLE]).fetchone()
    if exists is None or exists[0] is None:
        return set()
    rows = cur.execute(f"SELECT version FROM {plan.quote_table(warehouse.MIGRATIONS_TABLE)}")
    return {row[0] for row in rows}


def _apply_next(pgconn: PgConnection, available: list[plan.Migration]) -> int | None:
    """Apply the first pending migration with its record, in one transaction under the migration lock."""
    with pgconn.transaction(), pgconn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [plan.MIGRATION_LOCK_KEY])
        pending = plan.pending_migrations(_applied_versions(cur), available)
        if not pending:
            return None
        version, name = pending[0]
        cur.execute(warehouse.migration_sql(pending[0]))
        cur.execute(
            f"INSERT INTO {plan.quote_table(warehouse.MIGRATIONS_TABLE)} (version, name, applied_at) "
            "VALUES (%s, %s, now())",
            [version, name],
        )
    return version


def migrate(pgconn: PgConnection) -> list[int]:
    """Apply the pending migration files in order; return the versions applied now (empty if none).

    Each file runs in its own transaction together with its ``schema_migrations`` row, under a
    transaction-scoped advisory lock, so two apps starting at once apply each file exactly once.
    """
    _require_idle(pgconn)
    available = warehouse.available_migrations()
    applied: list[int] = []
    try:
        while (version := _apply_next(pgconn, available)) is not None:
            applied.append(version)
    except psycopg.Error as exc:
        raise _wrap(exc, f"migrate the warehouse (applied so far: {applied})") from exc
    return applied


def ensure_table_like(pgconn: PgConnection, table: str, template: str) -> None:
    """Create ``table`` with the columns, keys and defaults of ``template`` (a migrated table) if absent.

    A catalog entry may name its own warehouse table (a second pipeline, a test's isolated copy); the
    migrations define the shape once, as the template.
    """
    if table == template:
        return
    _require_idle(pgconn)
    try:
        pgconn.execute(
            f"CREATE TABLE IF NOT EXISTS {plan.quote_table(table)} "
            f"(LIKE {plan.quote_table(template)} INCLUDING ALL)"
        )
    except psycopg.Error as exc:
        raise _wrap(exc, f"create {table} like {template}") from exc


# --- batch writes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerKey:
    """A batch in the ledger: the app, its checkpoint lineage (Spark's query id), the batch id, and the
    batch's source end offsets (JSON, recorded so a checkpoint can be rebuilt from the warehouse)."""

    app: str
    batch_id: int
    lineage: str = ""
    sources: str | None = None


def _claim_batch(cur: psycopg.Cursor[Any], key: LedgerKey, table: str) -> bool:
    """Insert the ledger row first: a concurrent writer of the same batch waits on it, then finds it."""
    cur.execute(
        f"INSERT INTO {plan.quote_table(warehouse.LEDGER_TABLE)} "
        "(app, lineage, batch_id, table_name, rows, sources) "
        "VALUES (%s, %s, %s, %s, 0, %s) ON CONFLICT DO NOTHING",
        [key.app, key.lineage, key.batch_id, table, key.sources],
    )
    return cur.rowcount == 1


def _count_rows(cur: psycopg.Cursor[Any], key: LedgerKey, table: str, rows: int) -> None:
    cur.execute(
        f"UPDATE {plan.quote_table(warehouse.LEDGER_TABLE)} SET rows = %s "
        "WHERE app = %s AND lineage = %s AND batch_id = %s AND table_name = %s",
        [rows, key.app, key.lineage, key.batch_id, table],
    )


def newest_ledger_row(pgconn: PgConnection, app: str) -> tuple[str, int, str | None, float] | None:
    """(lineage, batch id, sources JSON, commit time) of the app's newest ledger row, or None."""
    try:
        row = pgconn.execute(
            f"SELECT lineage, batch_id, sources, extract(epoch FROM committed_at) "
            f"FROM {plan.quote_table(warehouse.LEDGER_TABLE)} WHERE app = %s "
            "ORDER BY committed_at DESC, batch_id DESC LIMIT 1",
            [app],
        ).fetchone()
    except psycopg.Error as exc:
        raise _wrap(exc, f"read the ledger of app {app!r}") from exc
    if row is None:
        return None
    return str(row[0]), int(row[1]), row[2], float(row[3])


def _copy_rows(cur: psycopg.Cursor[Any], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    count = 0
    with cur.copy(plan.copy_sql(STAGING_TABLE, columns)) as copy:
        for count, row in enumerate(rows, start=1):
            copy.write_row((*row, count))
    return count


def write_batch(
    pgconn: PgConnection,
    app: str,
    batch_id: int,
    table: str,
    columns: Sequence[str],
    key_columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    lineage: str = "",
    sources: str | None = None,
    first_wins: bool = False,
    before_commit: Callable[[Sequence[tuple[int, str]]], None] | None = None,
) -> BatchOutcome:
    """Upsert one micro-batch into ``table`` exactly once per ``(app, lineage, batch_id, table)``.

    One transaction: claim the batch in the ledger (already there: nothing to do, ``replayed=True``),
    COPY the rows into a temporary staging table, upsert one row per key into ``table`` (within the
    batch the greatest ``kafka_offset`` wins, else the later row), record the row count in the ledger.
    With ``first_wins`` the first copy of a key wins instead and an existing row is never changed.

    A row the database refuses for good (a value it cannot store, a constraint: SQLSTATE classes 22 and
    23) fails the one statement; the batch is then written again row by row, each in a savepoint, and
    the refused rows come back in ``refused`` with the database's reason (for the caller's DLQ).
    ``before_commit(refused)`` runs inside the transaction, before it commits (not for a replayed batch):
    the caller stores the refused rows there, so a crash can never leave the batch committed and its
    refusals unrecorded (a replay finds the ledger row and refuses nothing again).
    """
    upsert = plan.upsert_sql(table, columns, key_columns, STAGING_TABLE, first_wins)
    _require_idle(pgconn)
    key = LedgerKey(app, batch_id, lineage, sources)
    rows = list(rows)
    action = f"write batch {batch_id} of app {app!r} to {table}"
    try:
        with pgconn.transaction(), pgconn.cursor() as cur:
            if not _claim_batch(cur, key, table):
                return BatchOutcome(written=0, replayed=True)
            cur.execute(plan.staging_sql(table, columns, STAGING_TABLE))
            _copy_rows(cur, columns, rows)
            written = cur.execute(upsert).rowcount
            _count_rows(cur, key, table, written)
            if before_commit is not None:
                before_commit(())
    except (psycopg.DataError, psycopg.IntegrityError):
        return _write_row_by_row(
            pgconn, key, table, columns, key_columns, rows, first_wins, action, before_commit
        )
    except psycopg.Error as exc:
        raise _wrap(exc, action) from exc
    return BatchOutcome(written=written, replayed=False)


def _write_row_by_row(
    pgconn: PgConnection,
    key: LedgerKey,
    table: str,
    columns: Sequence[str],
    key_columns: Sequence[str],
    rows: list[Sequence[Any]],
    first_wins: bool,
    action: str,
    before_commit: Callable[[Sequence[tuple[int, str]]], None] | None,
) -> BatchOutcome:
    """The batch again, one savepoint per row: what the database refuses is set aside with its reason."""
    sql = plan.row_upsert_sql(table, columns, key_columns, first_wins)
    written, refused = 0, []
    try:
        with pgconn.transaction(), pgconn.cursor() as cur:
            if not _claim_batch(cur, key, table):
                return BatchOutcome(written=0, replayed=True)
            for index in plan.row_order(columns, rows):
                try:
                    with pgconn.transaction():
                        written += cur.execute(sql, list(rows[index])).rowcount
                except (psycopg.DataError, psycopg.IntegrityError) as exc:
                    state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
                    refused.append((index, f"{_reason(exc)}{state}"))
            _count_rows(cur, key, table, written)
            if before_commit is not None:
                before_commit(tuple(refused))
    except psycopg.Error as exc:
        raise _wrap(exc, action) from exc
    return BatchOutcome(written=written, replayed=False, refused=tuple(refused))


# --- windowed aggregates (gold) ----------------------------------------------------------------


@dataclass(frozen=True)
class WindowBatch:
    """One gold micro-batch: window increments, late events, and the watermark before and after it."""

    table: str
    columns: Sequence[str]
    key_columns: Sequence[str]
    sum_columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    late_table: str
    late_columns: Sequence[str]
    late_rows: Sequence[Sequence[Any]]
    watermark_before: Any  # datetime | None: what the batch was split with
    watermark_after: Any  # datetime | None


def read_watermark(pgconn: PgConnection, app: str) -> Any:
    """The app's stored event-time watermark (an aware datetime), or None before its first batch."""
    try:
        row = pgconn.execute(
            f"SELECT watermark FROM {plan.quote_table(warehouse.WATERMARKS_TABLE)} WHERE app = %s", [app]
        ).fetchone()
    except psycopg.Error as exc:
        raise _wrap(exc, f"read the watermark of app {app!r}") from exc
    return None if row is None else row[0]


def write_window_batch(
    pgconn: PgConnection,
    app: str,
    batch_id: int,
    batch: WindowBatch,
    lineage: str = "",
    sources: str | None = None,
) -> BatchOutcome:
    """Add one batch's window increments, record its late events and advance the watermark, once.

    One transaction with the ledger row: a replayed batch finds the ledger row and does nothing. The
    stored watermark is locked and compared with the one the batch was split with; a difference means
    another writer moved it, and the batch is refused rather than counted against the wrong watermark.
    """
    _require_idle(pgconn)
    marks = plan.quote_table(warehouse.WATERMARKS_TABLE)
    key = LedgerKey(app, batch_id, lineage, sources)
    upsert = plan.additive_upsert_sql(batch.table, batch.columns, batch.key_columns, batch.sum_columns)
    late = plan.insert_ignore_sql(batch.late_table, batch.late_columns)
    try:
        with pgconn.transaction(), pgconn.cursor() as cur:
            if not _claim_batch(cur, key, batch.table):
                return BatchOutcome(written=0, replayed=True)
            row = cur.execute(f"SELECT watermark FROM {marks} WHERE app = %s FOR UPDATE", [app]).fetchone()
            stored = None if row is None else row[0]
            if stored != batch.watermark_before:
                raise TerminalError(
                    f"PostgreSQL: app {app!r} batch {batch_id}: the watermark moved from "
                    f"{batch.watermark_before} to {stored} while the batch ran; is a second driver running?"
                )
            if batch.rows:
                cur.executemany(upsert, batch.rows)
            if batch.late_rows:
                cur.executemany(late, batch.late_rows)
            if batch.watermark_after is not None and batch.watermark_after != stored:
                cur.execute(
                    f"INSERT INTO {marks} (app, watermark, batch_id) VALUES (%s, %s, %s) "
                    "ON CONFLICT (app) DO UPDATE SET watermark = EXCLUDED.watermark, "
                    "batch_id = EXCLUDED.batch_id, updated_at = now()",
                    [app, batch.watermark_after, batch_id],
                )
            written = len(batch.rows) + len(batch.late_rows)
            _count_rows(cur, key, batch.table, written)
    except psycopg.Error as exc:
        raise _wrap(exc, f"write window batch {batch_id} of app {app!r} to {batch.table}") from exc
    return BatchOutcome(written=written, replayed=False)
