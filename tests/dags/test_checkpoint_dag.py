"""highway_checkpoint through the real Airflow: inspect, then recover (repair) a checkpoint whose `metadata`
(its lineage) was deleted, the app stopped and its lease held meanwhile; a recover without a reason fails in
one line. And reconcile leaving such a checkpoint to an operator (recovery policy manual)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import hwtest

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
    conf = {"app": spec.name, "action": "recover", "mode": "repair", "reason": "x", "target": "latest"}
    run_id, state = _run(dag_apps, conf)
    log = dag_apps.client.task_log(DAG, run_id, "checkpoint")
    assert state == "failed" and "parameter 'target' has value 'latest'; allowed: nothing unless" in log


def test_the_scheduled_backup_copies_every_apps_checkpoint(dag_apps: DagApps) -> None:
    from highway.ops import checkpoints

    backups = "highway_checkpoint_backups"
    dag_apps.client.wait_dag(backups, timeout=180)
    dag_apps.client.unpause(backups)
    spec, conn = dag_apps.local, dag_apps.stack.connection()
    _committed_lineage(dag_apps)
    known = set(checkpoints.backups(conn, spec))
    run_id, state = _run_dag(dag_apps, backups, {})
    log = dag_apps.client.task_log(backups, run_id, "backup_all")
    assert state == "success", log[-3000:]
    made = dag_apps.xcom(backups, run_id, "backup_all")[spec.name]
    assert made["files"] > 0 and made["backup"] in set(checkpoints.backups(conn, spec)) - known
    assert f"{spec.name}: backup {made['backup']} ({made['files']} files)" in log


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

    if view() is None:  # a batch needs input: a few events first
        import tempfile

        record = Path(tempfile.mkdtemp(prefix="ckpt-dag-")) / "produced.jsonl"
        hwtest.produce(apps.catalog, spec, 50, record)  # type: ignore[arg-type]
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
        hwtest.measured(
            f"metadata deleted, manual policy: fault -> repair from Airflow -> progress: {took:.0f} s"
        )
    finally:
        runtime.stop(spec.name)


def _run_dag(apps: DagApps, dag_id: str, conf: dict[str, object]) -> tuple[str, str]:
    run_id = apps.client.trigger(dag_id, conf)
    return run_id, apps.client.wait_run(dag_id, run_id, timeout=300)


def test_under_rebuild_from_sink_two_faults_mend_themselves_when_airflow_starts_the_app(
    dag_apps: DagApps, spark: Any, tmp_path: Path
) -> None:
    """recovery: rebuild-from-sink, given as a highway_deploy override. Fault 1: the whole checkpoint is
    lost while the app is stopped and events keep arriving; highway_deploy starts it. Fault 2: its
    `metadata` is deleted; highway_app_control starts it. Each time the driver mends the checkpoint under
    its lease before Spark starts (rebuild-from-sink, then repair) and makes progress with no person
    involved; the next highway_reconcile run reports it in its log, health.json and `highway status`.
    Every record produced meanwhile ends in bronze or the DLQ exactly once."""
    from highway.adapters import s3
    from highway.ops.observe import CHECKPOINT, HEALTH, HEARTBEAT, Records

    spec, conn = dag_apps.local, dag_apps.stack.connection()
    records, client = Records(conn), s3.client(conn)
    _committed_lineage(dag_apps)
    produced: list[Path] = []

    def feed(count: int) -> None:
        produced.append(tmp_path / f"produced-{len(produced)}.jsonl")
        hwtest.produce(dag_apps.catalog, spec, count, produced[-1], "--bad-ratio", "0.02")

    def progressed(since: float) -> Any:
        hb = records.read(spec, HEARTBEAT) or {}
        fresh = hb.get("written_at", 0) > since and hb.get("batch_id") is not None
        return hb if fresh and hb.get("state") in ("running", "idle") else None

    def reported(mode: str) -> str:
        """The reconcile run that reported the driver's recovery (ours, or a scheduled one that came
        first: reconcile runs every minute): its acted line, in its log and in health.json."""
        note = records.read(spec, CHECKPOINT)
        assert note["mode"] == mode, note
        run_id, state = _run_dag(dag_apps, "highway_reconcile", {"dry_run": False})
        assert state == "success", dag_apps.client.task_log("highway_reconcile", run_id, "reconcile")[-3000:]
        health = records.read(spec, HEALTH)["checkpoint"]
        assert health["by"] == "driver" and health["mode"] == mode and health["at"] == note["at"], health
        assert f"recovered its checkpoint by {mode} at start (policy rebuild-from-sink" in health["line"]
        runs = dag_apps.client.call("GET", "dags/highway_reconcile/dagRuns?order_by=-start_date&limit=10")
        for run in runs["dag_runs"]:
            if run["state"] != "success":
                continue
            rid = run["dag_run_id"]
            acted = dag_apps.xcom("highway_reconcile", rid, "reconcile")["apps"][spec.name]["acted"]
            if health["line"] in acted:
                assert acted in dag_apps.client.task_log("highway_reconcile", rid, "reconcile")
                return str(acted)
        raise AssertionError(f"no recent reconcile run reported {health['line']!r}")

    try:
        # fault 1: the checkpoint lost (the app stopped), new events meanwhile
        s3.delete_keys(
            client, conn.lake_bucket, sorted(s3.list_sizes(client, conn.lake_bucket, f"{spec.checkpoint}/"))
        )
        faulted = time.time()
        feed(300)
        conf = {"app": spec.name, "progress_timeout_seconds": 300,
                "overrides": {"recovery": {"policy": "rebuild-from-sink"}}}  # fmt: skip
        run_id, state = _run_dag(dag_apps, "highway_deploy", conf)
        assert state == "success", dag_apps.client.task_log("highway_deploy", run_id, "wait_for_progress")
        hb = _wait("progress after the rebuild", lambda: progressed(faulted), 300)
        first = float(hb["written_at"]) - faulted
        reported("rebuild-from-sink")

        # fault 2: its metadata deleted while stopped; an operator only starts it
        run_id, state = _run_dag(dag_apps, "highway_app_control", {"app": spec.name, "action": "stop"})
        assert state == "success"
        s3.delete_keys(client, conn.lake_bucket, [f"{spec.checkpoint}/metadata"])
        faulted = time.time()
        feed(300)
        run_id, state = _run_dag(dag_apps, "highway_app_control", {"app": spec.name, "action": "start"})
        assert state == "success", dag_apps.client.task_log("highway_app_control", run_id, "control")[-3000:]
        hb = _wait("progress after the repair", lambda: progressed(faulted), 300)
        second = float(hb["written_at"]) - faulted
        # the whole stack, Airflow, this app's supervisor, driver and JVM, and the tests' own Spark run now
        assert hwtest.secrets_on_command_lines(dag_apps.stack.home) == []
        acted = reported("repair")
        status = _status_row(dag_apps, spec.name)
        assert status["checkpoint"] == records.read(spec, HEALTH)["checkpoint"]["line"] and acted
        hwtest.measured(
            "automatic recovery started from Airflow, fault -> progress: "
            f"lost checkpoint (rebuild-from-sink) {first:.0f} s, deleted metadata (repair) {second:.0f} s"
        )
        _wait("every record produced here in a table", lambda: _all_landed(spark, conn, spec, produced), 300)
    finally:
        _run_dag(dag_apps, "highway_app_control", {"app": spec.name, "action": "stop"})


def _all_landed(spark: Any, conn: Any, spec: Any, produced: list[Path]) -> bool:
    """Each valid record produced in bronze once, each bad one in the DLQ once, no duplicate anywhere."""
    mine = hwtest.read_records(*produced)
    bronze = [(r[0], r[1]) for r in spark.read.format("delta").load(f"{conn.lake_root}/{spec.sink.table}")
              .select("kafka_partition", "kafka_offset").collect()]  # fmt: skip
    dlq = [(r[0], r[1]) for r in spark.read.format("delta").load(f"{conn.lake_root}/{spec.dlq.table}")
           .select("kafka_partition", "kafka_offset").collect()]  # fmt: skip
    assert len(set(bronze)) == len(bronze) and len(set(dlq)) == len(dlq), "a duplicate"
    valid = {(r["partition"], r["offset"]) for r in mine if r["valid"]}
    invalid = {(r["partition"], r["offset"]) for r in mine if not r["valid"]}
    assert not valid & set(dlq) and not invalid & set(bronze), "a record in the wrong table"
    return valid <= set(bronze) and invalid <= set(dlq)


def _status_row(apps: DagApps, app: str) -> dict[str, Any]:
    """``highway status --json`` as an operator runs it (this stack, the DAG tests' catalog)."""
    env = {**os.environ, "HIGHWAY_HOME": str(apps.stack.home), "HIGHWAY_CATALOG": str(apps.catalog)}
    done = subprocess.run(
        [hwtest.HIGHWAY, "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows: dict[str, dict[str, Any]] = {row["app"]: row for row in map(json.loads, done.stdout.splitlines())}
    return rows[app]
