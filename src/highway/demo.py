"""`make demo`: the main job on the local stack, end to end, the way a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from highway import catalog
from highway.connection import Connection
from highway.errors import HighwayError

console = Console()
HIGHWAY = str(Path(sys.executable).with_name("highway"))
APP = "bronze_shop_events"


def _step(text: str) -> None:
    console.rule(f"[bold]{text}")


def _produced(records: list[Path]) -> tuple[int, Counter[str]]:
    """Valid and invalid (by reason) records over every demo run's record file."""
    valid, invalid = 0, Counter[str]()
    for record in records:
        for line in record.read_text().splitlines():
            row = json.loads(line)
            if row["valid"]:
                valid += 1
            else:
                invalid[row["reason"]] += 1
    return valid, invalid


def _run(cmd: list[str], what: str) -> None:
    if subprocess.run(cmd, check=False).returncode != 0:
        raise HighwayError(f"{what} failed (command: {' '.join(cmd[1:])}); see the messages above")


def _lake_counts(conn: Connection, spec: catalog.BronzeSpec) -> tuple[int, Counter[str]]:
    from highway.spark.session import build_session

    spark = build_session(conn, "highway-demo-report")
    lake = conn.lake_root
    bronze = spark.read.format("delta").load(f"{lake}/{spec.sink.table}").count()
    dlq = Counter[str]()
    for row in (
        spark.read.format("delta").load(f"{lake}/{spec.dlq.table}").groupBy("reason").count().collect()
    ):
        dlq[row["reason"]] = row["count"]
    spark.stop()
    return bronze, dlq


def _report(
    spec: catalog.BronzeSpec,
    conn: Connection,
    produced: tuple[int, Counter[str]],
    lake: tuple[int, Counter[str]],
) -> bool:
    valid, invalid = produced
    bronze, dlq = lake
    root = conn.lake_root
    console.print(f"bronze Delta table: [bold]{root}/{spec.sink.table}[/]")
    console.print(f"dead-letter table:  [bold]{root}/{spec.dlq.table}[/]")
    table = Table(title="what landed in the lake (all demo runs so far)")
    for column in ("table", "produced", "in Delta", "match"):
        table.add_column(column)
    rows = [("bronze (valid events)", valid, bronze)]
    rows += [(f"DLQ: {r}", invalid[r], dlq[r]) for r in sorted(set(invalid) | set(dlq))]
    ok = True
    for name, want, got in rows:
        ok &= want == got
        table.add_row(name, f"{want:,}", f"{got:,}", "[green]yes" if want == got else "[red]NO")
    console.print(table)
    return ok


def run_demo(home: Path, port_base: int, count: int) -> None:
    from highway.adapters import kafka
    from highway.stack import Stack

    _step("1/4 local stack: Kafka, S3 (s3proxy), PostgreSQL, Elasticsearch")
    stack = Stack(home, port_base)
    stack.up()
    conn = stack.connection()
    spec = catalog.get_bronze(APP)
    kafka.ensure_topic(conn.kafka_bootstrap, spec.source.topic, spec.source.partitions)
    runs = home / "demo"
    runs.mkdir(parents=True, exist_ok=True)
    run_number = len(list(runs.glob("produced-*.jsonl"))) + 1
    record = runs / f"produced-{run_number:03d}.jsonl"  # one file per run; each run gets its own seed

    _step(f"2/4 highway produce: {count:,} shop events, 1% malformed, 5% late")
    cmd = [HIGHWAY, "produce", "--count", str(count), "--seed", str(run_number), "--record", str(record)]
    _run(cmd, "highway produce")

    _step(f"3/4 highway run {APP} (stops 10 s after the topic is drained)")
    _run([HIGHWAY, "run", APP, "--until-idle", "10"], f"highway run {APP}")

    _step("4/4 results")
    ok = _report(spec, conn, _produced(sorted(runs.glob("produced-*.jsonl"))), _lake_counts(conn, spec))
    console.print(
        f"Elasticsearch: {conn.es_url}   PostgreSQL: {conn.pg_host}:{conn.pg_port} (sinks arrive next)"
    )
    console.print(f"heartbeat: {conn.lake_root}/{spec.status_prefix}/heartbeat.json")
    console.print(f"state dir: {home}   connection settings: highway stack env")
    console.print("stop everything: [bold]make down[/] (or highway stack down)")
    if not ok:
        raise HighwayError("the lake does not hold what was produced; see the table above")
