"""Validate a catalog entry given as plain data (pure: no I/O).

Unpacking follows one pattern: each section lists its REQUIRED and OPTIONAL keys; an unknown key,
a missing key, a wrong type or a value outside its allowed set raises ``CatalogError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from highway.catalog.model import (
    APP_KINDS,
    FIELD_TYPES,
    PARTITION_COLUMNS,
    RECOVERY_POLICIES,
    STARTING_OFFSETS,
    Aggregation,
    AppSpec,
    BronzeSpec,
    DeltaSource,
    DeltaTable,
    Field,
    GoldSpec,
    Health,
    KafkaSource,
    Recovery,
    Resources,
    SearchSink,
    SilverSpec,
    Trigger,
    WarehouseSink,
)
from highway.core.k8s import common as k8s
from highway.errors import CatalogError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
MEMORY_RE = re.compile(r"^[1-9][0-9]*[mg]$")
ALIAS_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,200}$")
WAREHOUSE_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$")
COLUMN_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_RETRY_SECONDS = 180.0

T = TypeVar("T")
_MISSING = object()


class _Section:
    """A mapping under validation, with the key path used in error messages."""

    def __init__(self, source: str, path: str, data: object, required: set[str], optional: set[str]):
        self.source = source
        self.path = path
        if not isinstance(data, Mapping):
            raise CatalogError(source, path or "<root>", data, "a mapping of keys to values")
        self.data: Mapping[str, Any] = data
        for key in data:
            if key not in required | optional:
                allowed = ", ".join(sorted(required | optional))
                raise CatalogError(source, self.key(str(key)), data[key], f"one of the known keys: {allowed}")
        for key in sorted(required):
            if key not in data:
                raise CatalogError(source, self.key(key), None, "a value (this key is required)")

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str, default: object = _MISSING) -> Any:
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise CatalogError(self.source, self.key(name), None, "a value (this key is required)")
        return default

    def typed(self, name: str, kind: type[T], default: object = _MISSING) -> T:
        value = self.raw(name, default)
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if not ok:
            raise CatalogError(self.source, self.key(name), value, f"a {kind.__name__}")
        return value

    def text(self, name: str, pattern: re.Pattern[str], what: str, default: object = _MISSING) -> str:
        value = self.typed(name, str, default)
        if not pattern.match(value):
            raise CatalogError(self.source, self.key(name), value, what)
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: object = _MISSING) -> str:
        value = self.raw(name, default)
        if value not in allowed:
            raise CatalogError(self.source, self.key(name), value, "one of " + ", ".join(allowed))
        return str(value)

    def positive(self, name: str, kind: type[T], default: object = _MISSING) -> T:
        value = self.typed(name, kind, default)
        if value <= 0:  # type: ignore[operator]
            raise CatalogError(self.source, self.key(name), value, f"a positive {kind.__name__}")
        return value

    def section(self, name: str, required: set[str], optional: set[str] = frozenset()) -> _Section:  # type: ignore[assignment]
        return _Section(self.source, self.key(name), self.raw(name), required, set(optional))


def _kafka_source(root: _Section) -> KafkaSource:
    s = root.section(
        "source", {"topic"}, {"partitions", "starting_offsets", "max_offsets_per_trigger", "max_event_bytes"}
    )
    return KafkaSource(
        topic=s.text("topic", TOPIC_RE, "a Kafka topic name: letters, digits, '.', '_', '-'"),
        partitions=s.positive("partitions", int, 4),
        starting_offsets=s.choice("starting_offsets", STARTING_OFFSETS, "earliest"),
        max_offsets_per_trigger=s.positive("max_offsets_per_trigger", int, 50_000),
        max_event_bytes=s.positive("max_event_bytes", int, 1_048_576),
    )


def _delta_source(root: _Section) -> DeltaSource:
    s = root.section("source", {"table"}, {"max_files_per_trigger"})
    return DeltaSource(
        table=_lake_path(s, "table"),
        max_files_per_trigger=s.positive("max_files_per_trigger", int, 100),
    )


def _lake_path(s: _Section, name: str) -> str:
    table = s.text(name, PATH_RE, "a relative path under the lake root, e.g. bronze/shop_events")
    if ".." in table.split("/"):
        raise CatalogError(s.source, s.key(name), table, "a path without '..'")
    return table


def _schema(root: _Section) -> tuple[Field, ...]:
    items = root.raw("schema")
    if not isinstance(items, list) or not items:
        raise CatalogError(root.source, "schema", items, "a non-empty list of {name, type, required}")
    fields = []
    for i, item in enumerate(items):
        f = _Section(root.source, f"schema[{i}]", item, {"name", "type"}, {"required"})
        fields.append(
            Field(
                name=f.text("name", NAME_RE, "a lower_snake_case column name"),
                type=f.choice("type", FIELD_TYPES),
                required=f.typed("required", bool, False),
            )
        )
    names = [f.name for f in fields]
    for name in names:
        if names.count(name) > 1:
            raise CatalogError(root.source, "schema", name, "each field name once")
    return tuple(fields)


def _table(root: _Section, name: str) -> DeltaTable:
    t = root.section(name, {"table"}, {"partition_by"})
    partition_by = t.raw("partition_by", [])
    if not isinstance(partition_by, list) or any(p not in PARTITION_COLUMNS for p in partition_by):
        raise CatalogError(
            root.source, t.key("partition_by"), partition_by, "a list of " + ", ".join(PARTITION_COLUMNS)
        )
    return DeltaTable(table=_lake_path(t, "table"), partition_by=tuple(partition_by))


def _resources(root: _Section) -> Resources:
    default = Resources()
    if "resources" not in root.data:
        return default
    r = root.section("resources", set(), set(Resources.__dataclass_fields__))
    memory_help = "a JVM memory size such as 512m or 2g"
    instances = r.typed("executor_instances", int, default.executor_instances)
    if instances < 0:
        raise CatalogError(root.source, r.key("executor_instances"), instances, "0 or more executors")
    return Resources(
        driver_memory=r.text("driver_memory", MEMORY_RE, memory_help, default.driver_memory),
        shuffle_partitions=r.positive("shuffle_partitions", int, default.shuffle_partitions),
        driver_cpu=r.text("driver_cpu", k8s.CPU_RE, k8s.CPU_HELP, default.driver_cpu),
        executor_instances=instances,
        executor_memory=r.text("executor_memory", MEMORY_RE, memory_help, default.executor_memory),
        executor_cpu=r.text("executor_cpu", k8s.CPU_RE, k8s.CPU_HELP, default.executor_cpu),
    )


def _health(root: _Section) -> Health:
    default = Health()
    if "health" not in root.data:
        return default
    h = root.section("health", set(), set(Health.__dataclass_fields__))
    return Health(
        stall_triggers=h.positive("stall_triggers", int, default.stall_triggers),
        stall_floor_seconds=h.positive("stall_floor_seconds", float, default.stall_floor_seconds),
        startup_grace_seconds=h.positive("startup_grace_seconds", float, default.startup_grace_seconds),
        restart_budget=h.positive("restart_budget", int, default.restart_budget),
        window_minutes=h.positive("window_minutes", float, default.window_minutes),
        backoff_base_seconds=h.positive("backoff_base_seconds", float, default.backoff_base_seconds),
        crash_restarts=h.positive("crash_restarts", int, default.crash_restarts),
    )


def _recovery(root: _Section) -> Recovery:
    default = Recovery()
    if "recovery" not in root.data:
        return default
    r = root.section("recovery", set(), {"policy", "keep_backups"})
    return Recovery(
        policy=r.choice("policy", RECOVERY_POLICIES, default.policy),
        keep_backups=r.positive("keep_backups", int, default.keep_backups),
    )


def _image(root: _Section) -> str:
    image = root.typed("image", str, k8s.SPARK_IMAGE)
    if not k8s.is_image(image):
        raise CatalogError(root.source, "image", image, k8s.IMAGE_HELP)
    return image


def _search(root: _Section) -> SearchSink:
    s = root.section("search", {"alias"}, {"chunk_size", "concurrency", "max_retries", "retry_seconds"})
    return SearchSink(
        alias=s.text("alias", ALIAS_RE, "a lower-case Elasticsearch alias: a-z, 0-9, '_', '-'"),
        chunk_size=s.positive("chunk_size", int, 1000),
        concurrency=s.positive("concurrency", int, 2),
        max_retries=s.positive("max_retries", int, 5),
        retry_seconds=s.positive("retry_seconds", float, DEFAULT_RETRY_SECONDS),
    )


def _warehouse(root: _Section) -> WarehouseSink:
    s = root.section("warehouse", {"table", "key"}, {"retry_seconds"})
    key = s.raw("key")
    if (
        not isinstance(key, list)
        or not key
        or not all(isinstance(k, str) and COLUMN_RE.match(k) for k in key)
    ):
        raise CatalogError(
            root.source, s.key("key"), key, "a non-empty list of lower_snake_case column names"
        )
    return WarehouseSink(
        table=s.text(
            "table", WAREHOUSE_TABLE_RE, "schema.table in lower_snake_case, e.g. warehouse.shop_events"
        ),
        key=tuple(key),
        retry_seconds=s.positive("retry_seconds", float, DEFAULT_RETRY_SECONDS),
    )


def _aggregation(root: _Section) -> Aggregation:
    s = root.section("aggregation", {"event_type", "group_by", "window_minutes"}, {"watermark_minutes"})
    watermark = s.typed("watermark_minutes", int, 10)
    if watermark < 0:
        raise CatalogError(root.source, s.key("watermark_minutes"), watermark, "0 or more minutes")
    return Aggregation(
        event_type=s.text("event_type", NAME_RE, "an event type such as order_placed"),
        group_by=s.text("group_by", NAME_RE, "a lower_snake_case column name"),
        window_minutes=s.positive("window_minutes", int),
        watermark_minutes=watermark,
    )


COMMON_REQUIRED = {"name", "kind", "source", "checkpoint", "status_prefix"}
COMMON_OPTIONAL = {"description", "trigger", "resources", "image", "health", "recovery"}
KIND_KEYS: dict[str, set[str]] = {
    "bronze": {"schema", "sink", "dlq"},
    "silver": {"schema", "sink", "dlq", "search", "warehouse"},
    "gold": {"aggregation", "warehouse", "late_table"},
}


def parse(data: object, source: str = "<catalog>") -> AppSpec:
    """Validate one catalog entry and return it as a frozen spec of its kind."""
    if isinstance(data, Mapping) and "kind" in data:
        kind = _Section(source, "", {"kind": data["kind"]}, {"kind"}, set()).choice("kind", APP_KINDS)
    else:
        kind = "bronze"  # the key check below names what is missing
    root = _Section(source, "", data, COMMON_REQUIRED | KIND_KEYS[kind], COMMON_OPTIONAL)
    trigger = root.section("trigger", set(), {"interval_seconds"}) if "trigger" in root.data else None
    common: dict[str, Any] = {
        "name": root.text("name", NAME_RE, "lower_snake_case, 2-63 characters, starting with a letter"),
        "kind": kind,
        "description": root.typed("description", str, ""),
        "trigger": Trigger(trigger.positive("interval_seconds", float, 5.0) if trigger else 5.0),
        "checkpoint": _lake_path(root, "checkpoint"),
        "status_prefix": _lake_path(root, "status_prefix"),
        "resources": _resources(root),
        "image": _image(root),
        "health": _health(root),
        "recovery": _recovery(root),
    }
    if kind == "bronze":
        return BronzeSpec(
            **common,
            source=_kafka_source(root),
            schema=_schema(root),
            sink=_table(root, "sink"),
            dlq=_table(root, "dlq"),
        )
    if kind == "silver":
        return SilverSpec(
            **common,
            source=_delta_source(root),
            schema=_schema(root),
            sink=_table(root, "sink"),
            dlq=_table(root, "dlq"),
            search=_search(root),
            warehouse=_warehouse(root),
        )
    return GoldSpec(
        **common,
        source=_delta_source(root),
        aggregation=_aggregation(root),
        warehouse=_warehouse(root),
        late_table=root.text("late_table", WAREHOUSE_TABLE_RE, "schema.table in lower_snake_case"),
    )
