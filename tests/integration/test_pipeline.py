"""Silver and gold against the real stack: bronze -> silver Delta + Elasticsearch + PostgreSQL -> gold.

The audit: each silver store holds exactly the distinct valid events produced (duplicates re-sent by
the producer collapse, late events are kept), the DLQs hold exactly what was refused, and gold counts
every order once: in its window, or in the late-events table when it came after the watermark.
Faults: SIGKILL of the silver driver mid-stream, Elasticsearch stopped 30 s, PostgreSQL stopped 30 s,
and a document Elasticsearch refuses (a term longer than its keyword limit).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import hwtest
from highway.catalog import BronzeSpec, GoldSpec, SilverSpec

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.usefixtures("es_url", "pg")]

IMMENSE = 40_000  # bytes: a valid event for Spark (under the 1 MiB app limit), too long for a keyword


@dataclass(frozen=True)
class Bronze:
    catalog: Path
    spec: BronzeSpec
    records: list[dict[str, Any]]


def _bronze(tmp: Path, suffix: str, count: int, *extra: str) -> Bronze:
    catalog = tmp / "catalog"
    spec = hwtest.bronze_variant(catalog, suffix, trigger_seconds=1)
    record = tmp / "produced.jsonl"
    hwtest.produce(catalog, spec, count, record, "--bad-ratio", "0.01", "--dup-ratio", "0.02", *extra)
    return Bronze(catalog, spec, hwtest.read_records(record))


def _silver(bronze: Bronze, suffix: str, max_files: int = 4) -> SilverSpec:
    spec = hwtest.pipeline_variant(
        bronze.catalog,
        suffix,
        "silver_shop_events",
        bronze.spec.sink.table,
        source={"max_files_per_trigger": max_files},
        trigger={"interval_seconds": 1},
    )
    assert isinstance(spec, SilverSpec)
    return spec


def _send_event(conn: Any, topic: str, key: str, **fields: Any) -> dict[str, Any]:
    """One valid event sent to ``topic`` (``fields`` over a page view's); its record line."""
    event = {
        "event_id": uuid.uuid4().hex,
        "event_type": "page_view",
        "event_time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user_id": f"u-{key}",
        "session_id": f"s-{key}",
        **fields,
    }
    return hwtest.send_event(conn, topic, key, event)


def _send_immense_event(conn: Any, topic: str) -> dict[str, Any]:
    """One valid event whose `page` is longer than Elasticsearch's keyword limit; its record line."""
    return _send_event(conn, topic, "immense", page="/" + "x" * IMMENSE)


@pytest.fixture(scope="module")
def shared_bronze(tmp_path_factory, stack, conn) -> Bronze:
    """One bronze table (12k events) that each fault test's own silver app reads from the start."""
    tmp = tmp_path_factory.mktemp("faults")
    bronze = _bronze(tmp, "faults", 12_000)
    hwtest.run_to_idle(bronze.catalog, bronze.spec, tmp / "bronze.log", idle=6)
    return bronze


def test_100k_events_exactly_once_in_silver_search_and_warehouse_and_gold(
    tmp_path, stack, conn, spark
) -> None:
    bronze = _bronze(tmp_path, "e2e", 100_000, "--late-ratio", "0.05")
    topic = bronze.spec.source.topic
    immense = _send_immense_event(conn, topic)
    nul = _send_event(conn, topic, "nul", page="/a\u0000b")  # valid JSON; PostgreSQL cannot store it
    # the stream's first event id sent again at its end with other values: every store keeps the first
    first = min((r for r in bronze.records if r["valid"] and r["partition"] == 0), key=lambda r: r["offset"])
    again = _send_event(conn, topic, "resent", event_id=first["id"], page="/again", product_id="p-again")
    records = [*bronze.records, immense, nul, again]
    assert sum(r["dup"] for r in bronze.records) == pytest.approx(2_000, rel=0.2)
    silver = _silver(bronze, "e2e")
    gold = hwtest.pipeline_variant(
        bronze.catalog, "e2e", "gold_product_hourly", silver.sink.table,
        source={"max_files_per_trigger": 2}, trigger={"interval_seconds": 1},
    )  # fmt: skip
    assert isinstance(gold, GoldSpec)

    for spec in (bronze.spec, silver, gold):
        hwtest.run_to_idle(bronze.catalog, spec, tmp_path / f"{spec.kind}.log")

    hwtest.audit(spark, conn, bronze.spec, records).assert_exactly_once()
    expected = hwtest.distinct_valid_ids(records)
    audit = hwtest.sink_audit(spark, conn, silver, expected)
    # ids, no duplicates, the same values everywhere; what a store refused is in the DLQ with its reason
    audit.assert_exactly_once(refused={immense["id"]}, refused_pg={nul["id"]})
    kept = hwtest.pg_rows(
        conn, f"SELECT kafka_partition, kafka_offset, page FROM {silver.warehouse.table} WHERE event_id = %s",
        first["id"],
    )  # fmt: skip
    assert kept[0][:2] == (0, first["offset"]) and kept[0][2] != "/again", kept
    dlq = spark.read.format("delta").load(conn.lake_path(silver.dlq.table)).collect()
    refusals = {r["sink"]: r for r in dlq}
    assert sorted((r["sink"], r["status"], r["event_id"]) for r in dlq) == [
        ("elasticsearch", 400, immense["id"]),
        ("warehouse", None, nul["id"]),
    ]
    assert "failed to parse field [page]" in refusals["elasticsearch"]["reason"], dlq[0]["reason"][:300]
    assert "NUL" in refusals["warehouse"]["reason"], refusals["warehouse"]["reason"]

    hb = hwtest.heartbeat(conn, silver)
    assert hb["state"] == "stopped"
    assert hb["sinks"]["silver"]["written"] == len(expected)
    assert hb["sinks"]["elasticsearch"]["failed"] == 1 and hb["sinks"]["warehouse"]["failed"] == 1

    # gold: every order once, in a window or as late; the late ones were late by the producer too
    orders = hwtest.pg_rows(
        conn, f"SELECT count(*) FROM {silver.warehouse.table} WHERE event_type = 'order_placed'"
    )
    in_windows = hwtest.pg_rows(conn, f"SELECT coalesce(sum(orders), 0) FROM {gold.warehouse.table}")
    late = hwtest.pg_rows(conn, f"SELECT event_id, event_time < watermark FROM {gold.late_table}")
    assert int(in_windows[0][0]) + len(late) == orders[0][0]
    assert late, "a 5% late stream over several gold batches must leave late orders"
    assert all(before_watermark for _, before_watermark in late)
    produced_late = {r["id"] for r in records if r["valid"] and r["late"]}
    assert {event_id for event_id, _ in late} <= produced_late

    # a user finds a known event with `highway search`, and queries the lake with `highway sql`
    known = next(r["id"] for r in records if r["valid"] and r["id"] != immense["id"])
    found = _cli(
        bronze.catalog, "search", "--index", silver.search.alias, "--field", f"event_id={known}", "--json"
    )
    assert [json.loads(line)["event_id"] for line in found.splitlines() if line.strip()] == [known]
    view = silver.sink.view_name
    counted = _cli(
        bronze.catalog, "sql", f"SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM {view}", "--json"
    )
    assert json.loads(counted.strip().splitlines()[-1]) == {"n": len(expected), "d": len(expected)}


def _cli(catalog: Path, *args: str) -> str:
    done = subprocess.run(
        [hwtest.HIGHWAY, *args],
        env=hwtest.env_for(catalog),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (
        f"highway {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def _wait_for_warehouse_rows(conn: Any, table: str, at_least: int, timeout: float) -> int:
    import psycopg

    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        try:
            rows = hwtest.pg_rows(conn, f"SELECT count(*) FROM {table}")[0][0]
        except psycopg.errors.UndefinedTable:
            rows = 0  # the app has not created its table yet
        if rows >= at_least:
            return rows
        time.sleep(1)
    return rows


@pytest.mark.fault
def test_silver_sigkill_mid_batch_then_checkpoint_lost_is_rebuilt_from_the_sinks(
    tmp_path, shared_bronze, stack, conn, spark
) -> None:
    """Kill -9 while a batch is half written (in silver Delta and Elasticsearch, not yet in the warehouse),
    then lose the checkpoint too: the app refuses to start afresh, and a checkpoint rebuilt from the sinks'
    records replays exactly the half-written batch, so every store ends exactly once.

    PostgreSQL is stopped after the first batch, so the next batch is held at its last sink (retrying)
    when the driver and its JVM are killed; nothing of that batch is committed to the checkpoint.
    """
    from highway.adapters import s3

    silver = _silver(shared_bronze, "kill", max_files=1)
    expected = hwtest.distinct_valid_ids(shared_bronze.records)
    log = tmp_path / "silver.log"
    app = hwtest.start_app(shared_bronze.catalog, silver, log)
    seen = _wait_for_warehouse_rows(conn, silver.warehouse.table, 1, timeout=300)
    stack.stop("postgres")
    try:
        deadline = time.monotonic() + 300
        while "-> PostgreSQL" not in log.read_text(errors="replace"):  # the next batch reached its last sink
            assert time.monotonic() < deadline and app.poll() is None, log.read_text(errors="replace")[-4000:]
            time.sleep(0.5)
        hwtest.kill_group(app, signal.SIGKILL)
    finally:
        stack.start("postgres")
    assert 0 < seen < len(expected), f"the kill must land mid-stream: {seen} of {len(expected)} rows"
    half_written = hwtest.es_ids(conn, silver.search.alias)
    assert len(half_written) > seen, "the killed batch had reached Elasticsearch but not the warehouse"

    client = s3.client(conn)
    s3.delete_keys(
        client, conn.lake_bucket, sorted(s3.list_sizes(client, conn.lake_bucket, silver.checkpoint))
    )
    refused = subprocess.run(
        [hwtest.HIGHWAY, "run", silver.name], env=hwtest.env_for(shared_bronze.catalog), capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "checkpoint_missing" in refused.stderr, refused.stderr
    out = _cli(shared_bronze.catalog, "checkpoint", "recover", silver.name, "--mode", "rebuild-from-sink",
               "--reason", "lost after a kill")  # fmt: skip
    assert "replay batch" in out, out

    hwtest.run_to_idle(shared_bronze.catalog, silver, log)
    hwtest.sink_audit(spark, conn, silver, expected).assert_exactly_once()
    indexed = hwtest.heartbeat(conn, silver)["sinks"]["elasticsearch"]["written"]
    assert indexed < len(expected), f"the rebuilt run re-read from the start: {indexed} documents indexed"


@pytest.mark.fault
@pytest.mark.parametrize("service", ["elasticsearch", "postgres"])
def test_sink_outage_of_30s_is_retried_then_exactly_once(
    tmp_path, shared_bronze, stack, conn, spark, service
) -> None:
    silver = _silver(shared_bronze, f"out{service[:2]}")
    expected = hwtest.distinct_valid_ids(shared_bronze.records)
    sink = {"elasticsearch": "elasticsearch", "postgres": "warehouse"}[service]
    stack.stop(service)
    stopped = time.monotonic()
    log = tmp_path / "silver.log"
    app = hwtest.start_app(shared_bronze.catalog, silver, log, "--until-idle", "8")
    try:
        # down for 30 s, and at least until the sink has met the outage (a slow start must not miss it)
        while time.monotonic() - stopped < 30 or "; retry 1 in" not in log.read_text(errors="replace"):
            assert time.monotonic() - stopped < 300, "the silver app never reached the stopped sink"
            assert app.poll() is None, log.read_text(errors="replace")[-4000:]
            time.sleep(1)
    finally:
        stack.start(service)
    code = hwtest.wait_exit(app, timeout=600)
    assert code == 0, log.read_text(errors="replace")[-4000:]
    hwtest.sink_audit(spark, conn, silver, expected).assert_exactly_once()
    hb = hwtest.heartbeat(conn, silver)
    assert hb["sinks"][sink]["retries"] > 0, f"the outage was not seen by the {sink} sink: {hb['sinks']}"
    assert "; retry 1 in" in log.read_text(errors="replace")
