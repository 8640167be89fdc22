"""The ``kube`` session fixture: one real control plane (etcd, kube-apiserver, controller manager, scheduler,
kwok) for every Kubernetes test, built on first use by ``bash tools/k8s/build.sh``."""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from highway.core.k8s import common as k
from highway.core.k8s.base import base_objects

# tests/k8s is a package: pytest puts tests/ (its first parent without __init__.py) on sys.path, as for hwtest
from kubecluster import KubeCluster

NS = k.NAMESPACE
# what an operator applies before any app (README): no workloads needed for the runtime's tests
BASE_KINDS = ("Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap")


# a cold machine builds the control plane from Go modules inside the first Kubernetes test's setup (about
# 8-15 min on 2 cores): more than the suite's per-test timeout, so these tests get a longer one
BUILD_TIMEOUT = 2700


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT))


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    capture = request.config.pluginmanager.getplugin("capturemanager")
    cluster = KubeCluster()
    try:
        # uncaptured, so a first build's progress lines (minutes) reach the terminal as they come
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            cluster.start()
            print(
                f"\nkube: control plane up in {cluster.start_seconds:.1f} s "
                f"(build {cluster.build_seconds:.1f} s) at {cluster.server}",
                file=sys.stderr,
            )
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def highway_base(kube: KubeCluster) -> str:
    """The namespace as an operator prepares it: base objects (server-side apply) + the credentials Secret."""
    objects = [o for objs in base_objects(NS).values() for o in objs if o["kind"] in BASE_KINDS]
    objects.sort(key=lambda o: BASE_KINDS.index(o["kind"]))
    kube.kubectl(
        "apply", "--server-side", f"--field-manager={k.FIELD_MANAGER}", "-f", "-",
        input=yaml.safe_dump_all(objects),
    )  # fmt: skip
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=k.SECRET, namespace=NS),
        string_data={key: secrets.token_urlsafe(16) for key in k.SECRET_KEYS.values()},
    )
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        try:
            core.create_namespaced_secret(NS, secret)
        except ApiException as error:
            if error.status != 409:
                raise
            core.replace_namespaced_secret(k.SECRET, NS, secret)
    return NS


@pytest.fixture(scope="session")
def admin(kube: KubeCluster) -> Iterator[Any]:
    with kube.api_client() as api:
        yield api


@pytest.fixture(scope="session")
def airflow_api(kube: KubeCluster, highway_base: str) -> Iterator[Any]:
    with kube.api_client(token=kube.service_account_token(highway_base, k.SA_AIRFLOW)) as api:
        yield api
