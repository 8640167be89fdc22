"""Isolated copies of catalog entries (pure): the same app with its own topic, tables, index and state.

Warehouse tables get the suffix too (the app creates them with the migrated table's shape).

Tests and the bench run shipped apps side by side on one stack; a variant prefixes every lake path
with ``prefix/`` and suffixes the topic, the app name and the Elasticsearch alias, so nothing is
shared with the original or with another variant. A pipeline (bronze -> silver -> gold) made with
one prefix stays connected: the silver variant reads the bronze variant's table.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

LAKE_PATH_KEYS = ("checkpoint", "status_prefix")
TABLE_SECTIONS = ("sink", "dlq")


def variant(data: Mapping[str, Any], suffix: str, prefix: str) -> dict[str, Any]:
    """A copy of one catalog entry (parsed YAML) named ``<name>_<suffix>``, its paths under ``prefix``."""
    out = copy.deepcopy(dict(data))
    out["name"] = f"{out['name']}_{suffix}"
    source = out.get("source", {})
    if "topic" in source:
        source["topic"] = f"{source['topic']}.{suffix}"
    if "table" in source:
        source["table"] = f"{prefix}/{source['table']}"
    for key in TABLE_SECTIONS:
        if key in out:
            out[key]["table"] = f"{prefix}/{out[key]['table']}"
    for key in LAKE_PATH_KEYS:
        out[key] = f"{prefix}/{out[key]}"
    if "warehouse" in out:
        out["warehouse"]["table"] = f"{out['warehouse']['table']}_{suffix}"
    if "late_table" in out:
        out["late_table"] = f"{out['late_table']}_{suffix}"
    if "search" in out:
        out["search"]["alias"] = f"{out['search']['alias']}-{suffix}".lower().replace("_", "-")
    return out
