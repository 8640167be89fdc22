"""
### highway_app_control — stop, start or restart one app

Trigger with **app** and **action**: `stop` (graceful: the batch in flight finishes, then the driver
goes), `start`, `restart` (the old driver is gone before the new one starts: one driver per
checkpoint), or `status`. A start or restart also clears a *failed* mark set by `highway_reconcile`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param
from highway_airflow.operators.apps import ACTIONS, AppControlOperator
from highway_airflow.params import app_param, runtime_param

with DAG(
    dag_id="highway_app_control",
    description="Stop, start, restart or show one catalog app.",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["highway", "operations"],
    doc_md=__doc__,
    params={
        "app": app_param("The catalog app."),
        "action": Param("status", type="string", enum=list(ACTIONS), description="What to do."),
        "runtime": runtime_param(),
    },
    default_args={"retries": 0},
) as dag:
    AppControlOperator(task_id="control")
