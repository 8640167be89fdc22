"""Bronze app against the real stack: exactly-once audit, plus kill -9 and an S3 outage."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

import hwtest
from highway.adapters import kafka, s3
from highway.catalog import BronzeSpec
from highway.core.progress import merge_end_offsets, parse_batch_metadata

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_100k_events_with_1pct_bad_land_exactly_once(tmp_path, stack, conn, spark) -> None:
    spec = hwtest.bronze_variant(tmp_path / "catalog", "it100k")
    record = tmp_path / "produced.jsonl"
    hwtest.produce(tmp_path / "catalog", spec, 100_000, record, "--bad-ratio", "0.01", "--late-ratio", "0.05")
    app = hwtest.start_app(tmp_path / "catalog", spec, tmp_path / "app.log", "--until-idle", "15")
    # a batch's progress event (batch id gauge) comes after its commits (rows written counter)
    batch_gauge = f'highway_batch_id{{app="{spec.name}"}}'
    metrics = hwtest.scrape_metrics(tmp_path / "app.log", batch_gauge, timeout=600)
    assert f'highway_rows_written_total{{app="{spec.name}",table="bronze"}}' in metrics
    assert hwtest.wait_exit(app, timeout=900) == 0, (tmp_path / "app.log").read_text()[-3000:]

    records = hwtest.read_records(record)
    result = hwtest.audit(spark, conn, spec, records)
    result.assert_exactly_once()
    assert result.produced_invalid == pytest.approx(1000, rel=0.25)

    # every commit carries its Kafka offsets; together they reach the topic's end offsets
    ends = kafka.end_offsets(conn.kafka_bootstrap, spec.source.topic)
    history = []
    for table in (spec.sink.table, spec.dlq.table):
        rows = (
            spark.sql(f"DESCRIBE HISTORY delta.`{conn.lake_root}/{table}`").select("userMetadata").collect()
        )
        history += [parse_batch_metadata(r[0]) for r in rows]
    assert merge_end_offsets(*history)[spec.source.topic] == ends

    detail = spark.sql(f"DESCRIBE DETAIL delta.`{conn.lake_root}/{spec.sink.table}`").collect()[0]
    assert list(detail["partitionColumns"]) == ["event_date", "event_hour"]

    hb = s3.get_json(s3.client(conn), conn.lake_bucket, f"{spec.status_prefix}/heartbeat.json")
    assert hb["app"] == spec.name
    assert hb["state"] == "stopped"
    assert {int(p): o for p, o in hb["offsets"][spec.source.topic].items()} == ends


def _fast_app_with_events(tmp_path: Path, suffix: str, count: int) -> tuple[Path, BronzeSpec, Path, Path]:
    """Small batches on a 1 s trigger (many commits to land a fault in), fed ``count`` events."""
    catalog = tmp_path / "catalog"
    spec = hwtest.bronze_variant(catalog, suffix, trigger_seconds=1, max_offsets_per_trigger=1500)
    record = tmp_path / "produced.jsonl"
    hwtest.produce(catalog, spec, count, record, "--bad-ratio", "0.02")
    return catalog, spec, record, tmp_path / "app.log"


@pytest.mark.fault
def test_sigkill_of_driver_and_jvm_twice_loses_and_duplicates_nothing(tmp_path, stack, conn, spark) -> None:
    catalog, spec, record, log = _fast_app_with_events(tmp_path, "kill9", 30_000)
    bronze = f"{conn.lake_root}/{spec.sink.table}"

    seen = 0
    for attempt in range(2):
        app = hwtest.start_app(catalog, spec, log)
        seen = hwtest.wait_for_rows(spark, bronze, seen + 1, timeout=300)
        time.sleep(0.7 * attempt + 0.5)  # land the kill at a different point of a batch each time
        hwtest.kill_group(app)
        assert app.returncode is not None
    app = hwtest.start_app(catalog, spec, log, "--until-idle", "10")
    assert hwtest.wait_exit(app, timeout=600) == 0, log.read_text()[-3000:]
    hwtest.audit(spark, conn, spec, hwtest.read_records(record)).assert_exactly_once()


@pytest.mark.fault
def test_s3_outage_of_20s_fails_bounded_or_waits_then_resumes(tmp_path, stack, conn, spark) -> None:
    catalog, spec, record, log = _fast_app_with_events(tmp_path, "s3out", 20_000)
    app = hwtest.start_app(catalog, spec, log)
    hwtest.wait_for_rows(spark, f"{conn.lake_root}/{spec.sink.table}", 1, timeout=300)

    stack.stop("s3")
    stopped_at = time.monotonic()
    time.sleep(20)
    stack.start("s3")
    # bounded: within 2 minutes of the outage the app has either exited or is still making progress
    deadline = stopped_at + 120
    while app.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    if app.returncode is None:  # it waited through the outage: it must finish the topic by itself
        valid = sum(1 for r in hwtest.read_records(record) if r["valid"])
        bronze = f"{conn.lake_root}/{spec.sink.table}"
        assert hwtest.wait_for_rows(spark, bronze, valid, timeout=300) == valid
        app.send_signal(signal.SIGTERM)  # graceful: stops after the batch in flight
        assert hwtest.wait_exit(app, timeout=180) == 0, log.read_text()[-3000:]
        print(f"S3 outage: the app waited and resumed by itself ({time.monotonic() - stopped_at:.0f}s)")
    else:  # it failed within the bound: a restart resumes from its checkpoint
        print(f"S3 outage: the app exited with {app.returncode} after {time.monotonic() - stopped_at:.0f}s")
        app = hwtest.start_app(catalog, spec, log, "--until-idle", "10")
        assert hwtest.wait_exit(app, timeout=600) == 0, log.read_text()[-3000:]
    hwtest.audit(spark, conn, spec, hwtest.read_records(record)).assert_exactly_once()
