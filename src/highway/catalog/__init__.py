"""The app catalog: ``spark_apps/catalog/*.yaml`` -> frozen, validated specs (one class per app kind).

``load(path)`` reads a file (I/O); ``parse(data, source)`` validates a plain dict (pure). Every error
is a ``CatalogError`` naming the file, the key, the bad value and what is allowed.
"""

from highway.catalog.model import (
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
from highway.catalog.parse import parse
from highway.catalog.store import catalog_dir, get, get_bronze, get_with_text, load, load_all, load_with_text

__all__ = [
    "Aggregation",
    "AppSpec",
    "BronzeSpec",
    "DeltaSource",
    "DeltaTable",
    "Field",
    "GoldSpec",
    "Health",
    "KafkaSource",
    "Recovery",
    "Resources",
    "SearchSink",
    "SilverSpec",
    "Trigger",
    "WarehouseSink",
    "catalog_dir",
    "get",
    "get_bronze",
    "get_with_text",
    "load",
    "load_all",
    "load_with_text",
    "parse",
]
