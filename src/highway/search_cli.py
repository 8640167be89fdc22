"""``highway search``: matching events from Elasticsearch as a table, or JSON lines with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from highway.errors import HighwayError

DEFAULT_INDEX = "shop-events"
TABLE_COLUMNS = (
    "event_time",
    "event_type",
    "user_id",
    "event_id",
    "session_id",
    "product_id",
    "quantity",
    "amount",
)


def search_command(
    query: str | None,
    index: str = DEFAULT_INDEX,
    fields: Sequence[str] = (),
    time_from: str | None = None,
    time_to: str | None = None,
    size: int = 20,
    as_json: bool = False,
) -> list[dict[str, Any]]:
    """Search ``index`` and print the hits; HighwayError (exit 2) on bad input or an unknown index."""
    from highway import connection
    from highway.adapters import elasticsearch as es_adapter
    from highway.core.search import build_query, parse_field_filters

    try:
        filters = parse_field_filters(fields)
        es = es_adapter.client(connection.load())
        known = es_adapter.field_names(es, index)
        body = build_query(query, filters, time_from, time_to, size, known)
        hits = es_adapter.search(es, index, body)
    except HighwayError as exc:
        raise _printable(exc) from None
    if as_json:
        for hit in hits:
            print(json.dumps(hit, sort_keys=True, default=str))
    else:
        print_table(hits, index)
    return hits


def _printable(exc: HighwayError) -> HighwayError:
    """The same error on one line, safe for the CLI's rich console (ES reasons contain brackets)."""
    text = " ".join(str(exc).split())
    return type(exc)(escape(text)) if type(exc).__init__ is Exception.__init__ else exc


def print_table(hits: list[dict[str, Any]], index: str) -> None:
    table = Table(title=f"{len(hits)} event(s) from {index}, newest first")
    present = [c for c in TABLE_COLUMNS if any(c in hit for hit in hits)] or list(TABLE_COLUMNS[:4])
    for column in present:
        table.add_column(column, overflow="fold")
    for hit in hits:
        table.add_row(*("" if hit.get(c) is None else escape(str(hit[c])) for c in present))
    Console().print(table)
