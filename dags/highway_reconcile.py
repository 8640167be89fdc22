"""
### highway_reconcile — keep every catalog app healthy, every minute

For each app in the catalog: **observe** (runtime state, restarts, heartbeat age, Kafka lag and its
trend), **decide** with highway's pure health rules (`highway.core.health`, per-app settings in the
catalog's `health:` section), **act**: restart a stuck app with exponential backoff and a restart
budget; when the budget is spent, stop restarting, mark the app *failed* and say why (here in the task
log and in `highway status`). Trigger with `dry_run: true` to see the decisions without acting.

**One owner per kind of failure.** A crashed driver is restarted at once by its supervisor — the
kubelet on Kubernetes, the local runtime's supervisor on a laptop — and reconcile leaves it to them.
Reconcile acts only on what a supervisor cannot see: a driver alive but stuck (no heartbeat, not even an
idle tick, for the app's stall window), one that never gets past starting, and a crash loop that
outlasts the supervisor's retries (marked failed). An operator's start/restart/deploy clears the mark.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param
from highway_airflow.operators.apps import ReconcileOperator
from highway_airflow.params import runtime_param

with DAG(
    dag_id="highway_reconcile",
    description="Observe, decide and act for every catalog app (health check + restarts with a budget).",
    schedule="* * * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=10),
    tags=["highway", "reconcile"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", description="Show the decisions; restart nothing."),
        "runtime": runtime_param(),
    },
    default_args={"retries": 0},
) as dag:
    ReconcileOperator(task_id="reconcile")
