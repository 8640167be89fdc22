"""highway_checkpoint through the real Airflow: inspect, then recover (repair) a checkpoint with a file a kill
left behind, the app stopped and its lease held meanwhile; a recover without a reason fails in one line."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

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
