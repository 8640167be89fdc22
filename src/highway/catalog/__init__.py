"""The app catalog: ``spark_apps/catalog/*.yaml`` -> frozen, validated ``AppSpec`` values.

``load(path)`` reads a file (I/O); ``parse(data, source)`` validates a plain dict (pure). Every error
is a ``CatalogError`` naming the file, the key, the bad value and what is allowed.
"""

from highway.catalog.model import (
    AppSpec,
    DeltaTable,
    Field,
    KafkaSource,
    Resources,
    Trigger,
)
from highway.catalog.parse import parse
from highway.catalog.store import catalog_dir, get, load, load_all

__all__ = [
    "AppSpec",
    "DeltaTable",
    "Field",
    "KafkaSource",
    "Resources",
    "Trigger",
    "catalog_dir",
    "get",
    "load",
    "load_all",
    "parse",
]
