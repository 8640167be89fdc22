"""Thin Elasticsearch wrapper: write alias + template, idempotent bulk writes, search.

Bulk writes use the ``index`` op with ``_id`` = the event id, so a replayed batch overwrites the same
documents; with ``first_wins`` they use ``create``, so the first copy of an id stays (a later one, or a
replay, finds it there: 409, counted as ``existing``, never refused). Per item: 2xx is written;
429 and 5xx are retried with backoff (only those items), then the whole call fails with
``TransientError`` (the stream retries the batch); any other 4xx (mapping error, strict-dynamic
rejection) is returned as a ``BulkFailure`` for the caller's DLQ. Nothing is dropped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

from highway.connection import Connection
from highway.core.search import first_index_name
from highway.errors import TerminalError, TransientError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

Sleep = Callable[[float], None]
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class BulkFailure:
    """A document Elasticsearch refused for good (retrying will not help)."""

    doc_id: str | None
    status: int
    error_type: str
    reason: str
    doc: dict[str, Any] = field(repr=False)


@dataclass
class BulkResult:
    written: int = 0
    failed: list[BulkFailure] = field(default_factory=list)
    retries: int = 0
    existing: int = 0  # first_wins: ids already indexed (kept as they were)


def client(conn: Connection, timeout: float = 30.0) -> Elasticsearch:
    """A client for the stack's Elasticsearch; the transport does not retry (highway retries itself)."""
    from elasticsearch import Elasticsearch

    return Elasticsearch(conn.es_url, request_timeout=timeout, max_retries=0, retry_on_timeout=False)


def _client_errors() -> tuple[type[Exception], ...]:
    """What the client raises: API errors (an HTTP answer) and transport errors (no answer)."""
    from elasticsearch import ApiError, TransportError

    return (ApiError, TransportError)


def _wrap(exc: Exception, what: str) -> Exception:
    """A client error as TransientError (try later) or TerminalError (bad request, unknown index)."""
    from elasticsearch import ApiError

    if isinstance(exc, ApiError):
        status = exc.meta.status
        if status == 429 or status >= 500:
            return TransientError(f"Elasticsearch {what}: HTTP {status} {exc.message}")
        return TerminalError(f"Elasticsearch {what}: HTTP {status} {_reason_of(exc.body) or exc.message}")
    return TransientError(f"Elasticsearch {what}: {type(exc).__name__}: {exc}")


def _reason_of(body: object) -> str:
    """The innermost reason of an error body, e.g. why a query did not parse."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error", body)
    if not isinstance(error, dict):
        return str(error)
    causes = error.get("root_cause") or []
    cause = error.get("caused_by") or (causes[0] if causes else None)
    if isinstance(cause, dict) and cause.get("reason"):
        return f"{cause.get('type', '')}: {cause['reason']}"
    return f"{error.get('type', '')}: {error.get('reason', '')}"


def ensure_alias(es: Elasticsearch, alias: str, template: dict[str, Any]) -> str:
    """Put the index template, create ``<alias>-000001`` as the write index if needed; the write index.

    The write index gets the template's mappings too: a field added to the catalog is added to the
    index in place; a field whose type changed is refused here (reindex into a new numbered index).
    """
    from elasticsearch import BadRequestError

    try:
        es.indices.put_index_template(name=alias, **template)
        if not es.indices.exists_alias(name=alias):
            try:
                es.indices.create(index=first_index_name(alias), aliases={alias: {"is_write_index": True}})
            except BadRequestError as exc:  # created meanwhile by another writer: fine
                if exc.error != "resource_already_exists_exception":
                    raise
        index = write_index(es, alias)
        mappings = template["template"]["mappings"]
        es.indices.put_mapping(index=index, properties=mappings["properties"], dynamic=mappings["dynamic"])
        return index
    except _client_errors() as exc:
        raise _wrap(exc, f"ensure alias '{alias}'") from exc


def write_index(es: Elasticsearch, alias: str) -> str:
    """The index an alias writes to (its ``is_write_index``, or its only index)."""
    indices = es.indices.get_alias(name=alias).body
    writers = [name for name, meta in indices.items() if meta["aliases"][alias].get("is_write_index")]
    if len(writers) == 1:
        return writers[0]
    if len(indices) == 1:
        return next(iter(indices))
    raise TerminalError(f"alias '{alias}' has no single write index: {', '.join(sorted(indices))}")


def _chunks(docs: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(docs)
    while chunk := list(islice(it, size)):
        yield chunk


def _action(alias: str, doc: dict[str, Any], id_field: str, first_wins: bool = False) -> dict[str, Any]:
    op = "create" if first_wins else "index"
    return {"_op_type": op, "_index": alias, "_id": str(doc[id_field]), "_source": doc}


def _failure(doc: dict[str, Any], id_field: str, status: int, error: object) -> BulkFailure:
    doc_id = doc.get(id_field)
    if isinstance(error, dict):
        error_type, reason = str(error.get("type", "")), str(error.get("reason", ""))
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            reason = f"{reason}: {cause['reason']}"
    else:
        error_type, reason = "error", str(error)
    return BulkFailure(None if doc_id is None else str(doc_id), status, error_type, reason, doc)


def _send(
    es: Elasticsearch,
    alias: str,
    docs: list[dict[str, Any]],
    id_field: str,
    result: BulkResult,
    first_wins: bool = False,
) -> list[dict[str, Any]]:
    """One bulk pass over ``docs``: count the written, collect the refused; the ones to retry."""
    from elasticsearch.helpers import streaming_bulk

    retry: list[dict[str, Any]] = []
    sendable = []
    for doc in docs:
        if doc.get(id_field) is None:
            result.failed.append(_failure(doc, id_field, 400, {"type": "missing_id", "reason": id_field}))
        else:
            sendable.append(doc)
    actions = (_action(alias, doc, id_field, first_wins) for doc in sendable)
    outcomes = streaming_bulk(
        es, actions, chunk_size=max(len(sendable), 1), raise_on_error=False, raise_on_exception=False
    )
    for doc, (ok, item) in zip(sendable, outcomes, strict=True):
        info = next(iter(item.values()))
        status = info.get("status")
        status = status if isinstance(status, int) else 503  # no HTTP answer for the chunk: retry
        if ok and 200 <= status < 300:
            result.written += 1
        elif first_wins and status == 409:  # create: the id is there already, its first copy stays
            result.existing += 1
        elif status == 429 or status >= 500:
            retry.append(doc)
        else:
            result.failed.append(_failure(doc, id_field, status, info.get("error")))
    return retry


def _index_chunk(
    es: Elasticsearch,
    alias: str,
    chunk: list[dict[str, Any]],
    id_field: str,
    max_retries: int,
    initial_backoff: float,
    sleep: Sleep,
    first_wins: bool = False,
) -> BulkResult:
    """One chunk, its throttled/failing items retried with exponential backoff, then TransientError."""
    result = BulkResult()
    pending = chunk
    for attempt in range(max_retries + 1):
        if attempt:
            result.retries += 1
            sleep(min(MAX_BACKOFF, initial_backoff * 2 ** (attempt - 1)))
        try:
            pending = _send(es, alias, pending, id_field, result, first_wins)
        except _client_errors() as exc:
            raise _wrap(exc, f"bulk into '{alias}'") from exc
        if not pending:
            return result
    raise TransientError(
        f"Elasticsearch bulk into '{alias}': {len(pending)} document(s) still throttled or failing "
        f"after {max_retries} retries"
    )


def _in_threads(
    send: Callable[[list[dict[str, Any]]], BulkResult],
    chunks: Iterator[list[dict[str, Any]]],
    concurrency: int,
) -> Iterator[BulkResult]:
    """``send`` over ``chunks`` in ``concurrency`` threads, at most twice that many chunks in memory."""
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="es-bulk") as pool:
        in_flight: deque[Future[BulkResult]] = deque()
        for chunk in chunks:
            in_flight.append(pool.submit(send, chunk))
            if len(in_flight) >= 2 * concurrency:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()


def bulk_index(
    es: Elasticsearch,
    alias: str,
    docs: Iterable[dict[str, Any]],
    id_field: str = "event_id",
    chunk_size: int = 1000,
    max_retries: int = 5,
    initial_backoff: float = 0.5,
    sleep: Sleep = time.sleep,
    concurrency: int = 1,
    first_wins: bool = False,
) -> BulkResult:
    """Index ``docs`` into ``alias`` with ``_id`` = ``doc[id_field]``; see the module doc for failures
    and ``first_wins``.

    ``concurrency`` > 1 sends that many chunks at once (threads sharing the client's connection pool).
    """
    send = partial(
        _index_chunk,
        es,
        alias,
        id_field=id_field,
        max_retries=max_retries,
        initial_backoff=initial_backoff,
        sleep=sleep,
        first_wins=first_wins,
    )
    chunks = _chunks(docs, chunk_size)
    results = _in_threads(send, chunks, concurrency) if concurrency > 1 else map(send, chunks)
    total = BulkResult()
    for result in results:
        total.written += result.written
        total.failed.extend(result.failed)
        total.retries += result.retries
        total.existing += result.existing
    return total


def search(es: Elasticsearch, alias: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``_source`` of each hit, in the query's sort order."""
    try:
        response = es.search(index=alias, **query)
    except _client_errors() as exc:
        raise _wrap(exc, f"search '{alias}'") from exc
    return [hit["_source"] for hit in response["hits"]["hits"]]


def scan(
    es: Elasticsearch,
    alias: str,
    sort_field: str = "event_id",
    source: list[str] | bool = False,
    page: int = 10_000,
) -> Iterator[dict[str, Any]]:
    """Every hit of ``alias`` in ``sort_field`` order (search_after paging; refreshes first)."""
    try:
        es.indices.refresh(index=alias)
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {"size": page, "sort": [{sort_field: "asc"}], "_source": source}
            if after is not None:
                body["search_after"] = after
            hits = es.search(index=alias, **body)["hits"]["hits"]
            if not hits:
                return
            yield from hits
            after = hits[-1]["sort"]
    except _client_errors() as exc:
        raise _wrap(exc, f"scan '{alias}'") from exc


def count(es: Elasticsearch, alias: str) -> int:
    """Documents visible to search in ``alias`` (refreshes first, so what was just written counts)."""
    try:
        es.indices.refresh(index=alias)
        return int(es.count(index=alias)["count"])
    except _client_errors() as exc:
        raise _wrap(exc, f"count '{alias}'") from exc


def field_names(es: Elasticsearch, alias: str) -> set[str]:
    """Top-level field names mapped in the indices behind ``alias``; TerminalError if there are none."""
    from elasticsearch import NotFoundError

    try:
        mappings = es.indices.get_mapping(index=alias).body
    except NotFoundError:
        raise TerminalError(f"no Elasticsearch index or alias '{alias}'") from None
    except _client_errors() as exc:
        raise _wrap(exc, f"mapping of '{alias}'") from exc
    return {name for index in mappings.values() for name in index["mappings"].get("properties", {})}
