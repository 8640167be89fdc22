"""
### highway_checkpoint_backups — a backup of every app's checkpoint, every hour

For each catalog app with a checkpoint: a copy under `_backups/checkpoints/<app>/<id>/`, the app's
`recovery.keep_backups` newest kept (a recovery also backs up first). Apps keep running: Spark writes each
checkpoint file once and a commit after its offsets, so the copy is a consistent checkpoint. Restore one
with `highway_checkpoint` (action `restore`) or `highway checkpoint restore APP --backup ID`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG
from highway_airflow.operators.checkpoint import CheckpointBackupsOperator

with DAG(
    dag_id="highway_checkpoint_backups",
    description="Back up every catalog app's streaming checkpoint.",
    schedule="@hourly",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["highway", "operations", "checkpoint"],
    doc_md=__doc__,
    default_args={"retries": 0},
) as dag:
    CheckpointBackupsOperator(task_id="backup_all")
