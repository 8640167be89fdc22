"""Frozen dataclasses describing one streaming app."""

from __future__ import annotations

from dataclasses import dataclass

APP_KINDS = ("bronze",)
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
class DeltaTable:
    table: str
    partition_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Trigger:
    interval_seconds: float


@dataclass(frozen=True)
class Resources:
    driver_memory: str
    shuffle_partitions: int


@dataclass(frozen=True)
class AppSpec:
    name: str
    kind: str
    description: str
    source: KafkaSource
    schema: tuple[Field, ...]
    sink: DeltaTable
    dlq: DeltaTable
    trigger: Trigger
    checkpoint: str
    status_prefix: str
    resources: Resources

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema if f.required)
