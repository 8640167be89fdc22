"""Every rendered manifest is accepted by a real kube-apiserver (server-side apply), for both overlays."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from highway.core.k8s import common as k
from kubecluster import KubeCluster

REPO = Path(__file__).resolve().parents[2]


def _rendered(kube: KubeCluster, overlay: str) -> list[dict]:
    text = kube.kubectl("kustomize", str(REPO / "k8s" / "overlays" / overlay)).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("overlay", ["kind", "minikube"])
def test_overlay_applies_server_side_and_leaves_no_diff(kube: KubeCluster, overlay: str) -> None:
    objects = _rendered(kube, overlay)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "StatefulSet"} <= kinds
    assert {"Deployment", "Service", "NetworkPolicy", "Job"} <= kinds
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Secret"}
    overlay_dir = str(REPO / "k8s" / "overlays" / overlay)
    applied = kube.kubectl(
        "apply", "--server-side", "--force-conflicts", f"--field-manager=test-{overlay}", "-k", overlay_dir
    )
    assert applied.returncode == 0
    # every object exists as rendered, and a server-side diff finds nothing left to change
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        args = ["get", obj["kind"], obj["metadata"]["name"], "-o", "json"] + (["-n", ns] if ns else [])
        live = json.loads(kube.kubectl(*args).stdout)
        assert live["metadata"]["labels"].items() >= (obj["metadata"].get("labels") or {}).items()
    diff = kube.kubectl("diff", "--server-side", "--force-conflicts", "-k", overlay_dir, check=False)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    # the overlay's storage class reached every volume claim template
    for obj in objects:
        for claim in obj.get("spec", {}).get("volumeClaimTemplates", []) or []:
            assert claim["spec"]["storageClassName"] == "standard"


def test_each_app_driver_gets_one_running_pod_on_the_simulated_node(kube: KubeCluster) -> None:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "k8s" / "overlays" / "kind"))
    apps = sorted(p.stem for p in (REPO / "spark_apps" / "catalog").glob("*.yaml"))
    deadline = time.monotonic() + 60
    while True:
        pods = json.loads(
            kube.kubectl(
                "get", "pods", "-n", k.NAMESPACE, "-l", f"{k.SPARK_ROLE}=driver", "-o", "json"
            ).stdout
        )["items"]
        running = {  # the catalog's apps (other tests deploy renamed copies into the same namespace)
            p["metadata"]["labels"][k.APP_LABEL]: p
            for p in pods
            if p["status"].get("phase") == "Running" and p["metadata"]["labels"][k.APP_LABEL] in apps
        }
        if sorted(running) == apps or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(running) == apps
    for app, pod in running.items():
        assert pod["metadata"]["name"] == k.driver_pod(app)
        assert pod["spec"]["serviceAccountName"] == k.SA_DRIVER
        assert pod["spec"]["nodeName"] == kube.node_name


def test_create_secret_script_makes_every_key_once(kube: KubeCluster, tmp_path: Path) -> None:
    """The README's install step: one Secret with every key the manifests reference; a rerun keeps it.
    No value is ever on kubectl's command line (each argv the real kubectl got is recorded)."""
    ns = "secret-script-test"
    argv_log = tmp_path / "kubectl-argv"
    recording = tmp_path / "kubectl"
    recording.write_text(
        f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {argv_log}\nexec {kube.bin_dir / "kubectl"} "$@"\n'
    )
    recording.chmod(0o700)
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "KUBECTL": str(recording)}
    script = ["bash", str(REPO / "tools" / "k8s" / "create-secret.sh"), ns]
    first = subprocess.run(script, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert "created" in first.stdout and "admin / " in first.stdout
    secret = json.loads(kube.kubectl("get", "secret", k.SECRET, "-n", ns, "-o", "json").stdout)
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert set(data) == set(k.SECRET_KEYS.values())
    assert all(len(value) >= 12 for value in data.values())
    assert f":{data['postgres-password']}@postgres.{ns}.svc:5432/airflow" in data["airflow-db-url"]
    calls = argv_log.read_text()
    assert "create -f -" in calls and not [key for key, value in data.items() if value in calls]
    again = subprocess.run(script, env=env, capture_output=True, text=True, check=True, timeout=60)
    assert "left unchanged" in again.stdout
    secret_again = json.loads(kube.kubectl("get", "secret", k.SECRET, "-n", ns, "-o", "json").stdout)
    assert secret_again["data"] == secret["data"]
