"""`make bench`: bronze throughput next to its ceiling, and freshness at a steady rate.

Every figure is measured in this run, on this machine, against the real local stack:
- ceiling: Spark's Kafka source -> noop sink over the same topic (read cost only);
- bronze: the bronze app's batch function (parse, classify, two exactly-once Delta commits);
- freshness: event produced (Kafka timestamp) -> visible in Delta (its commit's timestamp), per event,
  while `highway produce --rate R` feeds the running app;
- freshness to the sinks: a bronze + silver pipeline at a steady rate, per event from the bronze row
  (and from Kafka) to its Elasticsearch document and its warehouse row (bench/freshness.py);
- sinks: the Elasticsearch and PostgreSQL sink cores next to the raw client's own bulk/COPY (bench/sinks.py);
- DAG parse time per file, next to importing Airflow's Task SDK alone (bench/dags.py).
Writes ``bench/report.md`` and PNG plots next to it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

console = Console()
HIGHWAY = str(Path(sys.executable).with_name("highway"))
BENCH_PORT_BASE = 22000


@dataclass(frozen=True)
class Throughput:
    name: str
    rows: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _variant(catalog: Path, suffix: str, base: str = "bronze_shop_events", **changes: Any) -> str:
    """An isolated copy of a shipped app under ``bench_<suffix>/`` in the lake; its name."""
    from highway.catalog.variant import variant
    from highway.settings import repo_root

    shipped = yaml.safe_load((repo_root() / "spark_apps" / "catalog" / f"{base}.yaml").read_text())
    data = variant(shipped, suffix, f"bench_{suffix}")
    data["source"].update(changes.pop("source", {}))
    data.update(changes)
    catalog.mkdir(parents=True, exist_ok=True)
    (catalog / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return str(data["name"])


def _produce(name: str, count: int, *args: str, background: bool = False) -> subprocess.Popen[bytes] | None:
    cmd = [HIGHWAY, "produce", "--app", name, "--count", str(count), *args]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return None


def _timed_query(start: Any) -> float:
    began = time.perf_counter()
    query = start()
    query.awaitTermination()
    return time.perf_counter() - began


def measure_throughput(spark: Any, conn: Any, name: str, events: int) -> list[Throughput]:
    """Three queries over one topic: noop (the ceiling), raw Delta append (the sink's own cost), bronze."""
    from highway import catalog
    from highway.spark.apps import kafka_stream, start_bronze, table_path
    from highway.spark.lineage import Lineage
    from highway.spark.metrics import AppMetrics
    from highway.spark.sinks import SinkTally

    spec = catalog.get_bronze(name)
    console.print(f"[bold]throughput[/]: producing {events:,} events to {spec.source.topic}")
    _produce(name, events, "--bad-ratio", "0.01", "--late-ratio", "0.05")

    def noop(tag: str = "noop") -> Any:
        stream = kafka_stream(spark, spec, conn)
        checkpoint = table_path(conn, f"{spec.checkpoint}_{tag}")
        return (
            stream.writeStream.format("noop")
            .option("checkpointLocation", checkpoint)
            .trigger(availableNow=True)
            .start()
        )

    def raw_delta() -> Any:
        stream = kafka_stream(spark, spec, conn).select(
            "key", "value", "topic", "partition", "offset", "timestamp"
        )
        return (
            stream.writeStream.format("delta")
            .option("checkpointLocation", table_path(conn, f"{spec.checkpoint}_raw"))
            .trigger(availableNow=True)
            .start(table_path(conn, f"{spec.sink.table}_raw"))
        )

    def bronze() -> Any:
        lineage = Lineage(conn, name, spec.checkpoint)
        query = start_bronze(spark, spec, conn, SinkTally(AppMetrics(name)), lineage, available_now=True)
        lineage.bind(query.id)
        return query

    console.print("  warm-up: one unmeasured noop pass (JIT, class loading, connections)")
    _timed_query(lambda: noop("warmup"))
    queries = [
        ("Kafka -> noop (ceiling)", noop),
        ("Kafka -> raw Delta append (no parsing)", raw_delta),
        ("Kafka -> bronze (Delta + DLQ)", bronze),
    ]
    results = []
    for label, start in queries:
        result = Throughput(label, events, _timed_query(start))
        console.print(f"  {label}: {result.per_second:,.0f} events/s")
        results.append(result)
    return results


def _wait_for_first_batch(
    conn: Any, status_prefix: str, app: subprocess.Popen[bytes], timeout: float = 300
) -> None:
    """The app is up once its heartbeat exists: only then does the steady load start."""
    from highway.adapters import s3
    from highway.errors import HighwayError

    client = s3.client(conn)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and app.poll() is None:
        try:
            s3.get_json(client, conn.lake_bucket, f"{status_prefix}/heartbeat.json")
            return
        except HighwayError:
            time.sleep(1)
    raise RuntimeError(f"the bench app wrote no heartbeat within {timeout}s (exit code {app.poll()})")


def measure_freshness(spark: Any, conn: Any, name: str, rate: int, seconds: int) -> list[float]:
    """Per-event delay from Kafka timestamp to the Delta commit that made it visible, in seconds."""
    from highway import catalog

    spec = catalog.get_bronze(name)
    console.print(f"[bold]freshness[/]: {rate} events/s for {seconds}s into a running bronze app")
    _produce(name, 1, "--bad-ratio", "0")  # the topic exists before the app subscribes
    quiet = subprocess.DEVNULL
    app = subprocess.Popen([HIGHWAY, "run", name, "--until-idle", "8"], stdout=quiet, stderr=quiet)
    _wait_for_first_batch(conn, spec.status_prefix, app)
    producer = _produce(name, rate * seconds, "--rate", str(rate), "--bad-ratio", "0", background=True)
    assert producer is not None
    for tick in range(seconds + 60):
        if producer.poll() is not None and app.poll() is not None:
            break
        if tick % 10 == 0:
            console.print(f"  ... {tick}s, producer {'done' if producer.poll() is not None else 'running'}")
        time.sleep(1)
    app.wait(timeout=300)
    return freshness_of(spark, f"{conn.lake_root}/{spec.sink.table}")


def freshness_of(spark: Any, path: str) -> list[float]:
    from highway.core.progress import commit_ranges

    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("timestamp", "userMetadata").collect()
    ranges = commit_ranges([(r["timestamp"].timestamp(), r["userMetadata"]) for r in history])
    rows = spark.read.format("delta").load(path).select("kafka_partition", "kafka_offset", "kafka_timestamp")
    delays = []
    for r in rows.toLocalIterator():
        committed = ranges.commit_time(r["kafka_partition"], r["kafka_offset"])
        if committed is not None:
            delays.append(committed - r["kafka_timestamp"].timestamp())
    return delays


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a short run (used by make test)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--docs", type=int, default=100_000, help="documents/rows per sink side")
    parser.add_argument(
        "--sink-rate", type=int, default=1000, help="events/s into the bronze + silver pipeline"
    )
    parser.add_argument("--sink-seconds", type=int, default=60, help="how long that steady load lasts")
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.rate, args.seconds, args.docs = 20_000, 500, 10, 5_000
        args.sink_rate, args.sink_seconds = 200, 10
    from bench.dags import measure_dag_parse
    from bench.freshness import SILVER_MAX_FILES, measure_sink_freshness
    from bench.report import write_report
    from bench.sinks import measure_sinks
    from highway.spark.session import build_session
    from highway.stack import Stack

    own_stack = "HIGHWAY_HOME" not in os.environ  # else: a running stack was given (the smoke test's)
    home = Path(os.environ.get("HIGHWAY_HOME") or tempfile.mkdtemp(prefix="highway-bench-"))
    home.chmod(0o755)
    base = int(os.environ.get("HIGHWAY_PORT_BASE", BENCH_PORT_BASE))
    os.environ.update(HIGHWAY_HOME=str(home), HIGHWAY_PORT_BASE=str(base))
    catalog = Path(tempfile.mkdtemp(prefix="highway-bench-catalog-"))
    os.environ["HIGHWAY_CATALOG"] = str(catalog)
    stamp = str(int(time.time()))
    thr_app = _variant(catalog, f"thr{stamp}", source={"max_offsets_per_trigger": 100_000})
    fresh_app = _variant(catalog, f"fresh{stamp}", trigger={"interval_seconds": 1})
    # one suffix (so one prefix) for both: the silver variant reads this bronze variant's table
    second: dict[str, Any] = {"trigger": {"interval_seconds": 1}}
    pipe_bronze = _variant(catalog, f"pipe{stamp}", **second)
    pipe_silver = _variant(
        catalog,
        f"pipe{stamp}",
        "silver_shop_events",
        source={"max_files_per_trigger": SILVER_MAX_FILES},
        **second,
    )
    console.print("[bold]DAG parse time[/] (fresh interpreter per file)")
    dag_parses = measure_dag_parse(repeats=2 if args.smoke else 5)
    stack = Stack(home, base)
    stack.up(only=["kafka", "s3", "postgres", "elasticsearch"])
    try:
        conn = stack.connection()
        sinks = measure_sinks(conn, args.docs)  # before Spark: its JVM competes for the same cores
        spark = build_session(conn, "highway-bench", shuffle_partitions=4, driver_memory="4g")
        throughput = measure_throughput(spark, conn, thr_app, args.events)
        delays = measure_freshness(spark, conn, fresh_app, args.rate, args.seconds)
        sink_freshness = measure_sink_freshness(
            spark,
            conn,
            HIGHWAY,
            pipe_bronze,
            pipe_silver,
            catalog / "pipeline",
            args.sink_rate,
            args.sink_seconds,
        )
        report = write_report(
            args.out,
            throughput,
            delays,
            rate=args.rate,
            smoke=args.smoke,
            sinks=sinks,
            sink_freshness=sink_freshness,
            dag_parses=dag_parses,
        )
        console.print(f"[bold green]report written:[/] {report}")
        spark.stop()
    finally:
        shutil.rmtree(catalog, ignore_errors=True)
        if own_stack:
            stack.down()
            shutil.rmtree(home, ignore_errors=True)  # a temporary stack: its data served only this run


if __name__ == "__main__":
    main()
