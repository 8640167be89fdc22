"""
### highway_deploy — deploy one catalog app, roll back if it makes no progress

Trigger with **app** (a catalog app), optionally **runtime** (local / kubernetes), **image**
(Kubernetes: the version to run) and **overrides** (catalog keys for this deploy, e.g.
`{"trigger": {"interval_seconds": 10}}`).

1. **validate** — the spec with its overrides and image passes the catalog's rules, and the runtime
   answers; nothing has changed yet if this fails.
2. **render** — logs exactly what will be applied (the Kubernetes objects, or the local catalog entry).
3. **apply** — records the spec as *current* in the app's `deployments.json` and applies it.
4. **wait_for_progress** — deferred in the triggerer: the app's first heartbeat after the deploy.
5. **record_good** — the spec made progress: it becomes the spec to roll back to.
6. **rollback** (only when the wait failed) — back to the last spec that made progress (or stop the
   app if none ever did), and the run fails with the reason and the driver's last log line.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, TriggerRule
from highway_airflow.operators.apps import (
    ApplyOperator,
    RecordGoodOperator,
    RenderOperator,
    RollbackOperator,
    ValidateOperator,
)
from highway_airflow.params import deploy_params
from highway_airflow.sensors.progress import FirstProgressSensor

with DAG(
    dag_id="highway_deploy",
    description="Deploy a catalog app; roll back to the last good spec if it makes no progress.",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["highway", "deploy"],
    doc_md=__doc__,
    params=deploy_params(),
    default_args={"retries": 0},
) as dag:
    validate = ValidateOperator(task_id="validate")
    render = RenderOperator(task_id="render")
    apply = ApplyOperator(task_id="apply")
    wait = FirstProgressSensor(
        task_id="wait_for_progress",
        app="{{ params.app }}",
        deploy_task_id="apply",
        progress_timeout="{{ params.progress_timeout_seconds }}",
    )
    good = RecordGoodOperator(task_id="record_good")
    rollback = RollbackOperator(
        task_id="rollback",
        validate_task_id="validate",
        trigger_rule=TriggerRule.ONE_FAILED,
    )
    validate >> render >> apply >> wait >> good
    [apply, wait] >> rollback
