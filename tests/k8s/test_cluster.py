"""The Kubernetes test harness itself: API server with RBAC, scheduling onto the kwok node, the StatefulSet
controller, simulated crash loops and pod logs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubecluster import KubeCluster, simulate_crashloop

STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
  namespace: {ns}
spec:
  serviceName: web
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: example.invalid/never-pulled:1
"""


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


@pytest.fixture
def namespace(kube: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "t-" + request.node.name.replace("_", "-")[:40].strip("-").lower()
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def core(kube: KubeCluster) -> Iterator[client.CoreV1Api]:
    with kube.api_client() as api:
        yield client.CoreV1Api(api)


def running_pod(core: client.CoreV1Api, ns: str, name: str, not_uid: str | None = None) -> client.V1Pod:
    def check() -> client.V1Pod | None:
        try:
            pod = core.read_namespaced_pod(name, ns)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        if pod.metadata.uid == not_uid or pod.status.phase != "Running" or pod.metadata.deletion_timestamp:
            return None
        return pod

    return wait_for(f"pod {ns}/{name} Running", check)


def test_api_server_serves_with_rbac(kube: KubeCluster, namespace: str) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.34.4"
    kube.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = kube.service_account_token(namespace, "nobody")

    denied = kube.kubectl("get", "secrets", "-n", namespace, token=token, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied
    with kube.api_client(token) as api, pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_namespaced_secret(namespace)
    assert refused.value.status == 403
    who = json.loads(kube.kubectl("auth", "whoami", "-o", "json", token=token).stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:nobody"
    # the root CA publisher works: every namespace gets kube-root-ca.crt
    wait_for(
        "kube-root-ca.crt", lambda: kube.kubectl("get", "configmap", "kube-root-ca.crt", "-n", namespace)
    )


def test_statefulset_pod_runs_on_kwok_node_and_is_recreated(
    kube: KubeCluster, namespace: str, core: client.CoreV1Api
) -> None:
    kube.kubectl("apply", "--server-side", "-f", "-", input=STATEFULSET.format(ns=namespace))
    pod = running_pod(core, namespace, "web-0")
    assert pod.spec.node_name == kube.node_name
    assert pod.status.pod_ip and pod.status.container_statuses[0].ready

    kube.kubectl("delete", "pod", "web-0", "-n", namespace, "--wait=false")
    again = running_pod(core, namespace, "web-0", not_uid=pod.metadata.uid)
    assert again.spec.node_name == kube.node_name


def test_simulated_crashloop_sticks(kube: KubeCluster, namespace: str, core: client.CoreV1Api) -> None:
    kube.kubectl("apply", "--server-side", "-f", "-", input=STATEFULSET.format(ns=namespace))
    pod = running_pod(core, namespace, "web-0")
    with kube.api_client() as api:
        simulate_crashloop(api, namespace, "web-0", reason="OOMKilled", exit_code=137, restarts=7)

    def crashlooping() -> client.V1ContainerStatus:
        status = core.read_namespaced_pod(namespace=namespace, name="web-0").status
        container = status.container_statuses[0]
        assert container.state.waiting is not None, container
        assert container.state.waiting.reason == "CrashLoopBackOff"
        assert container.last_state.terminated.reason == "OOMKilled"
        assert container.last_state.terminated.exit_code == 137
        assert container.restart_count == 7 and not container.ready
        assert {c.type: c.status for c in status.conditions}["Ready"] == "False"
        return container

    crashlooping()
    time.sleep(5)  # kwok had every chance to overwrite it
    crashlooping()
    shown = kube.kubectl("get", "pod", "web-0", "-n", namespace, "--no-headers").stdout.split()
    assert shown[1:4] == ["0/1", "CrashLoopBackOff", "7"], shown
    wait_for(
        "statefulset readyReplicas 0",
        lambda: (
            not client.AppsV1Api(core.api_client)
            .read_namespaced_stateful_set("web", namespace)
            .status.ready_replicas
        ),
    )

    # deleting the crash-looping pod still works; its replacement runs normally
    kube.kubectl("delete", "pod", "web-0", "-n", namespace, "--wait=false")
    again = running_pod(core, namespace, "web-0", not_uid=pod.metadata.uid)
    assert again.status.container_statuses[0].state.running is not None


def test_pod_logs(kube: KubeCluster, namespace: str, core: client.CoreV1Api) -> None:
    kube.kubectl("apply", "--server-side", "-f", "-", input=STATEFULSET.format(ns=namespace))
    running_pod(core, namespace, "web-0")
    kube.write_pod_log("starting\nboom: out of memory")
    kube.write_pod_log("the run before", previous=True)
    assert kube.kubectl("logs", "web-0", "-n", namespace).stdout == "starting\nboom: out of memory\n"
    assert kube.kubectl("logs", "web-0", "-n", namespace, "--previous").stdout == "the run before\n"
    response = core.read_namespaced_pod_log("web-0", namespace, tail_lines=1, _preload_content=False)
    assert response.data.decode() == "boom: out of memory\n"
