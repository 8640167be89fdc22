"""Thin wrappers over confluent-kafka: topics, offsets and a batching, idempotent producer.

Client errors leave this module as ``TransientError`` (broker down, timeout, leader moving: retry
later) or ``TerminalError`` (bad configuration, unknown topic, message too large). librdkafka's own
log lines go to the ``highway.kafka`` logger instead of stderr.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from highway.errors import HighwayError, TerminalError, TransientError

log = logging.getLogger("highway.kafka")

T = TypeVar("T")
DeliveryCallback = Callable[[T, str | None, int, int], None]

DEFAULT_TIMEOUT = 30.0
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 20,
    "batch.size": 1_000_000,  # bytes per partition batch; stays under a broker's default 1 MiB limit
    "batch.num.messages": 100_000,
    "compression.type": "lz4",
    "message.max.bytes": 4_194_304,  # oversize test events are ~1.1 MiB; the broker allows 4 MiB
    "delivery.timeout.ms": 120_000,  # rides out a broker restart, still fails rather than hangs
    "queue.buffering.max.messages": 200_000,
}

# Codes that say "try again later" even where librdkafka does not flag them retriable.
_TRANSIENT_CODES = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._QUEUE_FULL,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.NOT_CONTROLLER,
    KafkaError.BROKER_NOT_AVAILABLE,
    KafkaError.NETWORK_EXCEPTION,
}


def classify(error: KafkaError, action: str) -> HighwayError:
    """The highway error for a client error met while doing ``action``."""
    message = f"kafka: {action}: {error.str()}"
    if error.code() in _TRANSIENT_CODES or error.retriable():
        return TransientError(message)
    return TerminalError(message)


def _kafka_error(exc: KafkaException) -> KafkaError:
    first = exc.args[0] if exc.args else None
    if isinstance(first, KafkaError):
        return first
    return KafkaError(KafkaError._FAIL, str(exc))


def _client_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "logger": log, **(extra or {})}


def _admin(bootstrap: str) -> AdminClient:
    try:
        return AdminClient(_client_config(bootstrap))
    except KafkaException as exc:
        raise classify(_kafka_error(exc), "create admin client") from None


def _wait(future: concurrent.futures.Future[Any], action: str, timeout: float) -> Any:
    """The future's result; a client error as a KafkaError value if it is TOPIC_ALREADY_EXISTS."""
    try:
        return future.result(timeout=timeout)
    except KafkaException as exc:
        error = _kafka_error(exc)
        if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return error
        raise classify(error, action) from None
    except concurrent.futures.TimeoutError:
        raise TransientError(f"kafka: {action}: no answer within {timeout:.0f}s") from None


def ensure_topic(
    bootstrap: str,
    topic: str,
    partitions: int,
    *,
    config: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> bool:
    """Create ``topic`` if it is missing; True if this call created it, False if it existed.

    The replication factor is the broker's default. An existing topic is left as it is, even
    with another partition count or config.
    """
    new = NewTopic(topic, num_partitions=partitions, config=dict(config or {}))
    admin = _admin(bootstrap)  # keep a reference: a collected client fails its pending futures
    futures = admin.create_topics([new], request_timeout=timeout, operation_timeout=timeout)
    if isinstance(_wait(futures[topic], f"create topic {topic}", timeout + 5), KafkaError):
        return False
    log.info("created topic %s with %d partitions", topic, partitions)
    return True


def _partitions(admin: AdminClient, topic: str, timeout: float) -> list[int]:
    try:
        metadata = admin.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise classify(_kafka_error(exc), f"describe topic {topic}") from None
    info = metadata.topics.get(topic)
    if info is None:
        raise classify(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART), f"describe topic {topic}")
    if info.error is not None:
        raise classify(info.error, f"describe topic {topic}")
    return sorted(info.partitions)


def _offsets(bootstrap: str, topic: str, spec: OffsetSpec, timeout: float) -> dict[int, int]:
    admin = _admin(bootstrap)
    request = {TopicPartition(topic, p): spec for p in _partitions(admin, topic, timeout)}
    futures = admin.list_offsets(request, request_timeout=timeout)
    return {
        tp.partition: int(_wait(future, f"list offsets of {topic}", timeout + 5).offset)
        for tp, future in futures.items()
    }


def end_offsets(bootstrap: str, topic: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[int, int]:
    """High watermark (offset of the next record) per partition of ``topic``."""
    return _offsets(bootstrap, topic, OffsetSpec.latest(), timeout)


def start_offsets(bootstrap: str, topic: str, *, timeout: float = DEFAULT_TIMEOUT) -> dict[int, int]:
    """Low watermark (offset of the oldest record kept) per partition of ``topic``."""
    return _offsets(bootstrap, topic, OffsetSpec.earliest(), timeout)


def offsets_at(bootstrap: str, topic: str, at_ms: int, *, timeout: float = DEFAULT_TIMEOUT) -> dict[int, int]:
    """Per partition, the offset of the first record whose timestamp is at or after ``at_ms`` (the end
    offset where there is none)."""
    found = _offsets(bootstrap, topic, OffsetSpec.for_timestamp(at_ms), timeout)
    if all(offset >= 0 for offset in found.values()):
        return found
    ends = end_offsets(bootstrap, topic, timeout=timeout)
    return {p: (offset if offset >= 0 else ends[p]) for p, offset in found.items()}


def count_records(bootstrap: str, topic: str, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Records currently kept in ``topic`` (end minus start offsets; no transactions are used)."""
    ends = end_offsets(bootstrap, topic, timeout=timeout)
    starts = start_offsets(bootstrap, topic, timeout=timeout)
    return sum(ends[p] - starts.get(p, 0) for p in ends)


class KafkaProducer(Generic[T]):
    """A confluent-kafka producer that reports each delivery as ``on_delivery(tag, error, partition,
    offset)``; ``error`` is None on success, else the client's error text."""

    def __init__(
        self, bootstrap: str, on_delivery: DeliveryCallback[T], settings: Mapping[str, Any] | None = None
    ) -> None:
        self._on_delivery = on_delivery
        config = _client_config(bootstrap, {**PRODUCER_DEFAULTS, **(settings or {})})
        config["error_cb"] = self._client_error
        try:
            self._producer = Producer(config)
        except KafkaException as exc:
            raise classify(_kafka_error(exc), "create producer") from None

    @staticmethod
    def _client_error(error: KafkaError) -> None:
        # librdkafka's own log line already says a broker is unreachable; it keeps retrying
        log.log(logging.ERROR if error.fatal() else logging.DEBUG, "kafka producer: %s", error.str())

    def _report(self, tag: T, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._on_delivery(tag, error.str(), -1, -1)
        else:
            self._on_delivery(tag, None, message.partition(), message.offset())

    def send(self, topic: str, key: bytes | None, value: bytes, tag: T) -> None:
        """Queue one record; while the local queue is full, wait for deliveries to make room."""
        callback = functools.partial(self._report, tag)
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=callback)
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                raise classify(_kafka_error(exc), f"produce to {topic}") from None

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports for up to ``timeout`` seconds; returns how many were served."""
        return int(self._producer.poll(timeout))

    def flush(self, timeout: float) -> int:
        """Wait for every queued record's delivery report; returns how many are still pending."""
        return int(self._producer.flush(timeout))

    def pending(self) -> int:
        return len(self._producer)
