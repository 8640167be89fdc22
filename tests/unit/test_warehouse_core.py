"""The warehouse's pure decisions: migration order, and the SQL text of a batch write."""

from __future__ import annotations

import pytest

from highway import warehouse
from highway.core.warehouse import (
    ROW_ORDINAL,
    additive_upsert_sql,
    copy_sql,
    dedup_order,
    insert_ignore_sql,
    parse_migration_filename,
    pending_migrations,
    quote_identifier,
    quote_table,
    row_order,
    row_upsert_sql,
    staging_sql,
    upsert_sql,
)
from highway.errors import TerminalError

AVAILABLE = [(1, "shop_events"), (2, "gold"), (3, "indexes")]


def test_pending_migrations_on_an_empty_database_are_all_in_order() -> None:
    assert pending_migrations(set(), list(reversed(AVAILABLE))) == AVAILABLE


def test_pending_migrations_after_some_are_applied() -> None:
    assert pending_migrations({1}, AVAILABLE) == AVAILABLE[1:]
    assert pending_migrations({1, 2, 3}, AVAILABLE) == []


def test_a_version_used_twice_is_refused_naming_both_files() -> None:
    with pytest.raises(TerminalError, match=r"version 2 is used twice: 'gold' and 'other'"):
        pending_migrations(set(), [(1, "a"), (2, "gold"), (2, "other")])


def test_a_gap_in_the_files_is_refused_naming_the_missing_version() -> None:
    with pytest.raises(TerminalError, match=r"without gaps; missing \[2\]"):
        pending_migrations(set(), [(1, "a"), (3, "c")])
    with pytest.raises(TerminalError, match=r"missing \[1\]"):
        pending_migrations(set(), [(2, "b")])


def test_a_database_migrated_by_a_newer_highway_is_refused() -> None:
    with pytest.raises(TerminalError, match=r"migration\(s\) \[4\] that this highway does not know"):
        pending_migrations({1, 2, 3, 4}, AVAILABLE)


def test_a_hole_in_the_applied_versions_is_refused() -> None:
    with pytest.raises(TerminalError, match=r"gap \(missing \[2\]\)"):
        pending_migrations({1, 3}, AVAILABLE)


def test_migration_file_names() -> None:
    assert parse_migration_filename("0001_shop_events.sql") == (1, "shop_events")
    assert parse_migration_filename("0012_gold_hourly.sql") == (12, "gold_hourly")
    for bad in ("1_x.sql", "0001-x.sql", "0001_X.sql", "0001_x.txt", "0001_.sql"):
        with pytest.raises(TerminalError, match=f"migration file '{bad}' refused"):
            parse_migration_filename(bad)


def test_shipped_migrations_are_numbered_without_gaps_and_readable() -> None:
    available = warehouse.available_migrations()
    assert available[0] == (1, "shop_events")
    assert pending_migrations(set(), available) == available
    sql = warehouse.migration_sql(available[0])
    for table in (warehouse.MIGRATIONS_TABLE, warehouse.LEDGER_TABLE, warehouse.SHOP_EVENTS_TABLE):
        assert f"CREATE TABLE IF NOT EXISTS {table}" in sql


@pytest.mark.parametrize("name", ["Event_id", "event id", "x;drop", 'a"b', "1abc", "", "a" * 64, "été"])
def test_identifiers_outside_lower_snake_case_are_refused_naming_the_value(name: str) -> None:
    with pytest.raises(TerminalError, match=r"identifier .* refused; allowed: \[a-z_\]"):
        quote_identifier(name)


def test_identifiers_are_quoted() -> None:
    assert quote_identifier("event_id") == '"event_id"'
    assert quote_identifier("_x9") == '"_x9"'
    assert quote_table("warehouse.shop_events") == '"warehouse"."shop_events"'
    assert quote_table("shop_events") == '"shop_events"'
    with pytest.raises(TerminalError, match=r"'a\.b\.c' refused"):
        quote_table("a.b.c")
    with pytest.raises(TerminalError, match="'Warehouse' refused"):
        quote_table("Warehouse.shop_events")


def test_upsert_keeps_one_row_per_key_and_updates_the_other_columns() -> None:
    sql = upsert_sql("warehouse.t", ["id", "v", "kafka_offset"], ["id"], "stg")
    assert sql == (
        'INSERT INTO "warehouse"."t" ("id", "v", "kafka_offset") '
        'SELECT DISTINCT ON ("id") "id", "v", "kafka_offset" FROM "stg" '
        f'ORDER BY "id", "kafka_offset" DESC NULLS LAST, "{ROW_ORDINAL}" DESC NULLS LAST '
        'ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v", "kafka_offset" = EXCLUDED."kafka_offset"'
    )


def test_first_wins_keeps_the_first_copy_in_the_batch_and_never_changes_a_stored_row() -> None:
    sql = upsert_sql("warehouse.t", ["id", "v", "kafka_offset"], ["id"], "stg", first_wins=True)
    assert sql == (
        'INSERT INTO "warehouse"."t" ("id", "v", "kafka_offset") '
        'SELECT DISTINCT ON ("id") "id", "v", "kafka_offset" FROM "stg" '
        f'ORDER BY "id", "kafka_offset" ASC NULLS LAST, "{ROW_ORDINAL}" ASC NULLS LAST '
        'ON CONFLICT ("id") DO NOTHING'
    )


def test_one_row_at_a_time_has_the_batch_statements_effect() -> None:
    assert row_upsert_sql("w.t", ["id", "v"], ["id"], first_wins=False) == (
        'INSERT INTO "w"."t" ("id", "v") VALUES (%s, %s) ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v"'
    )
    assert row_upsert_sql("w.t", ["id", "v"], ["id"], first_wins=True).endswith(
        'ON CONFLICT ("id") DO NOTHING'
    )
    rows = [("a", 1, 9), ("b", 2, None), ("a", 3, 4), ("c", 4, 7)]
    assert row_order(["id", "v", "kafka_offset"], rows) == [2, 3, 0, 1]  # by offset, none last
    assert row_order(["id", "v"], [r[:2] for r in rows]) == [0, 1, 2, 3]  # as given


def test_upsert_with_a_composite_key_and_only_key_columns() -> None:
    sql = upsert_sql("t", ["a", "b"], ["a", "b"], "stg")
    assert 'SELECT DISTINCT ON ("a", "b")' in sql
    assert sql.endswith('ON CONFLICT ("a", "b") DO NOTHING')


def test_upsert_refuses_bad_column_lists() -> None:
    with pytest.raises(TerminalError, match="at least one column"):
        upsert_sql("t", [], ["id"], "stg")
    with pytest.raises(TerminalError, match="at least one key column"):
        upsert_sql("t", ["id"], [], "stg")
    with pytest.raises(TerminalError, match="key column 'k' is not one of the columns"):
        upsert_sql("t", ["id", "v"], ["k"], "stg")
    with pytest.raises(TerminalError, match="column 'v' is listed twice"):
        upsert_sql("t", ["id", "v", "v"], ["id"], "stg")
    with pytest.raises(TerminalError, match="identifier 'v; drop table t' refused"):
        upsert_sql("t", ["id", "v; drop table t"], ["id"], "stg")
    with pytest.raises(TerminalError, match="identifier 'Stg' refused"):
        upsert_sql("t", ["id"], ["id"], "Stg")


def test_the_latest_row_of_a_key_wins_inside_a_batch() -> None:
    assert dedup_order(["id", "kafka_offset"]) == ["kafka_offset", ROW_ORDINAL]
    assert dedup_order(["id", "v"]) == [ROW_ORDINAL]


def test_staging_and_copy_statements() -> None:
    assert staging_sql("warehouse.t", ["id", "v"], "stg") == (
        'CREATE TEMPORARY TABLE "stg" ON COMMIT DROP AS '
        f'SELECT "id", "v", 0::bigint AS "{ROW_ORDINAL}" FROM "warehouse"."t" WITH NO DATA'
    )
    assert copy_sql("stg", ["id", "v"]) == f'COPY "stg" ("id", "v", "{ROW_ORDINAL}") FROM STDIN'


# --- windowed aggregates: additive upsert and insert-or-ignore -----------------------------------


def test_additive_upsert_adds_the_sums_and_overwrites_the_other_non_key_columns() -> None:
    sql = additive_upsert_sql("w.t", ["k", "n", "v"], ["k"], ["n"])
    assert sql == (
        'INSERT INTO "w"."t" ("k", "n", "v") VALUES (%s, %s, %s) '
        'ON CONFLICT ("k") DO UPDATE SET "n" = "w"."t"."n" + EXCLUDED."n", "v" = EXCLUDED."v", '
        "updated_at = now()"
    )


def test_additive_upsert_of_the_gold_window_table() -> None:
    columns = ["window_start", "window_end", "product_id", *warehouse.WINDOW_MEASURES]
    sql = additive_upsert_sql(
        warehouse.WINDOWS_TABLE, columns, ["window_start", "product_id"], warehouse.WINDOW_MEASURES
    )
    table = '"warehouse"."product_hourly"'
    assert sql == (
        f"INSERT INTO {table} "
        '("window_start", "window_end", "product_id", "orders", "units", "revenue") '
        "VALUES (%s, %s, %s, %s, %s, %s) "
        'ON CONFLICT ("window_start", "product_id") DO UPDATE SET '
        f'"orders" = {table}."orders" + EXCLUDED."orders", '
        f'"units" = {table}."units" + EXCLUDED."units", '
        f'"revenue" = {table}."revenue" + EXCLUDED."revenue", '
        '"window_end" = EXCLUDED."window_end", updated_at = now()'
    )


def test_additive_upsert_with_only_sums_besides_the_key() -> None:
    sql = additive_upsert_sql("t", ["k", "a", "b"], ["k"], ["a", "b"])
    assert sql.endswith(
        'ON CONFLICT ("k") DO UPDATE SET "a" = "t"."a" + EXCLUDED."a", "b" = "t"."b" + EXCLUDED."b", '
        "updated_at = now()"
    )


@pytest.mark.parametrize(
    ("columns", "keys", "sums", "message"),
    [
        (["k", "n"], ["k"], ["k"], r"sum column 'k' must be a non-key column of \['k', 'n'\]"),
        (["k", "n"], ["k"], ["m"], r"sum column 'm' must be a non-key column of \['k', 'n'\]"),
        (["a", "b", "n"], ["a", "b"], ["n", "b"], "sum column 'b' must be a non-key column"),
        ([], ["k"], [], "at least one column"),
        (["k", "n"], [], ["n"], "at least one key column"),
        (["k", "n"], ["x"], ["n"], "key column 'x' is not one of the columns"),
        (["k", "n", "n"], ["k"], ["n"], "column 'n' is listed twice"),
        (["k", "N"], ["k"], ["N"], "identifier 'N' refused"),
        (["k", 'n" = 0; --'], ["k"], ['n" = 0; --'], "identifier .* refused"),
    ],
)
def test_additive_upsert_refuses_bad_columns(
    columns: list[str], keys: list[str], sums: list[str], message: str
) -> None:
    with pytest.raises(TerminalError, match=message):
        additive_upsert_sql("w.t", columns, keys, sums)


@pytest.mark.parametrize("table", ["W.t", "w.t.u", "w;drop.t", "w.", '"w".t'])
def test_additive_upsert_and_insert_ignore_refuse_bad_table_names(table: str) -> None:
    with pytest.raises(TerminalError, match="refused"):
        additive_upsert_sql(table, ["k", "n"], ["k"], ["n"])
    with pytest.raises(TerminalError, match="refused"):
        insert_ignore_sql(table, ["k", "n"])


@pytest.mark.parametrize(
    ("columns", "sums", "message"),
    [
        (["k", "v"], [], "at least one sum column"),
        (["k", "n"], ["n", "n"], "twice"),
        (["k", "n", "updated_at"], ["n"], "updated_at is set by the additive upsert"),
    ],
    ids=["no-sums", "sum-twice", "updated-at-column"],
)
def test_additive_upsert_refuses_a_set_list_postgresql_would_reject(
    columns: list[str], sums: list[str], message: str
) -> None:
    with pytest.raises(TerminalError, match=message):
        additive_upsert_sql("w.t", columns, ["k"], sums)


def test_insert_ignore_leaves_an_existing_row_alone() -> None:
    assert insert_ignore_sql("w.late", ["app", "event_id", "amount"]) == (
        'INSERT INTO "w"."late" ("app", "event_id", "amount") VALUES (%s, %s, %s) ON CONFLICT DO NOTHING'
    )
    assert insert_ignore_sql("t", ["a"]) == 'INSERT INTO "t" ("a") VALUES (%s) ON CONFLICT DO NOTHING'


def test_insert_ignore_of_the_late_events_table() -> None:
    sql = insert_ignore_sql(warehouse.LATE_EVENTS_TABLE, warehouse.LATE_EVENTS_COLUMNS)
    columns = ", ".join(f'"{c}"' for c in warehouse.LATE_EVENTS_COLUMNS)
    placeholders = ", ".join(["%s"] * len(warehouse.LATE_EVENTS_COLUMNS))
    assert sql == (
        f'INSERT INTO "warehouse"."late_events" ({columns}) VALUES ({placeholders}) ON CONFLICT DO NOTHING'
    )


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([], "at least one column"),
        (["a", "a"], "column 'a' is listed twice"),
        (["a", "B"], "identifier 'B' refused"),
        (["a", "b c"], "identifier 'b c' refused"),
        (["a", "x" * 64], "at most 63 characters"),
    ],
)
def test_insert_ignore_refuses_bad_columns(columns: list[str], message: str) -> None:
    with pytest.raises(TerminalError, match=message):
        insert_ignore_sql("w.t", columns)
