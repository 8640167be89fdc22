"""Freshness from bronze to the silver app's sinks (Elasticsearch, PostgreSQL) at a steady rate.

A bronze + silver pipeline variant (one prefix: the silver reads that bronze's table; both with a 1 s
trigger, the silver reading a few files per batch) runs as two ``highway run`` processes while
``highway produce --rate R`` feeds the bronze topic. Once the warehouse table and the Elasticsearch
alias hold every distinct valid event id produced, both apps are stopped (SIGTERM) and, per event:

- bronze: ``ingested_at`` (the bronze batch's time, just before its commit) and ``kafka_timestamp``,
  read from the bronze Delta table;
- Elasticsearch: ``indexed_at`` (when the silver sink sent the document's batch), read back from the
  silver variant's alias (``search_after`` over ``event_id``);
- PostgreSQL: ``loaded_at`` (the transaction time of the batch's write) from the variant's warehouse table.

The delays (sink time minus bronze or Kafka time) are reported as percentiles, never gated.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from bench.report import percentile

if TYPE_CHECKING:
    from highway.catalog import SilverSpec
    from highway.connection import Connection

console = Console()
SILVER_MAX_FILES = 10
SEED_EVENT_SEED = 1  # the steady run uses produce's default seed
STOP_TIMEOUT = 240.0
PROGRESS_EVERY = 5.0
BATCH_LINE = re.compile(r" batch (\d+): .*; total ([\d.]+) s$")
SERIES = (
    ("bronze → Elasticsearch", "ingested_at", "es"),
    ("bronze → PostgreSQL", "ingested_at", "pg"),
    ("Kafka → Elasticsearch", "kafka_timestamp", "es"),
    ("Kafka → PostgreSQL", "kafka_timestamp", "pg"),
)


@dataclass(frozen=True)
class SinkFreshness:
    """Per-event delays in seconds, by series (see ``SERIES``), for ``expected`` distinct valid events."""

    rate: int
    seconds: int
    expected: int
    bronze_ids: int  # distinct event ids in the bronze table
    es_docs: int
    pg_rows: int
    drain_seconds: float  # from the producer's end until both sinks held every id
    max_files: int = SILVER_MAX_FILES  # the silver's max_files_per_trigger
    series: dict[str, list[float]] = field(default_factory=dict)
    silver_batches: list[float] = field(default_factory=list)  # the silver's batch durations (its log)


# --- helpers ----------------------------------------------------------------------------------


def _valid_ids(record: Path) -> set[str]:
    if not record.exists():
        return set()
    lines = (json.loads(line) for line in record.read_text().splitlines() if line.strip())
    return {line["id"] for line in lines if line["valid"]}


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _table_exists(conn: Connection, table: str) -> bool:
    """The Delta table has a log (its first commit), read from S3 directly."""
    from highway.adapters import s3

    listed = s3.client(conn).list_objects_v2(
        Bucket=conn.lake_bucket, Prefix=f"{table}/_delta_log/", MaxKeys=1
    )
    return int(listed.get("KeyCount", 0)) > 0


def _has_heartbeat(conn: Connection, status_prefix: str) -> bool:
    from highway.adapters import s3
    from highway.errors import HighwayError

    try:
        s3.get_json(s3.client(conn), conn.lake_bucket, f"{status_prefix}/heartbeat.json")
    except HighwayError:
        return False
    return True


def _wait(what: str, ready: Callable[[], bool], apps: list[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for app in apps:
            if app.poll() is not None:
                raise RuntimeError(f"waiting for {what}: an app exited with code {app.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"waiting for {what}: not within {timeout:.0f}s")
        time.sleep(1)


def _es_count(conn: Connection, alias: str) -> int:
    from highway.adapters import elasticsearch as es_adapter
    from highway.errors import HighwayError

    es = es_adapter.client(conn)
    try:
        return es_adapter.count(es, alias)
    except HighwayError:
        return 0  # the alias is created by the silver's first batch
    finally:
        es.close()


def _pg_count(conn: Connection, table: str) -> int:
    from highway.adapters import postgres
    from highway.core.warehouse import quote_table

    with postgres.connect(conn) as pg:
        row = pg.execute("SELECT to_regclass(%s)", [table]).fetchone()
        if row is None or row[0] is None:
            return 0
        counted = pg.execute(f"SELECT count(*) FROM {quote_table(table)}").fetchone()
        return int(counted[0]) if counted else 0


def _stop(apps: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (each stops after its batch in flight), then wait; killed only past the timeout."""
    for app in apps:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for app in apps:
        try:
            app.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            console.print(f"  [red]app pid {app.pid} did not stop within {STOP_TIMEOUT:.0f}s: killed")
            app.kill()
            app.wait()


def _timestamp(value: Any) -> float:
    """Seconds since the epoch of an aware datetime or an ISO string (Elasticsearch ``_source``)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return float(value.timestamp())


# --- reading the stores back -------------------------------------------------------------------


def bronze_times(spark: Any, path: str) -> dict[str, dict[str, float]]:
    """event_id -> ingested_at / kafka_timestamp of its first bronze row (lowest partition, offset)."""
    rows = (
        spark.read.format("delta")
        .load(path)
        .select("event_id", "kafka_partition", "kafka_offset", "ingested_at", "kafka_timestamp")
        .toArrow()
        .to_pylist()
    )
    rows.sort(key=lambda r: (r["kafka_partition"], r["kafka_offset"]))
    times: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["event_id"] not in times:
            times[r["event_id"]] = {
                "ingested_at": _timestamp(r["ingested_at"]),
                "kafka_timestamp": _timestamp(r["kafka_timestamp"]),
            }
    return times


def es_indexed_at(conn: Connection, alias: str) -> tuple[dict[str, float], int]:
    """event_id -> indexed_at of every document in ``alias``; and the documents read."""
    from highway.adapters import elasticsearch as es_adapter

    es = es_adapter.client(conn, timeout=120)
    try:
        indexed: dict[str, float] = {}
        docs = 0
        for hit in es_adapter.scan(es, alias, source=["event_id", "indexed_at"]):
            indexed[hit["_source"]["event_id"]] = _timestamp(hit["_source"]["indexed_at"])
            docs += 1
        return indexed, docs
    finally:
        es.close()


def pg_loaded_at(conn: Connection, table: str) -> dict[str, float]:
    """event_id -> loaded_at of every row of the warehouse table."""
    from highway.adapters import postgres
    from highway.core.warehouse import quote_table

    with postgres.connect(conn) as pg:
        rows = pg.execute(f"SELECT event_id, loaded_at FROM {quote_table(table)}").fetchall()
    return {str(event_id): _timestamp(loaded_at) for event_id, loaded_at in rows}


def silver_batch_seconds(log: Path) -> list[float]:
    """The silver's batch durations from its per-batch log line (``... ; total 1.2 s``)."""
    if not log.exists():
        return []
    return [
        float(m.group(2))
        for line in log.read_text(errors="replace").splitlines()
        if (m := BATCH_LINE.search(line))
    ]


def _cleanup(conn: Connection, spec: SilverSpec) -> None:
    """Drop the variant's index and warehouse table (best effort: a shared stack stays tidy)."""
    from highway import warehouse
    from highway.adapters import elasticsearch as es_adapter
    from highway.adapters import postgres
    from highway.core.search import index_pattern
    from highway.core.warehouse import quote_table

    try:
        es = es_adapter.client(conn)
        es.indices.delete(index=index_pattern(spec.search.alias), ignore_unavailable=True)
        es.options(ignore_status=404).indices.delete_index_template(name=spec.search.alias)
        es.close()
        with postgres.connect(conn) as pg:
            pg.execute(f"DROP TABLE IF EXISTS {quote_table(spec.warehouse.table)}")
            pg.execute(f"DELETE FROM {quote_table(warehouse.LEDGER_TABLE)} WHERE app = %s", [spec.name])
    except Exception as exc:  # cleanup only: the figures are already read
        console.print(f"  [yellow]cleanup of {spec.name} incomplete: {exc}")


# --- the measurement ---------------------------------------------------------------------------


def _feed_and_wait(
    conn: Connection,
    producer: subprocess.Popen[bytes],
    apps: list[subprocess.Popen[bytes]],
    spec: SilverSpec,
    records: tuple[Path, Path],
    count: int,
    timeout: float,
) -> tuple[set[str], float]:
    """Progress lines until both sinks hold every distinct valid id produced; those ids, and how long
    after the producer's end that took."""
    alias, table = spec.search.alias, spec.warehouse.table
    started = time.monotonic()
    produced_at: float | None = None
    expected: set[str] = set()
    while True:
        time.sleep(PROGRESS_EVERY)
        for app in apps:
            if app.poll() is not None:
                raise RuntimeError(f"an app exited with code {app.returncode}; see its log")
        es_docs, pg_rows = _es_count(conn, alias), _pg_count(conn, table)
        state = f"produced {_lines(records[0]):,}/{count:,}"
        if produced_at is None and producer.poll() is not None:
            if producer.returncode != 0:
                raise RuntimeError(f"highway produce exited with code {producer.returncode}")
            produced_at = time.monotonic()
            expected = set().union(*(_valid_ids(r) for r in records))
        if produced_at is not None:
            state = f"produced {count:,} (done; {len(expected):,} distinct valid ids incl. seed)"
        console.print(f"  ... {time.monotonic() - started:4.0f}s: {state}; ES {es_docs:,}, PG {pg_rows:,}")
        if produced_at is None:
            continue
        if es_docs >= len(expected) and pg_rows >= len(expected):
            return expected, time.monotonic() - produced_at
        if time.monotonic() - produced_at > timeout:
            raise RuntimeError(
                f"the sinks hold {es_docs:,} documents / {pg_rows:,} rows of {len(expected):,} "
                f"{timeout:.0f}s after the producer ended"
            )


def measure_sink_freshness(
    spark: Any,
    conn: Connection,
    highway: str,
    bronze_name: str,
    silver_name: str,
    workdir: Path,
    rate: int,
    seconds: int,
) -> SinkFreshness:
    """Run the pipeline under ``rate`` events/s for ``seconds``; the per-event delays to each sink."""
    from highway import catalog
    from highway.catalog import SilverSpec

    bronze = catalog.get_bronze(bronze_name)
    silver_spec = catalog.get(silver_name)
    if not isinstance(silver_spec, SilverSpec):
        raise RuntimeError(f"{silver_name} is not a silver app")
    workdir.mkdir(parents=True, exist_ok=True)
    seed_record, record = workdir / "seed.jsonl", workdir / "steady.jsonl"
    count = rate * seconds
    console.print(
        f"[bold]freshness to the sinks[/]: bronze + silver apps, {rate:,} events/s for {seconds}s; "
        f"Elasticsearch alias {silver_spec.search.alias}, warehouse table {silver_spec.warehouse.table}"
    )
    clean = ["--bad-ratio", "0", "--late-ratio", "0", "--dup-ratio", "0"]
    produce = [highway, "produce", "--app", bronze_name, *clean]
    # one event first: the topic exists before the bronze subscribes, the table before the silver reads it
    # (its own generator seed: the same seed would send the same event id again, as the steady run's first)
    seed = [*produce, "--count", "1", "--seed", str(SEED_EVENT_SEED), "--record", str(seed_record)]
    subprocess.run(seed, check=True, stdout=subprocess.DEVNULL)
    apps: list[subprocess.Popen[bytes]] = []
    logs = {name: workdir / f"{name}.log" for name in (bronze_name, silver_name)}
    try:
        began = time.monotonic()
        with logs[bronze_name].open("wb") as out:
            apps.append(subprocess.Popen([highway, "run", bronze_name], stdout=out, stderr=subprocess.STDOUT))
        _wait(
            f"the bronze table {bronze.sink.table}", lambda: _table_exists(conn, bronze.sink.table), apps, 300
        )
        console.print(
            f"  bronze table committed after {time.monotonic() - began:.0f}s; starting the silver app"
        )
        with logs[silver_name].open("wb") as out:
            apps.append(subprocess.Popen([highway, "run", silver_name], stdout=out, stderr=subprocess.STDOUT))
        _wait("the silver's first batch", lambda: _has_heartbeat(conn, silver_spec.status_prefix), apps, 300)
        console.print(f"  silver running after {time.monotonic() - began:.0f}s; steady load starts")
        producer = subprocess.Popen(
            [*produce, "--count", str(count), "--rate", str(rate), "--record", str(record)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        apps.insert(0, producer)  # stopped first if anything fails
        expected, drain = _feed_and_wait(
            conn, producer, apps[1:], silver_spec, (record, seed_record), count, max(300.0, 5.0 * seconds)
        )
        console.print(
            f"  both sinks complete {drain:.0f}s after the producer ended; stopping the apps (SIGTERM)"
        )
    finally:
        _stop(apps)
    for app, name in zip(apps[1:], logs, strict=True):
        if app.returncode != 0:
            raise RuntimeError(f"{name} exited with code {app.returncode}: see {logs[name]}")
    steady = _valid_ids(record)
    result = _collect(spark, conn, bronze.sink.table, silver_spec, steady, expected, rate, seconds, drain)
    result.silver_batches.extend(silver_batch_seconds(logs[silver_name]))
    _cleanup(conn, silver_spec)
    for label, delays in result.series.items():
        console.print(
            f"  {label}: p50 {percentile(delays, 50):.2f}s, p99 {percentile(delays, 99):.2f}s, "
            f"max {max(delays):.2f}s ({len(delays):,} events)"
        )
    return result


def _collect(
    spark: Any,
    conn: Connection,
    bronze_table: str,
    spec: SilverSpec,
    steady: set[str],
    expected: set[str],
    rate: int,
    seconds: int,
    drain: float,
) -> SinkFreshness:
    """Read the three stores back; every distinct valid id in each, else the bench fails."""
    bronze = bronze_times(spark, conn.lake_path(bronze_table))
    indexed, es_docs = es_indexed_at(conn, spec.search.alias)
    loaded = pg_loaded_at(conn, spec.warehouse.table)
    for store, ids in (("bronze", bronze), ("Elasticsearch", indexed), ("PostgreSQL", loaded)):
        missing = expected - set(ids)
        if missing or len(ids) != len(expected) or (store == "Elasticsearch" and es_docs != len(expected)):
            raise RuntimeError(
                f"{store} holds {len(ids):,} distinct ids, expected {len(expected):,} "
                f"({len(missing):,} missing, e.g. {sorted(missing)[:3]})"
            )
    sink_times = {"es": indexed, "pg": loaded}
    series = {
        label: [sink_times[sink][i] - bronze[i][start] for i in sorted(steady)]
        for label, start, sink in SERIES
    }
    return SinkFreshness(
        rate=rate,
        seconds=seconds,
        expected=len(steady),
        bronze_ids=len(bronze),
        es_docs=es_docs,
        pg_rows=len(loaded),
        drain_seconds=drain,
        series=series,
    )
