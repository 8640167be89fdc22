"""`highway sql`'s plan check on a real Spark session (a session of its own, runSQLOnFiles off as in the
CLI): reads of the registered views pass; each known bypass of a text check is refused before it runs,
and refused for what its plan shows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from highway.spark.readonly import refusal, session_read_only

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from highway.connection import Connection

pytestmark = [pytest.mark.integration, pytest.mark.spark]
VIEW = "ro_events"


@pytest.fixture(scope="module")
def lake(spark: SparkSession, conn: Connection) -> Iterator[tuple[Any, str]]:
    """A session like `highway sql`'s, one Delta table registered as VIEW; (session, the table's path)."""
    path = conn.lake_path(f"t_ro_{uuid.uuid4().hex[:8]}/events")
    spark.createDataFrame([(i, f"u-{i}") for i in range(3)], "id int, user_id string").write.format(
        "delta"
    ).save(path)
    session = spark.newSession()
    session_read_only(session)
    session.read.format("delta").load(path).createOrReplaceTempView(VIEW)
    yield session, path


def _verdict(session: Any, query: str) -> str:
    """The refusal's reason, or the error class Spark raised instead of analyzing it ("" if it passes)."""
    from pyspark.errors import PySparkException

    try:
        return refusal(session, query, {VIEW}) or ""
    except PySparkException as error:
        return str(error.getCondition())


@pytest.mark.parametrize(
    "query",
    [
        f"SELECT count(*) FROM {VIEW}",
        f"WITH t AS (SELECT * FROM {VIEW}) SELECT user_id FROM t ORDER BY user_id",
        f"SELECT * FROM {VIEW} WHERE id IN (SELECT max(id) FROM {VIEW})",
        "SELECT 1 AS one",
        "VALUES (1, 'a'), (2, 'b')",
        f"EXPLAIN SELECT * FROM {VIEW}",
        f"DESCRIBE {VIEW}",
        "SHOW TABLES",
    ],
)
def test_reads_of_the_lake_views_pass(lake: tuple[Any, str], query: str) -> None:
    session, _ = lake
    assert refusal(session, query, {VIEW}) is None
    session.sql(query).collect()  # and they run


def test_each_bypass_is_refused_for_what_its_plan_shows(lake: tuple[Any, str], tmp_path: Any) -> None:
    from highway.sql_cli import check_read_only

    session, path = lake
    target = tmp_path / "written"
    hidden = f"WITH t AS (SELECT r'\\' AS x) INSERT OVERWRITE DIRECTORY '{target}' USING json SELECT 1"
    cases = {
        hidden: "not a query",  # a raw string literal hides the INSERT from a text check
        f"DELETE FROM delta.`{path}`": "not a query",
        f"SELECT * FROM delta.`{path}`": "not one of the lake views",
        # runSQLOnFiles is off: a file path is no table at all (Spark's own error, nothing read)
        "SELECT * FROM text.`file:///etc/shadow`": "TABLE_OR_VIEW_NOT_FOUND",
        f"SELECT * FROM {VIEW} WHERE user_id IN (SELECT value FROM text.`file:///etc/passwd`)": (
            "TABLE_OR_VIEW_NOT_FOUND"
        ),
        "SELECT reflect('java.lang.System', 'getenv', 'HOME')": "calls Java by reflection",
        f"SELECT java_method('java.lang.System', 'exit', 0) FROM {VIEW}": "calls Java by reflection",
        f"EXPLAIN SELECT * FROM delta.`{path}`": "not one of the lake views",
        "DESCRIBE other_view": "TABLE_OR_VIEW_NOT_FOUND",
    }
    check_read_only(hidden)  # the text check alone lets it through
    for query, why in cases.items():
        assert why in _verdict(session, query), (query, why)
    assert not target.exists()  # nothing ran
    assert session.read.format("delta").load(path).count() == 3
