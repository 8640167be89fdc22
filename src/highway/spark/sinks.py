"""The sink contract: every sink is given a ``MicroBatch`` (the batch's DataFrame and its batch id) and is
idempotent per batch id: writing the same batch twice leaves the target as writing it once.

A sink returns a ``SinkResult``: rows written, whether the batch had already been written (a replay),
retries it took, and the rows it refused for good (``Refusal``: id, status, reason, the row). The
batch function writes refusals to the app's DLQ table; nothing is silently dropped. ``SinkTally``
adds the results up for the heartbeat (``sinks``) and the metrics. Writes to a service that
is down are retried (``highway.core.retry``) until the sink's ``retry_seconds``, then the batch fails
and the stream replays it from its checkpoint.

The Elasticsearch and warehouse sinks write from the driver: the micro-batch is collected once (as
Arrow) and handed to the client libraries, which batch and parallelise the writes themselves.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from highway.catalog import SearchSink
from highway.connection import Connection
from highway.core.retry import retry_transient
from highway.errors import TransientError
from highway.spark.metrics import AppMetrics

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


Row = dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """A row a sink refused for good (retrying cannot help): it goes to the DLQ with the reason."""

    row_id: str | None
    status: int | None  # Elasticsearch's HTTP status; None for the warehouse (its reason has the SQLSTATE)
    reason: str
    row: Row = field(repr=False)


@dataclass(frozen=True)
class SinkResult:
    sink: str
    written: int
    refused: tuple[Refusal, ...] = ()
    replayed: bool = False
    retries: int = 0

    @property
    def failed(self) -> int:
        return len(self.refused)

    def summary(self) -> str:
        text = f"{self.sink} {self.written:,}"
        if self.refused:
            text += f" ({self.failed} refused)"
        if self.replayed:
            text += " (replayed: already written)"
        if self.retries:
            text += f" ({self.retries} retries)"
        return text


class MicroBatch:
    """What a sink is given: the batch's DataFrame, its id, and its rows collected once (via Arrow).

    The Elasticsearch and warehouse clients write from the driver; collecting once serves both.
    """

    def __init__(self, df: DataFrame, batch_id: int, lineage: str = "", sources: str | None = None) -> None:
        self.df = df
        self.batch_id = batch_id
        self.lineage = lineage  # the checkpoint's query id: sinks key idempotence on (app, lineage, batch)
        self.sources = sources  # Spark's offsets of the batch (``batch_position`` JSON), for each commit
        self._rows: list[Row] | None = None

    @property
    def rows(self) -> list[Row]:
        if self._rows is None:
            self._rows = collect_rows(self.df)
        return self._rows


class Sink(Protocol):
    name: str

    def write(self, batch: MicroBatch) -> SinkResult: ...


class SinkTally:
    """Totals per sink since the app started, shared by the batch function and the progress reporter."""

    def __init__(self, metrics: AppMetrics) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._totals: dict[str, dict[str, int]] = {}

    def add(self, result: SinkResult) -> None:
        with self._lock:
            total = self._totals.setdefault(
                result.sink, {"written": 0, "failed": 0, "replayed_batches": 0, "retries": 0}
            )
            total["written"] += result.written
            total["failed"] += result.failed
            total["replayed_batches"] += int(result.replayed)
            total["retries"] += result.retries
        self.metrics.written(result.sink, result.written)
        if result.failed:
            self.metrics.sink_failed.labels(self.metrics.app, result.sink).inc(result.failed)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: dict(total) for name, total in self._totals.items()}


class StepTimer:
    """One log line per batch with the time each step took, e.g. ``merge 2.1 s, elasticsearch 0.8 s``."""

    def __init__(self, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.clock = clock
        self.started = self.last = clock()
        self.steps: list[str] = []

    def lap(self, step: str) -> None:
        now = self.clock()
        self.steps.append(f"{step} {now - self.last:.1f} s")
        self.last = now

    def report(self) -> None:
        print(f"{self.what}: {', '.join(self.steps)}; total {self.clock() - self.started:.1f} s", flush=True)


def collect_rows(df: DataFrame) -> list[Row]:
    """A DataFrame's rows as plain dicts (timestamps as aware UTC datetimes), via Arrow."""
    rows: list[Row] = df.toArrow().to_pylist()
    return rows


def _notify(message: str) -> None:
    print(message, flush=True)  # the app's log: one line per retry, with the time budget left


class ElasticsearchSink:
    """Index documents through a write alias, ``_id`` = the event id; refused documents come back."""

    name = "elasticsearch"

    def __init__(
        self, conn: Connection, settings: SearchSink, template: dict[str, Any], first_wins: bool = False
    ) -> None:
        self.first_wins = first_wins  # create, not index: the first copy of an id stays
        self.conn = conn
        self.settings = settings
        self.alias = settings.alias
        self.template = template
        self._es: Any = None

    def _client(self) -> Any:
        from highway.adapters import elasticsearch as es

        if self._es is None:
            client = es.client(self.conn)
            es.ensure_alias(client, self.alias, self.template)
            self._es = client
        return self._es

    def write(self, batch: MicroBatch) -> SinkResult:
        from highway.adapters import elasticsearch as es

        sent_at = datetime.now(UTC)
        docs = [{**row, "indexed_at": sent_at} for row in batch.rows]

        def attempt() -> Any:
            try:
                return es.bulk_index(
                    self._client(),
                    self.alias,
                    docs,
                    chunk_size=self.settings.chunk_size,
                    concurrency=self.settings.concurrency,
                    max_retries=self.settings.max_retries,
                    first_wins=self.first_wins,
                )
            except TransientError:
                self._es = None  # a new client (and alias check) after an outage
                raise

        result, retries = retry_transient(
            attempt, f"batch {batch.batch_id} -> Elasticsearch '{self.alias}'", self.settings.retry_seconds,
            time.monotonic, time.sleep, _notify,
        )  # fmt: skip
        refused = tuple(
            Refusal(f.doc_id, f.status, f"{f.error_type}: {f.reason}", f.doc) for f in result.failed
        )
        return SinkResult(self.name, result.written, refused, retries=retries + result.retries)


class WarehouseSink:
    """Upsert rows into a PostgreSQL table with the batch ledger (a replayed batch is a no-op)."""

    name = "warehouse"

    def __init__(
        self,
        conn: Connection,
        app: str,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        retry_seconds: float,
        templates: Sequence[tuple[str, str]] = (),
        first_wins: bool = False,
    ) -> None:
        self.first_wins = first_wins  # an existing row is never changed (see postgres.write_batch)
        self.conn = conn
        self.app = app
        self.table = table
        self.columns = tuple(columns)
        self.key = tuple(key)
        self.retry_seconds = retry_seconds
        self.templates = tuple(templates)  # (table, migrated table whose shape it takes)
        self._pg: Any = None

    def connection(self) -> Any:
        from highway.adapters import postgres

        if self._pg is None or self._pg.closed:
            pg = postgres.connect(self.conn)
            postgres.migrate(pg)
            for table, template in self.templates:
                postgres.ensure_table_like(pg, table, template)
            self._pg = pg
        return self._pg

    def reset(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to close cleanly
                self._pg.close()
        self._pg = None

    def retrying(self, action: Callable[[Any], Any], what: str) -> tuple[Any, int]:
        """``action(pgconn)`` retried through an outage on a fresh connection each time."""

        def attempt() -> Any:
            try:
                return action(self.connection())
            except TransientError:
                self.reset()
                raise

        return retry_transient(attempt, what, self.retry_seconds, time.monotonic, time.sleep, _notify)

    def write(
        self, batch: MicroBatch, before_commit: Callable[[tuple[Refusal, ...]], None] | None = None
    ) -> SinkResult:
        """``before_commit(refused)``: see ``postgres.write_batch`` (the caller's DLQ write goes there)."""
        from highway.adapters import postgres

        tuples = [tuple(row.get(c) for c in self.columns) for row in batch.rows]

        def refusals(found: Sequence[tuple[int, str]]) -> tuple[Refusal, ...]:
            return tuple(
                Refusal(_row_id(batch.rows[i], self.key), None, f"PostgreSQL: {reason}", batch.rows[i])
                for i, reason in found
            )

        hook = None if before_commit is None else (lambda found: before_commit(refusals(found)))
        outcome, retries = self.retrying(
            lambda pg: postgres.write_batch(
                pg,
                self.app,
                batch.batch_id,
                self.table,
                self.columns,
                self.key,
                tuples,
                lineage=batch.lineage,
                sources=batch.sources,
                first_wins=self.first_wins,
                before_commit=hook,
            ),
            f"batch {batch.batch_id} -> PostgreSQL {self.table}",
        )
        return SinkResult(self.name, outcome.written, refusals(outcome.refused), outcome.replayed, retries)


def _row_id(row: Row, key: Sequence[str]) -> str | None:
    values = [row.get(c) for c in key]
    return None if all(v is None for v in values) else "/".join(str(v) for v in values)
