"""The base stack as Kubernetes objects: namespace, RBAC, config, the demo producer Job, and the whole
base assembled from the stores, Airflow and the NetworkPolicies (``base_objects``).

One file name (``k8s/base/<name>``) maps to its objects; overlays set image names, storage classes and
sizes through patches, so resources and ``storageClassName: standard`` sit where a patch finds them.
Credentials live in one Secret the operator creates (README); pods read it only through secretKeyRef.

The workloads are built in ``stores`` (Kafka, S3, Elasticsearch, PostgreSQL), ``airflow`` and ``network``
(NetworkPolicies); the library env of pods in ``env``. This module assembles them (``base_objects``) and
re-exports what other modules and the tests import from here.
"""

from __future__ import annotations

from typing import Any

from highway.core.k8s import _workload as w
from highway.core.k8s import common as k
from highway.core.k8s.airflow import AIRFLOW_WORKERS, airflow_objects
from highway.core.k8s.env import config_data, library_env, library_env_from
from highway.core.k8s.network import network_policies
from highway.core.k8s.stores import elasticsearch_objects, kafka_objects, postgres_objects, s3_objects

__all__ = [
    "AIRFLOW_WORKERS",
    "DRIVER_RULES",
    "RUNTIME_RULES",
    "base_objects",
    "config_data",
    "demo_producer_job",
    "library_env",
    "library_env_from",
]

# Exactly the requests of the Kubernetes runtime (``runtime.kubernetes.API_CALLS``), in its namespace:
# deploy = SSA of an app's ConfigMap, headless Service, StatefulSet and NetworkPolicy; status = get the
# StatefulSet and its pod; restart = delete the pod; stop/start = patch the scale subresource; logs =
# pods/log. Server-side apply is a PATCH, also authorized as CREATE when the object is new. No list/watch,
# no delete of apps' objects, no secrets, no wildcard.
RUNTIME_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets/scale"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": ["create", "patch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]

# A Spark driver creates, watches and deletes its executor pods (and Spark's executor conf ConfigMap).
# RBAC cannot select by label, so "only its executors" means: only pods and configmaps, only in this
# namespace; Spark makes the driver pod the owner (ownerReferences) of each executor, which the garbage
# collector removes with it. No services, no PVCs (executors use emptyDir), no secrets.
DRIVER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": ["pods", "configmaps"],
        "verbs": ["create", "get", "list", "watch", "delete", "deletecollection"],
    },
    # the checkpoint's Lease (highway.runtime.lease): one driver per checkpoint, fenced by the API server
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
]


# --- namespace, RBAC, config, the demo producer, the whole base ---------------------------------------------


def _namespace(namespace: str = k.NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {
                k.PART_OF: "highway",
                k.MANAGED_BY: "highway",
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
    }


def _role(name: str, sa: str, rules: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    meta = w.meta(name, namespace, "rbac")
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": ref,
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
        },
    ]


def _rbac(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """Three service accounts; namespaced Roles only (no ClusterRole anywhere)."""
    accounts = []
    for sa in (k.SA_AIRFLOW, k.SA_DRIVER, k.SA_INFRA):
        account: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount"}
        account["metadata"] = w.meta(sa, namespace, "rbac")
        if sa == k.SA_INFRA:
            account["automountServiceAccountToken"] = False
        accounts.append(account)
    return [
        *accounts,
        *_role("highway-runtime", k.SA_AIRFLOW, RUNTIME_RULES, namespace),
        *_role("highway-driver", k.SA_DRIVER, DRIVER_RULES, namespace),
    ]


def _config(namespace: str = k.NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": w.meta(k.CONFIG, namespace, "config"),
        "data": config_data(namespace),
    }


def demo_producer_job(namespace: str = k.NAMESPACE, count: int = 20000) -> dict[str, Any]:
    """``highway produce --count N`` once, in the apps image, with the library env."""
    name = "demo-producer"
    container = w.container(
        "producer",
        k.SPARK_IMAGE,
        command=["highway", "produce", "--count", str(count)],
        env=[{"name": "HOME", "value": "/tmp/home"}, *library_env(namespace)],
        envFrom=library_env_from(),
        resources=w.resources("250m", "512Mi", "1"),
        volumeMounts=[w.mount("tmp", "/tmp")],
    )
    pod = w.pod_spec(k.SA_INFRA, k.SPARK_UID, [container], [w.empty("tmp")], restartPolicy="Never")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": w.meta(name, namespace, "producer"),
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 3600,
            "template": w.template(name, "producer", pod),
        },
    }
    return dict(w.unshared(job))


def base_objects(namespace: str = k.NAMESPACE) -> dict[str, list[dict[str, Any]]]:
    """``k8s/base/<file>`` -> its objects, in apply order within each file."""
    files: dict[str, list[dict[str, Any]]] = {
        "namespace.yaml": [_namespace(namespace)],
        "rbac.yaml": _rbac(namespace),
        "config.yaml": [_config(namespace)],
        "network-policies.yaml": network_policies(namespace),
        "kafka.yaml": kafka_objects(namespace),
        "s3.yaml": s3_objects(namespace),
        "elasticsearch.yaml": elasticsearch_objects(namespace),
        "postgres.yaml": postgres_objects(namespace),
        "airflow.yaml": airflow_objects(namespace),
    }
    return {name: w.unshared(objects) for name, objects in files.items()}
