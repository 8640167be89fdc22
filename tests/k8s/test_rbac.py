"""Least privilege, proven by the API server: what the Airflow and driver service accounts may and may not do.

The runtime tests (test_runtime.py) exercise every call as the Airflow account; here each rule of its Role
is checked with a SelfSubjectAccessReview, and the things it must never do are tried and refused (403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from highway.core.k8s import common as k
from highway.core.k8s.base import RUNTIME_RULES
from highway.runtime import RuntimeTerminal
from highway.runtime.kubernetes import API_CALLS, APPLY_CREATES, KubernetesRuntime
from kubecluster import KubeCluster

NS = k.NAMESPACE


@pytest.fixture(scope="module")
def driver_api(kube: KubeCluster, highway_base: str) -> Iterator[Any]:
    with kube.api_client(token=kube.service_account_token(highway_base, k.SA_DRIVER)) as api:
        yield api


def allowed(api: Any, verb: str, group: str, resource: str, namespace: str | None = NS) -> bool:
    name, _, sub = resource.partition("/")
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb=verb, group=group, resource=name, subresource=sub or None
            )
        )
    )
    return bool(client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed)


def refused(call: Callable[[], Any]) -> str:
    """The API server's 403 for ``call`` (fails the test on success or on any other answer)."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 403, caught.value
    return str(caught.value.body)


def test_every_runtime_rule_is_granted(airflow_api: Any) -> None:
    for rule in RUNTIME_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert allowed(airflow_api, verb, group, resource), (verb, group, resource)


def test_every_call_of_the_runtime_is_in_its_role(airflow_api: Any) -> None:
    granted = {
        (verb, group, resource)
        for rule in RUNTIME_RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for call in (*API_CALLS, *APPLY_CREATES):
        assert call in granted, f"the runtime calls {call} but RUNTIME_RULES does not grant it"
        assert allowed(airflow_api, *call), call


def test_kubectl_lists_the_same_rules(kube: KubeCluster) -> None:
    token = kube.service_account_token(NS, k.SA_AIRFLOW)
    listing = kube.kubectl("auth", "can-i", "--list", "-n", NS, token=token).stdout
    for line in ("statefulsets.apps/scale", "pods/log", "networkpolicies.networking.k8s.io"):
        assert line in listing, listing
    assert "secrets" not in listing, listing


def test_the_airflow_account_is_refused_everything_else(airflow_api: Any) -> None:
    core, rbac = client.CoreV1Api(airflow_api), client.RbacAuthorizationV1Api(airflow_api)
    apps = client.AppsV1Api(airflow_api)
    refused(lambda: core.list_namespaced_secret(NS))
    refused(lambda: core.read_namespaced_secret(k.SECRET, NS))
    refused(lambda: core.list_namespaced_pod("default"))
    refused(lambda: apps.list_namespaced_stateful_set("kube-system"))
    refused(lambda: core.list_namespace())
    cluster_role = client.V1ClusterRole(
        metadata=client.V1ObjectMeta(name="highway-escalate"),
        rules=[client.V1PolicyRule(api_groups=["*"], resources=["*"], verbs=["*"])],
    )
    refused(lambda: rbac.create_cluster_role(cluster_role))
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="highway-escalate", namespace=NS),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="admin"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=k.SA_AIRFLOW, namespace=NS)],
    )
    refused(lambda: rbac.create_namespaced_role_binding(NS, binding))
    refused(lambda: rbac.list_namespaced_role(NS))
    assert not allowed(airflow_api, "escalate", "rbac.authorization.k8s.io", "roles")
    assert not allowed(airflow_api, "bind", "rbac.authorization.k8s.io", "clusterroles", namespace=None)
    # it never creates a pod (the StatefulSet controller does) and never deletes an app's objects
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "not-mine"}, "spec": {"containers": []}}
    refused(lambda: core.create_namespaced_pod(NS, pod))
    assert not allowed(airflow_api, "delete", "apps", "statefulsets")
    assert not allowed(airflow_api, "create", "", "pods/exec")


def test_a_forbidden_call_is_a_terminal_runtime_error(driver_api: Any) -> None:
    """Run as the driver account, the runtime cannot read a StatefulSet: one line naming it and the 403."""
    runtime = KubernetesRuntime(driver_api, namespace=NS)
    with pytest.raises(RuntimeTerminal) as caught:
        runtime.status("silver_shop_events")
    message = str(caught.value)
    assert message.startswith(
        "status silver_shop_events: StatefulSet highway/silver-shop-events-driver: HTTP 403"
    )
    assert "forbidden" in message and "\n" not in message


def test_the_driver_account_manages_pods_and_nothing_else(driver_api: Any) -> None:
    core, apps = client.CoreV1Api(driver_api), client.AppsV1Api(driver_api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "rbac-executor-probe", "labels": {k.PART_OF: "highway"}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{"name": "executor", "image": k.SPARK_IMAGE}],
        },
    }
    created = core.create_namespaced_pod(NS, pod)
    try:
        assert created.metadata.name == "rbac-executor-probe"
        assert core.read_namespaced_pod("rbac-executor-probe", NS).metadata.uid == created.metadata.uid
    finally:
        core.delete_namespaced_pod("rbac-executor-probe", NS, grace_period_seconds=0)
    refused(lambda: apps.read_namespaced_stateful_set("anything-driver", NS))
    refused(lambda: apps.list_namespaced_stateful_set(NS))
    refused(lambda: core.read_namespaced_secret(k.SECRET, NS))
    refused(lambda: core.list_namespaced_secret(NS))
    refused(lambda: core.list_namespaced_pod("default"))
    assert not allowed(driver_api, "create", "", "services")
