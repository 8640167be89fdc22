"""Catalog variants: isolated copies of shipped apps that still form one pipeline per prefix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from highway import catalog
from highway.catalog.variant import variant

SHIPPED = Path(__file__).resolve().parents[2] / "spark_apps" / "catalog"
APPS = ("bronze_shop_events", "silver_shop_events", "gold_product_hourly")
SUFFIX = "ab12"
PREFIX = "t_ab12"


def shipped(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SHIPPED / f"{name}.yaml").read_text())
    return data


def made(name: str, suffix: str = SUFFIX, prefix: str = PREFIX) -> catalog.AppSpec:
    return catalog.parse(variant(shipped(name), suffix, prefix), f"{name}_{suffix}.yaml")


def lake_paths(spec: catalog.AppSpec) -> set[str]:
    paths = {spec.checkpoint, spec.status_prefix, *(t.table for t in spec.delta_tables())}
    if isinstance(spec, catalog.BronzeSpec):
        return paths
    return paths | {spec.source.table}


def test_a_pipeline_made_with_one_prefix_stays_connected() -> None:
    bronze, silver, gold = (made(name) for name in APPS)
    assert isinstance(bronze, catalog.BronzeSpec)
    assert isinstance(silver, catalog.SilverSpec)
    assert isinstance(gold, catalog.GoldSpec)
    assert silver.source.table == bronze.sink.table == f"{PREFIX}/bronze/shop_events"
    assert gold.source.table == silver.sink.table == f"{PREFIX}/silver/shop_events"


@pytest.mark.parametrize("name", APPS)
def test_every_variant_parses_as_its_kind_with_the_suffixed_name(name: str) -> None:
    original = catalog.parse(shipped(name), f"{name}.yaml")
    spec = made(name)
    assert type(spec) is type(original)
    assert spec.kind == original.kind
    assert spec.name == f"{name}_{SUFFIX}"


@pytest.mark.parametrize(
    ("name", "key", "expected"),
    [
        ("bronze_shop_events", "name", "bronze_shop_events_ab12"),
        ("bronze_shop_events", "source.topic", "shop.events.ab12"),
        ("bronze_shop_events", "sink.table", "t_ab12/bronze/shop_events"),
        ("bronze_shop_events", "dlq.table", "t_ab12/dlq/shop_events"),
        ("bronze_shop_events", "checkpoint", "t_ab12/_checkpoints/bronze_shop_events"),
        ("bronze_shop_events", "status_prefix", "t_ab12/_status/bronze_shop_events"),
        ("silver_shop_events", "name", "silver_shop_events_ab12"),
        ("silver_shop_events", "source.table", "t_ab12/bronze/shop_events"),
        ("silver_shop_events", "sink.table", "t_ab12/silver/shop_events"),
        ("silver_shop_events", "dlq.table", "t_ab12/dlq/silver_shop_events"),
        ("silver_shop_events", "search.alias", "shop-events-ab12"),
        ("silver_shop_events", "warehouse.table", "warehouse.shop_events_ab12"),
        ("silver_shop_events", "warehouse.key", ("event_id",)),
        ("silver_shop_events", "checkpoint", "t_ab12/_checkpoints/silver_shop_events"),
        ("gold_product_hourly", "name", "gold_product_hourly_ab12"),
        ("gold_product_hourly", "source.table", "t_ab12/silver/shop_events"),
        ("gold_product_hourly", "warehouse.table", "warehouse.product_hourly_ab12"),
        ("gold_product_hourly", "warehouse.key", ("window_start", "product_id")),
        ("gold_product_hourly", "late_table", "warehouse.late_events_ab12"),
        ("gold_product_hourly", "aggregation.window_minutes", 60),
        ("gold_product_hourly", "status_prefix", "t_ab12/_status/gold_product_hourly"),
    ],
)
def test_variant_fields(name: str, key: str, expected: Any) -> None:
    value: Any = made(name)
    for part in key.split("."):
        value = getattr(value, part)
    assert value == expected


def test_unchanged_settings_are_kept() -> None:
    original = catalog.parse(shipped("silver_shop_events"), "x.yaml")
    spec = made("silver_shop_events")
    assert isinstance(original, catalog.SilverSpec)
    assert isinstance(spec, catalog.SilverSpec)
    assert spec.schema == original.schema
    assert spec.sink.partition_by == original.sink.partition_by
    assert spec.source.max_files_per_trigger == original.source.max_files_per_trigger
    assert (spec.search.chunk_size, spec.search.concurrency) == (1000, 2)
    assert spec.resources == original.resources
    assert spec.trigger == original.trigger


@pytest.mark.parametrize(
    ("suffix", "alias"),
    [("ab12", "shop-events-ab12"), ("run_7", "shop-events-run-7"), ("x", "shop-events-x")],
)
def test_the_alias_takes_the_suffix_in_lower_case_with_hyphens(suffix: str, alias: str) -> None:
    spec = made("silver_shop_events", suffix, f"t_{suffix}")
    assert isinstance(spec, catalog.SilverSpec)
    assert spec.search.alias == alias
    assert spec.name == f"silver_shop_events_{suffix}"
    assert spec.warehouse.table == f"warehouse.shop_events_{suffix}"


@pytest.mark.parametrize("name", APPS)
def test_the_input_is_not_mutated(name: str) -> None:
    data = shipped(name)
    before = copy.deepcopy(data)
    out = variant(data, SUFFIX, PREFIX)
    assert data == before
    out["source"]["extra"] = 1
    for section in ("sink", "dlq", "search", "warehouse", "aggregation"):
        if section in out:
            out[section]["extra"] = 1
    assert data == before


@pytest.mark.parametrize("name", APPS)
def test_variants_share_no_lake_path_with_the_original_or_each_other(name: str) -> None:
    original = lake_paths(catalog.parse(shipped(name), "x.yaml"))
    a = lake_paths(made(name, "aa", "t_aa"))
    b = lake_paths(made(name, "bb", "t_bb"))
    assert not original & a
    assert not original & b
    assert not a & b
    assert all(path.startswith("t_aa/") for path in a)


def test_variants_share_no_topic_alias_or_warehouse_table() -> None:
    topics, aliases, tables = {"shop.events"}, {"shop-events"}, set()
    tables |= {"warehouse.shop_events", "warehouse.product_hourly", "warehouse.late_events"}
    for suffix in ("aa", "bb"):
        bronze, silver, gold = (made(name, suffix, f"t_{suffix}") for name in APPS)
        assert isinstance(bronze, catalog.BronzeSpec)
        assert isinstance(silver, catalog.SilverSpec)
        assert isinstance(gold, catalog.GoldSpec)
        topics.add(bronze.source.topic)
        aliases.add(silver.search.alias)
        tables |= {silver.warehouse.table, gold.warehouse.table, gold.late_table}
    assert len(topics) == 3
    assert len(aliases) == 3
    assert len(tables) == 9


def test_a_variant_written_to_a_file_loads_under_its_new_name(tmp_path: Path) -> None:
    data = variant(shipped("gold_product_hourly"), SUFFIX, PREFIX)
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    spec = catalog.load(path)
    assert isinstance(spec, catalog.GoldSpec)
    assert spec.name == "gold_product_hourly_ab12"
