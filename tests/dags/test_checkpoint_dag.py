"""highway_checkpoint through the real Airflow: inspect, then recover (repair) a checkpoint with a file a kill
left behind, the app stopped and its lease held meanwhile; a recover without a reason fails in one line."""

from __future__ import annotations

import time
import uuid
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


def test_inspect_and_repair_an_orphan_temp_file_from_airflow(dag_apps: DagApps) -> None:
    from highway.adapters import s3

    dag_apps.client.wait_dag(DAG, timeout=180)
    dag_apps.client.unpause(DAG)
    spec, conn = dag_apps.local, dag_apps.stack.connection()
    client = s3.client(conn)
    orphan = f"{spec.checkpoint}/offsets/.{uuid.uuid4()}.tmp"
    s3.put_text(client, conn.lake_bucket, orphan, "v1\n")

    run_id, state = _run(dag_apps, {"app": spec.name, "action": "inspect"})
    log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
    assert state == "success", log[-3000:]
    report = dag_apps.xcom(DAG, run_id, "checkpoint")
    assert "orphan_temp_file" in {f["code"] for f in report["findings"]} and not report["ok"]
    assert "orphan_temp_file" in log and "a finding blocks its start" in log

    conf = {"app": spec.name, "action": "recover", "mode": "repair", "reason": "a kill left a temp file"}
    run_id, state = _run(dag_apps, conf)
    log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
    assert state == "success", log[-3000:]
    done = dag_apps.xcom(DAG, run_id, "checkpoint")
    assert done["mode"] == "repair" and done["backup"]
    assert "orphan_temp_file" not in {f["code"] for f in done["findings"]}
    assert s3.get_text(client, conn.lake_bucket, orphan) is None
    assert f"delete offsets/{orphan.rsplit('/', 1)[-1]}" in log

    run_id, state = _run(dag_apps, {"app": spec.name, "action": "recover", "mode": "repair", "reason": " "})
    assert state == "failed"
    log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
    assert "parameter 'reason' has value ' '; allowed: a non-empty text" in log


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
    """The supervised app refuses its checkpoint (a kill's temp file; recovery policy manual): reconcile
    does not restart it blindly but says it needs an operator and which command; the operator's
    highway_checkpoint run stops it, repairs, starts it, and it makes progress again."""
    from highway.adapters import s3
    from highway.catalog import load_with_text
    from highway.ops.observe import HEALTH, HEARTBEAT, Records
    from highway.runtime.local import LocalRuntime

    spec, text = load_with_text(dag_apps.catalog / f"{dag_apps.local.name}.yaml")
    conn = dag_apps.stack.connection()
    records, runtime = Records(conn), LocalRuntime(dag_apps.stack.home)
    runtime.stop(spec.name)
    orphan = f"{spec.checkpoint}/offsets/.{uuid.uuid4()}.tmp"
    s3.put_text(s3.client(conn), conn.lake_bucket, orphan, "v1\n")
    faulted = time.time()
    runtime.deploy(spec, text)
    try:

        def refused() -> Any:
            hb = records.read(spec, HEARTBEAT) or {}
            return (
                hb.get("error") if hb.get("state") == "failed" and hb.get("written_at", 0) > faulted else None
            )

        refusal = _wait("the driver's refusal", refused, 120)
        assert "checkpoint refused: orphan_temp_file" in refusal
        run_id, state = _run_dag(dag_apps, "highway_reconcile", {"dry_run": False})
        assert state == "success", dag_apps.client.task_log("highway_reconcile", run_id, "reconcile")[-3000:]
        acted = dag_apps.xcom("highway_reconcile", run_id, "reconcile")["apps"][spec.name]["acted"]
        assert acted.startswith("needs an operator: checkpoint orphan_temp_file (recovery policy manual"), (
            acted
        )
        assert f"highway checkpoint recover {spec.name} --mode repair" in acted
        assert records.read(spec, HEALTH)["checkpoint"]["line"] == acted

        conf = {"app": spec.name, "action": "recover", "mode": "repair", "reason": "reconcile asked"}
        run_id, state = _run(dag_apps, conf)
        log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
        assert state == "success", log[-3000:]
        assert dag_apps.xcom(DAG, run_id, "checkpoint")["after"].startswith(f"{spec.name}: ")
        assert s3.get_text(s3.client(conn), conn.lake_bucket, orphan) is None
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
