"""``highway sql``: read-only Spark SQL over the catalog's Delta tables, as a table or JSON lines.

Every Delta table an app of the catalog names (``spec.delta_tables()``) and that exists in the lake
is registered as a temporary view named after its lake path (``bronze/shop_events`` ->
``bronze_shop_events``), and so is highway's own ``checkpoint_audit`` (every checkpoint recovery).
The statement is checked before Spark starts: only queries (SELECT, WITH,
VALUES, TABLE, FROM, SHOW, DESCRIBE, EXPLAIN) run; then, since text can hide what it holds, Spark's own
parsed and analyzed plan is checked before anything runs (``highway.spark.readonly``): it may only read
the registered views, with no command and no reflection, so the tool cannot write to the lake or read a
local file. Spark's own log goes to a file, not to the terminal; a Spark error becomes one line naming its
error class (``TerminalError``, exit code 2).

The functions above ``sql_command`` are pure (no Spark), for the unit tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from highway.errors import TerminalError, TransientError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from highway.catalog import AppSpec
    from highway.connection import Connection

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
READ_STARTS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "FROM", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"})
# statements that may follow WITH or FROM (CTEs, multi-insert) and still write
WRITE_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "OVERWRITE", "TRUNCATE", "DROP", "ALTER"})
_HIDDEN = re.compile(
    r"--[^\n]*"  # line comment
    r"|/\*.*?(?:\*/|\Z)"  # block comment (unterminated: to the end)
    r"|'(?:\\.|[^'\\])*(?:'|\Z)"  # string literals, backslash escapes
    r'|"(?:\\.|[^"\\])*(?:"|\Z)'
    r"|`(?:``|[^`])*(?:`|\Z)",  # quoted identifier
    re.DOTALL,
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SPARK_APP_NAME = "highway-sql"
# highway's own tables (highway.adapters.maintenance), registered beside the catalog's
MAINTENANCE_VIEWS = {"checkpoint_audit": "_maintenance/checkpoint_audit"}


@dataclass(frozen=True)
class View:
    name: str  # the temporary view, e.g. bronze_shop_events
    table: str  # the catalog's lake path, e.g. bronze/shop_events
    app: str  # the first catalog app naming the table


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise TerminalError(f"--limit must be between 1 and {MAX_LIMIT:,}, got {limit}")


def statement_words(query: str) -> list[str]:
    """The statement's keywords and names, upper-cased, without comments, literals or quoted names."""
    return [word.upper() for word in _WORD.findall(_HIDDEN.sub(" ", query))]


def check_read_only(query: str) -> None:
    """Refuse an empty input, several statements, or a statement that is not a query.

    Deliberately strict: a name spelled like a write keyword (a column called ``update``) must be
    quoted with backticks.
    """
    visible = _HIDDEN.sub(" ", query)
    words = statement_words(query)
    if not words:
        raise TerminalError("the query is empty: give one SELECT statement, e.g. highway sql 'SELECT 1'")
    if ";" in re.sub(r"[\s;]+\Z", "", visible):
        raise TerminalError("one statement at a time: the query holds a ';' between statements")
    if words[0] not in READ_STARTS:
        raise TerminalError(
            f"highway sql is read-only: {words[0]} statements are refused; allowed are queries starting "
            f"with {', '.join(sorted(READ_STARTS))}"
        )
    writes = sorted(WRITE_WORDS.intersection(words))
    if writes:
        raise TerminalError(
            f"highway sql is read-only: the statement contains {', '.join(writes)} "
            "(a column or table of that name must be quoted with backticks)"
        )


def plan_views(specs: Iterable[AppSpec]) -> list[View]:
    """One view per distinct Delta table of the catalog, sorted by name; two paths, one name: refused."""
    views: dict[str, View] = {}
    for spec in specs:
        for table in spec.delta_tables():
            view = View(table.view_name, table.table, spec.name)
            known = views.setdefault(view.name, view)
            if known.table != view.table:
                raise TerminalError(
                    f"tables {known.table} (app {known.app}) and {view.table} (app {view.app}) would both "
                    f"be registered as view {view.name}; rename one of them in the catalog"
                )
    return sorted(views.values(), key=lambda v: v.name)


def maintenance_views() -> list[View]:
    return [View(name, table, "(highway)") for name, table in MAINTENANCE_VIEWS.items()]


def spark_error_line(error_class: str | None, message: str, views: Sequence[View]) -> str:
    """Spark's error as one line: class, first line of the message, the known views for a missing table."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    if error_class and first.startswith(f"[{error_class}]"):
        first = first[len(error_class) + 2 :].strip()
    line = f"{error_class}: {first}" if error_class else first
    if error_class and error_class.startswith("TABLE_OR_VIEW_NOT_FOUND"):
        names = ", ".join(v.name for v in views) or "(none: no catalog table exists in the lake yet)"
        line += f" Known views: {names}"
    return line


def json_value(value: Any) -> Any:
    """Row values -> JSON: nested rows as objects, dates and decimals as strings."""
    if hasattr(value, "asDict"):
        return {k: json_value(v) for k, v in value.asDict().items()}
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    return str(value)


def shown_line(shown: int, more: bool, limit: int) -> str:
    if more:
        return f"{shown:,} row(s) shown; more rows exist (raise --limit, at most {MAX_LIMIT:,}, or refine)"
    return f"{shown:,} row(s)"


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], caption: str) -> Table:
    table = Table(caption=caption, caption_justify="left")
    for column in columns:
        table.add_column(escape(column), overflow="fold")
    for row in rows:
        table.add_row(*("NULL" if v is None else escape(str(json_value(v))) for v in row))
    return table


def views_table(views: Sequence[View], paths: dict[str, str]) -> Table:
    table = Table(caption=f"{len(views)} view(s) registered", caption_justify="left")
    for column in ("view", "path", "app"):
        table.add_column(column, overflow="fold")
    for view in views:
        table.add_row(view.name, paths[view.name], view.app)
    return table


# -- Spark ----------------------------------------------------------------------------------------


def _log_path() -> Path:
    from highway.settings import default_home

    logs = default_home() / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        return logs / "sql.log"
    except OSError:
        return Path(tempfile.gettempdir()) / "highway-sql.log"


@contextlib.contextmanager
def _jvm_output_to(path: Path) -> Iterator[None]:
    """While the JVM starts, fds 1 and 2 point at ``path``: the JVM inherits them and keeps its log there."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)


def _quiet_python_side() -> None:
    """pyspark logs every SQL error as JSON on stderr before raising it; the CLI prints it once."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True  # its own class: it is called with extra kwargs


def _start_spark(conn: Connection, log: Path) -> SparkSession:
    from highway.spark.session import build_session

    _quiet_python_side()
    try:
        with _jvm_output_to(log):
            spark = build_session(conn, SPARK_APP_NAME, shuffle_partitions=4, driver_memory="1g")
            spark.sparkContext.setLogLevel("ERROR")
    except Exception as exc:
        if isinstance(exc, TerminalError | TransientError):
            raise
        raise TransientError(f"Spark did not start: {str(exc).splitlines()[0]} (see {log})") from None
    return spark


def register_views(spark: SparkSession, conn: Connection, views: Sequence[View]) -> dict[str, str]:
    """Register the views whose table exists; returns view name -> s3a path of those registered."""
    from highway.spark.delta_sink import table_exists

    registered: dict[str, str] = {}
    for view in views:
        path = conn.lake_path(view.table)
        if table_exists(spark, path):
            spark.read.format("delta").load(path).createOrReplaceTempView(view.name)
            registered[view.name] = path
    return registered


def _run(spark: SparkSession, query: str, limit: int, views: Sequence[View]) -> tuple[list[str], list[Any]]:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        frame = spark.sql(query)
        rows = frame.limit(limit + 1).collect()
    except PySparkException as exc:
        raise TerminalError(spark_error_line(exc.getCondition(), str(exc), views)) from None
    except Py4JJavaError as exc:  # not a SQL error: the lake or the JVM failed
        cause = str(exc.java_exception).splitlines()[0]
        raise TransientError(f"the query failed in Spark: {cause}") from None
    return list(frame.columns), rows


def check_plan(spark: SparkSession, query: str, views: Sequence[View]) -> None:
    """Refuse, before it runs, a statement whose Spark plan is more than a read of the lake views."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.errors.exceptions.captured import convert_exception

    from highway.spark.readonly import refusal

    try:
        why = refusal(spark, query, {v.name for v in views})
    except PySparkException as exc:  # Spark's parser or analyzer: the same one line as a failing query
        raise TerminalError(spark_error_line(exc.getCondition(), str(exc), views)) from None
    except Py4JJavaError as exc:
        error = convert_exception(exc.java_exception)
        if isinstance(error, PySparkException):
            raise TerminalError(spark_error_line(error.getCondition(), str(error), views)) from None
        cause = str(exc.java_exception).splitlines()[0]
        raise TransientError(f"the query failed in Spark: {cause}") from None
    if why is not None:
        raise TerminalError(f"highway sql is read-only: the statement is refused, nothing ran ({why})")


def _print_rows(columns: list[str], rows: list[Any], limit: int, as_json: bool) -> None:
    shown, more = rows[:limit], len(rows) > limit
    line = shown_line(len(shown), more, limit)
    if as_json:
        for row in shown:
            print(json.dumps({c: json_value(v) for c, v in zip(columns, row, strict=True)}))
        Console(stderr=True).print(line, soft_wrap=True)
    else:
        Console().print(render_table(columns, shown, line))


def sql_command(
    query: str | None, limit: int = DEFAULT_LIMIT, as_json: bool = False, tables: bool = False
) -> None:
    """Run one read-only query (or list the views with ``tables``); TerminalError (exit 2) on bad input."""
    from highway import catalog, connection
    from highway.spark.readonly import session_read_only

    check_limit(limit)
    if not tables:
        check_read_only(query or "")
    views = plan_views(catalog.load_all().values()) + maintenance_views()
    conn = connection.load()
    log = _log_path()
    spark = _start_spark(conn, log)
    try:
        session_read_only(spark)
        registered = register_views(spark, conn, views)
        present = [v for v in views if v.name in registered]
        if tables:
            Console().print(views_table(present, registered))
            return
        check_plan(spark, query or "", present)
        columns, rows = _run(spark, query or "", limit, present)
        _print_rows(columns, rows, limit, as_json)
    finally:
        spark.stop()
