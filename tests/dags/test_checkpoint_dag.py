"""highway_checkpoint through the real Airflow: inspect, then recover (repair) a checkpoint whose `metadata`
(its lineage) was deleted, the app stopped and its lease held meanwhile; a recover without a reason fails in
one line. And reconcile leaving such a checkpoint to an operator (recovery policy manual)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hwtest import DagApps

pytestmark = [pytest.mark.integration]
DAG = "highway_checkpoint"


def _run(apps: DagApps, conf: dict[str, object]) -> tuple[str, str]:
    run_id = apps.client.trigger(DAG, conf)
    return run_id, apps.client.wait_run(DAG, run_id, timeout=300)


def test_inspect_and_repair_a_deleted_metadata_from_airflow(dag_apps: DagApps) -> None:
    from highway.adapters import s3

    dag_apps.client.wait_dag(DAG, timeout=180)
    dag_apps.client.unpause(DAG)
    spec, conn = dag_apps.local, dag_apps.stack.connection()
    client = s3.client(conn)
    lineage = _committed_lineage(dag_apps)
    s3.delete_keys(client, conn.lake_bucket, [f"{spec.checkpoint}/metadata"])

    run_id, state = _run(dag_apps, {"app": spec.name, "action": "inspect"})
    log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
    assert state == "success", log[-3000:]
    report = dag_apps.xcom(DAG, run_id, "checkpoint")
    assert "missing_metadata" in {f["code"] for f in report["findings"]} and not report["ok"]
    assert "missing_metadata" in log and "a finding blocks its start" in log

    conf = {"app": spec.name, "action": "recover", "mode": "repair", "reason": "metadata was deleted"}
    run_id, state = _run(dag_apps, conf)
    log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
    assert state == "success", log[-3000:]
    done = dag_apps.xcom(DAG, run_id, "checkpoint")
    assert done["mode"] == "repair" and done["backup"]
    assert "missing_metadata" not in {f["code"] for f in done["findings"]}
    assert s3.get_text(client, conn.lake_bucket, f"{spec.checkpoint}/metadata") == f'{{"id":"{lineage}"}}'
    assert f"write metadata: restore the lineage {lineage}" in log

    run_id, state = _run(dag_apps, {"app": spec.name, "action": "recover", "mode": "repair", "reason": " "})
    assert state == "failed"
    log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
    assert "parameter 'reason' has value ' '; allowed: a non-empty text" in log


def _committed_lineage(apps: DagApps) -> str:
    """The local app's checkpoint lineage once it holds a committed batch (it ran in the other DAG tests;
    run alone, this deploys it until it commits one), the app stopped."""
    from highway.adapters import s3
    from highway.adapters.checkpoint import read_view
    from highway.catalog import load_with_text
    from highway.runtime.local import LocalRuntime

    spec, text = load_with_text(apps.catalog / f"{apps.local.name}.yaml")
    conn, runtime = apps.stack.connection(), LocalRuntime(apps.stack.home)

    def view() -> Any:
        found = read_view(s3.client(conn), conn.lake_bucket, spec.checkpoint)
        return found if found.commit_ids and found.query_id else None

    if view() is None:
        runtime.deploy(spec, text)
        _wait("a committed batch", view, 300)
    runtime.stop(spec.name)
    return str(view().query_id)


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)  # the poll interval of a wait with a deadline, not a pause
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def test_reconcile_leaves_a_refused_checkpoint_to_an_operator_who_recovers_it_from_airflow(
    dag_apps: DagApps,
) -> None:
    """The supervised app refuses its checkpoint (its `metadata` deleted; recovery policy manual):
    reconcile does not restart it blindly but says it needs an operator and which command; the operator's
    highway_checkpoint run stops it, repairs, starts it, and it makes progress again."""
    from highway.adapters import s3
    from highway.catalog import load_with_text
    from highway.ops.observe import HEALTH, HEARTBEAT, Records
    from highway.runtime.local import LocalRuntime

    spec, text = load_with_text(dag_apps.catalog / f"{dag_apps.local.name}.yaml")
    conn = dag_apps.stack.connection()
    records, runtime = Records(conn), LocalRuntime(dag_apps.stack.home)
    _committed_lineage(dag_apps)
    metadata = f"{spec.checkpoint}/metadata"
    s3.delete_keys(s3.client(conn), conn.lake_bucket, [metadata])
    faulted = time.time()
    runtime.deploy(spec, text)
    try:

        def refused() -> Any:
            hb = records.read(spec, HEARTBEAT) or {}
            return (
                hb.get("error") if hb.get("state") == "failed" and hb.get("written_at", 0) > faulted else None
            )

        refusal = _wait("the driver's refusal", refused, 120)
        assert "checkpoint refused: missing_metadata" in refusal
        run_id, state = _run_dag(dag_apps, "highway_reconcile", {"dry_run": False})
        assert state == "success", dag_apps.client.task_log("highway_reconcile", run_id, "reconcile")[-3000:]
        acted = dag_apps.xcom("highway_reconcile", run_id, "reconcile")["apps"][spec.name]["acted"]
        assert acted.startswith("needs an operator: checkpoint missing_metadata (recovery policy manual"), (
            acted
        )
        assert f"highway checkpoint recover {spec.name} --mode repair" in acted
        assert records.read(spec, HEALTH)["checkpoint"]["line"] == acted

        conf = {"app": spec.name, "action": "recover", "mode": "repair", "reason": "reconcile asked"}
        run_id, state = _run(dag_apps, conf)
        log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
        assert state == "success", log[-3000:]
        assert dag_apps.xcom(DAG, run_id, "checkpoint")["after"].startswith(f"{spec.name}: ")
        assert s3.get_text(s3.client(conn), conn.lake_bucket, metadata)
        _wait(
            "progress after the repair",
            lambda: (records.read(spec, HEARTBEAT) or {}).get("state") in ("running", "idle"),
            300,
        )
        took = time.time() - faulted
        print(f"\nfault -> refused -> reconcile -> repaired from Airflow -> progress: {took:.0f} s")
    finally:
        runtime.stop(spec.name)


def _run_dag(apps: DagApps, dag_id: str, conf: dict[str, object]) -> tuple[str, str]:
    run_id = apps.client.trigger(dag_id, conf)
    return run_id, apps.client.wait_run(dag_id, run_id, timeout=300)
