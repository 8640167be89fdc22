"""The PostgreSQL warehouse sink against the real PostgreSQL of the test stack.

Each test writes to its own table (in a schema of this module) and under its own app name, so the
shared ``warehouse`` schema and ledger hold nothing that another test could trip over.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from highway import warehouse
from highway.adapters import postgres
from highway.connection import Connection
from highway.core.warehouse import pending_migrations
from highway.errors import TerminalError, TransientError

pytestmark = pytest.mark.integration

COLUMNS = warehouse.SHOP_EVENTS_COLUMNS
KEY = warehouse.SHOP_EVENTS_KEY
T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def events(ids: Sequence[int], price: float = 1.0, first_offset: int = 0) -> list[tuple[Any, ...]]:
    """Rows in COLUMNS order; ``price`` tells one write of an event from another."""
    return [
        (f"ev-{i:08d}", "purchase", T0 + timedelta(seconds=i), f"u{i % 97}", f"s{i % 31}", f"p{i % 13}",
         f"o{i}", 1 + i % 3, price, price * (1 + i % 3), "EUR", "card", "/checkout", i % 4, first_offset + n)
        for n, i in enumerate(ids)
    ]  # fmt: skip


def one_value(pgconn: postgres.PgConnection, query: str, *params: Any) -> Any:
    row = pgconn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def migrate_concurrently(pg: Connection) -> list[list[int]]:
    """Two apps starting at once: each migrates on its own connection."""
    results: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            with postgres.connect(pg) as own:
                results[slot] = postgres.migrate(own)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def pgconn(pg: Connection) -> Iterator[postgres.PgConnection]:
    with postgres.connect(pg) as conn:
        yield conn


@pytest.fixture(scope="module")
def migrated(pg: Connection, pgconn: postgres.PgConnection) -> list[int]:
    """Versions pending before the module ran (empty if another module migrated first)."""
    exists = one_value(pgconn, "SELECT to_regclass(%s) IS NOT NULL", warehouse.MIGRATIONS_TABLE)
    applied = (
        {r[0] for r in pgconn.execute("SELECT version FROM warehouse.schema_migrations")} if exists else set()
    )
    before = [version for version, _ in pending_migrations(applied, warehouse.available_migrations())]
    results = migrate_concurrently(pg)
    assert sorted(results[0] + results[1]) == before
    return before


@pytest.fixture(scope="module")
def test_schema(pgconn: postgres.PgConnection, migrated: list[int]) -> Iterator[str]:
    schema = f"hw_test_{uuid.uuid4().hex[:12]}"
    pgconn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    pgconn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def table(pgconn: postgres.PgConnection, test_schema: str) -> str:
    """A fresh copy of warehouse.shop_events (keys, defaults and all)."""
    name = f"{test_schema}.shop_events_{uuid.uuid4().hex[:8]}"
    pgconn.execute(f"CREATE TABLE {name} (LIKE {warehouse.SHOP_EVENTS_TABLE} INCLUDING ALL)")
    return name


@pytest.fixture
def app() -> str:
    return f"test_app_{uuid.uuid4().hex[:8]}"


def test_migrate_applies_each_file_once_even_when_two_apps_start_together(
    pgconn: postgres.PgConnection, migrated: list[int]
) -> None:
    assert postgres.migrate(pgconn) == []
    recorded = pgconn.execute(
        "SELECT version, name FROM warehouse.schema_migrations ORDER BY version"
    ).fetchall()
    assert recorded == warehouse.available_migrations()


def test_batches_land_once_replays_do_nothing_and_overlapping_keys_update(
    pgconn: postgres.PgConnection, table: str, app: str
) -> None:
    first = postgres.write_batch(pgconn, app, 0, table, COLUMNS, KEY, events(range(10_000)))
    assert first == postgres.BatchOutcome(written=10_000, replayed=False)
    assert one_value(pgconn, f"SELECT count(*) FROM {table}") == 10_000
    ledger = "SELECT rows FROM warehouse.batch_ledger WHERE app = %s AND batch_id = %s AND table_name = %s"
    assert one_value(pgconn, ledger, app, 0, table) == 10_000

    replay = postgres.write_batch(pgconn, app, 0, table, COLUMNS, KEY, events(range(10_000), price=99.0))
    assert replay == postgres.BatchOutcome(written=0, replayed=True)
    assert one_value(pgconn, f"SELECT count(*) FROM {table}") == 10_000
    assert one_value(pgconn, f"SELECT count(*) FROM {table} WHERE price <> 1.0") == 0

    overlap_and_new = events([*range(9_900, 10_000), *range(10_000, 10_050)], price=2.0, first_offset=20_000)
    second = postgres.write_batch(pgconn, app, 1, table, COLUMNS, KEY, overlap_and_new)
    assert second == postgres.BatchOutcome(written=150, replayed=False)
    assert one_value(pgconn, f"SELECT count(*) FROM {table}") == 10_050
    assert one_value(pgconn, f"SELECT count(DISTINCT event_id) FROM {table}") == 10_050
    assert one_value(pgconn, f"SELECT count(*) FROM {table} WHERE price = 2.0") == 150
    assert one_value(pgconn, f"SELECT min(event_id) FROM {table} WHERE price = 2.0") == "ev-00009900"
    assert one_value(pgconn, ledger, app, 1, table) == 150


def test_a_key_twice_in_one_batch_leaves_one_row_the_latest(
    pgconn: postgres.PgConnection, table: str, app: str
) -> None:
    older, newer = events([7], price=1.0, first_offset=5) + events([7], price=3.0, first_offset=9)
    outcome = postgres.write_batch(pgconn, app, 0, table, COLUMNS, KEY, [newer, older])
    assert outcome.written == 1
    assert pgconn.execute(f"SELECT price, kafka_offset FROM {table}").fetchall() == [(3.0, 9)]

    # without kafka_offset among the columns, the later row of the batch wins
    columns = ("event_id", "page")
    rows = [("ev-00000007", "/first"), ("ev-00000007", "/second")]
    assert postgres.write_batch(pgconn, app, 1, table, columns, KEY, rows).written == 1
    assert pgconn.execute(f"SELECT page, price FROM {table}").fetchall() == [("/second", 3.0)]


def test_first_wins_keeps_the_first_copy_like_silvers_insert_only_merge(
    pgconn: postgres.PgConnection, table: str, app: str
) -> None:
    """Silver's warehouse sink: the first copy of an id stays, in a batch and across batches."""
    older, newer = events([7], price=1.0, first_offset=5) + events([7], price=3.0, first_offset=9)
    first = postgres.write_batch(pgconn, app, 0, table, COLUMNS, KEY, [newer, older], first_wins=True)
    assert first.written == 1
    assert pgconn.execute(f"SELECT price, kafka_offset FROM {table}").fetchall() == [(1.0, 5)]
    later = events([7, 8], price=5.0, first_offset=30)  # id 7 re-sent later with other values, and a new id
    assert postgres.write_batch(pgconn, app, 1, table, COLUMNS, KEY, later, first_wins=True).written == 1
    assert pgconn.execute(f"SELECT event_id, price, kafka_offset FROM {table} ORDER BY 1").fetchall() == [
        ("ev-00000007", 1.0, 5),
        ("ev-00000008", 5.0, 31),
    ]


def test_rows_the_database_refuses_come_back_with_its_reason_and_the_rest_is_written(
    pgconn: postgres.PgConnection, table: str, app: str
) -> None:
    """A text with a NUL byte and a value a CHECK constraint refuses: both set aside with the database's
    reason (the silver DLQ's), every other row written once; the replay is still a no-op."""
    pgconn.execute(f"ALTER TABLE {table} ADD CONSTRAINT quantity_positive CHECK (quantity > 0)")
    pgconn.commit()
    rows = events(range(6))
    rows[1] = (*rows[1][:12], "/a\x00b", *rows[1][13:])  # page with a NUL byte
    rows[4] = (*rows[4][:7], -1, *rows[4][8:])  # quantity -1

    def dlq_down(refused: object) -> None:  # the caller's DLQ write fails: nothing may commit
        raise RuntimeError("the DLQ is unreachable")

    with pytest.raises(RuntimeError, match="the DLQ is unreachable"):
        postgres.write_batch(
            pgconn, app, 0, table, COLUMNS, KEY, rows, first_wins=True, before_commit=dlq_down
        )
    assert one_value(pgconn, f"SELECT count(*) FROM {table}") == 0
    assert one_value(pgconn, "SELECT count(*) FROM warehouse.batch_ledger WHERE app = %s", app) == 0
    stored: list[object] = []
    outcome = postgres.write_batch(
        pgconn, app, 0, table, COLUMNS, KEY, rows, first_wins=True, before_commit=stored.append
    )
    assert (outcome.written, outcome.replayed) == (4, False) and stored == [outcome.refused]
    reasons = dict(outcome.refused)
    assert sorted(reasons) == [1, 4]
    assert "NUL" in reasons[1] and 'violates check constraint "quantity_positive"' in reasons[4], reasons
    assert "(SQLSTATE 23514)" in reasons[4]
    assert one_value(pgconn, f"SELECT count(*) FROM {table}") == 4
    ledger = "SELECT rows FROM warehouse.batch_ledger WHERE app = %s AND batch_id = 0 AND table_name = %s"
    assert one_value(pgconn, ledger, app, table) == 4
    assert postgres.write_batch(
        pgconn, app, 0, table, COLUMNS, KEY, rows, before_commit=stored.append
    ).replayed
    assert len(stored) == 1  # a replay refuses nothing again: what it refused was stored before the commit


def test_a_failed_batch_leaves_nothing_and_can_be_written_again(
    pgconn: postgres.PgConnection, table: str, app: str
) -> None:
    broken = [*events(range(10)), ("ev-x", "purchase")]  # a short row: COPY refuses it
    with pytest.raises(TerminalError, match=f"write batch 0 of app '{app}'"):
        postgres.write_batch(pgconn, app, 0, table, COLUMNS, KEY, broken)
    assert one_value(pgconn, "SELECT count(*) FROM warehouse.batch_ledger WHERE app = %s", app) == 0
    assert one_value(pgconn, f"SELECT count(*) FROM {table}") == 0
    assert postgres.write_batch(pgconn, app, 0, table, COLUMNS, KEY, events(range(10))).written == 10


def test_a_wrong_password_is_terminal_and_never_shown(pg: Connection) -> None:
    password = f"not-the-password-{uuid.uuid4().hex}"
    with pytest.raises(TerminalError) as caught:
        postgres.connect(dataclasses.replace(pg, pg_password=password))
    text = str(caught.value)
    assert "password authentication failed" in text
    assert password not in text and pg.pg_password not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_unknown_database_is_terminal(pg: Connection) -> None:
    with pytest.raises(TerminalError, match='login refused: database "no_such_db" does not exist'):
        postgres.connect(dataclasses.replace(pg, pg_database="no_such_db"))


def test_a_closed_port_is_transient_and_names_host_and_port(pg: Connection) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    with pytest.raises(TransientError, match=f"127.0.0.1:{closed_port}, database 'highway'") as caught:
        postgres.connect(dataclasses.replace(pg, pg_host="127.0.0.1", pg_port=closed_port))
    assert pg.pg_password not in str(caught.value)


def test_write_batch_rows_per_second_next_to_a_raw_copy(
    pgconn: postgres.PgConnection, table: str, app: str, test_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = events(range(100_000))
    raw = f"{test_schema}.raw_copy"
    pgconn.execute(f"CREATE TABLE {raw} (LIKE {warehouse.SHOP_EVENTS_TABLE} INCLUDING DEFAULTS)")
    started = time.perf_counter()
    with (
        pgconn.transaction(),
        pgconn.cursor() as cur,
        cur.copy(f"COPY {raw} ({', '.join(COLUMNS)}) FROM STDIN") as cp,
    ):
        for row in rows:
            cp.write_row(row)
    raw_rate = len(rows) / (time.perf_counter() - started)

    started = time.perf_counter()
    assert postgres.write_batch(pgconn, app, 0, table, COLUMNS, KEY, rows).written == len(rows)
    sink_rate = len(rows) / (time.perf_counter() - started)
    with capsys.disabled():
        print(
            f"\nwarehouse sink: write_batch {sink_rate:,.0f} rows/s, raw COPY {raw_rate:,.0f} rows/s "
            f"(ratio {sink_rate / raw_rate:.2f}, 100,000 rows)"
        )
