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
        ("checkpoint", "/abs/path", "relative path"),
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
