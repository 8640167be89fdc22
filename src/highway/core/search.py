"""Elasticsearch index templates and search queries as plain dicts (pure: no I/O, stdlib only).

The sink writes through an alias (``shop-events``) whose write index is numbered (``shop-events-000001``),
so the data can be reindexed into ``-000002`` and the alias moved without touching the writers.
Mappings are ``dynamic: strict``: a document with a field the catalog does not know is refused by
Elasticsearch and goes to the DLQ, instead of silently growing the mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from highway.errors import TerminalError

# catalog field type -> Elasticsearch mapping type
ES_TYPES = {
    "string": "keyword",
    "timestamp": "date",
    "int": "integer",
    "long": "long",
    "double": "double",
    "boolean": "boolean",
}
# columns the bronze/silver apps add to every event row, already in Elasticsearch types
SINK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_date", "date"),
    ("event_hour", "integer"),
    ("kafka_topic", "keyword"),
    ("kafka_partition", "integer"),
    ("kafka_offset", "long"),
    ("kafka_timestamp", "date"),
    ("ingested_at", "date"),
    ("indexed_at", "date"),  # set by the sink when it sends the document (freshness: Kafka -> search)
)
TIME_FIELD = "event_time"
MAX_SIZE = 10_000  # Elasticsearch's default index.max_result_window
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def first_index_name(alias: str) -> str:
    """The first numbered index behind a write alias."""
    return f"{alias}-000001"


def index_pattern(alias: str) -> str:
    """The indices an alias's template applies to: the numbered ones (``-000001``, ``-000002`` ...).

    Not ``<alias>-*``: that would also match ``<alias>-eu-000001``, and Elasticsearch refuses two
    templates of the same priority whose patterns overlap.
    """
    return f"{alias}-0*"


def index_template(
    alias: str,
    fields: Sequence[tuple[str, str]],
    extra: Sequence[tuple[str, str]] = SINK_COLUMNS,
) -> dict[str, Any]:
    """An index template body for ``alias``: strict mappings from catalog types, 1 shard, 0 replicas.

    ``fields`` are (name, catalog type) pairs; ``extra`` are (name, Elasticsearch type) pairs.
    """
    properties: dict[str, dict[str, str]] = {}
    for name, type_ in fields:
        if type_ not in ES_TYPES:
            raise TerminalError(f"field '{name}' has type '{type_}'; allowed: {', '.join(sorted(ES_TYPES))}")
        properties[name] = {"type": ES_TYPES[type_]}
    for name, es_type in extra:
        properties.setdefault(name, {"type": es_type})
    return {
        "index_patterns": [index_pattern(alias)],
        "priority": 100,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"dynamic": "strict", "properties": properties},
        },
        "_meta": {"managed_by": "highway", "alias": alias},
    }


def _outside_quotes(text: str) -> str:
    """The characters of ``text`` outside double quotes, escaped ones dropped; refuses open quotes."""
    kept: list[str] = []
    in_quote = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            in_quote = not in_quote
        elif not in_quote:
            kept.append(char)
    if in_quote:
        raise TerminalError("malformed query: a double quote is not closed")
    if escaped:
        raise TerminalError("malformed query: it ends with a lone backslash")
    return "".join(kept)


def check_query_text(text: str) -> None:
    """Refuse a query_string whose quotes or parentheses do not balance (escapes with ``\\`` allowed)."""
    depth = 0
    for char in _outside_quotes(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise TerminalError("malformed query: a closing parenthesis has no opening one")
    if depth > 0:
        raise TerminalError("malformed query: an opening parenthesis is not closed")


def parse_field_filters(items: Sequence[str]) -> dict[str, str]:
    """``["user_id=u-1", "event_type=payment"]`` -> a dict; each item must be ``name=value``."""
    filters: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not FIELD_NAME.match(name) or value == "":
            raise TerminalError(f"--field '{item}' must look like name=value, e.g. user_id=u-00042")
        filters[name] = value
    return filters


def parse_time(option: str, value: str) -> datetime:
    """An ISO-8601 time; a time without an offset is taken as UTC (time partitions are UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TerminalError(
            f"{option} '{value}' is not an ISO-8601 time; e.g. 2026-11-26T03:40:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _time_range(time_from: str | None, time_to: str | None) -> dict[str, Any] | None:
    bounds: dict[str, str] = {}
    start = parse_time("--from", time_from) if time_from is not None else None
    end = parse_time("--to", time_to) if time_to is not None else None
    if start is not None and end is not None and start > end:
        raise TerminalError(f"--from {time_from} is after --to {time_to}")
    if start is not None:
        bounds["gte"] = start.isoformat()
    if end is not None:
        bounds["lte"] = end.isoformat()
    return {"range": {TIME_FIELD: bounds}} if bounds else None


def _term_filters(filters: Mapping[str, str], known_fields: set[str]) -> list[dict[str, Any]]:
    terms = []
    for name, value in filters.items():
        if name not in known_fields:
            known = ", ".join(sorted(known_fields)) or "none"
            raise TerminalError(f"unknown field '{name}'; known fields: {known}")
        terms.append({"term": {name: value}})
    return terms


def build_query(
    text: str | None,
    filters: Mapping[str, str],
    time_from: str | None,
    time_to: str | None,
    size: int,
    known_fields: set[str],
) -> dict[str, Any]:
    """The body for ``highway search``: query_string (AND), term filters, time range; newest first."""
    if not 1 <= size <= MAX_SIZE:
        raise TerminalError(f"--size {size} is out of range; allowed: 1 to {MAX_SIZE}")
    clauses: list[dict[str, Any]] = _term_filters(filters, known_fields)
    time_range = _time_range(time_from, time_to)
    if time_range is not None:
        clauses.append(time_range)
    must: list[dict[str, Any]] = []
    if text is not None and text.strip() and text.strip() != "*":
        check_query_text(text)
        must.append({"query_string": {"query": text, "default_operator": "AND", "lenient": True}})
    body: dict[str, Any] = {
        "query": {"bool": {"must": must or [{"match_all": {}}], "filter": clauses}},
        "size": size,
    }
    if TIME_FIELD in known_fields:
        body["sort"] = [{TIME_FIELD: {"order": "desc"}}]
    return body
