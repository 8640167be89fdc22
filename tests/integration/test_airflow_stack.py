"""Airflow 3's four components in the local stack, against real processes and its REST API.

The session's Airflow (fixture ``airflow`` in conftest) parses the repo's dags/ and tests/airflow_dags/;
``highway_probe`` there is one Python task that writes the file named in the run's conf. One test starts a
second stack of its own through the CLI, to see what ``up --only`` brings along and what ``down`` leaves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from highway.connection import read_credentials
from highway.settings import Ports
from highway.stack import Stack
from highway.stack.airflow import fetch_health
from highway.stack.airflow_api import AirflowApiError, AirflowClient, token
from highway.stack.process import is_alive, parse_stat, session_members
from highway.stack.state import AIRFLOW_SERVICES
from hwtest import free_port_base

pytestmark = pytest.mark.integration

HIGHWAY = str(Path(sys.executable).with_name("highway"))
PROBE = "highway_probe"
PASSED_ON = ("HIGHWAY_CATALOG", "HIGHWAY_AIRFLOW_DAGS", "HIGHWAY_CACHE")


def processes_of(home: Path) -> list[int]:
    """Live processes whose command line or working directory is inside ``home``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not is_alive(int(entry.name)):
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(home) + "/" in args or cwd.startswith(str(home) + "/"):
            found.append(int(entry.name))
    return found


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def cli(
    home: Path, base: int, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [HIGHWAY, "stack", "--home", str(home), "--port-base", str(base), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def run_probe(airflow: AirflowClient, target: Path) -> str:
    """Trigger highway_probe to write ``target``; the run id once it succeeded."""
    run_id = airflow.trigger(PROBE, {"path": str(target)})
    state = airflow.wait_run(PROBE, run_id, timeout=300)
    tasks = {ti["task_id"]: ti["state"] for ti in airflow.task_instances(PROBE, run_id)}
    assert state == "success", f"{run_id}: {state}, tasks {tasks}"
    assert tasks == {"write_file": "success"}
    return run_id


def test_every_component_is_healthy_and_shown_with_the_ui_login(airflow: AirflowClient, stack: Stack) -> None:
    rows = {row.name: row for row in stack.status()}
    for name in ("postgres", *AIRFLOW_SERVICES):
        assert rows[name].state == "healthy" and rows[name].pid, name
    health = fetch_health(airflow.base_url)
    assert health is not None
    for section in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[section]["status"] == "healthy", health
    status = ok(cli(stack.home, stack.port_base, "status"))
    assert f"Airflow UI: {airflow.base_url}" in status and "user admin" in status
    password = read_credentials(stack.home)["airflow_admin_password"]
    assert password not in status
    env = ok(cli(stack.home, stack.port_base, "env"))
    assert f"export HIGHWAY_AIRFLOW_URL={airflow.base_url}" in env
    assert "export HIGHWAY_AIRFLOW_USER=admin" in env
    assert f"export HIGHWAY_AIRFLOW_PASSWORD={password}" in env


def test_login_takes_the_generated_password_and_refuses_a_wrong_one(
    airflow: AirflowClient, stack: Stack
) -> None:
    password = read_credentials(stack.home)["airflow_admin_password"]
    assert token(airflow.base_url, "admin", password)
    with pytest.raises(AirflowApiError) as refused:
        token(airflow.base_url, "admin", password + "x")
    assert refused.value.status == 401
    assert "401" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(AirflowApiError) as unknown:
        airflow.call("GET", "dags/no_such_dag")
    assert unknown.value.status == 404 and "no_such_dag" in str(unknown.value)


def test_a_dag_runs_end_to_end_through_scheduler_executor_and_execution_api(
    airflow: AirflowClient, stack: Stack, tmp_path: Path
) -> None:
    dag = airflow.wait_dag(PROBE, timeout=180)
    assert dag["is_paused"] is True  # paused at creation: tests and operators unpause explicitly
    assert dag["bundle_name"] == "airflow_dags"
    assert not [err for err in airflow.import_errors() if PROBE in str(err.get("filename"))]
    airflow.unpause(PROBE)
    target = tmp_path / "probe.txt"
    run_id = run_probe(airflow, target)
    assert target.read_text() == f"written by highway_probe; HIGHWAY_HOME={stack.home}\n"
    log = airflow.task_log(PROBE, run_id, "write_file", 1)
    assert f"highway_probe wrote {target}" in log
    assert PROBE in {dag["dag_id"] for dag in airflow.dags()}


def test_the_scheduler_stops_with_its_workers_and_starts_again(
    airflow: AirflowClient, stack: Stack, tmp_path: Path
) -> None:
    before = {row.name: row.pid for row in stack.status()}
    pid = before["airflow-scheduler"]
    assert pid is not None
    sid = parse_stat(Path(f"/proc/{pid}/stat").read_text())[1]
    assert len(session_members(sid)) > 1  # the scheduler, its LocalExecutor workers, its log server

    # start it as it ran: the settings Airflow's processes read at start (a DAG test may set a catalog)
    started_with = environ_of(pid)
    env = {**os.environ, **{key: started_with[key] for key in PASSED_ON if key in started_with}}
    ok(cli(stack.home, stack.port_base, "stop", "airflow-scheduler"))
    assert not is_alive(pid) and not session_members(sid)
    assert {row.name: row.state for row in stack.status()}["airflow-scheduler"] == "stopped"

    ok(cli(stack.home, stack.port_base, "start", "airflow-scheduler", env=env))
    after = {row.name: row.pid for row in stack.status()}
    assert after["airflow-scheduler"] not in (None, pid)
    assert {name: after[name] for name in after if name != "airflow-scheduler"} == {
        name: before[name] for name in before if name != "airflow-scheduler"
    }
    airflow.wait_dag(PROBE, timeout=180)
    airflow.unpause(PROBE)
    run_probe(airflow, tmp_path / "after-restart.txt")
    assert (tmp_path / "after-restart.txt").exists()


@pytest.fixture
def own_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="highway-airflow-test-"))
    home.chmod(0o755)  # postgres runs as its own user
    yield home
    import shutil

    shutil.rmtree(home, ignore_errors=True)


def test_up_only_a_component_brings_what_it_needs_and_down_leaves_nothing(
    own_home: Path, stack: Stack
) -> None:
    base = free_port_base(stack.port_base + 500)
    try:
        out = ok(cli(own_home, base, "up", "--only", "airflow-triggerer"))
        assert "airflow db migrate" in out
        pids = {path.stem: int(path.read_text()) for path in (own_home / "run").glob("*.pid")}
        assert set(pids) == {"postgres", "airflow-api", "airflow-triggerer"}
        assert all(is_alive(pid) for pid in pids.values())
        creds = json.loads((own_home / "credentials.json").read_text())
        url = f"http://127.0.0.1:{Ports(base).of('airflow_api')}"
        assert token(url, "admin", creds["airflow_admin_password"])
        assert "already running" in ok(cli(own_home, base, "up", "--only", "airflow-api"))
    finally:
        ok(cli(own_home, base, "down"))
    assert not [pid for pid in pids.values() if is_alive(pid)]
    assert not processes_of(own_home)
    assert not list((own_home / "run").glob("*.pid"))
