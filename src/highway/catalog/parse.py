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
    STARTING_OFFSETS,
    AppSpec,
    DeltaTable,
    Field,
    KafkaSource,
    Resources,
    Trigger,
)
from highway.errors import CatalogError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")
MEMORY_RE = re.compile(r"^[1-9][0-9]*[mg]$")

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


def _source(root: _Section) -> KafkaSource:
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
    table = t.text("table", PATH_RE, "a relative path under the lake root, e.g. bronze/shop_events")
    if ".." in table.split("/"):
        raise CatalogError(root.source, t.key("table"), table, "a path without '..'")
    return DeltaTable(table=table, partition_by=tuple(partition_by))


def _resources(root: _Section) -> Resources:
    r = root.section("resources", set(), {"driver_memory", "shuffle_partitions"})
    return Resources(
        driver_memory=r.text("driver_memory", MEMORY_RE, "a JVM memory size such as 512m or 2g", "1g"),
        shuffle_partitions=r.positive("shuffle_partitions", int, 4),
    )


def parse(data: object, source: str = "<catalog>") -> AppSpec:
    """Validate one catalog entry and return it as a frozen ``AppSpec``."""
    root = _Section(
        source,
        "",
        data,
        {"name", "kind", "source", "schema", "sink", "dlq", "checkpoint", "status_prefix"},
        {"description", "trigger", "resources"},
    )
    trigger = root.section("trigger", set(), {"interval_seconds"}) if "trigger" in root.data else None
    path_help = "a relative path under the lake root"
    return AppSpec(
        name=root.text("name", NAME_RE, "lower_snake_case, 2-63 characters, starting with a letter"),
        kind=root.choice("kind", APP_KINDS),
        description=root.typed("description", str, ""),
        source=_source(root),
        schema=_schema(root),
        sink=_table(root, "sink"),
        dlq=_table(root, "dlq"),
        trigger=Trigger(trigger.positive("interval_seconds", float, 5.0) if trigger else 5.0),
        checkpoint=root.text("checkpoint", PATH_RE, path_help),
        status_prefix=root.text("status_prefix", PATH_RE, path_help),
        resources=_resources(root) if "resources" in root.data else Resources("1g", 4),
    )
