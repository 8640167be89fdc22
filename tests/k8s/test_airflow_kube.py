"""The same DAGs with the Kubernetes runtime: the session's real Airflow drives the real API server (as the
highway-airflow service account) through the connection ``highway_runtime_kubernetes``.

kwok simulates the driver pod (it is Running, nothing runs in it), so the test plays that simulated
driver's one visible act: once the pod is Running it writes the heartbeat the driver writes after a
batch. Everything else is real: Airflow's scheduler, triggerer and workers, the API server, S3.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from highway.core.k8s import common as k
from kubecluster import KubeCluster, wait_for

if TYPE_CHECKING:
    from hwtest import DagApps

pytestmark = [pytest.mark.integration]
NS = k.NAMESPACE
RUNTIME_CONN = "highway_runtime_kubernetes"


def _pod(admin: Any, app: str) -> Any:
    try:
        return client.CoreV1Api(admin).read_namespaced_pod(k.driver_pod(app), NS)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _statefulset(admin: Any, app: str) -> Any:
    try:
        return client.AppsV1Api(admin).read_namespaced_stateful_set(k.driver_name(app), NS)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _connect(apps: DagApps, kubeconfig: Path) -> None:
    body = {
        "connection_id": RUNTIME_CONN,
        "conn_type": "generic",
        "extra": json.dumps({"kind": "kubernetes", "namespace": NS, "kubeconfig": str(kubeconfig)}),
    }
    try:
        apps.client.call("DELETE", f"connections/{RUNTIME_CONN}")
    except Exception as exc:  # absent the first time
        if "404" not in str(exc) and getattr(exc, "status", 0) != 404:
            raise
    apps.client.call("POST", "connections", body)


def _running_pod(apps: DagApps, admin: Any, app: str, run_id: str, timeout: float = 180) -> Any:
    """The app's driver pod once Running; if the deploy run ends first or time runs out, fail with what the
    run's tasks said and what the cluster holds."""
    deadline = time.monotonic() + timeout
    while True:
        pod = _pod(admin, app)
        if pod is not None and pod.status.phase == "Running":
            return pod
        state = apps.client.run_state("highway_deploy", run_id)
        if state in ("success", "failed") or time.monotonic() > deadline:
            logs = {
                t: apps.client.task_log("highway_deploy", run_id, t)[-1500:] for t in ("validate", "apply")
            }
            found = "present" if _statefulset(admin, app) else "absent"
            tasks = apps.states("highway_deploy", run_id)
            raise AssertionError(
                f"no running driver pod for {app} (run {state}, tasks {tasks}, statefulset {found}, "
                f"pod {pod and pod.status.phase}); logs {logs}"
            )
        time.sleep(0.5)


def _driver_heartbeat(records: Any, spec: Any, pod: Any) -> str:
    """The simulated driver's one act, as the real one does it: a heartbeat stamped with the spec digest
    and pod uid the pod's environment gives it. Returns the digest."""
    from highway.ops.observe import HEARTBEAT

    env = {e.name: e.value for e in pod.spec.containers[0].env if e.value is not None}
    digest = env["HIGHWAY_SPEC_DIGEST"]
    hb = {"app": spec.name, "state": "running", "batch_id": 0, "written_at": time.time(),
          "spec_digest": digest, "pod_uid": pod.metadata.uid}  # fmt: skip
    records.write(spec, HEARTBEAT, hb)
    return str(digest)


def _run(apps: DagApps, dag_id: str, conf: dict[str, Any], timeout: float = 300) -> tuple[str, str]:
    run_id = apps.client.trigger(dag_id, conf)
    return run_id, apps.client.wait_run(dag_id, run_id, timeout=timeout)


def test_deploy_status_restart_through_airflow(
    dag_apps: DagApps, kube: KubeCluster, highway_base: str, admin: Any, tmp_path: Path
) -> None:
    from highway.ops.observe import Records

    apps, spec = dag_apps, dag_apps.kube
    token = kube.service_account_token(highway_base, k.SA_AIRFLOW)
    _connect(apps, kube.kubeconfig_for(tmp_path / "kubeconfig", token, NS))
    records = Records(apps.stack.connection())

    # deploy: the StatefulSet appears with the asked image; the simulated driver reports once Running
    image = "highway-spark:0.2.0"
    conf = {"app": spec.name, "runtime": "kubernetes", "image": image, "progress_timeout_seconds": 180}
    run_id = apps.client.trigger("highway_deploy", conf)
    pod = _running_pod(apps, admin, spec.name, run_id)
    assert pod.spec.containers[0].image == image
    assert pod.spec.service_account_name == k.SA_DRIVER
    first_digest = _driver_heartbeat(records, spec, pod)
    state = apps.client.wait_run("highway_deploy", run_id, timeout=300)
    states = apps.states("highway_deploy", run_id)
    assert state == "success", (states, apps.client.task_log("highway_deploy", run_id, "wait_for_progress"))
    assert states["rollback"] == "skipped"
    assert first_digest == apps.xcom("highway_deploy", run_id, "apply")["digest"]

    rendered = apps.xcom("highway_deploy", run_id, "render")
    assert f"StatefulSet/{k.driver_name(spec.name)}" in rendered
    assert _statefulset(admin, spec.name).spec.template.spec.containers[0].image == image

    # status and restart through highway_app_control
    run_id, state = _run(
        apps, "highway_app_control", {"app": spec.name, "action": "status", "runtime": "kubernetes"}
    )
    assert state == "success"
    assert apps.xcom("highway_app_control", run_id, "control")["state"] == "running"
    old_uid = pod.metadata.uid
    run_id, state = _run(
        apps, "highway_app_control", {"app": spec.name, "action": "restart", "runtime": "kubernetes"}
    )
    assert state == "success", apps.client.task_log("highway_app_control", run_id, "control")
    wait_for(
        "the replacement driver pod",
        lambda: _pod(admin, spec.name),
        lambda p: p is not None and p.metadata.uid != old_uid,
        timeout=120,
    )

    # a bad image is refused by validate: the StatefulSet keeps the good one
    run_id, state = _run(apps, "highway_deploy", {**conf, "image": "Bad Image!!"})
    assert state == "failed"
    states = apps.states("highway_deploy", run_id)
    assert states["validate"] == "failed" and states["apply"] == "upstream_failed"
    log = apps.client.task_log("highway_deploy", run_id, "validate")
    assert "parameter 'image' has value 'Bad Image!!'" in log
    assert _statefulset(admin, spec.name).spec.template.spec.containers[0].image == image

    # stop through highway_app_control: replicas 0, no pod
    run_id, state = _run(
        apps, "highway_app_control", {"app": spec.name, "action": "stop", "runtime": "kubernetes"}
    )
    assert state == "success", apps.client.task_log("highway_app_control", run_id, "control")
    assert _statefulset(admin, spec.name).spec.replicas == 0
    wait_for("the driver pod to go", lambda: _pod(admin, spec.name), lambda p: p is None, timeout=120)
