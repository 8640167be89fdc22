"""Run parameters shared by the DAGs, checked by Airflow's trigger form (JSON schema) before a run starts;
the operators check them again with highway's own rules (ParamError names key, value and what is allowed)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from highway.catalog.store import catalog_dir
from highway.ops.connections import RUNTIME_KINDS


def app_names() -> list[str]:
    """The catalog's apps by file name (no YAML parsed: DAG files must stay cheap to parse)."""
    return sorted(p.stem for p in catalog_dir().glob("*.yaml"))


def app_param(description: str) -> Param:
    names = app_names()
    return Param(names[0] if names else "", type="string", enum=names or [""], description=description)


def runtime_param() -> Param:
    return Param(
        "",
        type="string",
        enum=["", *RUNTIME_KINDS],
        description="Where the app runs: empty = the highway_runtime connection; local or kubernetes = "
        "highway_runtime_<kind> (or highway_runtime when it is of that kind).",
    )


def deploy_params() -> dict[str, Any]:
    return {
        "app": app_param("The catalog app to deploy."),
        "runtime": runtime_param(),
        "image": Param(
            "",
            type="string",
            maxLength=255,
            description="Kubernetes only: the Spark image (tag = version) to run; empty = the catalog's.",
        ),
        "overrides": Param(
            {},
            type="object",
            description='Catalog keys to change for this deploy, e.g. {"trigger": {"interval_seconds": 10}}; '
            "validated like the catalog itself.",
        ),
        "progress_timeout_seconds": Param(
            600,
            type="integer",
            minimum=30,
            maximum=7200,
            description="Roll back when the new spec reports no heartbeat within this many seconds.",
        ),
    }
