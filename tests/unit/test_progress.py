"""Heartbeats and the Kafka offsets kept in commit metadata (pure)."""

from __future__ import annotations

import json

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
