"""The DAGs as an operator uses them: a real Airflow (api-server, scheduler, dag-processor, triggerer) on the
real stack, runs triggered through its REST API, apps run by the local runtime's supervisor.

One app goes through a whole life, and the exactly-once audit holds at the end of every step:
deploy (highway_deploy waits, deferred, for the first heartbeat) -> SIGKILL of the driver (its supervisor
restarts it; reconcile sees it healthy) -> SIGSTOP of the driver's process group (alive, no progress:
reconcile restarts it) -> a deploy of a spec that cannot start (rolled back to the last good spec, the
run fails with the reason) -> stop through highway_app_control. The time from each fault to the first
heartbeat of the recovered driver (MTTR) and the reconcile cycle time are printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hwtest import HIGHWAY, audit, produce, read_records, wait_for_rows

if TYPE_CHECKING:
    from hwtest import DagApps

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.fault, pytest.mark.timeout(2400)]


def _runtime(apps: DagApps) -> Any:
    from highway.runtime.local import LocalRuntime

    return LocalRuntime(apps.stack.home)


def _heartbeat(apps: DagApps) -> dict[str, Any]:
    from highway.ops.observe import HEARTBEAT, Records

    return Records(apps.stack.connection()).read(apps.local, HEARTBEAT) or {}


def _doc(apps: DagApps, name: str) -> dict[str, Any]:
    from highway.ops.observe import Records

    return Records(apps.stack.connection()).read(apps.local, name) or {}


def _progress_after(apps: DagApps, since: float, timeout: float) -> dict[str, Any]:
    """The first heartbeat written after ``since`` by a driver whose query loop turns (a batch or an idle
    tick): what the deploy DAG waits for, and what "progress resumed" means for MTTR."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hb = _heartbeat(apps)
        if hb.get("state") in ("running", "idle") and float(hb.get("written_at") or 0) > since:
            return hb
        time.sleep(0.5)
    raise AssertionError(f"no progress within {timeout:.0f} s after {since:.0f}; last {_heartbeat(apps)}")


def _status(apps: DagApps) -> dict[str, dict[str, Any]]:
    """``highway status --json`` as an operator runs it (this stack, the DAG tests' catalog)."""
    env = {**os.environ, "HIGHWAY_HOME": str(apps.stack.home), "HIGHWAY_CATALOG": str(apps.catalog)}
    done = subprocess.run(
        [HIGHWAY, "status", "--json"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return {row["app"]: row for row in map(json.loads, done.stdout.splitlines())}


def _run(apps: DagApps, dag_id: str, conf: dict[str, Any], timeout: float = 600) -> tuple[str, str]:
    run_id = apps.client.trigger(dag_id, conf)
    return run_id, apps.client.wait_run(dag_id, run_id, timeout=timeout)


def _reconcile(apps: DagApps) -> dict[str, Any]:
    run_id, state = _run(apps, "highway_reconcile", {}, timeout=300)
    assert state == "success", apps.client.task_log("highway_reconcile", run_id, "reconcile")
    found: dict[str, Any] = apps.xcom("highway_reconcile", run_id, "reconcile")
    print(f"reconcile cycle: {len(found['apps'])} apps in {found['cycle_seconds']:.2f} s")
    return found


def test_deploy_kill_freeze_rollback_with_exactly_once(dag_apps: DagApps, spark: Any, tmp_path: Path) -> None:
    apps, spec = dag_apps, dag_apps.local
    conn = apps.stack.connection()
    runtime = _runtime(apps)
    records: list[Path] = []
    bad_args = ("--bad-ratio", "0.01", "--dup-ratio", "0", "--late-ratio", "0")

    def feed(count: int) -> None:
        record = tmp_path / f"produced-{len(records)}.jsonl"
        produce(apps.catalog, spec, count, record, *bad_args)
        records.append(record)

    def check_exactly_once() -> int:
        produced = read_records(*records)
        valid = sum(1 for r in produced if r["valid"])
        assert wait_for_rows(spark, f"{conn.lake_root}/{spec.sink.table}", valid, timeout=300) >= valid
        audit(spark, conn, spec, produced).assert_exactly_once()
        return valid

    # 1. deploy through highway_deploy: validate -> render -> apply -> deferred wait -> record_good
    feed(2000)
    run_id, state = _run(apps, "highway_deploy", {"app": spec.name, "progress_timeout_seconds": 300})
    states = apps.states("highway_deploy", run_id)
    assert state == "success", (states, apps.client.task_log("highway_deploy", run_id, "wait_for_progress"))
    assert states == {
        "validate": "success",
        "render": "success",
        "apply": "success",
        "wait_for_progress": "success",
        "record_good": "success",
        "rollback": "skipped",
    }
    good = _doc(apps, "deployments.json")["good"]
    assert good["digest"] == apps.xcom("highway_deploy", run_id, "validate")["digest"]
    assert runtime.status(spec.name).state == "running"
    check_exactly_once()

    # 2. SIGKILL the driver: the supervisor (not Airflow) restarts it; reconcile then finds it healthy
    killed_pid = runtime.driver_pid(spec.name)
    assert killed_pid
    restarts_before = runtime.status(spec.name).restarts
    killed_at = time.time()
    os.killpg(killed_pid, signal.SIGKILL)
    feed(1000)
    hb = _progress_after(apps, killed_at, timeout=300)
    mttr_kill = float(hb["written_at"]) - killed_at
    status = runtime.status(spec.name)
    assert status.state == "running"
    assert runtime.driver_pid(spec.name) not in (None, killed_pid)
    assert status.restarts == restarts_before + 1
    seen = _reconcile(apps)["apps"][spec.name]
    assert (seen["state"], seen["action"]) == ("running", "none"), seen
    assert "healthy" in seen["reason"]
    check_exactly_once()
    rows = _status(apps)
    for _ in range(30):  # the heartbeat after the last batch may trail its commit by a moment
        if rows[spec.name]["lag"] == 0:
            break
        time.sleep(1)
        rows = _status(apps)
    assert rows[spec.name]["state"] == "running" and rows[spec.name]["decision"] == "none", rows
    assert rows[spec.name]["restarts"] == restarts_before + 1
    assert rows[spec.name]["lag"] == 0 and rows[spec.name]["batch_id"] is not None
    assert rows[apps.kube.name]["state"] == "absent"  # never deployed on this runtime

    # 3. SIGSTOP the driver and its JVM: alive, no heartbeat; reconcile (not the supervisor) restarts it
    frozen_pid = runtime.driver_pid(spec.name)
    assert frozen_pid
    frozen_at = time.time()
    os.killpg(frozen_pid, signal.SIGSTOP)
    try:
        feed(1000)
        assert runtime.status(spec.name).state == "running"  # the supervisor sees a live process
        seen = {}
        deadline = time.monotonic() + 240
        # reconcile runs until it finds the app stuck (past its 20 s stall window) and restarts it; a
        # scheduled run may act first; either way reconcile acts
        while time.monotonic() < deadline:
            seen = _reconcile(apps)["apps"][spec.name]
            if runtime.driver_pid(spec.name) not in (None, frozen_pid):
                break
        health = _doc(apps, "health.json")
        assert any(t > frozen_at for t in health["history"]["restarts"]), health
        assert "stuck" in health["reason"] or "stuck" in seen.get("reason", ""), (health, seen)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(frozen_pid, signal.SIGCONT)
    restarted = runtime.status(spec.name).started_at
    assert restarted is not None and restarted > frozen_at
    hb = _progress_after(
        apps, restarted, timeout=300
    )  # the new driver's (the thawed one may write once more)
    mttr_freeze = float(hb["written_at"]) - frozen_at
    feed(500)
    check_exactly_once()

    # 4. a spec that cannot start (a 1 MiB driver heap): no heartbeat in time -> rolled back, run failed
    before_digest = _doc(apps, "deployments.json")["current"]["digest"]
    bad = {"resources": {"driver_memory": "1m"}}
    run_id, state = _run(
        apps, "highway_deploy", {"app": spec.name, "overrides": bad, "progress_timeout_seconds": 30}
    )
    rolled_at = time.time()
    states = apps.states("highway_deploy", run_id)
    assert state == "failed"
    assert states["wait_for_progress"] == "failed"
    assert states["rollback"] == "failed"  # it rolled back and failed the run with the reason
    assert states["record_good"] == "upstream_failed"
    log = apps.client.task_log("highway_deploy", run_id, "rollback")
    assert f"rolled back to spec {before_digest}" in log, log[-3000:]
    assert "made no progress within 30 s" in log
    deployments = _doc(apps, "deployments.json")
    assert deployments["current"]["digest"] == before_digest == deployments["good"]["digest"]
    assert "driver_memory: 1m" not in (runtime.spec_text(spec.name) or "")
    feed(1000)
    _progress_after(apps, rolled_at, timeout=300)
    valid = check_exactly_once()

    # 5. stop through highway_app_control
    run_id, state = _run(apps, "highway_app_control", {"app": spec.name, "action": "stop"})
    assert state == "success", apps.client.task_log("highway_app_control", run_id, "control")
    assert runtime.status(spec.name).state == "stopped"
    assert runtime.driver_pid(spec.name) is None
    print(
        f"MTTR: SIGKILL -> next batch {mttr_kill:.1f} s (supervisor); SIGSTOP -> next batch "
        f"{mttr_freeze:.1f} s (reconcile, stall window 20 s); {valid} valid events audited exactly once"
    )
