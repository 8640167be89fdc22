"""
### highway_checkpoint — inspect, back up, restore or recover one app's checkpoint

Trigger with **app** and **action**:
- `inspect`: the checkpoint next to what the sinks committed and what Kafka holds; each problem under its
  code (`orphan_temp_file`, `checkpoint_missing`, `lineage_mismatch`, ...) in the task log;
- `backup`: a copy under `_backups/checkpoints/<app>/<id>/`;
- `restore` (with **backup** = an id) or `recover` (with **mode** `repair`, `rollback`,
  `rebuild-from-sink` or `reset` - reset with a **target**: `available`, `earliest`, `latest` or a time such
  as `2026-12-04T10:00:00Z` - and a **reason**; **dry_run** prints the plan only): the app is stopped if it
  runs, the checkpoint is backed up and mended under the app's lease, an audit entry (with the offsets a
  reset skips or reads again, counted) is written, and the app is started again.

The same as `highway checkpoint …` on the command line.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param
from highway_airflow.operators.checkpoint import CHECKPOINT_ACTIONS, CheckpointOperator
from highway_airflow.params import app_param, runtime_param

from highway.core.recovery import MODES

with DAG(
    dag_id="highway_checkpoint",
    description="Inspect, back up, restore or recover one app's streaming checkpoint.",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["highway", "operations", "checkpoint"],
    doc_md=__doc__,
    params={
        "app": app_param("The catalog app."),
        "action": Param("inspect", type="string", enum=list(CHECKPOINT_ACTIONS), description="What to do."),
        "mode": Param("repair", type="string", enum=list(MODES), description="recover: how."),
        "target": Param(
            "",
            type="string",
            maxLength=64,
            description="recover with mode reset: available, earliest, latest or a time.",
        ),
        "backup": Param("", type="string", maxLength=64, description="restore: the backup id."),
        "reason": Param(
            "", type="string", maxLength=500, description="recover: why (goes to the audit entry)."
        ),
        "dry_run": Param(False, type="boolean", description="recover: print the plan, change nothing."),
        "runtime": runtime_param(),
    },
    default_args={"retries": 0},
) as dag:
    CheckpointOperator(task_id="checkpoint")
