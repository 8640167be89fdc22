"""Catalog validation: every bad entry is refused with file, key, value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from highway import catalog
from highway.errors import CatalogError

SHIPPED = Path(__file__).resolve().parents[2] / "spark_apps" / "catalog"


@pytest.fixture
def entry() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SHIPPED / "bronze_shop_events.yaml").read_text())
    return data


def test_every_shipped_entry_is_valid() -> None:
    apps = catalog.load_all(SHIPPED)
    assert "bronze_shop_events" in apps
    spec = apps["bronze_shop_events"]
    assert isinstance(spec, catalog.BronzeSpec)
    assert spec.source.topic == "shop.events"
    assert spec.sink.partition_by == ("event_date", "event_hour")
    assert spec.required_fields == ("event_id", "event_type", "event_time", "user_id", "session_id")
    assert spec.trigger.interval_seconds == 5.0


def test_spec_is_frozen(entry: dict[str, Any]) -> None:
    spec = catalog.parse(entry, "x.yaml")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def _mutate(entry: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(entry)
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node[p]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("kind", "platinum", "one of bronze, silver, gold"),
        ("name", "Bad Name", "lower_snake_case"),
        ("source.topic", "bad topic!", "Kafka topic name"),
        ("source.starting_offsets", "yesterday", "one of earliest, latest"),
        ("source.max_offsets_per_trigger", 0, "a positive int"),
        ("source.max_offsets_per_trigger", "many", "a int"),
        ("source.max_event_bytes", True, "a int"),
        ("sink.partition_by", ["country"], "event_date, event_hour"),
        ("sink.table", "bronze/../escape", "without '..'"),
        ("trigger.interval_seconds", -1, "a positive float"),
        ("resources.driver_memory", "lots", "512m or 2g"),
        ("resources.driver_cpu", "lots", "CPU quantity such as 500m"),
        ("resources.executor_cpu", "1Gi", "CPU quantity such as 500m"),
        ("resources.executor_memory", "2GB", "512m or 2g"),
        ("resources.executor_instances", -1, "0 or more executors"),
        ("resources.shuffle_partitions", 0, "a positive int"),
        ("image", "Bad Image!!", "an image reference such as"),
        ("image", "highway-spark:", "an image reference such as"),
        ("checkpoint", "/abs/path", "relative path"),
        ("checkpoint", "_checkpoints/../../etc", "without '..'"),
        ("status_prefix", "_status/..", "without '..'"),
        ("source.topic", KeyError, "required"),
        ("sink", KeyError, "required"),
    ],
)
def test_bad_value_names_key_value_and_allowed(
    entry: dict[str, Any], key: str, value: Any, allowed: str
) -> None:
    with pytest.raises(CatalogError) as err:
        catalog.parse(_mutate(entry, key, value), "apps/x.yaml")
    message = str(err.value)
    assert message.startswith("apps/x.yaml: key '" + key + "'")
    assert allowed in message
    if value is not KeyError:
        assert repr(value) in message


def test_unknown_key_lists_known_keys(entry: dict[str, Any]) -> None:
    with pytest.raises(CatalogError) as err:
        catalog.parse(_mutate(entry, "source.topik", "x"), "x.yaml")
    assert "source.topik" in str(err.value)
    assert "max_event_bytes" in str(err.value)


def test_schema_errors(entry: dict[str, Any]) -> None:
    bad_type = copy.deepcopy(entry)
    bad_type["schema"][2]["type"] = "datetime"
    with pytest.raises(CatalogError, match=r"schema\[2\]\.type.*'datetime'.*timestamp"):
        catalog.parse(bad_type, "x.yaml")
    dup = copy.deepcopy(entry)
    dup["schema"].append({"name": "event_id", "type": "string"})
    with pytest.raises(CatalogError, match="each field name once"):
        catalog.parse(dup, "x.yaml")
    with pytest.raises(CatalogError, match="non-empty list"):
        catalog.parse(_mutate(entry, "schema", []), "x.yaml")


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nsource: [unclosed\n")
    with pytest.raises(CatalogError) as err:
        catalog.load(path)
    assert str(path) in str(err.value)
    assert "line" in str(err.value)


def test_name_must_match_file(tmp_path: Path, entry: dict[str, Any]) -> None:
    path = tmp_path / "other_name.yaml"
    path.write_text(yaml.safe_dump(entry))
    with pytest.raises(CatalogError, match="other_name"):
        catalog.load(path)


def test_unknown_app_lists_known(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="bronze_shop_events"):
        catalog.get("no_such_app", SHIPPED)


# --- silver and gold kinds -----------------------------------------------------------------------


def _shipped(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text())
    return data


SHOP_EVENT_COLUMNS = (
    "event_id",
    "event_type",
    "event_time",
    "user_id",
    "session_id",
    "product_id",
    "order_id",
    "quantity",
    "price",
    "amount",
    "currency",
    "payment_method",
    "page",
)


def test_shipped_silver_entry_parses_to_a_silver_spec() -> None:
    spec = catalog.load(SHIPPED / "silver_shop_events.yaml")
    assert isinstance(spec, catalog.SilverSpec)
    assert spec.name == "silver_shop_events"
    assert spec.kind == "silver"
    assert spec.source == catalog.DeltaSource(table="bronze/shop_events", max_files_per_trigger=50)
    assert tuple(f.name for f in spec.schema) == SHOP_EVENT_COLUMNS
    assert [f.name for f in spec.schema if f.required] == list(SHOP_EVENT_COLUMNS[:5])
    assert spec.schema[2] == catalog.Field("event_time", "timestamp", True)
    assert spec.sink == catalog.DeltaTable("silver/shop_events", ("event_date",))
    assert spec.dlq == catalog.DeltaTable("dlq/silver_shop_events", ())
    assert spec.search == catalog.SearchSink(
        alias="shop-events", chunk_size=1000, concurrency=2, max_retries=5, retry_seconds=180.0
    )
    assert spec.warehouse == catalog.WarehouseSink("warehouse.shop_events", ("event_id",), 180.0)
    assert spec.trigger == catalog.Trigger(5.0)
    assert spec.checkpoint == "_checkpoints/silver_shop_events"
    assert spec.status_prefix == "_status/silver_shop_events"
    assert spec.resources == catalog.Resources("2g", 4, "1", 1, "1g", "1")
    assert spec.image == "highway-spark:0.1.0"


def test_shipped_gold_entry_parses_to_a_gold_spec() -> None:
    spec = catalog.load(SHIPPED / "gold_product_hourly.yaml")
    assert isinstance(spec, catalog.GoldSpec)
    assert spec.name == "gold_product_hourly"
    assert spec.kind == "gold"
    assert spec.source == catalog.DeltaSource(table="silver/shop_events", max_files_per_trigger=50)
    assert spec.aggregation == catalog.Aggregation(
        event_type="order_placed", group_by="product_id", window_minutes=60, watermark_minutes=10
    )
    assert spec.warehouse == catalog.WarehouseSink(
        "warehouse.product_hourly", ("window_start", "product_id"), 180.0
    )
    assert spec.late_table == "warehouse.late_events"
    assert spec.trigger == catalog.Trigger(5.0)
    assert spec.checkpoint == "_checkpoints/gold_product_hourly"
    assert spec.status_prefix == "_status/gold_product_hourly"
    assert spec.resources == catalog.Resources("1g", 4, "1", 1, "1g", "1")


def test_shipped_pipeline_is_connected_bronze_to_silver_to_gold() -> None:
    apps = catalog.load_all(SHIPPED)
    bronze, silver, gold = apps["bronze_shop_events"], apps["silver_shop_events"], apps["gold_product_hourly"]
    assert isinstance(bronze, catalog.BronzeSpec)
    assert isinstance(silver, catalog.SilverSpec)
    assert isinstance(gold, catalog.GoldSpec)
    assert silver.source.table == bronze.sink.table
    assert gold.source.table == silver.sink.table
    assert {f.name for f in silver.schema} == {f.name for f in bronze.schema}


def test_silver_and_gold_defaults() -> None:
    silver = _shipped("silver_shop_events")
    del silver["source"]["max_files_per_trigger"]
    del silver["resources"]
    del silver["trigger"]
    silver["search"] = {"alias": "a"}
    silver["warehouse"] = {"table": "w.t", "key": ["event_id"]}
    spec = catalog.parse(silver, "x.yaml")
    assert isinstance(spec, catalog.SilverSpec)
    assert spec.source.max_files_per_trigger == 100
    assert spec.search == catalog.SearchSink("a", 1000, 2, 5, 180.0)
    assert spec.warehouse == catalog.WarehouseSink("w.t", ("event_id",), 180.0)
    assert spec.trigger == catalog.Trigger(5.0)
    assert spec.resources == catalog.Resources("1g", 4, "1", 1, "1g", "1")
    assert spec.image == "highway-spark:0.1.0"
    gold = _shipped("gold_product_hourly")
    del gold["aggregation"]["watermark_minutes"]
    gold_spec = catalog.parse(gold, "x.yaml")
    assert isinstance(gold_spec, catalog.GoldSpec)
    assert gold_spec.aggregation.watermark_minutes == 10
    gold["aggregation"]["watermark_minutes"] = 0
    gold_zero = catalog.parse(gold, "x.yaml")
    assert isinstance(gold_zero, catalog.GoldSpec)
    assert gold_zero.aggregation.watermark_minutes == 0


@pytest.mark.parametrize(
    ("name", "tables"),
    [
        (
            "bronze_shop_events",
            (
                catalog.DeltaTable("bronze/shop_events", ("event_date", "event_hour")),
                catalog.DeltaTable("dlq/shop_events"),
            ),
        ),
        (
            "silver_shop_events",
            (
                catalog.DeltaTable("silver/shop_events", ("event_date",)),
                catalog.DeltaTable("dlq/silver_shop_events"),
            ),
        ),
        ("gold_product_hourly", ()),
    ],
)
def test_delta_tables_of_each_kind(name: str, tables: tuple[catalog.DeltaTable, ...]) -> None:
    assert catalog.load(SHIPPED / f"{name}.yaml").delta_tables() == tables


@pytest.mark.parametrize(
    ("table", "view"),
    [
        ("bronze/shop_events", "bronze_shop_events"),
        ("dlq/silver_shop_events", "dlq_silver_shop_events"),
        ("t_ab12/silver/shop_events", "t_ab12_silver_shop_events"),
        ("bench-1/x.y/z", "bench_1_x_y_z"),
        ("plain", "plain"),
    ],
)
def test_delta_table_view_name(table: str, view: str) -> None:
    assert catalog.DeltaTable(table).view_name == view


@pytest.mark.parametrize(
    ("app", "key", "value", "allowed"),
    [
        ("silver_shop_events", "kind", "platinum", "one of bronze, silver, gold"),
        ("gold_product_hourly", "kind", "platinum", "one of bronze, silver, gold"),
        ("silver_shop_events", "search.alias", "Shop-Events", "lower-case Elasticsearch alias"),
        ("silver_shop_events", "search.alias", "shop events", "lower-case Elasticsearch alias"),
        ("silver_shop_events", "search.chunk_size", 0, "a positive int"),
        ("silver_shop_events", "search.retry_seconds", "long", "a float"),
        ("silver_shop_events", "search", KeyError, "required"),
        ("silver_shop_events", "warehouse.table", "shop_events", "schema.table in lower_snake_case"),
        ("silver_shop_events", "warehouse.table", "Warehouse.shop_events", "schema.table"),
        ("silver_shop_events", "warehouse.key", [], "a non-empty list of lower_snake_case column names"),
        ("silver_shop_events", "warehouse.key", "event_id", "a non-empty list"),
        ("silver_shop_events", "warehouse.key", ["Event Id"], "a non-empty list"),
        ("silver_shop_events", "warehouse.retry_seconds", 0, "a positive float"),
        ("silver_shop_events", "source.table", "bronze/../escape", "without '..'"),
        ("silver_shop_events", "source.table", "/abs/bronze", "relative path"),
        ("silver_shop_events", "source.max_files_per_trigger", 0, "a positive int"),
        ("silver_shop_events", "source.topic", "shop.events", "one of the known keys"),
        ("silver_shop_events", "sink.partition_by", ["country"], "event_date, event_hour"),
        ("silver_shop_events", "dlq", KeyError, "required"),
        ("gold_product_hourly", "aggregation.window_minutes", 0, "a positive int"),
        ("gold_product_hourly", "aggregation.watermark_minutes", -1, "0 or more minutes"),
        ("gold_product_hourly", "aggregation.watermark_minutes", "ten", "a int"),
        ("gold_product_hourly", "aggregation.event_type", "Order Placed", "an event type"),
        ("gold_product_hourly", "aggregation.group_by", KeyError, "required"),
        ("gold_product_hourly", "aggregation", KeyError, "required"),
        ("gold_product_hourly", "late_table", "late_events", "schema.table in lower_snake_case"),
        ("gold_product_hourly", "late_table", 7, "a str"),
        ("gold_product_hourly", "source.table", "silver/..", "without '..'"),
        ("gold_product_hourly", "warehouse.key", "window_start", "a non-empty list"),
        ("gold_product_hourly", "schema", [{"name": "x", "type": "string"}], "one of the known keys"),
        ("gold_product_hourly", "search", {"alias": "x"}, "one of the known keys"),
        ("bronze_shop_events", "search", {"alias": "x"}, "one of the known keys"),
        ("bronze_shop_events", "warehouse", {"table": "w.t", "key": ["k"]}, "one of the known keys"),
        ("bronze_shop_events", "source.table", "bronze/x", "one of the known keys"),
    ],
)
def test_bad_silver_or_gold_value_names_key_value_and_allowed(
    app: str, key: str, value: Any, allowed: str
) -> None:
    with pytest.raises(CatalogError) as err:
        catalog.parse(_mutate(_shipped(app), key, value), "apps/x.yaml")
    message = str(err.value)
    assert message.startswith("apps/x.yaml: key '" + key + "'"), message
    assert allowed in message
    assert err.value.key == key
    if value is not KeyError:
        assert repr(value) in message
        assert err.value.value == value


def test_an_unknown_key_on_a_silver_source_lists_the_delta_source_keys() -> None:
    with pytest.raises(CatalogError) as err:
        catalog.parse(_mutate(_shipped("silver_shop_events"), "source.topic", "shop.events"), "x.yaml")
    assert err.value.allowed == "one of the known keys: max_files_per_trigger, table"


def test_a_bad_value_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "silver_shop_events.yaml"
    path.write_text(yaml.safe_dump(_mutate(_shipped("silver_shop_events"), "search.chunk_size", 0)))
    with pytest.raises(CatalogError) as err:
        catalog.load(path)
    assert err.value.source == str(path)
    assert str(err.value).startswith(f"{path}: key 'search.chunk_size' has value 0; allowed: a positive int")


def _catalog_dir(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / f"{name}.yaml").write_text((SHIPPED / f"{name}.yaml").read_text())
    return tmp_path


def test_get_bronze_returns_a_bronze_app(tmp_path: Path) -> None:
    directory = _catalog_dir(tmp_path, "bronze_shop_events", "silver_shop_events")
    spec = catalog.get_bronze("bronze_shop_events", directory)
    assert isinstance(spec, catalog.BronzeSpec)
    assert spec.source.topic == "shop.events"


@pytest.mark.parametrize(
    ("name", "kind"), [("silver_shop_events", "silver"), ("gold_product_hourly", "gold")]
)
def test_get_bronze_refuses_an_app_that_does_not_read_kafka(tmp_path: Path, name: str, kind: str) -> None:
    directory = _catalog_dir(tmp_path, "bronze_shop_events", "silver_shop_events", "gold_product_hourly")
    with pytest.raises(CatalogError) as err:
        catalog.get_bronze(name, directory)
    assert err.value.key == "kind"
    assert err.value.value == kind
    assert err.value.allowed == "a bronze app (reads Kafka): bronze_shop_events"
    assert name in err.value.source


def test_get_bronze_without_any_bronze_app_says_none(tmp_path: Path) -> None:
    directory = _catalog_dir(tmp_path, "silver_shop_events")
    with pytest.raises(CatalogError, match=r"a bronze app \(reads Kafka\): \(none\)"):
        catalog.get_bronze("silver_shop_events", directory)
