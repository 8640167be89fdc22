"""Helpers for tests that drive highway as a user would: through the CLI, against the real stack."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from highway.catalog import AppSpec, BronzeSpec, catalog_dir, load
from highway.catalog.variant import variant
from highway.settings import repo_root

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from highway.connection import Connection

HIGHWAY = str(Path(sys.executable).with_name("highway"))


def free_port_base(first: int) -> int:
    """The first base (in steps of 500) whose stack ports are all free: a leftover stack is left alone."""
    from highway.settings import PORT_OFFSETS

    for base in range(first, first + 10_000, 500):
        try:
            for offset in PORT_OFFSETS.values():
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no free port base from {first}")


def app_variant(
    directory: Path,
    suffix: str,
    base: str = "bronze_shop_events",
    trigger_seconds: float | None = None,
    prefix: str | None = None,
    **source: Any,
) -> AppSpec:
    """A copy of a shipped catalog app with its own topic, tables, index and checkpoint, for one test.

    Variants made with the same ``prefix`` form a pipeline: silver reads that bronze's table.
    """
    shipped = yaml.safe_load((catalog_dir() / f"{base}.yaml").read_text())
    data = variant(shipped, suffix, prefix or f"t_{suffix}")
    if trigger_seconds is not None:
        data["trigger"] = {"interval_seconds": trigger_seconds}
    data["source"].update(source)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def bronze_variant(directory: Path, suffix: str, **kwargs: Any) -> BronzeSpec:
    spec = app_variant(directory, suffix, **kwargs)
    assert isinstance(spec, BronzeSpec)
    return spec


def secrets_on_command_lines(home: Path) -> list[str]:
    """Every process whose command line holds one of the stack's secrets (``credentials.json``), named by
    pid, its program and the secret's key - never the value. Any local user can read /proc/*/cmdline."""
    creds: dict[str, str] = json.loads((home / "credentials.json").read_text())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        text = b" ".join(argv).decode(errors="replace")
        for key, value in creds.items():
            if len(value) >= 8 and value in text:
                found.append(f"pid {proc.name} ({argv[0].decode(errors='replace')}): {key}")
    return found


MEASURED: list[str] = []  # printed in the run's summary by conftest's pytest_terminal_summary


def measured(line: str) -> None:
    """A figure a test measured (a recovery time, a cycle time): reported at the end of the run, never a
    reason to fail."""
    MEASURED.append(line)


def env_for(catalog: Path) -> dict[str, str]:
    return {**os.environ, "HIGHWAY_CATALOG": str(catalog), "PYTHONUNBUFFERED": "1"}


def produce(
    catalog: Path, spec: BronzeSpec, count: int, record: Path, *args: str, timeout: float = 600
) -> None:
    cmd = [HIGHWAY, "produce", "--app", spec.name, "--count", str(count), "--record", str(record), *args]
    done = subprocess.run(
        cmd, env=env_for(catalog), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"produce failed:\n{done.stdout}\n{done.stderr}"


def send_event(
    conn: Connection, topic: str, key: str, event: dict[str, Any], reason: str | None = None
) -> dict[str, Any]:
    """One JSON event sent to ``topic`` as a producer would; its record line (like `highway produce`'s):
    valid, or the DLQ ``reason`` bronze must give it."""
    from confluent_kafka import Producer

    delivered: list[Any] = []
    producer = Producer({"bootstrap.servers": conn.kafka_bootstrap, "message.max.bytes": 4 * 1024 * 1024})
    producer.produce(
        topic, json.dumps(event).encode(), key=key.encode(), on_delivery=lambda e, m: delivered.append((e, m))
    )
    producer.flush(30)
    error, message = delivered[0]
    assert error is None, error
    return {
        "id": event.get("event_id"),
        "valid": reason is None,
        "reason": reason,
        "late": False,
        "partition": message.partition(),
        "offset": message.offset(),
    }


def start_app(catalog: Path, spec: AppSpec, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """`highway run APP` in its own process group (so a kill reaches the driver AND its JVM)."""
    out = log.open("ab")
    return subprocess.Popen(
        [HIGHWAY, "run", spec.name, *args], env=env_for(catalog), stdout=out, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    proc.wait(timeout=60)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise


def committed_rows(spark: SparkSession, path: str) -> int:
    """Rows in the table's latest snapshot; 0 while it does not exist yet.

    (DeltaTable.isDeltaTable caches a "no" for the path, so it is not used while a table appears.)
    """
    from pyspark.errors import AnalysisException

    try:
        return int(spark.read.format("delta").load(path).count())
    except AnalysisException:
        return 0


def wait_for_rows(spark: SparkSession, path: str, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        rows = committed_rows(spark, path)
        if rows >= at_least:
            return rows
        time.sleep(2)
    return rows


@dataclass(frozen=True)
class Audit:
    produced_valid: int
    produced_invalid: int
    bronze_rows: int
    bronze_distinct_offsets: int
    dlq_rows: int
    missing_valid: int
    unexpected_bronze: int
    dlq_mismatched: int

    @property
    def duplicates(self) -> int:
        return self.bronze_rows - self.bronze_distinct_offsets

    def assert_exactly_once(self) -> None:
        assert self.duplicates == 0, self
        assert self.missing_valid == 0, self
        assert self.unexpected_bronze == 0, self
        assert self.bronze_rows == self.produced_valid, self
        assert self.dlq_rows == self.produced_invalid, self
        assert self.dlq_mismatched == 0, self


def read_records(*paths: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return rows


def audit(spark: SparkSession, conn: Connection, spec: BronzeSpec, records: list[dict[str, Any]]) -> Audit:
    """Compare what was produced (the record files) with what both Delta tables hold."""
    valid = {(r["partition"], r["offset"]) for r in records if r["valid"]}
    invalid = {(r["partition"], r["offset"], r["reason"]) for r in records if not r["valid"]}
    bronze = spark.read.format("delta").load(f"{conn.lake_root}/{spec.sink.table}")
    bronze_offsets = [(r[0], r[1]) for r in bronze.select("kafka_partition", "kafka_offset").collect()]
    dlq_path = f"{conn.lake_root}/{spec.dlq.table}"
    dlq: list[tuple[int, int, str]] = []
    if committed_rows(spark, dlq_path) or invalid:
        rows = spark.read.format("delta").load(dlq_path).select("kafka_partition", "kafka_offset", "reason")
        dlq = [(r[0], r[1], r[2]) for r in rows.collect()]
    seen = set(bronze_offsets)
    return Audit(
        produced_valid=len(valid),
        produced_invalid=len(invalid),
        bronze_rows=len(bronze_offsets),
        bronze_distinct_offsets=len(seen),
        dlq_rows=len(dlq),
        missing_valid=len(valid - seen),
        unexpected_bronze=len(seen - valid),
        dlq_mismatched=len(set(dlq) ^ invalid),
    )


def scrape_metrics(log: Path, want: str, timeout: float) -> str:
    """Poll the app's /metrics (address taken from its log) until a line starting with ``want`` appears."""
    import re
    import urllib.request

    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        found = re.search(r"metrics on (http://\S+)", log.read_text(errors="replace"))
        if found:
            try:
                with urllib.request.urlopen(found.group(1), timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                text = ""
            if any(line.startswith(want) for line in text.splitlines()):
                return text
        time.sleep(1)
    raise AssertionError(f"no {want!r} in the app's metrics within {timeout}s:\n{text[-2000:]}")


# --- silver / gold pipelines ---------------------------------------------------------------------


def pipeline_variant(directory: Path, suffix: str, base: str, source_table: str, **changes: Any) -> AppSpec:
    """A silver or gold app with its own tables, index and checkpoint, reading ``source_table``."""
    shipped = yaml.safe_load((catalog_dir() / f"{base}.yaml").read_text())
    data = variant(shipped, suffix, f"t_{suffix}")
    data["source"]["table"] = source_table
    data["source"].update(changes.pop("source", {}))
    data.update(changes)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def run_to_idle(catalog: Path, spec: AppSpec, log: Path, idle: float = 8, timeout: float = 900) -> None:
    """`highway run APP --until-idle` to completion; the log tail on failure."""
    app = start_app(catalog, spec, log, "--until-idle", str(idle))
    code = wait_exit(app, timeout=timeout)
    assert code == 0, f"{spec.name} exited {code}:\n{log.read_text(errors='replace')[-4000:]}"


def distinct_valid_ids(records: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in records if r["valid"]}


def es_ids(conn: Connection, alias: str) -> list[str]:
    """Every document's event_id in ``alias``, duplicates included."""
    from highway.adapters import elasticsearch as es

    return [hit["sort"][0] for hit in es.scan(es.client(conn), alias)]


def pg_rows(conn: Connection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    from highway.adapters import postgres

    with postgres.connect(conn) as pgconn:
        return [tuple(row) for row in pgconn.execute(sql, list(params)).fetchall()]


def heartbeat(conn: Connection, spec: AppSpec) -> dict[str, Any]:
    from highway.adapters import s3

    doc: dict[str, Any] = s3.get_json(
        s3.client(conn), conn.lake_bucket, f"{spec.status_prefix}/heartbeat.json"
    )
    return doc


@dataclass(frozen=True)
class SinkAudit:
    """What each silver store holds compared with the distinct valid events produced."""

    expected: int
    silver_rows: int
    silver_missing: int
    silver_unexpected: int
    es_docs: int
    es_missing: int
    es_unexpected: int
    pg_rows: int
    pg_missing: int
    pg_unexpected: int
    dlq_ids: frozenset[str]
    es_differ: tuple[str, ...] = ()  # ids whose document holds other values than the silver row
    pg_differ: tuple[str, ...] = ()  # ids whose warehouse row holds other values than the silver row

    def assert_exactly_once(
        self,
        refused: set[str] = frozenset(),  # type: ignore[assignment]
        refused_pg: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        """Each store holds every expected id once but the ones it refused (``refused``: Elasticsearch,
        ``refused_pg``: the warehouse), those in the DLQ, and the same values as silver."""
        assert self.es_differ == () and self.pg_differ == (), self  # the same values in every store
        assert self.silver_rows == self.expected, self  # no duplicates: rows = distinct ids
        assert self.silver_missing == 0 and self.silver_unexpected == 0, self
        assert self.pg_rows == self.expected - len(refused_pg), self
        assert self.pg_missing == len(refused_pg) and self.pg_unexpected == 0, self
        assert self.es_docs == self.expected - len(refused), self
        assert self.es_missing == len(refused) and self.es_unexpected == 0, self
        assert self.dlq_ids == frozenset(refused) | frozenset(refused_pg), self


VALUE_COLUMNS = (
    "event_id", "event_type", "event_time", "user_id", "session_id", "product_id", "order_id", "quantity",
    "price", "amount", "currency", "payment_method", "page", "kafka_partition", "kafka_offset",
)  # fmt: skip  # what silver, its search index and its warehouse table all hold


def _value(column: str, value: Any) -> Any:
    """One value as every store can be compared on: times as epoch milliseconds, money to the cent."""
    from datetime import UTC, datetime
    from decimal import Decimal

    if column == "event_time" and isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return round((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    if isinstance(value, float | Decimal):
        return round(float(value), 2)
    return value


def _values(row: Any) -> tuple[Any, ...]:
    get = row.get if isinstance(row, dict) else lambda c: row[VALUE_COLUMNS.index(c)]
    return tuple(_value(c, get(c)) for c in VALUE_COLUMNS)


def _differ(silver: dict[str, tuple[Any, ...]], other: dict[str, tuple[Any, ...]]) -> tuple[str, ...]:
    return tuple(sorted(i for i in silver.keys() & other.keys() if silver[i] != other[i]))


def sink_audit(spark: SparkSession, conn: Connection, spec: Any, expected: set[str]) -> SinkAudit:
    """Ids in each store against ``expected``, and each stored value against the silver row's."""
    from pyspark.sql import functions as F

    from highway.adapters import elasticsearch as es

    table_df = spark.read.format("delta").load(conn.lake_path(spec.sink.table))
    columns = [F.unix_millis(c).alias(c) if c == "event_time" else c for c in VALUE_COLUMNS]
    silver_rows = table_df.select(*columns).collect()
    silver = [r["event_id"] for r in silver_rows]
    silver_values = {r["event_id"]: _values(r) for r in silver_rows}
    es_docs = [
        hit["_source"] for hit in es.scan(es.client(conn), spec.search.alias, source=list(VALUE_COLUMNS))
    ]
    docs = [d["event_id"] for d in es_docs]
    table = spec.warehouse.table
    pg_table = pg_rows(conn, f"SELECT {', '.join(VALUE_COLUMNS)} FROM {table}")
    stored = [r[0] for r in pg_table]
    dlq_path = conn.lake_path(spec.dlq.table)
    dlq = set()
    if committed_rows(spark, dlq_path):
        dlq = {r[0] for r in spark.read.format("delta").load(dlq_path).select("event_id").collect()}
    return SinkAudit(
        expected=len(expected),
        silver_rows=len(silver),
        silver_missing=len(expected - set(silver)),
        silver_unexpected=len(set(silver) - expected),
        es_docs=len(docs),
        es_missing=len(expected - set(docs)),
        es_unexpected=len(set(docs) - expected),
        pg_rows=len(stored),
        pg_missing=len(expected - set(stored)),
        pg_unexpected=len(set(stored) - expected),
        dlq_ids=frozenset(dlq),
        es_differ=_differ(silver_values, {d["event_id"]: _values(d) for d in es_docs}),
        pg_differ=_differ(silver_values, {r[0]: _values(r) for r in pg_table}),
    )


# ---- the DAG tests' apps (tests/dags, tests/k8s/test_airflow_kube.py) ---------------------------------

DAG_STAMP = str(int(time.time()))[-6:]
# fast health settings so a frozen driver is found in seconds, not the shipped 5 minutes
FAST_HEALTH = {
    "stall_triggers": 3,
    "stall_floor_seconds": 20,
    "startup_grace_seconds": 120,
    "restart_budget": 3,
    "window_minutes": 30,
    "backoff_base_seconds": 5,
}


def _dag_app(catalog: Path, suffix: str, **changes: Any) -> AppSpec:
    shipped = yaml.safe_load((repo_root() / "spark_apps" / "catalog" / "bronze_shop_events.yaml").read_text())
    data = variant(shipped, suffix, f"t_{suffix}")
    data.update(changes)
    path = catalog / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


def write_dag_apps(catalog: Path) -> tuple[AppSpec, AppSpec]:
    """The apps the DAG tests drive: one for the local runtime (fast health), one for Kubernetes."""
    catalog.mkdir(parents=True, exist_ok=True)
    local = _dag_app(
        catalog,
        f"af{DAG_STAMP}",
        trigger={"interval_seconds": 2},
        health=FAST_HEALTH,
        resources={"driver_memory": "1g", "shuffle_partitions": 2},
    )
    kube = _dag_app(catalog, f"kube{DAG_STAMP}", resources={"driver_memory": "1g", "driver_cpu": "500m"})
    return local, kube


@dataclass(frozen=True)
class DagApps:
    """The session's Airflow (a logged-in REST client) and the apps its DAGs may be run on."""

    catalog: Path
    local: AppSpec  # the local-runtime tests deploy, kill, freeze and roll it back
    kube: AppSpec  # the Kubernetes-runtime test deploys it
    client: Any  # highway.stack.airflow_api.AirflowClient
    stack: Any  # highway.stack.Stack

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        return self.client.xcom(dag_id, run_id, task_id)

    def states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t["task_id"]: t["state"] for t in self.client.task_instances(dag_id, run_id)}
