"""``highway produce``: synthetic shop events into an app's Kafka topic.

The events come from the pure ``ShopEventGenerator``; this module adds the I/O: the catalog, the
topic, a batching idempotent producer, pacing, a progress bar, the record file and the summary.
Each record's key is its user id, so a user's events stay in order in one partition.

``--record FILE`` gets one JSON line per delivered record, written from its delivery report:
``{"id", "valid", "reason", "late", "dup", "partition", "offset"}``, where ``dup`` marks a re-send of
an earlier valid event (``--dup-ratio``): an id appears once per send, so the distinct valid ids are
the events downstream must hold once. Records that were not delivered are counted, and
``run_produce`` raises ``TransientError`` if there is any.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from highway import catalog, connection
from highway.adapters.kafka import KafkaProducer, ensure_topic
from highway.catalog import BronzeSpec
from highway.core.events import (
    BROKER_MESSAGE_LIMIT,
    REQUIRED_FIELDS,
    Clock,
    GeneratedEvent,
    ShopEventGenerator,
)
from highway.errors import TerminalError, TransientError

TOPIC_CONFIG = {"max.message.bytes": str(BROKER_MESSAGE_LIMIT)}
FLUSH_TIMEOUT = 180.0  # longer than the producer's delivery.timeout.ms: every record gets a report
PROGRESS_EVERY = 0.1  # seconds between progress bar updates


@dataclass
class ProduceSummary:
    """What one ``highway produce`` run sent and what the broker acknowledged."""

    topic: str
    created_topic: bool
    sent: int = 0
    delivered: int = 0
    valid: int = 0
    late: int = 0
    duplicates: int = 0  # delivered re-sends of earlier valid events (also counted in valid)
    invalid: Counter[str] = field(default_factory=Counter)  # delivered bad records by reason
    partitions: Counter[int] = field(default_factory=Counter)  # delivered records by partition
    failures: Counter[str] = field(default_factory=Counter)  # undelivered records by client error
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def events_per_second(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


class _DeliveryLog:
    """Delivery reports -> the summary's counts and, if asked, one JSON line per delivered record."""

    def __init__(self, summary: ProduceSummary, record: IO[str] | None) -> None:
        self.summary = summary
        self.record = record

    def __call__(self, event: GeneratedEvent, error: str | None, partition: int, offset: int) -> None:
        summary = self.summary
        if error is not None:
            summary.failures[error] += 1
            return
        summary.delivered += 1
        summary.partitions[partition] += 1
        summary.late += event.late
        summary.duplicates += event.duplicate
        if event.reason is None:
            summary.valid += 1
        else:
            summary.invalid[event.reason] += 1
        if self.record is not None:
            line = {
                "id": event.event_id,
                "valid": event.reason is None,
                "reason": event.reason,
                "late": event.late,
                "dup": event.duplicate,
                "partition": partition,
                "offset": offset,
            }
            self.record.write(json.dumps(line) + "\n")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def check_schema(spec: BronzeSpec) -> None:
    """Shop events always carry the five required fields; an app requiring more cannot be fed."""
    extra = sorted(set(spec.required_fields) - set(REQUIRED_FIELDS))
    if extra:
        raise TerminalError(
            f"app {spec.name} requires {', '.join(extra)}, which shop events do not always carry "
            f"(they always carry {', '.join(REQUIRED_FIELDS)})"
        )


@contextlib.contextmanager
def _record_file(path: Path | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    try:
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise TerminalError(f"cannot write the record file {path}: {exc.strerror}") from None
    with handle:
        yield handle


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sent · {task.fields[delivered]} delivered · {task.fields[rate]:,.0f} ev/s"),
        TimeElapsedColumn(),
        console=console,
    )


def _send(
    producer: KafkaProducer[GeneratedEvent],
    events: Iterator[GeneratedEvent],
    summary: ProduceSummary,
    rate: float,
    show: Callable[[], None],
) -> None:
    """Send every event, paced to ``rate`` events/s when it is positive, serving delivery reports."""
    start = last_shown = time.monotonic()
    for index, event in enumerate(events):
        if rate > 0:
            due = start + index / rate
            while (wait := due - time.monotonic()) > 0:
                producer.poll(min(wait, PROGRESS_EVERY))
        producer.send(summary.topic, event.key, event.value, event)
        summary.sent += 1
        producer.poll(0)
        if (now := time.monotonic()) - last_shown >= PROGRESS_EVERY:
            show()
            last_shown = now


def _drain(producer: KafkaProducer[GeneratedEvent], show: Callable[[], None]) -> int:
    """Flush while showing progress; returns how many records are still without a report."""
    deadline = time.monotonic() + FLUSH_TIMEOUT
    pending = producer.flush(0)
    while pending and time.monotonic() < deadline:
        pending = producer.flush(PROGRESS_EVERY)
        show()
    return pending


def _produce(
    bootstrap: str,
    events: Iterator[GeneratedEvent],
    total: int,
    summary: ProduceSummary,
    rate: float,
    record: Path | None,
) -> int:
    """Send and flush; returns how many records got no delivery report in time."""
    console = Console(stderr=True)
    started = time.monotonic()
    with _record_file(record) as record_file, _progress(console) as progress:
        producer = KafkaProducer(bootstrap, _DeliveryLog(summary, record_file))
        task = progress.add_task(f"producing to {summary.topic}", total=total, delivered=0, rate=0.0)

        def show() -> None:
            elapsed = time.monotonic() - started
            rate_now = summary.delivered / elapsed if elapsed > 0 else 0.0
            progress.update(task, completed=summary.sent, delivered=summary.delivered, rate=rate_now)

        try:
            _send(producer, events, summary, rate, show)
        finally:  # also on Ctrl-C: what was sent gets its delivery report and its record line
            pending = _drain(producer, show)
            summary.seconds = time.monotonic() - started
            show()
    return pending


def print_summary(summary: ProduceSummary, console: Console) -> None:
    table = Table(title=f"produced to {summary.topic}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("topic created", "yes" if summary.created_topic else "no (existed)")
    table.add_row("sent", f"{summary.sent:,}")
    table.add_row("delivered", f"{summary.delivered:,}")
    table.add_row("valid", f"{summary.valid:,}")
    for reason, count in sorted(summary.invalid.items()):
        table.add_row(f"invalid: {reason}", f"{count:,}")
    table.add_row("late", f"{summary.late:,}")
    table.add_row("duplicates (re-sent valid)", f"{summary.duplicates:,}")
    for partition, count in sorted(summary.partitions.items()):
        table.add_row(f"partition {partition}", f"{count:,}")
    for error, count in summary.failures.most_common():
        table.add_row(f"[red]not delivered: {error}", f"{count:,}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    table.add_row("events/s", f"{summary.events_per_second:,.0f}")
    console.print(table)


def run_produce(
    count: int,
    rate: float,
    bad_ratio: float,
    late_ratio: float,
    seed: int,
    app_name: str,
    topic: str | None,
    record: Path | None,
    *,
    clock: Clock = _utc_now,
    console: Console | None = None,
    dup_ratio: float = 0.0,
) -> ProduceSummary:
    """Send ``count`` shop events to the app's topic (or ``topic``), print and return a summary.

    Raises ``TransientError`` if any record was not delivered (the summary is printed first).
    """
    spec = catalog.get_bronze(app_name)
    check_schema(spec)
    generator = ShopEventGenerator(
        seed,
        clock,
        bad_ratio=bad_ratio,
        late_ratio=late_ratio,
        dup_ratio=dup_ratio,
        max_event_bytes=spec.source.max_event_bytes,
    )
    topic = topic or spec.source.topic
    bootstrap = connection.load().kafka_bootstrap
    try:
        created = ensure_topic(bootstrap, topic, spec.source.partitions, config=TOPIC_CONFIG)
    except TransientError as exc:
        raise TransientError(f"{exc} (is Kafka up at {bootstrap}? try `highway stack up`)") from None
    summary = ProduceSummary(topic=topic, created_topic=created)
    pending = _produce(bootstrap, generator.take(count), count, summary, rate, record)
    print_summary(summary, console or Console())
    undelivered = count - summary.delivered
    if undelivered:
        reasons = "; ".join(f"{error} ({n})" for error, n in summary.failures.most_common(3))
        still = f", {pending} still pending after {FLUSH_TIMEOUT:.0f}s" if pending else ""
        raise TransientError(
            f"{undelivered} of {count} events were not delivered to {topic}: {reasons}{still}"
        )
    return summary
