"""Frozen dataclasses describing one streaming app, one class per kind.

- ``bronze``: Kafka -> bronze Delta table (+ DLQ table for records that do not parse).
- ``silver``: bronze Delta table (as a stream) -> deduplicated, cleaned silver Delta table, an
  Elasticsearch index and the PostgreSQL warehouse (+ DLQ table for documents a sink refuses).
- ``gold``:   silver Delta table (as a stream) -> windowed aggregates in the warehouse, with the
  events that came after the watermark kept in a late-events table.
"""

from __future__ import annotations

from dataclasses import dataclass

APP_KINDS = ("bronze", "silver", "gold")
FIELD_TYPES = ("string", "int", "long", "double", "boolean", "timestamp")
STARTING_OFFSETS = ("earliest", "latest")
PARTITION_COLUMNS = ("event_date", "event_hour")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False


@dataclass(frozen=True)
class KafkaSource:
    topic: str
    partitions: int
    starting_offsets: str
    max_offsets_per_trigger: int
    max_event_bytes: int


@dataclass(frozen=True)
class DeltaSource:
    """Another app's Delta table, read as a stream (append-only commits)."""

    table: str
    max_files_per_trigger: int


@dataclass(frozen=True)
class DeltaTable:
    table: str
    partition_by: tuple[str, ...] = ()

    @property
    def view_name(self) -> str:
        """Its name in ``highway sql``: ``bronze/shop_events`` -> ``bronze_shop_events``."""
        return self.table.replace("/", "_").replace("-", "_").replace(".", "_")


@dataclass(frozen=True)
class SearchSink:
    """Elasticsearch: documents written through a write alias, ``_id`` = the event id."""

    alias: str
    chunk_size: int
    concurrency: int
    max_retries: int  # per bulk chunk, for items answered 429/5xx
    retry_seconds: float  # how long a batch keeps retrying an unreachable cluster before it fails


@dataclass(frozen=True)
class WarehouseSink:
    """A PostgreSQL table, written with an upsert on ``key`` and a batch ledger."""

    table: str
    key: tuple[str, ...]
    retry_seconds: float


@dataclass(frozen=True)
class Aggregation:
    """Tumbling event-time windows over one event type, grouped by one column."""

    event_type: str
    group_by: str
    window_minutes: int
    watermark_minutes: int


@dataclass(frozen=True)
class Trigger:
    interval_seconds: float


@dataclass(frozen=True)
class Resources:
    """Sizes of the app's Spark driver and (on Kubernetes) its executors.

    Memory is in JVM notation (``512m``, ``2g``): the heap; the pod gets the heap plus an overhead.
    CPU is a Kubernetes quantity (``500m``, ``1``). Locally the driver runs ``local[*]`` and the
    executor settings are not used.
    """

    driver_memory: str = "1g"
    shuffle_partitions: int = 4
    driver_cpu: str = "1"
    executor_instances: int = 1
    executor_memory: str = "1g"
    executor_cpu: str = "1"


@dataclass(frozen=True)
class Health:
    """How the reconcile loop judges the app (see ``highway.core.health``); all optional in the catalog.

    Stuck = no heartbeat (batch or idle tick) for ``max(stall_triggers x trigger, stall_floor_seconds)``;
    the floor's default (300 s) outlasts a sink's retry window (180 s), so an app riding out an outage
    is not restarted under it.
    """

    stall_triggers: int = 12
    stall_floor_seconds: float = 300.0
    startup_grace_seconds: float = 300.0
    restart_budget: int = 3
    window_minutes: float = 30.0
    backoff_base_seconds: float = 60.0
    crash_restarts: int = 5


RECOVERY_POLICIES = ("manual", "repair", "rebuild-from-sink")


@dataclass(frozen=True)
class Recovery:
    """What the app may do by itself when its checkpoint disagrees with its sinks (``highway.core.recovery``).

    ``manual`` (default): refuse to start, naming the problem and the command that fixes it. ``repair``:
    mend files (orphan temp files, a damaged trailing file, lost metadata) and start. ``rebuild-from-sink``:
    repair, or else a new checkpoint that starts where the sinks stopped. Each backs the checkpoint up
    first and keeps the newest ``keep_backups`` backups.
    """

    policy: str = "manual"
    keep_backups: int = 5


@dataclass(frozen=True)
class _Common:
    name: str
    kind: str
    description: str
    trigger: Trigger
    checkpoint: str
    status_prefix: str
    resources: Resources
    image: str  # the Spark apps image the driver and executors run on Kubernetes
    health: Health
    recovery: Recovery


@dataclass(frozen=True)
class BronzeSpec(_Common):
    source: KafkaSource
    schema: tuple[Field, ...]
    sink: DeltaTable
    dlq: DeltaTable

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema if f.required)

    def delta_tables(self) -> tuple[DeltaTable, ...]:
        return (self.sink, self.dlq)


@dataclass(frozen=True)
class SilverSpec(_Common):
    source: DeltaSource
    schema: tuple[Field, ...]
    sink: DeltaTable
    dlq: DeltaTable
    search: SearchSink
    warehouse: WarehouseSink

    def delta_tables(self) -> tuple[DeltaTable, ...]:
        return (self.sink, self.dlq)


@dataclass(frozen=True)
class GoldSpec(_Common):
    source: DeltaSource
    aggregation: Aggregation
    warehouse: WarehouseSink
    late_table: str  # warehouse table of the events that came after the watermark

    def delta_tables(self) -> tuple[DeltaTable, ...]:
        return ()


AppSpec = BronzeSpec | SilverSpec | GoldSpec
