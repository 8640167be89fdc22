"""`highway sql` through the real CLI against the real stack: a write is refused before Spark starts,
a Spark error is one line (exit 2, no traceback, no Spark log), and a query over a catalog table
counts its rows; a write hidden from the text check is refused from Spark's plan. Four of these
invocations start Spark; keep it that way (each costs ~10-15 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from highway.connection import Connection

HIGHWAY = str(Path(sys.executable).with_name("highway"))
SHIPPED = Path(__file__).resolve().parents[2] / "spark_apps" / "catalog" / "bronze_shop_events.yaml"
ROWS = 3


def _sql(*args: str, catalog: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "HIGHWAY_CATALOG": str(catalog)}
    return subprocess.run(
        [HIGHWAY, "sql", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _spark_log_size() -> int:
    """Bytes in the log `highway sql` points the JVM at while Spark starts (0 if there is none)."""
    from highway.settings import default_home

    log = default_home() / "logs" / "sql.log"
    return log.stat().st_size if log.exists() else 0


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr  # no Spark log on the terminal
    assert lines[0].startswith("error: ")
    assert done.stdout == ""
    return lines[0]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A catalog holding one bronze app whose tables sit under a unique prefix: (dir, sink, dlq view)."""
    suffix = uuid.uuid4().hex[:8]
    data = yaml.safe_load(SHIPPED.read_text())
    for key in ("sink", "dlq"):
        data[key]["table"] = f"t_sql_{suffix}/{data[key]['table']}"
    directory = tmp_path_factory.mktemp("sql-catalog")
    (directory / SHIPPED.name).write_text(yaml.safe_dump(data, sort_keys=False))
    return directory, data["sink"]["table"], f"t_sql_{suffix}_dlq_shop_events"


@pytest.fixture(scope="module")
def sink_view(lake: tuple[Path, str, str], spark: SparkSession, conn: Connection) -> str:
    """ROWS rows written to the app's sink table (its DLQ table is never created)."""
    _, table, _ = lake
    rows = [(f"e-{i}", "page_view", f"u-{i:06d}") for i in range(ROWS)]
    frame = spark.createDataFrame(rows, "event_id string, event_type string, user_id string")
    frame.write.format("delta").save(conn.lake_path(table))
    return table.replace("/", "_")


def test_writes_and_bad_limits_are_refused_before_spark_starts(lake: tuple[Path, str, str]) -> None:
    catalog, _, _ = lake
    for args, expected in (
        (("DELETE FROM bronze_shop_events",), "read-only: DELETE statements are refused"),
        (("WITH t AS (SELECT 1) INSERT INTO x SELECT * FROM t",), "read-only: the statement contains INSERT"),
        (("SELECT 1; DROP TABLE x",), "one statement at a time"),
        (("",), "the query is empty"),
        (("--limit", "0", "SELECT 1"), "--limit must be between 1 and 10,000"),
    ):
        before = _spark_log_size()
        done = _sql(*args, catalog=catalog)
        assert expected in _one_error_line(done)
        assert _spark_log_size() == before  # Spark never started: its JVM writes this log as it starts


@pytest.mark.spark
def test_a_syntax_error_is_one_line_naming_the_error_class(
    lake: tuple[Path, str, str], sink_view: str
) -> None:
    catalog, _, _ = lake
    line = _one_error_line(_sql(f"SELECT count(* FROM {sink_view}", catalog=catalog))
    assert "PARSE_SYNTAX_ERROR: Syntax error at or near" in line


@pytest.mark.spark
def test_a_write_the_text_check_cannot_see_is_refused_from_sparks_plan(
    lake: tuple[Path, str, str], sink_view: str, tmp_path: Path
) -> None:
    """A raw string literal (r'\\') hides the INSERT from the text check; Spark's plan shows it."""
    catalog, _, _ = lake
    target = tmp_path / "out"
    query = f"WITH t AS (SELECT r'\\' AS x) INSERT OVERWRITE DIRECTORY '{target}' USING json SELECT * FROM t"
    line = _one_error_line(_sql(query, catalog=catalog))
    assert "read-only: the statement is refused, nothing ran (it is a " in line, line
    assert not target.exists()


@pytest.mark.spark
def test_an_unknown_table_names_the_known_views(lake: tuple[Path, str, str], sink_view: str) -> None:
    catalog, _, dlq_view = lake
    line = _one_error_line(_sql("SELECT * FROM no_such_table", catalog=catalog))
    assert "TABLE_OR_VIEW_NOT_FOUND" in line and "no_such_table" in line
    assert f"Known views: {sink_view}" in line
    assert dlq_view not in line  # the DLQ table does not exist, so it is not registered


@pytest.mark.spark
def test_a_query_counts_the_rows_of_a_catalog_table(lake: tuple[Path, str, str], sink_view: str) -> None:
    catalog, _, _ = lake
    done = _sql("--json", f"SELECT count(*) AS n, max(user_id) AS last FROM {sink_view}", catalog=catalog)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"n": ROWS, "last": f"u-{ROWS - 1:06d}"}
    ]
    assert [line for line in done.stderr.splitlines() if line.strip()] == ["1 row(s)"]
