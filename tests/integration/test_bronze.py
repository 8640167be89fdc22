"""Bronze app against the real stack: exactly-once audit, plus kill -9 and an S3 outage."""

from __future__ import annotations

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
    # what does not fit the schema: fields it does not name are kept, an object for a string is refused
    base = {"event_type": "page_view", "event_time": "2026-12-01T10:00:00.000Z", "user_id": "u-x",
            "session_id": "s-x"}  # fmt: skip
    extra = {**base, "event_id": "e-extra", "colour": "red", "device": {"os": "linux", "touch": False}}
    nested = {**base, "event_id": "e-nested", "page": {"path": "/cart"}}
    sent = [
        hwtest.send_event(conn, spec.source.topic, "u-x", extra),
        hwtest.send_event(conn, spec.source.topic, "u-x", nested, reason="wrong_type"),
    ]
    app = hwtest.start_app(tmp_path / "catalog", spec, tmp_path / "app.log", "--until-idle", "15")
    # a batch's progress event (batch id gauge) comes after its commits (rows written counter)
    batch_gauge = f'highway_batch_id{{app="{spec.name}"}}'
    metrics = hwtest.scrape_metrics(tmp_path / "app.log", batch_gauge, timeout=600)
    assert f'highway_rows_written_total{{app="{spec.name}",table="bronze"}}' in metrics
    assert hwtest.wait_exit(app, timeout=900) == 0, (tmp_path / "app.log").read_text()[-3000:]

    records = [*hwtest.read_records(record), *sent]
    result = hwtest.audit(spark, conn, spec, records)
    result.assert_exactly_once()
    assert result.produced_invalid == pytest.approx(1000, rel=0.25)
    bronze = spark.read.format("delta").load(f"{conn.lake_root}/{spec.sink.table}")
    rescued = {r["event_id"]: r["_rescued_data"] for r in bronze.where("_rescued_data IS NOT NULL").collect()}
    assert rescued == {"e-extra": '{"colour":"red","device":"{\\"os\\":\\"linux\\",\\"touch\\":false}"}'}

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
    assert hb["sinks"]["bronze_rescued"]["written"] == 1  # also highway_rows_written_total{table=...}
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
        before, seen = seen, hwtest.wait_for_rows(spark, bronze, seen + 1, timeout=300)
        assert seen > before, f"no new bronze row within 300 s (attempt {attempt}): {log.read_text()[-2000:]}"
        time.sleep(0.7 * attempt + 0.5)  # land the kill at a different point of a batch each time
        hwtest.kill_group(app)
        assert app.returncode is not None
    app = hwtest.start_app(catalog, spec, log, "--until-idle", "10")
    assert hwtest.wait_exit(app, timeout=600) == 0, log.read_text()[-3000:]
    hwtest.audit(spark, conn, spec, hwtest.read_records(record)).assert_exactly_once()


@pytest.mark.fault
def test_an_s3_outage_fails_the_app_within_its_bound_and_a_restart_resumes(
    tmp_path, stack, conn, spark
) -> None:
    """S3 refuses connections while batches are being written, until the app gives up. s3a's bounded
    retries (3 attempts, 500 ms apart) end in seconds, so the batch in flight fails and the app exits with
    one error line (exit 2) within 2 minutes instead of hanging; a restart resumes from its checkpoint and
    every record lands exactly once."""
    catalog, spec, record, log = _fast_app_with_events(tmp_path, "s3out", 20_000)
    app = hwtest.start_app(catalog, spec, log)
    assert hwtest.wait_for_rows(spark, f"{conn.lake_root}/{spec.sink.table}", 1, timeout=300) >= 1

    stack.stop("s3")
    stopped_at = time.monotonic()
    try:
        exited = hwtest.wait_exit(app, timeout=120)
        took = time.monotonic() - stopped_at
    finally:
        stack.start("s3")
    text = log.read_text(errors="replace")
    assert exited == 2 and f"error: app {spec.name} failed: " in text, text[-3000:]
    hwtest.measured(f"bronze, S3 refused: the app exited {took:.0f} s after the outage began")
    app = hwtest.start_app(catalog, spec, log, "--until-idle", "10")
    assert hwtest.wait_exit(app, timeout=600) == 0, log.read_text()[-3000:]
    hwtest.audit(spark, conn, spec, hwtest.read_records(record)).assert_exactly_once()
