"""highway.core.search: index templates and search queries, from plain values."""

from __future__ import annotations

import pytest

from highway.core.search import (
    SINK_COLUMNS,
    build_query,
    first_index_name,
    index_template,
    parse_field_filters,
)
from highway.errors import TerminalError

FIELDS = [
    ("event_id", "string"),
    ("event_time", "timestamp"),
    ("quantity", "int"),
    ("offset", "long"),
    ("price", "double"),
    ("gift", "boolean"),
]
KNOWN = {"event_id", "event_time", "user_id", "event_type"}


def query(
    text: str | None = None,
    filters: dict[str, str] | None = None,
    time_from: str | None = None,
    time_to: str | None = None,
    size: int = 20,
) -> dict:
    return build_query(text, filters or {}, time_from, time_to, size, KNOWN)


def test_template_maps_catalog_types_strictly_with_one_shard() -> None:
    body = index_template("shop-events", FIELDS)
    mappings = body["template"]["mappings"]
    assert mappings["dynamic"] == "strict"
    types = {name: spec["type"] for name, spec in mappings["properties"].items()}
    assert {k: types[k] for k, _ in FIELDS} == {
        "event_id": "keyword",
        "event_time": "date",
        "quantity": "integer",
        "offset": "long",
        "price": "double",
        "gift": "boolean",
    }
    assert body["template"]["settings"] == {"number_of_shards": 1, "number_of_replicas": 0}
    assert body["index_patterns"] == ["shop-events-0*"]


def test_template_adds_the_sink_columns_without_overriding_catalog_fields() -> None:
    types = index_template("a", [("event_date", "string")])["template"]["mappings"]["properties"]
    assert types["event_date"] == {"type": "keyword"}
    for name, es_type in SINK_COLUMNS:
        if name != "event_date":
            assert types[name] == {"type": es_type}
    assert types["kafka_offset"] == {"type": "long"}


def test_template_refuses_an_unknown_catalog_type() -> None:
    with pytest.raises(TerminalError, match="'when' has type 'datetime'; allowed: boolean, double"):
        index_template("a", [("when", "datetime")])


def test_first_index_is_numbered_under_the_alias() -> None:
    assert first_index_name("shop-events") == "shop-events-000001"


def test_query_text_is_an_and_query_string_newest_first() -> None:
    body = query("event_type:payment currency:EUR", size=5)
    assert body["query"]["bool"]["must"] == [
        {
            "query_string": {
                "query": "event_type:payment currency:EUR",
                "default_operator": "AND",
                "lenient": True,
            }
        }
    ]
    assert body["query"]["bool"]["filter"] == []
    assert body["size"] == 5
    assert body["sort"] == [{"event_time": {"order": "desc"}}]


@pytest.mark.parametrize("text", [None, "", "  ", "*"])
def test_no_text_matches_all(text: str | None) -> None:
    assert query(text)["query"]["bool"]["must"] == [{"match_all": {}}]


def test_filters_and_time_range() -> None:
    body = query(filters={"user_id": "u-1"}, time_from="2026-11-26T03:00:00Z", time_to="2026-11-26T04:00:00")
    assert body["query"]["bool"]["filter"] == [
        {"term": {"user_id": "u-1"}},
        {"range": {"event_time": {"gte": "2026-11-26T03:00:00+00:00", "lte": "2026-11-26T04:00:00+00:00"}}},
    ]


def test_only_one_time_bound() -> None:
    body = query(time_to="2026-11-26T04:00:00+01:00")
    assert body["query"]["bool"]["filter"] == [
        {"range": {"event_time": {"lte": "2026-11-26T04:00:00+01:00"}}}
    ]


def test_escaped_quotes_and_quoted_parentheses_are_fine() -> None:
    query(r'page:"/p/(1" AND user_id:u\"x')
    query("(event_type:payment OR event_type:order_placed) AND currency:EUR")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('user_id:"u-1', "double quote is not closed"),
        ("(event_type:payment", "opening parenthesis is not closed"),
        ("event_type:payment)", "closing parenthesis has no opening one"),
        (")(", "closing parenthesis has no opening one"),
        ("abc\\", "lone backslash"),
    ],
)
def test_malformed_query_is_refused(text: str, message: str) -> None:
    with pytest.raises(TerminalError, match=f"malformed query: .*{message}"):
        query(text)


def test_unknown_filter_field_names_it_and_the_known_ones() -> None:
    with pytest.raises(TerminalError, match="unknown field 'colour'; known fields: event_id, event_time"):
        query(filters={"colour": "red"})


@pytest.mark.parametrize("size", [0, -1, 10_001])
def test_size_out_of_range(size: int) -> None:
    with pytest.raises(TerminalError, match=f"--size {size} is out of range; allowed: 1 to 10000"):
        query(size=size)


@pytest.mark.parametrize("size", [1, 10_000])
def test_size_bounds_are_allowed(size: int) -> None:
    assert query(size=size)["size"] == size


@pytest.mark.parametrize(
    ("option", "kwargs"), [("--from", {"time_from": "yesterday"}), ("--to", {"time_to": "26/11/2026"})]
)
def test_time_must_be_iso(option: str, kwargs: dict[str, str]) -> None:
    with pytest.raises(TerminalError, match=f"{option} .* is not an ISO-8601 time"):
        query(**kwargs)  # type: ignore[arg-type]


def test_from_after_to_is_refused() -> None:
    with pytest.raises(TerminalError, match="is after --to"):
        query(time_from="2026-11-26T05:00:00Z", time_to="2026-11-26T04:00:00Z")


def test_no_sort_when_the_index_has_no_event_time() -> None:
    assert "sort" not in build_query(None, {}, None, None, 10, {"id"})


def test_field_filters_parse_name_value_pairs() -> None:
    assert parse_field_filters(["user_id=u-1", "page=/a=b"]) == {"user_id": "u-1", "page": "/a=b"}


@pytest.mark.parametrize("item", ["user_id", "=x", "user_id=", "bad name=x"])
def test_field_filter_must_be_name_equals_value(item: str) -> None:
    with pytest.raises(TerminalError, match="must look like name=value"):
        parse_field_filters([item])
