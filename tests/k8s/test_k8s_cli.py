"""``highway k8s ...`` through the real CLI (a subprocess) against a real API server, as the Airflow service
account: deploy, status, restart, stop/start, logs and bad input (one line, exit 2, no traceback).

The apps are renamed catalog entries in a catalog dir of their own (``HIGHWAY_CATALOG``), so they do not
collide with other tests' apps; the admin client only observes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import hwtest
from highway.catalog import catalog_dir
from highway.catalog.variant import variant
from highway.core.k8s import common as k
from kubecluster import KubeCluster, wait_for

HIGHWAY = str(Path(sys.executable).with_name("highway"))
NS = k.NAMESPACE
SUFFIX = "kcli"
APP = f"silver_shop_events_{SUFFIX}"  # deployed by the lifecycle test
IDLE = f"bronze_shop_events_{SUFFIX}"  # never deployed (bad input is tried on it)


@dataclass(frozen=True)
class Cli:
    catalog: Path
    kubeconfig: Path

    def run(self, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": "200", "HIGHWAY_CATALOG": str(self.catalog)}
        command = [HIGHWAY, "k8s", *args, "--kubeconfig", str(kubeconfig or self.kubeconfig)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def status(self, app: str) -> dict[str, Any]:
        (line,) = self.ok("status", app, "--json").splitlines()
        status: dict[str, Any] = json.loads(line)
        return status


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": "airflow", "user": {"token": token}}],
        "contexts": [{"name": "airflow", "context": {"cluster": "test", "user": "airflow", "namespace": NS}}],
        "current-context": "airflow",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def cli(kube: KubeCluster, highway_base: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    root = tmp_path_factory.mktemp("k8s-cli")
    catalog = root / "catalog"
    catalog.mkdir()
    for base in ("silver_shop_events", "bronze_shop_events"):
        data = variant(yaml.safe_load((catalog_dir() / f"{base}.yaml").read_text()), SUFFIX, f"t_{SUFFIX}")
        (catalog / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    token = kube.service_account_token(highway_base, k.SA_AIRFLOW)
    return Cli(catalog, write_kubeconfig(root / "kubeconfig", kube.server, kube.ca_file, token))


def pod_uid(admin: Any, app: str) -> str | None:
    try:
        return str(client.CoreV1Api(admin).read_namespaced_pod(k.driver_pod(app), NS).metadata.uid)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_deploy_status_restart_stop_start_logs(cli: Cli, kube: KubeCluster, admin: Any) -> None:
    out = cli.ok("deploy", APP, "--context", "airflow")
    (line,) = out.splitlines()
    assert line.startswith(f"{APP}: starting") or line.startswith(f"{APP}: running"), line

    status = wait_for("running", lambda: cli.status(APP), lambda s: s["state"] == "running")
    assert status["ready"] is True and status["pod"] == k.driver_pod(APP) and status["desired_replicas"] == 1

    old_uid = pod_uid(admin, APP)
    out = cli.ok("restart", APP, "--timeout", "60")
    assert out.startswith(f"{APP}: ") and f"pod {k.driver_pod(APP)}" in out, out
    # a new driver pod (kwok may replace the replacement once more: it deletes by name; see kubecluster)
    wait_for("a new driver pod", lambda: pod_uid(admin, APP), lambda uid: uid not in (None, old_uid))
    wait_for("running again", lambda: cli.status(APP), lambda s: s["state"] == "running")

    out = cli.ok("stop", APP, "--timeout", "60")
    assert out.startswith(f"{APP}: stopped (") and "pod " not in out, out
    assert pod_uid(admin, APP) is None
    assert cli.status(APP)["state"] == "stopped"

    out = cli.ok("start", APP)
    assert out.startswith((f"{APP}: starting", f"{APP}: running")), out
    wait_for("running after start", lambda: cli.status(APP), lambda s: s["state"] == "running" and s["ready"])

    kube.write_pod_log("\n".join(f"batch {i} committed" for i in range(10)))
    logs = wait_for("the log", lambda: cli.run("logs", APP, "--tail", "3"), lambda d: "batch 9" in d.stdout)
    assert logs.returncode == 0 and logs.stdout.splitlines() == [f"batch {i} committed" for i in (7, 8, 9)]


def test_status_without_apps_lists_the_whole_catalog(cli: Cli) -> None:
    names = sorted(p.stem for p in cli.catalog.glob("*.yaml"))
    lines = cli.ok("status", "--json").splitlines()
    statuses = [json.loads(line) for line in lines]
    assert [s["app"] for s in statuses] == names
    assert {s["app"]: s["state"] for s in statuses}[IDLE] == "absent"

    table = cli.ok("status")
    assert f"{len(names)} app(s) in namespace {NS}" in table
    for column in ("app", "state", "ready", "restarts", "pod", "reason"):
        assert column in table
    for name in names:
        assert name in table


def test_a_bad_image_is_refused_and_nothing_is_created(cli: Cli, admin: Any) -> None:
    line = one_error_line(cli.run("deploy", IDLE, "--image", "Bad Image!!"))
    assert "image" in line and "'Bad Image!!'" in line and "allowed" in line, line
    with pytest.raises(ApiException) as missing:
        client.AppsV1Api(admin).read_namespaced_stateful_set(k.driver_name(IDLE), NS)
    assert missing.value.status == 404
    assert cli.status(IDLE)["state"] == "absent"


def test_an_unknown_app_is_refused_naming_the_known_ones(cli: Cli) -> None:
    for args in (("deploy", "no_such_app"), ("status", "no_such_app"), ("stop", "no_such_app")):
        line = one_error_line(cli.run(*args))
        assert "'no_such_app'" in line and APP in line and IDLE in line, line


def test_an_unreachable_api_server_is_one_line(cli: Cli, kube: KubeCluster, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = write_kubeconfig(tmp_path / "closed", f"https://127.0.0.1:{port}", kube.ca_file, "x")
    began = time.monotonic()
    line = one_error_line(cli.run("status", APP, kubeconfig=closed))
    hwtest.measured(
        f"highway k8s status, API server refused: one-line error after {time.monotonic() - began:.1f} s"
    )
    assert f"127.0.0.1:{port}" in line and "refused" in line.lower(), line
