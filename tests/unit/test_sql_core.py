"""The pure half of ``highway sql``: what it refuses before Spark starts, the view names, the one-line
errors and the printed rows."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from rich.console import Console

from highway import catalog
from highway.catalog import BronzeSpec, DeltaTable
from highway.errors import TerminalError
from highway.sql_cli import (
    MAX_LIMIT,
    View,
    check_limit,
    check_read_only,
    json_value,
    plan_views,
    render_table,
    shown_line,
    spark_error_line,
)


def bronze(
    name: str = "bronze_shop_events", sink: str = "bronze/shop_events", dlq: str = "dlq/shop_events"
) -> BronzeSpec:
    spec = catalog.get("bronze_shop_events")
    assert isinstance(spec, BronzeSpec)
    return replace(spec, name=name, sink=DeltaTable(sink), dlq=DeltaTable(dlq))


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "  select * from bronze_shop_events limit 5;",
        "WITH t AS (SELECT 1 AS n) SELECT n FROM t",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "VALUES (1), (2)",
        "TABLE bronze_shop_events",
        "FROM bronze_shop_events SELECT event_id",
        "SHOW TABLES",
        "DESCRIBE bronze_shop_events",
        "desc history delta.`s3a://lake/bronze/shop_events`",
        "EXPLAIN SELECT 1",
        "-- the count\nSELECT count(*) FROM dlq_shop_events",
        "/* leading */ SELECT 'insert into x' AS s, `delete` FROM t",
        "SELECT replace(page, '/', '') FROM bronze_shop_events",
        "SELECT 1 ; ; ",
    ],
)
def test_queries_pass(query: str) -> None:
    check_read_only(query)


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("INSERT INTO bronze_shop_events SELECT * FROM bronze_shop_events", "INSERT"),
        ("delete from dlq_shop_events", "DELETE"),
        ("DROP TABLE bronze_shop_events", "DROP"),
        ("CREATE TABLE x AS SELECT 1", "CREATE"),
        ("ALTER TABLE x ADD COLUMNS (y INT)", "ALTER"),
        ("MERGE INTO a USING b ON a.id = b.id WHEN MATCHED THEN DELETE", "MERGE"),
        ("UPDATE a SET x = 1", "UPDATE"),
        ("TRUNCATE TABLE a", "TRUNCATE"),
        ("VACUUM bronze_shop_events", "VACUUM"),
        ("OPTIMIZE bronze_shop_events", "OPTIMIZE"),
        ("RESTORE TABLE a TO VERSION AS OF 1", "RESTORE"),
        ("SET spark.sql.ansi.enabled = false", "SET"),
        ("CACHE TABLE a", "CACHE"),
        ("/* SELECT */ DROP TABLE a", "DROP"),
        ("WITH t AS (SELECT 1) INSERT INTO a SELECT * FROM t", "INSERT"),
        ("FROM a INSERT OVERWRITE TABLE b SELECT *", "INSERT"),
        ("WITH t AS (SELECT 1) DELETE FROM a", "DELETE"),
        ("SELECT * FROM a WHERE update = 1", "UPDATE"),
    ],
)
def test_statements_that_are_not_queries_are_refused(query: str, word: str) -> None:
    with pytest.raises(TerminalError, match="read-only") as refused:
        check_read_only(query)
    assert word in str(refused.value)


def test_several_statements_are_refused() -> None:
    with pytest.raises(TerminalError, match="one statement at a time"):
        check_read_only("SELECT 1; DROP TABLE bronze_shop_events")
    check_read_only("SELECT ';' AS semicolon -- and ; here")


@pytest.mark.parametrize("query", ["", "   ", "-- nothing\n", "/* only a comment */", ";"])
def test_an_empty_query_is_refused(query: str) -> None:
    with pytest.raises(TerminalError, match="empty"):
        check_read_only(query)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_a_limit_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(TerminalError, match=r"--limit must be between 1 and 10,000"):
        check_limit(limit)


def test_limits_in_range_pass() -> None:
    check_limit(1)
    check_limit(MAX_LIMIT)


def test_views_are_named_by_lake_path() -> None:
    views = plan_views([bronze()])
    assert views == [
        View("bronze_shop_events", "bronze/shop_events", "bronze_shop_events"),
        View("dlq_shop_events", "dlq/shop_events", "bronze_shop_events"),
    ]
    other = plan_views([bronze("x_app", "t-1/bronze.v2/shop_events", "t-1/dlq/shop_events")])
    assert [v.name for v in other] == ["t_1_bronze_v2_shop_events", "t_1_dlq_shop_events"]


def test_the_shipped_catalog_registers_bronze_and_dlq() -> None:
    names = {v.name for v in plan_views(catalog.load_all().values())}
    assert {"bronze_shop_events", "dlq_shop_events"} <= names


def test_a_table_named_by_two_apps_is_one_view() -> None:
    views = plan_views([bronze("a_app"), bronze("b_app", dlq="dlq/other")])
    assert [(v.name, v.app) for v in views] == [
        ("bronze_shop_events", "a_app"),
        ("dlq_other", "b_app"),
        ("dlq_shop_events", "a_app"),
    ]


def test_two_paths_with_one_view_name_are_refused() -> None:
    with pytest.raises(TerminalError, match="both be registered as view a_b_c"):
        plan_views([bronze("a_app", "a/b_c", "dlq/x"), bronze("b_app", "a_b/c", "dlq/y")])


def test_a_spark_error_is_one_line_with_its_class() -> None:
    message = (
        "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 1, pos 0)\n\n"
        "== SQL ==\nSELEC 1\n^^^\n"
    )
    line = spark_error_line("PARSE_SYNTAX_ERROR", message, [])
    assert line == "PARSE_SYNTAX_ERROR: Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 1, pos 0)"


def test_an_unknown_table_names_the_known_views() -> None:
    message = "[TABLE_OR_VIEW_NOT_FOUND] The table or view `nope` cannot be found.\n'Project [*]"
    views = plan_views([bronze()])
    line = spark_error_line("TABLE_OR_VIEW_NOT_FOUND", message, views)
    assert "\n" not in line
    assert line.startswith("TABLE_OR_VIEW_NOT_FOUND: The table or view `nope` cannot be found.")
    assert line.endswith("Known views: bronze_shop_events, dlq_shop_events")
    assert "Known views: (none" in spark_error_line("TABLE_OR_VIEW_NOT_FOUND", message, [])


def test_values_become_json() -> None:
    row = {
        "n": 3,
        "x": 1.5,
        "d": date(2026, 11, 26),
        "t": datetime(2026, 11, 26, 3, 40, tzinfo=UTC),
        "m": Decimal("9.99"),
        "b": b"raw",
        "a": [1, None],
        "s": None,
    }
    text = json.dumps(json_value(row))
    assert json.loads(text) == {
        "n": 3,
        "x": 1.5,
        "d": "2026-11-26",
        "t": "2026-11-26 03:40:00+00:00",
        "m": "9.99",
        "b": "raw",
        "a": [1, None],
        "s": None,
    }


def test_the_table_says_how_many_rows_and_whether_more_exist() -> None:
    assert shown_line(100, True, 100).startswith("100 row(s) shown; more rows exist")
    assert shown_line(3, False, 100) == "3 row(s)"
    console = Console(record=True, width=120)
    console.print(render_table(["n", "page"], [(3, "[b]/cart"), (None, "x")], shown_line(2, False, 100)))
    text = console.export_text()
    assert "[b]/cart" in text and "NULL" in text and "2 row(s)" in text
