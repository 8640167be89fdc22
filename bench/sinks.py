"""Sink cores next to the raw client doing the same writes, in the same run, with the same data.

- Elasticsearch: ``adapters.elasticsearch.bulk_index`` vs ``elasticsearch.helpers.parallel_bulk`` (same
  chunk size, same thread count, ``index`` op, same ``_id``), each into a fresh alias with the same template;
- PostgreSQL: ``adapters.postgres.write_batch`` (one batch: staging COPY, upsert, ledger row) into a fresh
  copy of ``warehouse.shop_events`` vs a plain ``COPY`` into a table with the same columns and no key.

Both sides get the same N valid events from ``ShopEventGenerator`` and write them twice, in ``PASSES`` order
(ours, raw, raw, ours), each pass into a fresh target; a side's rate is N over its mean pass time.
Afterwards each target is counted: a pass that did not land exactly N documents/rows fails the bench
instead of looking fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from highway.adapters.postgres import PgConnection
    from highway.connection import Connection

console = Console()
GOAL_RATIO = 0.8
ES_CHUNK_SIZE = 1000
ES_CONCURRENCY = 2
ES_WARMUP_DOCS = 5000
PARTITIONS = 4  # kafka_partition/kafka_offset as the silver app would carry them
BENCH_SCHEMA = "bench"
# ABBA: each side runs first once and last once, so a server still warming up (Elasticsearch keeps getting
# faster for a few hundred thousand documents) favours neither; each pass writes into its own fresh target
PASSES = ("ours", "raw", "raw", "ours")


@dataclass(frozen=True)
class SinkComparison:
    """One sink core and the raw client writing the same ``rows`` documents/rows."""

    sink: str
    ours: str
    raw: str
    rows: int
    ours_seconds: float
    raw_seconds: float
    goal: float = GOAL_RATIO

    @property
    def ours_per_second(self) -> float:
        return self.rows / self.ours_seconds if self.ours_seconds else 0.0

    @property
    def raw_per_second(self) -> float:
        return self.rows / self.raw_seconds if self.raw_seconds else 0.0

    @property
    def ratio(self) -> float:
        return self.ours_per_second / self.raw_per_second if self.raw_per_second else 0.0

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal


def shop_events(count: int, seed: int = 4) -> list[dict[str, Any]]:
    """``count`` valid events as decoded JSON, with the Kafka coordinates a sink row carries."""
    from highway.core.events import ShopEventGenerator

    now = datetime.now(UTC)
    generator = ShopEventGenerator(seed, lambda: now)
    docs = []
    for offset, event in enumerate(generator.take(count)):
        doc = json.loads(event.value)
        doc["kafka_partition"] = offset % PARTITIONS
        doc["kafka_offset"] = offset // PARTITIONS
        docs.append(doc)
    return docs


def _timed(write: Callable[[], int], expected: int, what: str) -> float:
    began = time.perf_counter()
    written = write()
    seconds = time.perf_counter() - began
    if written != expected:
        raise RuntimeError(f"{what}: wrote {written:,} of {expected:,}")
    return seconds


def _check_count(what: str, counted: int, expected: int) -> None:
    if counted != expected:
        raise RuntimeError(f"{what} holds {counted:,} rows/documents after the bench, expected {expected:,}")
    console.print(f"  {what}: {counted:,} (= N)")


# --- Elasticsearch -----------------------------------------------------------------------------


def _es_fields() -> list[tuple[str, str]]:
    from highway import catalog
    from highway.settings import repo_root

    spec = catalog.load(repo_root() / "spark_apps" / "catalog" / "bronze_shop_events.yaml")
    return [(f.name, f.type) for f in spec.schema]


def _raw_parallel_bulk(es: Elasticsearch, index: str, docs: list[dict[str, Any]]) -> int:
    """The client's own helper, as a user of the library would call it; the documents it indexed."""
    from elasticsearch.helpers import parallel_bulk

    actions = (
        {"_op_type": "index", "_index": index, "_id": str(doc["event_id"]), "_source": doc} for doc in docs
    )
    outcomes = parallel_bulk(es, actions, thread_count=ES_CONCURRENCY, chunk_size=ES_CHUNK_SIZE)
    return sum(1 for ok, _ in outcomes if ok)


def _ours_bulk_index(es: Elasticsearch, alias: str, docs: list[dict[str, Any]]) -> int:
    from highway.adapters import elasticsearch as es_adapter

    result = es_adapter.bulk_index(
        es, alias, docs, id_field="event_id", chunk_size=ES_CHUNK_SIZE, concurrency=ES_CONCURRENCY
    )
    if result.failed:
        raise RuntimeError(f"bulk_index refused {len(result.failed)} document(s): {result.failed[0]}")
    return result.written


def _drop_aliases(es: Elasticsearch, aliases: list[str]) -> None:
    for alias in aliases:
        es.indices.delete(index=f"{alias}-*", ignore_unavailable=True)
        es.options(ignore_status=404).indices.delete_index_template(name=alias)


def _targets(name: Callable[[str, int], str]) -> list[str]:
    """One fresh target per pass, in pass order (e.g. ``ours0``, ``raw1``, ``raw2``, ``ours3``)."""
    return [name(side, number) for number, side in enumerate(PASSES)]


def _abba(write: dict[str, Callable[[int], float]]) -> dict[str, float]:
    """Mean seconds per side over ``PASSES``; ``write[side](number)`` does pass ``number``, its seconds."""
    total = dict.fromkeys(write, 0.0)
    for number, side in enumerate(PASSES):
        total[side] += write[side](number)
    return {side: seconds / PASSES.count(side) for side, seconds in total.items()}


def measure_elasticsearch(conn: Connection, docs: list[dict[str, Any]]) -> SinkComparison:
    """bulk_index vs parallel_bulk of ``docs``, each pass into a fresh alias with the same template."""
    from highway.adapters import elasticsearch as es_adapter
    from highway.core.search import index_template

    n = len(docs)
    console.print(
        f"[bold]Elasticsearch sink[/]: {n:,} documents, chunk {ES_CHUNK_SIZE}, {ES_CONCURRENCY} threads, "
        f"passes {'/'.join(PASSES)}"
    )
    es = es_adapter.client(conn, timeout=120)
    stamp = str(int(time.time()))
    warmup = f"bench-warmup-{stamp}"
    aliases = _targets(lambda side, number: f"bench-{side}{number}-{stamp}")
    fields = _es_fields()
    try:
        indices = {a: es_adapter.ensure_alias(es, a, index_template(a, fields)) for a in [warmup, *aliases]}
        console.print("  warm-up: one unmeasured parallel_bulk pass (JIT, connections)")
        _raw_parallel_bulk(es, indices[warmup], docs[:ES_WARMUP_DOCS])
        seconds = _abba(
            {
                "ours": lambda k: _timed(lambda: _ours_bulk_index(es, aliases[k], docs), n, "bulk_index"),
                "raw": lambda k: _timed(
                    lambda: _raw_parallel_bulk(es, indices[aliases[k]], docs), n, "parallel_bulk"
                ),
            }
        )
        for alias in aliases:
            _check_count(f"index {indices[alias]}", es_adapter.count(es, alias), n)
    finally:
        _drop_aliases(es, [warmup, *aliases])
        es.close()
    return SinkComparison("Elasticsearch", "bulk_index", "parallel_bulk", n, seconds["ours"], seconds["raw"])


# --- PostgreSQL --------------------------------------------------------------------------------


def _pg_rows(docs: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    from highway import warehouse

    for doc in docs:
        row = dict(doc, event_time=datetime.fromisoformat(doc["event_time"]))
        yield tuple(row.get(column) for column in warehouse.SHOP_EVENTS_COLUMNS)


def _raw_copy(pgconn: PgConnection, table: str, rows: list[tuple[Any, ...]]) -> int:
    """A plain COPY of ``rows`` in one transaction; the rows it loaded."""
    from highway import warehouse
    from highway.core.warehouse import quote_identifier, quote_table

    columns = ", ".join(quote_identifier(c) for c in warehouse.SHOP_EVENTS_COLUMNS)
    sql = f"COPY {quote_table(table)} ({columns}) FROM STDIN"
    with pgconn.transaction(), pgconn.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)


def _ours_write_batch(pgconn: PgConnection, app: str, table: str, rows: list[tuple[Any, ...]]) -> int:
    from highway import warehouse
    from highway.adapters import postgres

    outcome = postgres.write_batch(
        pgconn, app, 0, table, warehouse.SHOP_EVENTS_COLUMNS, warehouse.SHOP_EVENTS_KEY, rows
    )
    return outcome.written


def _create_tables(pgconn: PgConnection, tables: list[str]) -> None:
    """``*_ours*``: copies of the warehouse table (key, defaults); ``*_raw*``: its columns, nothing else."""
    from highway import warehouse
    from highway.core.warehouse import quote_identifier, quote_table

    source = quote_table(warehouse.SHOP_EVENTS_TABLE)
    columns = ", ".join(quote_identifier(c) for c in warehouse.SHOP_EVENTS_COLUMNS)
    pgconn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(BENCH_SCHEMA)}")
    for table in tables:
        if "_ours" in table:
            pgconn.execute(f"CREATE TABLE {quote_table(table)} (LIKE {source} INCLUDING ALL)")
        else:
            pgconn.execute(
                f"CREATE TABLE {quote_table(table)} AS SELECT {columns} FROM {source} WITH NO DATA"
            )


def _drop_tables(pgconn: PgConnection, app: str, tables: list[str]) -> None:
    from highway import warehouse
    from highway.core.warehouse import quote_table

    for table in tables:
        pgconn.execute(f"DROP TABLE IF EXISTS {quote_table(table)}")
    pgconn.execute(f"DELETE FROM {quote_table(warehouse.LEDGER_TABLE)} WHERE app = %s", [app])


def _pg_count(pgconn: PgConnection, table: str) -> int:
    from highway.core.warehouse import quote_table

    row = pgconn.execute(f"SELECT count(*) FROM {quote_table(table)}").fetchone()
    return int(row[0]) if row else -1


def measure_postgres(conn: Connection, docs: list[dict[str, Any]]) -> SinkComparison:
    """write_batch of ``docs`` as one batch vs a plain COPY of the same rows, each pass into a fresh table."""
    from highway.adapters import postgres

    rows = list(_pg_rows(docs))
    n = len(rows)
    console.print(f"[bold]PostgreSQL sink[/]: {n:,} rows in one batch, passes {'/'.join(PASSES)}")
    stamp = str(int(time.time()))
    app = f"bench_{stamp}"
    tables = _targets(lambda side, number: f"{BENCH_SCHEMA}.shop_events_{side}{number}_{stamp}")
    with postgres.connect(conn) as pgconn:
        postgres.migrate(pgconn)
        try:
            _create_tables(pgconn, tables)
            seconds = _abba(
                {
                    "ours": lambda k: _timed(
                        lambda: _ours_write_batch(pgconn, app, tables[k], rows), n, "write_batch"
                    ),
                    "raw": lambda k: _timed(lambda: _raw_copy(pgconn, tables[k], rows), n, "COPY"),
                }
            )
            for table in tables:
                _check_count(f"table {table}", _pg_count(pgconn, table), n)
        finally:
            _drop_tables(pgconn, app, tables)
    return SinkComparison("PostgreSQL", "write_batch", "COPY", n, seconds["ours"], seconds["raw"])


def measure_sinks(conn: Connection, count: int) -> list[SinkComparison]:
    """Both sinks over the same ``count`` events."""
    docs = shop_events(count)
    results = [measure_elasticsearch(conn, docs), measure_postgres(conn, docs)]
    for r in results:
        console.print(
            f"  {r.sink}: {r.ours} {r.ours_per_second:,.0f}/s, {r.raw} {r.raw_per_second:,.0f}/s, "
            f"ratio {r.ratio:.2f} (goal >= {r.goal})"
        )
    return results
