"""Parse guard: every DAG file imports cleanly, cheaply and without touching the network or a database.

Each file is imported in a fresh interpreter (as Airflow's dag-processor does) after Airflow's Task SDK
itself, with ``socket.connect`` and ``getaddrinfo`` made to fail loudly: a DAG file that opened a
connection (a DB session, a Kafka or S3 call) would fail to import. Then ``sys.modules`` must hold
none of the heavy clients, and Airflow's own DagBag must load the files with no import errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = sorted((REPO / "dags").glob("*.py"))
HEAVY = (
    "pyspark",
    "py4j",
    "delta",
    "boto3",
    "botocore",
    "confluent_kafka",
    "psycopg",
    "elasticsearch",
    "kubernetes",
    "pandas",
    "pyarrow",
    "matplotlib",
    "highway.spark",
    "highway.adapters",
    "highway.runtime.local",
    "highway.runtime.kubernetes",
    "highway.stack",
)
EXPECTED = {
    "highway_deploy", "highway_reconcile", "highway_app_control", "highway_checkpoint",
    "highway_checkpoint_backups",
}  # fmt: skip

GUARD = r"""
import json, runpy, socket, sys, time
from airflow.sdk import DAG  # Airflow's own import cost is not the DAG file's
before = set(sys.modules)
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:120])
    raise OSError("network access while parsing a DAG file")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
start = time.perf_counter()
namespace = runpy.run_path(sys.argv[1])
seconds = time.perf_counter() - start
dags = {v.dag_id: v for v in namespace.values() if isinstance(v, DAG)}
wanted = json.loads(sys.argv[2])
heavy = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in wanted))
print(json.dumps({
    "dags": {
        d.dag_id: {
            "schedule": str(d.schedule) if d.schedule is not None else None,
            "catchup": d.catchup,
            "tags": sorted(d.tags),
            "doc_md": bool(d.doc_md and len(d.doc_md) > 200),
            "params": sorted(d.params.keys()),
            "tasks": sorted(d.task_ids),
        } for d in dags.values()
    },
    "heavy": heavy,
    "attempts": attempts,
    "new_modules": len(set(sys.modules) - before),
    "seconds": seconds,
}))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO / "plugins"),
    }


def parse(path: Path, tmp_path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", GUARD, str(path), json.dumps(HEAVY)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{path.name} failed to import:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_dags_exist() -> None:
    assert {p.stem for p in DAGS} >= EXPECTED


@pytest.mark.parametrize("path", DAGS, ids=[p.stem for p in DAGS])
def test_dag_file_parses_cheaply_and_offline(path: Path, tmp_path: Path) -> None:
    found = parse(path, tmp_path)
    assert found["attempts"] == [], f"{path.name} opened connections while parsing: {found['attempts']}"
    assert found["heavy"] == [], f"{path.name} imports heavy modules at parse time: {found['heavy']}"
    assert list(found["dags"]) == [path.stem], "one DAG per file, named after the file"
    dag = found["dags"][path.stem]
    assert dag["catchup"] is False
    assert "highway" in dag["tags"]
    assert dag["doc_md"], "doc_md explains the DAG in the UI"
    print(f"{path.name}: {found['seconds'] * 1000:.0f} ms, {found['new_modules']} modules beyond airflow.sdk")


def test_schedules_params_and_tasks(tmp_path: Path) -> None:
    dags = {}
    for path in DAGS:
        dags.update(parse(path, tmp_path)["dags"])
    assert dags["highway_deploy"]["schedule"] is None
    assert dags["highway_app_control"]["schedule"] is None
    assert "* * * * *" in dags["highway_reconcile"]["schedule"]
    assert dags["highway_deploy"]["params"] == [
        "app",
        "image",
        "overrides",
        "progress_timeout_seconds",
        "runtime",
    ]
    assert dags["highway_deploy"]["tasks"] == [
        "apply",
        "record_good",
        "render",
        "rollback",
        "validate",
        "wait_for_progress",
    ]
    assert dags["highway_reconcile"]["params"] == ["dry_run", "runtime"]
    assert dags["highway_app_control"]["params"] == ["action", "app", "runtime"]
    assert dags["highway_checkpoint"]["schedule"] is None
    assert dags["highway_checkpoint"]["params"] == [
        "action",
        "app",
        "backup",
        "dry_run",
        "mode",
        "reason",
        "runtime",
        "target",
    ]
    assert dags["highway_checkpoint"]["tasks"] == ["checkpoint"]
    assert dags["highway_checkpoint_backups"]["schedule"] == "@hourly"
    assert dags["highway_checkpoint_backups"]["params"] == []
    assert dags["highway_checkpoint_backups"]["tasks"] == ["backup_all"]


def test_airflow_dagbag_has_no_import_errors(tmp_path: Path) -> None:
    code = (
        "import json, sys; from airflow.dag_processing.dagbag import DagBag; "
        "b = DagBag(sys.argv[1]); "
        "errors = {k: v[-500:] for k, v in b.import_errors.items()}; "
        "print(json.dumps({'dags': sorted(b.dag_ids), 'errors': errors}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == {}
    assert set(found["dags"]) >= EXPECTED


def test_airflows_plugin_loader_leaves_the_highway_package_alone(tmp_path: Path) -> None:
    """Airflow imports each .py under plugins/ as a top-level module named after the file, so without
    plugins/.airflowignore hooks/highway.py would replace the ``highway`` package in every worker."""
    code = (
        "import sys; from airflow import plugins_manager; plugins_manager.ensure_plugins_loaded(); "
        "loaded = sorted(m for m in sys.modules if m in ('highway', 'apps', 'progress', 'params')); "
        "import highway.adapters; print(loaded, plugins_manager.get_import_errors())"
    )
    env = {**_env(tmp_path), "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[] {}"
