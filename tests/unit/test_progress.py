"""Heartbeats and the Kafka offsets kept in commit metadata (pure)."""

from __future__ import annotations

import json

import pytest

from highway.core.progress import (
    PartitionRange,
    batch_metadata,
    commit_ranges,
    heartbeat,
    merge_end_offsets,
    parse_batch_metadata,
)

PROGRESS = {
    "id": "q-1",
    "runId": "r-1",
    "batchId": 7,
    "timestamp": "2026-11-26T03:00:00.000Z",
    "numInputRows": 1200,
    "inputRowsPerSecond": 240.0,
    "processedRowsPerSecond": 600.5,
    "durationMs": {"triggerExecution": 2000, "addBatch": 1500},
    "sources": [
        {"description": "KafkaV2[Subscribe[shop.events]]", "endOffset": {"shop.events": {"0": 10, "1": 22}}}
    ],
}


def test_metadata_round_trip_end_is_exclusive() -> None:
    ranges = [PartitionRange("t", 1, 5, 9, 5), PartitionRange("t", 0, 0, 3, 4)]
    text = batch_metadata("app", 3, "bronze", ranges)
    doc = json.loads(text)
    assert doc["batch_id"] == 3
    assert doc["kafka"]["t"]["1"] == {"start": 5, "end": 10, "rows": 5}
    assert parse_batch_metadata(text) == {"t": {0: 4, 1: 10}}


def test_foreign_or_broken_metadata_is_ignored() -> None:
    assert parse_batch_metadata(None) == {}
    assert parse_batch_metadata("not json") == {}
    assert parse_batch_metadata('{"other": 1}') == {}


def test_merge_keeps_highest_end() -> None:
    merged = merge_end_offsets({"t": {0: 4, 1: 10}}, {"t": {0: 9}}, {"u": {0: 1}})
    assert merged == {"t": {0: 9, 1: 10}, "u": {0: 1}}


def test_heartbeat_from_progress() -> None:
    hb = heartbeat("bronze", PROGRESS, now=1000.0)
    assert hb["batch_id"] == 7
    assert hb["input_rows"] == 1200
    assert hb["batch_duration_ms"] == 2000
    assert hb["offsets"] == {"shop.events": {"0": 10, "1": 22}}
    assert hb["written_at"] == 1000.0


def test_heartbeat_accepts_offsets_as_json_text_and_missing_fields() -> None:
    progress = {"sources": [{"endOffset": json.dumps({"t": {"3": 5}})}, {"endOffset": "garbage"}]}
    hb = heartbeat("a", progress, now=1.0)
    assert hb["offsets"] == {"t": {"3": 5}}
    assert hb["input_rows"] == 0
    assert hb["batch_id"] is None


def test_commit_ranges_find_the_commit_of_an_offset() -> None:
    first = batch_metadata(
        "a", 0, "bronze", [PartitionRange("t", 0, 0, 9, 10), PartitionRange("t", 1, 0, 4, 5)]
    )
    second = batch_metadata("a", 1, "bronze", [PartitionRange("t", 0, 10, 19, 10)])
    ranges = commit_ranges([(200.0, second), (100.0, first), (50.0, None), (60.0, "junk")])
    assert ranges.commit_time(0, 0) == 100.0
    assert ranges.commit_time(0, 9) == 100.0
    assert ranges.commit_time(0, 10) == 200.0
    assert ranges.commit_time(1, 4) == 100.0
    assert ranges.commit_time(1, 5) is None
    assert ranges.commit_time(2, 0) is None


# --- Delta sources: the table version a silver or gold app has read up to ------------------------

DELTA = "DeltaSource[s3a://lake/bronze/shop_events]"
KAFKA = "KafkaV2[Subscribe[shop.events]]"


def delta_offset(version: int) -> dict[str, object]:
    """A Delta source's endOffset as Spark reports it."""
    return {
        "sourceVersion": 1,
        "reservoirId": "5b1c0e2a-0000-4000-8000-000000000000",
        "reservoirVersion": version,
        "index": -1,
        "isStartingVersion": False,
    }


def test_heartbeat_has_the_delta_version_of_a_delta_source() -> None:
    hb = heartbeat(
        "silver", {"batchId": 3, "sources": [{"description": DELTA, "endOffset": delta_offset(12)}]}, 1.0
    )
    assert hb["delta_versions"] == {DELTA: 12}
    assert hb["offsets"] == {}  # a Delta offset is not mistaken for Kafka topics
    assert hb["batch_id"] == 3


def test_heartbeat_reads_a_delta_end_offset_given_as_json_text() -> None:
    source = {"description": DELTA, "endOffset": json.dumps(delta_offset(0))}
    hb = heartbeat("silver", {"sources": [source]}, 1.0)
    assert hb["delta_versions"] == {DELTA: 0}
    assert hb["offsets"] == {}


def test_heartbeat_keeps_kafka_offsets_and_delta_versions_side_by_side() -> None:
    progress = {
        **PROGRESS,
        "sources": [
            {"description": KAFKA, "endOffset": {"shop.events": {"0": 10, "1": 22}}},
            {"description": DELTA, "endOffset": json.dumps(delta_offset(7))},
            {"description": "DeltaSource[s3a://lake/silver/shop_events]", "endOffset": delta_offset(40)},
        ],
    }
    hb = heartbeat("mixed", progress, now=5.0)
    assert hb["offsets"] == {"shop.events": {"0": 10, "1": 22}}
    assert hb["delta_versions"] == {DELTA: 7, "DeltaSource[s3a://lake/silver/shop_events]": 40}
    assert hb["input_rows"] == 1200


def test_a_kafka_only_heartbeat_has_no_delta_versions() -> None:
    hb = heartbeat("bronze", PROGRESS, now=1000.0)
    assert hb["delta_versions"] == {}
    assert heartbeat("idle", {}, now=1.0)["delta_versions"] == {}


@pytest.mark.parametrize(
    "source",
    [
        {"description": DELTA},  # no batch read yet
        {"description": DELTA, "endOffset": None},
        {"description": DELTA, "endOffset": "garbage"},
        {"description": DELTA, "endOffset": "[1, 2]"},
        {"description": DELTA, "endOffset": {"reservoirId": "x", "index": -1}},
        {"description": DELTA, "endOffset": {"reservoirVersion": "12"}},
        {"description": DELTA, "endOffset": json.dumps({"reservoirVersion": 1.5})},
    ],
)
def test_delta_sources_without_a_readable_version_are_left_out(source: dict[str, object]) -> None:
    hb = heartbeat("silver", {"sources": [source]}, 1.0)
    assert hb["delta_versions"] == {}


def test_a_delta_source_without_a_description_is_keyed_delta() -> None:
    hb = heartbeat("silver", {"sources": [{"endOffset": delta_offset(4)}]}, 1.0)
    assert hb["delta_versions"] == {"delta": 4}
