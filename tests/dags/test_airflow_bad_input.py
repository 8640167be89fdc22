"""Bad input through the real Airflow: refused with a message naming the problem, and nothing half-applied.

Parameters Airflow can check itself (an app not in the catalog, a timeout below its minimum, an unknown
action) are refused when the run is triggered; the rest (a catalog value, an image, an unreachable
runtime) fail the run's first task, before anything is applied.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from highway.stack.airflow_api import AirflowApiError

if TYPE_CHECKING:
    from hwtest import DagApps

pytestmark = [pytest.mark.integration]


def _deployments(apps: DagApps) -> Any:
    from highway.ops.observe import DEPLOYMENTS, Records

    return Records(apps.stack.connection()).read(apps.local, DEPLOYMENTS)


def _refused(apps: DagApps, dag_id: str, conf: dict[str, Any]) -> str:
    with pytest.raises(AirflowApiError) as caught:
        apps.client.trigger(dag_id, conf)
    assert caught.value.status == 400, caught.value
    return str(caught.value)


def _failed_at_validate(apps: DagApps, conf: dict[str, Any]) -> str:
    run_id = apps.client.trigger("highway_deploy", conf)
    assert apps.client.wait_run("highway_deploy", run_id, timeout=300) == "failed"
    states = {t["task_id"]: t["state"] for t in apps.client.task_instances("highway_deploy", run_id)}
    assert states["validate"] == "failed", states
    assert states["render"] == states["apply"] == "upstream_failed", states
    assert states["rollback"] in ("skipped", "upstream_failed"), (
        states,
        apps.client.task_log("highway_deploy", run_id, "rollback")[-3000:],
    )
    log = apps.client.task_log("highway_deploy", run_id, "validate")
    assert "Traceback" not in log.split("ERROR")[-1][:200]
    return log


def test_params_airflow_checks_are_refused_at_trigger(dag_apps: DagApps) -> None:
    message = _refused(dag_apps, "highway_deploy", {"app": "no_such_app"})
    assert "no_such_app" in message and "app" in message
    message = _refused(
        dag_apps, "highway_deploy", {"app": dag_apps.local.name, "progress_timeout_seconds": 5}
    )
    assert "progress_timeout_seconds" in message or "minimum" in message
    message = _refused(dag_apps, "highway_app_control", {"app": dag_apps.local.name, "action": "explode"})
    assert "explode" in message
    message = _refused(dag_apps, "highway_deploy", {"app": dag_apps.local.name, "overrides": "not an object"})
    assert "overrides" in message or "object" in message


def test_a_bad_catalog_value_fails_validate_naming_key_and_value(dag_apps: DagApps) -> None:
    before = _deployments(dag_apps)
    conf = {"app": dag_apps.local.name, "overrides": {"resources": {"driver_cpu": "lots"}}}
    log = _failed_at_validate(dag_apps, conf)
    assert "resources.driver_cpu" in log and "'lots'" in log
    assert _deployments(dag_apps) == before  # nothing recorded, nothing applied


def test_an_override_may_not_rename_the_app(dag_apps: DagApps) -> None:
    conf = {"app": dag_apps.local.name, "overrides": {"status_prefix": "_status/elsewhere"}}
    log = _failed_at_validate(dag_apps, conf)
    assert "parameter 'overrides.status_prefix'" in log


def test_an_unreachable_runtime_fails_validate_in_one_line(dag_apps: DagApps, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{closed}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    extra = {"kind": "kubernetes", "namespace": "highway", "kubeconfig": str(kubeconfig)}
    body = {"connection_id": "highway_runtime_kubernetes", "conn_type": "generic", "extra": json.dumps(extra)}
    try:
        dag_apps.client.call("DELETE", "connections/highway_runtime_kubernetes")
    except AirflowApiError as exc:
        assert exc.status == 404, exc
    dag_apps.client.call("POST", "connections", body)
    before = _deployments(dag_apps)
    log = _failed_at_validate(dag_apps, {"app": dag_apps.local.name, "runtime": "kubernetes"})
    assert f"127.0.0.1:{closed}" in log, log[-2000:]
    assert _deployments(dag_apps) == before


def test_reconcile_dry_run_decides_without_acting(dag_apps: DagApps) -> None:
    run_id = dag_apps.client.trigger("highway_reconcile", {"dry_run": True})
    assert dag_apps.client.wait_run("highway_reconcile", run_id, timeout=300) == "success"
    found = dag_apps.xcom("highway_reconcile", run_id, "reconcile")
    assert found["dry_run"] is True
    assert set(found["apps"]) == {dag_apps.local.name, dag_apps.kube.name}
    log = dag_apps.client.task_log("highway_reconcile", run_id, "reconcile")
    assert "reconcile cycle: 2 apps in" in log and "(dry run)" in log
    _refused(dag_apps, "highway_reconcile", {"dry_run": "yes please"})
