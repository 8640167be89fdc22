"""`highway produce` against the real Kafka: every delivered record is in the record file exactly
once, the file matches what the topic holds, and records that were not delivered fail the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from highway.adapters.kafka import end_offsets, ensure_topic

pytestmark = pytest.mark.integration

HIGHWAY = str(Path(sys.executable).with_name("highway"))


def produce(
    bootstrap: str, topic: str, count: int, record: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    cmd = [HIGHWAY, "produce", "--topic", topic, "--count", str(count), "--record", str(record), *args]
    env = {**os.environ, "HIGHWAY_KAFKA_BOOTSTRAP": bootstrap}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def read_topic(bootstrap: str, topic: str, expected: int) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    """Every record of ``topic`` by (partition, offset) -> (key, value)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    partitions = end_offsets(bootstrap, topic)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records: dict[tuple[int, int], tuple[bytes, bytes]] = {}
    try:
        for _ in range(600):
            for message in consumer.consume(1000, timeout=0.5):
                assert message.error() is None, message.error()
                records[(message.partition(), message.offset())] = (message.key(), message.value())
            if len(records) >= expected:
                break
    finally:
        consumer.close()
    return records


def read_record_file(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_produce_records_every_delivered_event_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"test.produce.{uuid.uuid4().hex[:8]}"
    record = tmp_path / "produced.jsonl"

    done = produce(kafka_bootstrap, topic, 2000, record, "--bad-ratio", "0.05", "--seed", "21")

    assert done.returncode == 0, done.stderr
    lines = read_record_file(record)
    assert len(lines) == 2000
    assert len({(line["partition"], line["offset"]) for line in lines}) == 2000
    assert len({line["id"] for line in lines}) == 2000
    assert sum(end_offsets(kafka_bootstrap, topic).values()) == 2000
    invalid = [line for line in lines if not line["valid"]]
    assert 50 <= len(invalid) <= 160
    assert {line["reason"] for line in invalid} <= {"invalid_json", "wrong_type", "missing_field", "oversize"}
    assert all(line["reason"] is None for line in lines if line["valid"])


def test_record_file_matches_what_the_topic_holds(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"test.produce.{uuid.uuid4().hex[:8]}"
    record = tmp_path / "produced.jsonl"

    done = produce(kafka_bootstrap, topic, 2000, record, "--bad-ratio", "0.05", "--seed", "22")

    assert done.returncode == 0, done.stderr
    held = read_topic(kafka_bootstrap, topic, 2000)
    assert len(held) == 2000
    for line in read_record_file(record):
        key, value = held[(line["partition"], line["offset"])]
        if line["valid"] or line["reason"] in ("wrong_type", "oversize"):
            event = json.loads(value)
            assert event["event_id"] == line["id"]
            assert key == event["user_id"].encode()
        if line["reason"] == "oversize":
            assert 1024 * 1024 < len(value) < 4 * 1024 * 1024
    # a user's events all sit in one partition
    partitions_of_user: dict[bytes, set[int]] = {}
    for (partition, _), (key, _) in held.items():
        partitions_of_user.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in partitions_of_user.values())


def test_same_seed_sends_the_same_ids(kafka_bootstrap: str, tmp_path: Path) -> None:
    runs = []
    for name in ("first", "second"):
        record = tmp_path / f"{name}.jsonl"
        done = produce(kafka_bootstrap, f"test.produce.{uuid.uuid4().hex[:8]}", 300, record, "--seed", "5")
        assert done.returncode == 0, done.stderr
        runs.append(sorted(line["id"] for line in read_record_file(record)))
    assert runs[0] == runs[1]


def test_undelivered_records_fail_the_run(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"test.produce.small.{uuid.uuid4().hex[:8]}"
    # the broker refuses every batch over 512 bytes: most records cannot be delivered
    ensure_topic(kafka_bootstrap, topic, 2, config={"max.message.bytes": "512"})
    record = tmp_path / "produced.jsonl"

    done = produce(kafka_bootstrap, topic, 300, record, "--bad-ratio", "0")

    assert done.returncode != 0
    assert "were not delivered" in done.stderr
    delivered = read_record_file(record)
    assert len(delivered) < 300
    assert len(delivered) == sum(end_offsets(kafka_bootstrap, topic).values())


def test_duplicates_are_resent_valid_events_marked_in_the_record_file(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"test.produce.dup.{uuid.uuid4().hex[:8]}"
    record = tmp_path / "produced.jsonl"

    done = produce(
        kafka_bootstrap, topic, 2000, record, "--bad-ratio", "0.05", "--dup-ratio", "0.1", "--seed", "23"
    )

    assert done.returncode == 0, done.stderr
    lines = read_record_file(record)
    assert len(lines) == 2000
    assert all(set(line) == {"id", "valid", "reason", "late", "dup", "partition", "offset"} for line in lines)
    dups = [line for line in lines if line["dup"]]
    assert 140 <= len(dups) <= 260
    assert all(line["valid"] and line["reason"] is None for line in dups)
    valid = [line for line in lines if line["valid"]]
    assert len({line["id"] for line in valid}) == len(valid) - len(dups)  # each id once per send
    assert "duplicates" in done.stdout
    held = read_topic(kafka_bootstrap, topic, 2000)
    first_send = {}
    for line in sorted(lines, key=lambda ln: (ln["partition"], ln["offset"])):
        key, value = held[(line["partition"], line["offset"])]
        if line["dup"]:
            original = first_send[line["id"]]  # same user: same partition, sent earlier
            assert (key, value) == (original[0], original[1])
            assert original[2] == line["late"]
        elif line["valid"]:
            first_send[line["id"]] = (key, value, line["late"])
