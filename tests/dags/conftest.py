"""The DAG tests' apps: a catalog of their own, given to the session's Airflow when it starts.

Airflow's processes read ``HIGHWAY_CATALOG`` when they start, and the DAGs list the catalog's apps as the
allowed values of their ``app`` parameter, so the apps must exist before Airflow does. The catalog is
set only for Airflow's start (not for this test process, whose other tests use the shipped catalog).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from highway.catalog import AppSpec, load
from highway.catalog.variant import variant
from highway.settings import repo_root

if TYPE_CHECKING:
    from highway.stack import Stack
    from highway.stack.airflow_api import AirflowClient

STAMP = str(int(time.time()))[-6:]
# fast health settings so a frozen driver is found in seconds, not the shipped 5 minutes
FAST_HEALTH = {
    "stall_triggers": 3,
    "stall_floor_seconds": 20,
    "startup_grace_seconds": 120,
    "restart_budget": 3,
    "window_minutes": 30,
    "backoff_base_seconds": 5,
}


@dataclass(frozen=True)
class DagApps:
    catalog: Path
    local: AppSpec  # a bronze variant the local-runtime tests deploy, kill, freeze and roll back
    kube: AppSpec  # a bronze variant the Kubernetes-runtime test deploys
    client: AirflowClient
    stack: Stack

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.client.call("GET", path)["value"]

    def states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {t["task_id"]: t["state"] for t in self.client.task_instances(dag_id, run_id)}


def _write(catalog: Path, suffix: str, **changes: Any) -> AppSpec:
    shipped = yaml.safe_load((repo_root() / "spark_apps" / "catalog" / "bronze_shop_events.yaml").read_text())
    data = variant(shipped, suffix, f"t_{suffix}")
    data.update(changes)
    path = catalog / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load(path)


@pytest.fixture(scope="session")
def dag_apps(stack: Stack, request: pytest.FixtureRequest) -> Iterator[DagApps]:
    catalog = Path(tempfile.mkdtemp(prefix="highway-dag-catalog-"))
    catalog.chmod(0o755)
    local = _write(
        catalog,
        f"af{STAMP}",
        trigger={"interval_seconds": 2},
        health=FAST_HEALTH,
        resources={"driver_memory": "1g", "shuffle_partitions": 2},
    )
    kube = _write(catalog, f"kube{STAMP}", resources={"driver_memory": "1g", "driver_cpu": "500m"})
    before = os.environ.get("HIGHWAY_CATALOG")
    os.environ["HIGHWAY_CATALOG"] = str(catalog)
    try:
        client: AirflowClient = request.getfixturevalue("airflow")
    finally:
        if before is None:
            os.environ.pop("HIGHWAY_CATALOG", None)
        else:
            os.environ["HIGHWAY_CATALOG"] = before
    deploy = client.wait_dag("highway_deploy", timeout=180)
    for dag_id in ("highway_deploy", "highway_reconcile", "highway_app_control"):
        client.wait_dag(dag_id, timeout=180)
        client.unpause(dag_id)
    details = client.call("GET", "dags/highway_deploy/details")
    allowed = details["params"]["app"]["schema"].get("enum", [])
    assert local.name in allowed, (
        f"the session's Airflow was started before the DAG tests' catalog was set (apps {allowed}); "
        "run the DAG tests first or in their own session"
    )
    del deploy
    yield DagApps(catalog, local, kube, client, stack)
