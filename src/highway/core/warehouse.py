"""Pure decisions for the PostgreSQL warehouse: which migrations to apply, and the SQL of a batch write.

No I/O and no database client here. Every identifier that goes into SQL text is checked against
``[a-z_][a-z0-9_]*`` (at most 63 characters, PostgreSQL's limit) and double-quoted, so a name can
never change the statement; anything else is refused with a ``TerminalError`` naming the value.
Values never go into SQL text: they travel through COPY.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from highway.errors import TerminalError

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
MAX_IDENTIFIER_LENGTH = 63
MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# pg_advisory_xact_lock key held while migrating, so two apps starting at once migrate one by one
MIGRATION_LOCK_KEY = 0x68_77_5F_6D_69_67  # "hw_mig"
# column the staging table adds to number a batch's rows in arrival order ("last one wins")
ROW_ORDINAL = "_hw_row"
# when a batch holds one key twice, the row with the greatest value here wins (then the later row)
NEWEST_FIRST = ("kafka_offset",)

Migration = tuple[int, str]


def quote_identifier(name: str) -> str:
    """``name`` double-quoted, after checking it is a plain lower-case identifier."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or len(name) > MAX_IDENTIFIER_LENGTH:
        raise TerminalError(
            f"warehouse: identifier {name!r} refused; allowed: [a-z_][a-z0-9_]*, "
            f"at most {MAX_IDENTIFIER_LENGTH} characters"
        )
    return f'"{name}"'


def quote_table(name: str) -> str:
    """``table`` or ``schema.table``, each part checked and quoted."""
    parts = name.split(".") if isinstance(name, str) else [name]
    if len(parts) > 2:
        raise TerminalError(f"warehouse: table name {name!r} refused; allowed: table or schema.table")
    return ".".join(quote_identifier(part) for part in parts)


def _checked_columns(columns: Sequence[str], key_columns: Sequence[str]) -> None:
    if not columns:
        raise TerminalError("warehouse: a batch write needs at least one column")
    seen: set[str] = set()
    for column in columns:
        quote_identifier(column)
        if column in seen:
            raise TerminalError(f"warehouse: column {column!r} is listed twice")
        seen.add(column)
    if not key_columns:
        raise TerminalError("warehouse: an upsert needs at least one key column")
    for key in key_columns:
        if key not in seen:
            raise TerminalError(f"warehouse: key column {key!r} is not one of the columns {list(columns)}")


def _column_list(columns: Iterable[str]) -> str:
    return ", ".join(quote_identifier(c) for c in columns)


def staging_sql(table: str, columns: Sequence[str], staging: str) -> str:
    """A temporary table with ``table``'s types for ``columns`` and no constraints, dropped at commit.

    Built from a query rather than LIKE: LIKE would copy NOT NULL constraints of columns a batch does
    not carry (``loaded_at``) and defaults that would run for every staged row.
    """
    return (
        f"CREATE TEMPORARY TABLE {quote_identifier(staging)} ON COMMIT DROP AS "
        f"SELECT {_column_list(columns)}, 0::bigint AS {quote_identifier(ROW_ORDINAL)} "
        f"FROM {quote_table(table)} WITH NO DATA"
    )


def copy_sql(staging: str, columns: Sequence[str]) -> str:
    """COPY into the staging table: the batch's columns, then the row's ordinal in the batch."""
    return f"COPY {quote_identifier(staging)} ({_column_list([*columns, ROW_ORDINAL])}) FROM STDIN"


def dedup_order(columns: Sequence[str]) -> list[str]:
    """Which row of a key wins in one batch: the greatest ``kafka_offset`` if present, else the last."""
    return [c for c in NEWEST_FIRST if c in columns] + [ROW_ORDINAL]


def upsert_sql(
    table: str, columns: Sequence[str], key_columns: Sequence[str], staging: str, first_wins: bool = False
) -> str:
    """INSERT the staging rows into ``table``, one per key, updating the non-key columns of existing rows.

    DISTINCT ON keeps one row per key (the winner of ``dedup_order``): ON CONFLICT refuses to touch
    one target row twice in a statement. When every column is a key, existing rows are left alone.
    ``first_wins``: the first copy of a key wins, in the batch (the smallest ``kafka_offset``, else the
    earlier row) and against the table (an existing row is left as it is), as an insert-only MERGE does.
    """
    _checked_columns(columns, key_columns)
    keys = _column_list(key_columns)
    direction = "ASC" if first_wins else "DESC"
    order = ", ".join(f"{quote_identifier(c)} {direction} NULLS LAST" for c in dedup_order(columns))
    non_keys = [c for c in columns if c not in key_columns]
    if non_keys and not first_wins:
        updates = ", ".join(f"{quote_identifier(c)} = EXCLUDED.{quote_identifier(c)}" for c in non_keys)
        action = f"DO UPDATE SET {updates}"
    else:
        action = "DO NOTHING"
    return (
        f"INSERT INTO {quote_table(table)} ({_column_list(columns)}) "
        f"SELECT DISTINCT ON ({keys}) {_column_list(columns)} FROM {quote_identifier(staging)} "
        f"ORDER BY {keys}, {order} "
        f"ON CONFLICT ({keys}) {action}"
    )


def parse_migration_filename(filename: str) -> Migration:
    """``0001_shop_events.sql`` -> ``(1, "shop_events")``."""
    match = MIGRATION_FILE.fullmatch(filename)
    if not match:
        raise TerminalError(
            f"warehouse: migration file {filename!r} refused; allowed: NNNN_lower_snake_name.sql"
        )
    return int(match.group(1)), match.group(2)


def _checked_available(available: Iterable[Migration]) -> list[Migration]:
    ordered = sorted(available)
    for (version, name), (next_version, next_name) in itertools.pairwise(ordered):
        if version == next_version:
            raise TerminalError(
                f"warehouse: migration version {version} is used twice: {name!r} and {next_name!r}"
            )
    versions = [version for version, _ in ordered]
    expected = list(range(1, len(ordered) + 1))
    if versions != expected:
        missing = sorted(set(range(1, max(versions, default=0) + 1)) - set(versions))
        raise TerminalError(
            f"warehouse: migrations must be numbered 1, 2, 3... without gaps; "
            f"missing {missing}, found {versions}"
        )
    return ordered


def pending_migrations(applied: set[int], available: list[Migration]) -> list[Migration]:
    """The migrations still to apply, in order.

    Refused: a version used twice, a gap in the files, a database that holds a version the files do not
    know (migrated by a newer highway), or applied versions with a hole (someone skipped one).
    """
    ordered = _checked_available(available)
    unknown = sorted(applied - {version for version, _ in ordered})
    if unknown:
        raise TerminalError(
            f"warehouse: the database has migration(s) {unknown} that this highway does not know "
            f"(it knows 1..{len(ordered)}); it was migrated by a newer version"
        )
    if applied and applied != set(range(1, max(applied) + 1)):
        missing = sorted(set(range(1, max(applied) + 1)) - applied)
        raise TerminalError(
            f"warehouse: applied migrations {sorted(applied)} have a gap (missing {missing}); "
            f"refusing to apply later ones out of order"
        )
    return [m for m in ordered if m[0] not in applied]


def additive_upsert_sql(
    table: str, columns: Sequence[str], key_columns: Sequence[str], sums: Sequence[str]
) -> str:
    """INSERT rows given as parameters; on a key already there, add ``sums`` to the stored values.

    Used by windowed aggregates: each batch carries the increments of the windows it touched, and the
    batch ledger (same transaction) makes sure one batch's increments are added once. The table must
    have an ``updated_at`` column, which the statement sets itself (so it is not one of ``columns``).
    """
    _checked_columns(columns, key_columns)
    if not sums:
        raise TerminalError("warehouse: an additive upsert needs at least one sum column")
    if len(set(sums)) != len(sums):
        raise TerminalError(f"warehouse: sum columns {list(sums)} name a column twice")
    if "updated_at" in columns:
        raise TerminalError(
            "warehouse: updated_at is set by the additive upsert itself; leave it out of the columns"
        )
    for column in sums:
        if column not in columns or column in key_columns:
            raise TerminalError(
                f"warehouse: sum column {column!r} must be a non-key column of {list(columns)}"
            )
    keys = _column_list(key_columns)
    updates = ", ".join(
        f"{quote_identifier(c)} = {quote_table(table)}.{quote_identifier(c)} + EXCLUDED.{quote_identifier(c)}"
        for c in sums
    )
    others = [c for c in columns if c not in key_columns and c not in sums]
    updates += "".join(f", {quote_identifier(c)} = EXCLUDED.{quote_identifier(c)}" for c in others)
    placeholders = ", ".join(["%s"] * len(columns))
    return (
        f"INSERT INTO {quote_table(table)} ({_column_list(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}, updated_at = now()"
    )


def row_upsert_sql(table: str, columns: Sequence[str], key_columns: Sequence[str], first_wins: bool) -> str:
    """One row given as parameters, with ``upsert_sql``'s effect on a row with the same key: updated,
    or left as it is (``first_wins``, or every column a key)."""
    _checked_columns(columns, key_columns)
    placeholders = ", ".join(["%s"] * len(columns))
    non_keys = [c for c in columns if c not in key_columns]
    action = "DO NOTHING"
    if non_keys and not first_wins:
        action = "DO UPDATE SET " + ", ".join(
            f"{quote_identifier(c)} = EXCLUDED.{quote_identifier(c)}" for c in non_keys
        )
    return (
        f"INSERT INTO {quote_table(table)} ({_column_list(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT ({_column_list(key_columns)}) {action}"
    )


def row_order(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    """The order to write a batch's rows one by one so that ``upsert_sql``'s winner of a key wins: by
    ``kafka_offset`` (rows without one last), else as given. The caller keeps the first write of a key
    (first_wins) or lets each later one update it."""
    offset = next((columns.index(c) for c in NEWEST_FIRST if c in columns), None)
    indices = list(range(len(rows)))
    if offset is None:
        return indices

    def at(i: int) -> Any:
        return rows[i][offset] if len(rows[i]) > offset else None  # a short row: the database says so

    return sorted(indices, key=lambda i: (at(i) is None, at(i) or 0, i))


def insert_ignore_sql(table: str, columns: Sequence[str]) -> str:
    """INSERT one row given as parameters; a row with the same key already there is left as is."""
    _checked_columns(columns, columns[:1])
    placeholders = ", ".join(["%s"] * len(columns))
    return (
        f"INSERT INTO {quote_table(table)} ({_column_list(columns)}) VALUES ({placeholders}) "
        "ON CONFLICT DO NOTHING"
    )
