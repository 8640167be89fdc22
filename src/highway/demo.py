"""`make demo`: the whole pipeline on the local stack, end to end, the way a user would run it.

Kafka -> bronze (Delta + DLQ) -> silver (dedup -> Delta, Elasticsearch, PostgreSQL) -> gold (hourly
orders and revenue per product in PostgreSQL). Each app is run with ``highway run APP --until-idle``
in its own process, as a user would type it; then every store is counted against what the producer
recorded over all demo runs in this state dir, and the demo fails (exit code 2) naming each count that
differs.
Airflow (api-server, scheduler, dag-processor, triggerer) comes up with the stack; the demo ends with
the DAGs it lists, its UI address and the admin login.

The functions above ``run_demo`` that take no connection are pure, for the unit tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from highway import catalog
from highway.connection import Connection, read_credentials
from highway.errors import HighwayError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

console = Console()
HIGHWAY = str(Path(sys.executable).with_name("highway"))
BRONZE = "bronze_shop_events"
SILVER = "silver_shop_events"
GOLD = "gold_product_hourly"
BAD_RATIO, LATE_RATIO, DUP_RATIO = 0.01, 0.05, 0.02
UNTIL_IDLE = 10  # seconds without new input before an app stops
SEARCH_QUERY, SEARCH_SIZE = "event_type:order_placed", 5
SAMPLE_COLUMNS = ("event_time", "user_id", "product_id", "quantity", "amount", "currency")
TOP_PRODUCTS = 5

# one row of a count table: (what, expected or None when it is only shown, counted or None if absent)
Check = tuple[str, int | None, int | None]


@dataclass
class Produced:
    """What the producer delivered over every demo run of a state dir (from its record files)."""

    valid: int = 0  # valid sends, re-sent duplicates included: what bronze holds
    duplicates: int = 0  # re-sends of an earlier valid event
    invalid: Counter[str] = field(default_factory=Counter)  # bad records by reason: the DLQ
    valid_ids: set[str] = field(default_factory=set)  # what silver, Elasticsearch and the warehouse hold

    @property
    def distinct_valid(self) -> int:
        return len(self.valid_ids)


def summarize(lines: Iterable[str], into: Produced | None = None) -> Produced:
    """Add record-file lines (``{"id", "valid", "reason", "dup", ...}``) to a summary."""
    produced = into if into is not None else Produced()
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        if row["valid"]:
            produced.valid += 1
            produced.duplicates += bool(row.get("dup"))
            produced.valid_ids.add(row["id"])
        else:
            produced.invalid[row["reason"]] += 1
    return produced


def mismatches(checks: Sequence[Check]) -> list[str]:
    """One phrase per check whose count differs from what was expected (or that could not be counted)."""
    out = []
    for name, want, got in checks:
        if want is None:
            continue
        if got is None:
            out.append(f"{name}: not found (expected {want:,})")
        elif got != want:
            out.append(f"{name}: {got:,}, expected {want:,} (off by {got - want:+,})")
    return out


def _mark(want: int | None, got: int | None) -> str:
    if want is None:
        return ""
    return "[green]yes" if want == got else "[red]NO"


def _count_table(title: str, expected: str, counted: str, checks: Sequence[Check]) -> Table:
    table = Table(title=title)
    for column in ("what", expected, counted, "match"):
        table.add_column(column, justify="right" if column in (expected, counted) else "left")
    for name, want, got in checks:
        table.add_row(
            name,
            "" if want is None else f"{want:,}",
            "(absent)" if got is None else f"{got:,}",
            _mark(want, got),
        )
    return table


def _hits_table(hits: Sequence[dict[str, Any]], title: str) -> Table:
    """A narrow table of search hits (fits 80 columns): time to the second, who, what, how much."""
    table = Table(title=title)
    for column in SAMPLE_COLUMNS:
        table.add_column(column, justify="right" if column in ("quantity", "amount") else "left")
    for hit in hits:
        cells = ["" if hit.get(c) is None else str(hit[c]) for c in SAMPLE_COLUMNS]
        cells[0] = cells[0][:19].replace("T", " ")
        table.add_row(*(escape(cell) for cell in cells))
    return table


def _step(text: str) -> None:
    console.rule(f"[bold]{escape(text)}")


def _run(cmd: list[str], what: str) -> None:
    if subprocess.run(cmd, check=False).returncode != 0:
        raise HighwayError(f"{what} failed (command: {' '.join(cmd[1:])}); see the messages above")


def _produced(runs: Path) -> Produced:
    produced = Produced()
    for record in sorted(runs.glob("produced-*.jsonl")):
        summarize(record.read_text().splitlines(), produced)
    return produced


def _session(conn: Connection) -> SparkSession:
    from highway.spark.session import build_session

    return build_session(conn, "highway-demo-report")


def _delta_count(spark: SparkSession, path: str) -> int | None:
    """Rows of the Delta table at ``path``; None if there is no table there (yet)."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return None
    return spark.read.format("delta").load(path).count()


def _bronze_checks(
    conn: Connection, spec: catalog.BronzeSpec, produced: Produced, spark: SparkSession
) -> list[Check]:
    from delta.tables import DeltaTable

    bronze = _delta_count(spark, conn.lake_path(spec.sink.table))
    dlq = Counter[str]()
    dlq_path = conn.lake_path(spec.dlq.table)
    if DeltaTable.isDeltaTable(spark, dlq_path):
        for row in spark.read.format("delta").load(dlq_path).groupBy("reason").count().collect():
            dlq[row["reason"]] = row["count"]
    checks: list[Check] = [("bronze Delta rows (valid events)", produced.valid, bronze)]
    reasons = sorted(set(produced.invalid) | set(dlq))
    checks += [(f"DLQ: {r}", produced.invalid[r], dlq[r]) for r in reasons]
    return checks


def _scalar(cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of a query's first row (None if there is no row)."""
    row = cur.execute(sql, list(params)).fetchone()
    return None if row is None else row[0]


def _pg_count(cur: Any, table: str, where: str = "", params: Sequence[Any] = ()) -> int | None:
    """``count(*)`` of a warehouse table (None if it does not exist yet)."""
    from highway.core.warehouse import quote_table

    if _scalar(cur, "SELECT to_regclass(%s)", [table]) is None:
        return None
    return int(_scalar(cur, f"SELECT count(*) FROM {quote_table(table)} {where}", params))


def _es_count(conn: Connection, alias: str) -> int | None:
    from highway.adapters import elasticsearch as es_adapter

    try:
        return es_adapter.count(es_adapter.client(conn), alias)
    except HighwayError as exc:
        console.print(f"[red]Elasticsearch count of {escape(alias)}: {escape(str(exc))}")
        return None


def _silver_checks(
    conn: Connection, spec: catalog.SilverSpec, produced: Produced, spark: SparkSession
) -> list[Check]:
    from highway.adapters import postgres

    silver = _delta_count(spark, conn.lake_path(spec.sink.table))
    silver_dlq = _delta_count(spark, conn.lake_path(spec.dlq.table))
    with postgres.connect(conn) as pg, pg.cursor() as cur:
        rows = _pg_count(cur, spec.warehouse.table)
    want = produced.distinct_valid
    checks: list[Check] = [
        ("silver Delta rows", want, silver),
        (f"Elasticsearch docs ({spec.search.alias})", want, _es_count(conn, spec.search.alias)),
        (f"warehouse rows ({spec.warehouse.table})", want, rows),
    ]
    if silver_dlq is not None:
        checks.append(("silver DLQ rows (docs a sink refused)", None, silver_dlq))
    return checks


def _sample_search(conn: Connection, spec: catalog.SilverSpec) -> None:
    from highway.adapters import elasticsearch as es_adapter
    from highway.core.search import build_query

    alias = spec.search.alias
    try:
        es = es_adapter.client(conn)
        body = build_query(SEARCH_QUERY, {}, None, None, SEARCH_SIZE, es_adapter.field_names(es, alias))
        hits = es_adapter.search(es, alias, body)
    except HighwayError as exc:
        console.print(f"[red]sample search failed: {escape(str(exc))}")
        return
    console.print(_hits_table(hits, f"the newest {len(hits)} {SEARCH_QUERY} in {alias}"))
    console.print(f'the same from a shell: [bold]highway search "{SEARCH_QUERY}" --size {SEARCH_SIZE}[/]')


def _gold_checks(conn: Connection, spec: catalog.GoldSpec, silver: catalog.SilverSpec) -> list[Check]:
    """Print the top products by revenue; the check windows + late = orders in silver."""
    from highway.adapters import postgres
    from highway.core.warehouse import quote_identifier, quote_table

    event_type = spec.aggregation.event_type
    group = quote_identifier(spec.aggregation.group_by)
    windows_table = quote_table(spec.warehouse.table)
    with postgres.connect(conn) as pg, pg.cursor() as cur:
        silver_orders = _pg_count(cur, silver.warehouse.table, "WHERE event_type = %s", [event_type])
        late = _pg_count(cur, spec.late_table, "WHERE app = %s", [spec.name])
        in_windows: int | None = None
        top: list[Any] = []
        if _scalar(cur, "SELECT to_regclass(%s)", [spec.warehouse.table]) is not None:
            in_windows = int(_scalar(cur, f"SELECT coalesce(sum(orders), 0) FROM {windows_table}"))
            top = cur.execute(
                f"SELECT {group}, count(*), sum(orders), sum(units), sum(revenue) FROM {windows_table} "
                f"GROUP BY {group} ORDER BY sum(revenue) DESC, {group} LIMIT %s",
                [TOP_PRODUCTS],
            ).fetchall()
    table = Table(title=f"top {TOP_PRODUCTS} by revenue ({spec.warehouse.table}, summed over hourly windows)")
    for column in (spec.aggregation.group_by, "hours", "orders", "units", "revenue"):
        table.add_column(column, justify="left" if column == spec.aggregation.group_by else "right")
    for key, hours, orders, units, revenue in top:
        table.add_row(escape(str(key)), f"{hours:,}", f"{orders:,}", f"{units:,}", f"{revenue:,.2f}")
    console.print(table)
    total = None if in_windows is None or late is None else in_windows + late
    return [
        ("orders in hourly windows", None, in_windows),
        ("late orders (after the watermark)", None, late),
        ("orders in windows + late orders", silver_orders, total),
    ]


def _where(conn: Connection, home: Path, bronze: catalog.BronzeSpec, silver: catalog.SilverSpec) -> None:
    gold = catalog.get(GOLD)
    console.print("Delta tables:")
    for name, relative in (
        ("bronze", bronze.sink.table),
        ("bronze DLQ", bronze.dlq.table),
        ("silver", silver.sink.table),
        ("silver DLQ", silver.dlq.table),
    ):
        console.print(f"  {name:<11} [bold]{conn.lake_path(relative)}[/]")
    console.print(f"Elasticsearch: [bold]{conn.es_url}[/]  alias [bold]{silver.search.alias}[/]")
    console.print(
        f"PostgreSQL: [bold]{conn.pg_host}:{conn.pg_port}[/]  database [bold]{conn.pg_database}[/]  "
        f"user {conn.pg_user} (password: highway stack env)"
    )
    heartbeats = ", ".join(
        conn.lake_path(f"{s.status_prefix}/heartbeat.json") for s in (bronze, silver, gold)
    )
    console.print(f"heartbeats: {heartbeats}")
    view = silver.sink.view_name
    console.print(
        "query the lake: [bold]highway sql "
        f'"SELECT event_type, count(*) AS events FROM {view} GROUP BY event_type ORDER BY events DESC"[/]'
    )
    console.print(f'search: [bold]highway search "{SEARCH_QUERY}" --size {SEARCH_SIZE}[/]')
    console.print(f"state dir: {home}   connection settings: highway stack env")
    console.print("stop everything: [bold]make down[/] (or highway stack down)")


def _app_step(number: str, app: str, what: str, timings: dict[str, float]) -> None:
    _step(f"{number} highway run {app} (stops {UNTIL_IDLE} s after its input is drained)")
    console.print(f"running {app} ({what}) ...")
    started = time.monotonic()
    _run([HIGHWAY, "run", app, "--until-idle", str(UNTIL_IDLE)], f"highway run {app}")
    timings[app.split("_")[0]] = time.monotonic() - started


def run_demo(home: Path, port_base: int, count: int) -> None:
    from highway.adapters import kafka
    from highway.stack import Stack

    timings: dict[str, float] = {}
    begun = started = time.monotonic()
    _step("1/8 local stack: Kafka, S3 (s3proxy), PostgreSQL, Elasticsearch, Airflow")
    stack = Stack(home, port_base)
    stack.up()
    conn = stack.connection()
    bronze = catalog.get_bronze(BRONZE)
    silver, gold = catalog.get(SILVER), catalog.get(GOLD)
    if not isinstance(silver, catalog.SilverSpec) or not isinstance(gold, catalog.GoldSpec):
        raise HighwayError(f"the catalog's {SILVER} must be a silver app and {GOLD} a gold app")
    kafka.ensure_topic(conn.kafka_bootstrap, bronze.source.topic, bronze.source.partitions)
    runs = home / "demo"
    runs.mkdir(parents=True, exist_ok=True)
    run_number = len(list(runs.glob("produced-*.jsonl"))) + 1
    record = runs / f"produced-{run_number:03d}.jsonl"  # one file per run; each run gets its own seed
    timings["stack"] = time.monotonic() - started

    _step(
        f"2/8 highway produce: {count:,} shop events, {BAD_RATIO:.0%} malformed, {LATE_RATIO:.0%} late, "
        f"{DUP_RATIO:.0%} re-sent duplicates"
    )
    started = time.monotonic()
    cmd = [HIGHWAY, "produce", "--count", str(count), "--seed", str(run_number), "--record", str(record)]
    cmd += ["--bad-ratio", str(BAD_RATIO), "--late-ratio", str(LATE_RATIO), "--dup-ratio", str(DUP_RATIO)]
    _run(cmd, "highway produce")
    timings["produce"] = time.monotonic() - started

    _app_step("3/8", BRONZE, "Kafka -> Delta bronze + dead-letter table", timings)
    _app_step("4/8", SILVER, "dedup -> Delta, Elasticsearch, PostgreSQL", timings)
    _app_step("5/8", GOLD, "hourly orders, units and revenue per product -> PostgreSQL", timings)

    _step("6/8 bronze: what landed in the lake")
    produced = _produced(runs)
    started = time.monotonic()
    spark = _session(conn)  # one Spark session counts every Delta table (a session takes ~30 s to start)
    root = conn.lake_root
    console.print(f"bronze Delta table: [bold]{root}/{bronze.sink.table}[/]")
    console.print(f"dead-letter table:  [bold]{root}/{bronze.dlq.table}[/]")
    console.print(
        f"bronze keeps every valid record as sent, {produced.duplicates:,} re-sent duplicates included; "
        "silver keeps each event id once"
    )
    bronze_checks = _bronze_checks(conn, bronze, produced, spark)
    console.print(
        _count_table(
            "bronze: what landed in the lake (all demo runs so far)", "produced", "in Delta", bronze_checks
        )
    )

    _step("7/8 silver and sinks")
    console.print(
        f"produced over {run_number} demo run(s): {produced.valid:,} valid sends, of which "
        f"{produced.duplicates:,} re-sent duplicates -> {produced.distinct_valid:,} distinct valid events"
    )
    silver_checks = _silver_checks(conn, silver, produced, spark)
    spark.stop()
    console.print(
        _count_table("silver and sinks (all demo runs so far)", "distinct valid", "counted", silver_checks)
    )

    _step(f"sample search: the newest {SEARCH_SIZE} order_placed events")
    _sample_search(conn, silver)

    _step("8/8 gold: orders and revenue per product and hour")
    console.print(
        f"windows: {gold.warehouse.table}; late orders: {gold.late_table} (app {gold.name}); orders in "
        f"silver: event_type = '{gold.aggregation.event_type}' in {silver.warehouse.table}"
    )
    gold_checks = _gold_checks(conn, gold, silver)
    console.print(_count_table(f"gold ({gold.warehouse.table})", "orders in silver", "counted", gold_checks))
    timings["counts"] = time.monotonic() - started

    _step("where things are")
    _where(conn, home, bronze, silver)
    timings["total"] = time.monotonic() - begun
    console.print("timings: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items()))
    differ = mismatches([*bronze_checks, *silver_checks, *gold_checks])
    if not differ:
        console.print("[green]every count matches")
    _airflow(home, port_base)
    if differ:
        raise HighwayError("counts differ: " + "; ".join(differ))


HIGHWAY_DAGS = (
    "highway_deploy", "highway_reconcile", "highway_app_control", "highway_checkpoint",
    "highway_checkpoint_backups",
)  # fmt: skip


def _airflow(home: Path, port_base: int) -> None:
    """The DAGs Airflow lists, then its UI address and login as the last lines."""
    from highway.stack.airflow import admin_login
    from highway.stack.airflow_api import AirflowClient

    _step("Airflow")
    client = AirflowClient.for_stack(home, port_base)
    for dag_id in HIGHWAY_DAGS:  # ready to trigger from the UI; reconcile runs every minute from now on
        client.wait_dag(dag_id, timeout=180)
        client.unpause(dag_id)
    run_id = client.trigger("highway_reconcile", {"dry_run": False})
    state = client.wait_run("highway_reconcile", run_id, timeout=300)
    if state == "success":
        cycle = client.xcom("highway_reconcile", run_id, "reconcile")
        apps = ", ".join(f"{app} {seen['state']}" for app, seen in sorted(cycle["apps"].items()))
        console.print(
            f"highway_reconcile: {len(cycle['apps'])} apps in {cycle['cycle_seconds']:.1f} s ({apps})"
        )
    else:
        console.print(f"[yellow]highway_reconcile run {run_id}: {state} (see its log in the UI)[/]")
    console.print(
        "deploy an app under Airflow: trigger highway_deploy with app=bronze_shop_events (local runtime); "
        "then [bold]highway status[/]"
    )
    dags = client.dags()
    listed = ", ".join(f"{d['dag_id']}{' (paused)' if d.get('is_paused') else ''}" for d in dags)
    console.print(f"DAGs: {listed or 'none yet (dags/ has no DAG files)'}")
    errors = client.import_errors()
    if errors:
        console.print(f"[yellow]DAG import errors: {', '.join(str(e.get('filename')) for e in errors)}[/]")
    user, password = admin_login(read_credentials(home))
    console.print(f"Airflow UI: [bold]{client.base_url}[/]")
    console.print(f"login: user [bold]{user}[/]  password [bold]{password}[/]")
