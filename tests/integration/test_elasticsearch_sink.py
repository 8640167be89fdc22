"""The Elasticsearch sink core and `highway search`, against the real Elasticsearch of the test stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from highway import catalog
from highway.adapters import elasticsearch as es_adapter
from highway.core.search import first_index_name, index_template
from highway.errors import TransientError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from highway.connection import Connection

pytestmark = pytest.mark.integration

HIGHWAY = str(Path(sys.executable).with_name("highway"))


def catalog_fields() -> list[tuple[str, str]]:
    return [(f.name, f.type) for f in catalog.get("bronze_shop_events").schema]


def event(i: int, **changes: Any) -> dict[str, Any]:
    doc = {
        "event_id": f"e-{i:06d}",
        "event_type": "add_to_cart" if i % 2 else "page_view",
        "event_time": f"2026-11-26T03:{(i // 60) % 60:02d}:{i % 60:02d}.000Z",
        "user_id": f"u-{i % 50:05d}",
        "session_id": f"s-{i % 200:05d}",
        "product_id": f"p-{i % 30:04d}",
        "quantity": 1 + i % 3,
        "price": 9.5,
        "event_date": "2026-11-26",
        "event_hour": 3,
        "kafka_topic": "shop.events",
        "kafka_partition": i % 4,
        "kafka_offset": i,
    }
    doc.update(changes)
    return doc


@pytest.fixture(scope="module")
def es(es_url: str, conn: Connection) -> Iterator[Elasticsearch]:
    client = es_adapter.client(conn)
    yield client
    client.close()


@pytest.fixture
def alias(es: Elasticsearch) -> Iterator[str]:
    name = f"test-sink-{uuid.uuid4().hex[:8]}"
    yield name
    es.indices.delete(index=f"{name}-*", ignore_unavailable=True)
    es.options(ignore_status=404).indices.delete_index_template(name=name)


def test_ensure_alias_is_idempotent(es: Elasticsearch, alias: str) -> None:
    template = index_template(alias, catalog_fields())
    first = es_adapter.ensure_alias(es, alias, template)
    again = es_adapter.ensure_alias(es, alias, template)
    assert first == again == first_index_name(alias)
    assert es.indices.exists_index_template(name=alias)
    mapping = es.indices.get_mapping(index=alias).body[first]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["event_time"] == {"type": "date"}
    assert es.indices.get_alias(name=alias).body[first]["aliases"][alias]["is_write_index"] is True


def test_bulk_then_replay_overwrites_the_same_documents(es: Elasticsearch, alias: str) -> None:
    es_adapter.ensure_alias(es, alias, index_template(alias, catalog_fields()))
    docs = [event(i) for i in range(5_000)]
    result = es_adapter.bulk_index(es, alias, docs)
    assert (result.written, result.failed) == (5_000, [])
    assert es_adapter.count(es, alias) == 5_000

    replay = [event(i, quantity=7) for i in range(5_000)]
    result = es_adapter.bulk_index(es, alias, replay, chunk_size=700, concurrency=3)
    assert (result.written, result.failed) == (5_000, [])
    assert es_adapter.count(es, alias) == 5_000
    assert es.count(index=alias, query={"term": {"quantity": 7}})["count"] == 5_000


def test_first_wins_keeps_the_first_copy_and_counts_the_later_ones(es: Elasticsearch, alias: str) -> None:
    """Silver's search sink (create): a later copy of an id, or a replay, leaves the first one as it is."""
    es_adapter.ensure_alias(es, alias, index_template(alias, catalog_fields()))
    result = es_adapter.bulk_index(es, alias, [event(i) for i in range(100)], first_wins=True)
    assert (result.written, result.existing, result.failed) == (100, 0, [])
    again = [event(i, quantity=7) for i in range(50, 150)]  # 50 re-sent with other values, 50 new
    result = es_adapter.bulk_index(es, alias, again, chunk_size=30, concurrency=2, first_wins=True)
    assert (result.written, result.existing, result.failed) == (50, 50, [])
    assert es_adapter.count(es, alias) == 150
    changed = es.search(index=alias, query={"term": {"quantity": 7}}, size=200, _source=["event_id"])
    assert sorted(h["_source"]["event_id"] for h in changed["hits"]["hits"]) == [
        f"e-{i:06d}" for i in range(100, 150)
    ]


def test_refused_documents_are_returned_with_status_and_reason(es: Elasticsearch, alias: str) -> None:
    es_adapter.ensure_alias(es, alias, index_template(alias, catalog_fields()))
    unknown = event(1, colour="red")
    wrong_type = event(2, quantity="many")
    docs = [event(0), unknown, wrong_type, event(3)]
    result = es_adapter.bulk_index(es, alias, docs)
    assert result.written == 2
    failed = {f.doc_id: f for f in result.failed}
    assert set(failed) == {"e-000001", "e-000002"}
    assert failed["e-000001"].status == 400
    assert failed["e-000001"].error_type == "strict_dynamic_mapping_exception"
    assert "colour" in failed["e-000001"].reason
    assert failed["e-000002"].status == 400
    assert failed["e-000002"].error_type == "document_parsing_exception"
    assert "quantity" in failed["e-000002"].reason
    assert failed["e-000002"].doc == wrong_type
    assert es_adapter.count(es, alias) == 2


def test_throttled_items_are_retried_with_backoff_then_written(es: Elasticsearch, alias: str) -> None:
    """A read-only-allow-delete block answers 429 per item, as a full disk does; lifted after two waits."""
    index = es_adapter.ensure_alias(es, alias, index_template(alias, catalog_fields()))
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": None})

    result = es_adapter.bulk_index(es, alias, [event(i) for i in range(10)], initial_backoff=0.5, sleep=sleep)
    assert (result.written, result.failed, result.retries) == (10, [], 2)
    assert waits == [0.5, 1.0]
    assert es_adapter.count(es, alias) == 10


def test_still_throttled_after_the_retries_fails_the_batch(es: Elasticsearch, alias: str) -> None:
    index = es_adapter.ensure_alias(es, alias, index_template(alias, catalog_fields()))
    es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": True})
    waits: list[float] = []
    try:
        with pytest.raises(TransientError, match=r"3 document\(s\) still throttled or failing"):
            es_adapter.bulk_index(es, alias, [event(i) for i in range(3)], max_retries=2, sleep=waits.append)
    finally:
        es.indices.put_settings(index=index, settings={"index.blocks.read_only_allow_delete": None})
    assert waits == [0.5, 1.0]


def test_unreachable_elasticsearch_is_transient() -> None:
    from highway.connection import Connection

    nowhere = Connection("", "", "", "", "", "", 0, "", "", "", es_url="http://127.0.0.1:9")
    with pytest.raises(TransientError, match="Elasticsearch bulk into 'a': ConnectionError"):
        es_adapter.bulk_index(es_adapter.client(nowhere, timeout=2), "a", [event(1)])


def run_search(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "1000"}  # rich wraps at the terminal width; a wide one shows the line
    return subprocess.run(
        [HIGHWAY, "search", *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


@pytest.fixture(scope="module")
def searchable(es: Elasticsearch) -> Iterator[str]:
    name = f"test-search-{uuid.uuid4().hex[:8]}"
    es_adapter.ensure_alias(es, name, index_template(name, catalog_fields()))
    result = es_adapter.bulk_index(es, name, [event(i) for i in range(300)])
    assert result.written == 300
    es_adapter.count(es, name)  # refreshes
    yield name
    es.indices.delete(index=f"{name}-*", ignore_unavailable=True)
    es.options(ignore_status=404).indices.delete_index_template(name=name)


def test_search_finds_a_known_event_by_field(searchable: str) -> None:
    result = run_search("--index", searchable, "--field", "event_id=e-000123")
    assert result.returncode == 0, result.stderr
    assert "e-000123" in result.stdout
    assert "1 event(s)" in result.stdout


def test_search_json_lines_newest_first(searchable: str) -> None:
    result = run_search(
        "event_type:page_view AND user_id:u-00010", "--index", searchable, "--json", "--size", "3"
    )
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 3
    assert all(d["event_type"] == "page_view" and d["user_id"] == "u-00010" for d in docs)
    times = [d["event_time"] for d in docs]
    assert times == sorted(times, reverse=True)


def test_search_time_range(searchable: str) -> None:
    result = run_search(
        "--index", searchable, "--from", "2026-11-26T03:01:00Z", "--to", "2026-11-26T03:01:09Z", "--json"
    )
    assert result.returncode == 0, result.stderr
    ids = sorted(json.loads(line)["event_id"] for line in result.stdout.splitlines())
    assert ids == [f"e-{i:06d}" for i in range(60, 70)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (['user_id:"u-1'], "malformed query: a double quote is not closed"),
        (["(event_type:payment"], "malformed query: an opening parenthesis is not closed"),
        (["--field", "colour=red"], "unknown field 'colour'; known fields: "),
        (["--size", "0"], "--size 0 is out of range"),
        (["quantity:[1 TO"], "Elasticsearch search"),
    ],
)
def test_search_bad_input_is_one_line_exit_2(searchable: str, args: list[str], message: str) -> None:
    result = run_search(*args, "--index", searchable)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_search_unknown_index_exit_2(es_url: str) -> None:
    result = run_search("--index", "no-such-index")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: no Elasticsearch index or alias 'no-such-index'"
