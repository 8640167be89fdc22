"""One catalog app as Kubernetes objects: its conf, a driver StatefulSet, a headless Service, a NetworkPolicy.

- The driver runs as a StatefulSet with ``replicas: 1``: the controller does not create ``<app>-driver-0``
  again before the old pod is gone, so two drivers never share the checkpoint.
- Executors are pods the driver creates (Spark on Kubernetes, client mode inside the driver pod); Spark
  sets the driver pod as their owner (``spark.kubernetes.driver.pod.name``), so they go when it goes.
- The app's catalog entry and its Spark conf travel in a ConfigMap; the pod template carries a hash of
  it, so a changed spec rolls the driver.
- SIGTERM stops the query after the batch in flight (``highway run``); the grace period covers it.
- Liveness/readiness probe the driver's Prometheus endpoint.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import yaml

from highway.catalog.model import AppSpec
from highway.core.k8s import common as k
from highway.core.k8s.base import library_env, library_env_from
from highway.core.release import POD_UID_ENV, SPEC_DIGEST_ENV, spec_digest

DRIVER_NAME = "spark-driver"  # app.kubernetes.io/name of every driver pod
EXECUTOR_NAME = "spark-executor"
CATALOG_DIR = "/etc/highway/catalog"
SPARK_DIR = "/etc/highway/spark"
SPEC_HASH = "highway.dev/spec-hash"
_MEMORY = re.compile(r"^([1-9][0-9]*)([mg])$")


def memory_mib(jvm_size: str) -> int:
    """``512m`` -> 512, ``2g`` -> 2048 (the catalog's JVM notation, validated there)."""
    match = _MEMORY.match(jvm_size)
    if not match:
        raise ValueError(f"not a JVM memory size: {jvm_size!r}")
    number, unit = int(match.group(1)), match.group(2)
    return number * 1024 if unit == "g" else number


def pod_memory(jvm_size: str, python: bool = True) -> str:
    """The container's memory: the JVM heap plus Spark's overhead (10 %, at least 384 MiB), plus room
    for the Python driver process (it collects micro-batches through Arrow) when ``python``."""
    heap = memory_mib(jvm_size)
    overhead = max(384, heap // 10)
    extra = max(512, heap // 4) if python else 0
    return f"{heap + overhead + extra}Mi"


def spark_conf(spec: AppSpec, image: str, namespace: str) -> dict[str, str]:
    """Spark settings for the driver pod (merged over highway's base conf; ``${VAR}`` from the pod env)."""
    r = spec.resources
    service = k.driver_name(spec.name)
    conf = {
        "spark.master": "k8s://https://kubernetes.default.svc:443",
        "spark.submit.deployMode": "client",
        "spark.kubernetes.namespace": namespace,
        "spark.kubernetes.driver.pod.name": "${HIGHWAY_POD_NAME}",
        "spark.kubernetes.container.image": image,
        "spark.kubernetes.container.image.pullPolicy": "IfNotPresent",
        "spark.driver.host": f"${{HIGHWAY_POD_NAME}}.{service}.{namespace}.svc",
        "spark.driver.bindAddress": "0.0.0.0",
        "spark.driver.port": str(k.DRIVER_PORT),
        "spark.driver.blockManager.port": str(k.BLOCK_MANAGER_PORT),
        "spark.executor.instances": str(r.executor_instances),
        "spark.executor.memory": r.executor_memory,
        "spark.executor.cores": "1",
        "spark.kubernetes.executor.request.cores": r.executor_cpu,
        "spark.kubernetes.executor.limit.cores": r.executor_cpu,
        "spark.kubernetes.executor.podNamePrefix": k.dns_name(spec.name),
        "spark.kubernetes.executor.podTemplateFile": f"{SPARK_DIR}/executor-template.yaml",
        "spark.kubernetes.executor.podTemplateContainerName": "executor",
        "spark.kubernetes.executor.deleteOnTermination": "true",
        "spark.kubernetes.authenticate.executor.serviceAccountName": k.SA_INFRA,
        "spark.local.dir": "/tmp/spark",
        "spark.jars.ivy": "/tmp/ivy",
    }
    for key, value in k.labels(EXECUTOR_NAME, "executor", spec.name).items():
        conf[f"spark.kubernetes.executor.label.{key}"] = value
    return conf


def _conf_text(conf: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in sorted(conf.items()))


def executor_template(spec: AppSpec) -> dict[str, Any]:
    """Pod template Spark starts each executor from: non-root, read-only root, a writable /tmp, no token."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": k.labels(EXECUTOR_NAME, "executor", spec.name)},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": k.pod_security(k.SPARK_UID),
            "containers": [
                {
                    "name": "executor",
                    "securityContext": k.container_security(read_only_root=True),
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}],
        },
    }


def config_map(spec: AppSpec, catalog_text: str, image: str, namespace: str) -> dict[str, Any]:
    data = {
        f"{spec.name}.yaml": catalog_text,
        "spark.conf": _conf_text(spark_conf(spec, image, namespace)),
        "executor-template.yaml": yaml.safe_dump(executor_template(spec), sort_keys=False),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": k.app_config_name(spec.name),
            "namespace": namespace,
            "labels": k.labels(DRIVER_NAME, "driver", spec.name),
        },
        "data": data,
    }


def spec_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config["data"], sort_keys=True).encode()).hexdigest()[:16]


def headless_service(spec: AppSpec, namespace: str) -> dict[str, Any]:
    """Stable DNS for the driver (``<pod>.<service>``): executors connect back to it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": k.driver_name(spec.name),
            "namespace": namespace,
            "labels": k.labels(DRIVER_NAME, "driver", spec.name),
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # executors register before the driver is ready
            "selector": k.selector(DRIVER_NAME, spec.name),
            "ports": [
                {"name": "driver", "port": k.DRIVER_PORT, "targetPort": k.DRIVER_PORT},
                {"name": "blockmanager", "port": k.BLOCK_MANAGER_PORT, "targetPort": k.BLOCK_MANAGER_PORT},
                {"name": "metrics", "port": k.METRICS_PORT, "targetPort": k.METRICS_PORT},
            ],
        },
    }


def _driver_env(namespace: str, digest: str) -> list[dict[str, Any]]:
    field = lambda path: {"fieldRef": {"fieldPath": path}}  # noqa: E731
    return [
        {"name": "HIGHWAY_POD_NAME", "valueFrom": field("metadata.name")},
        {"name": POD_UID_ENV, "valueFrom": field("metadata.uid")},
        {"name": SPEC_DIGEST_ENV, "value": digest},  # on every heartbeat: progress counts for this spec only
        {"name": "HIGHWAY_POD_IP", "valueFrom": field("status.podIP")},
        {"name": "SPARK_LOCAL_IP", "value": "$(HIGHWAY_POD_IP)"},
        {"name": "HIGHWAY_CATALOG", "value": CATALOG_DIR},
        {"name": "HIGHWAY_SPARK_CONF", "value": f"{SPARK_DIR}/spark.conf"},
        {"name": "HIGHWAY_METRICS_ADDR", "value": "0.0.0.0"},
        {"name": "HOME", "value": "/tmp/home"},
        *library_env(namespace),
    ]


def _probe(initial: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/metrics", "port": "metrics"},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def driver_container(spec: AppSpec, image: str, namespace: str, digest: str) -> dict[str, Any]:
    r = spec.resources
    memory = pod_memory(r.driver_memory)
    return {
        "name": "driver",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["highway", "run", spec.name, "--metrics-port", str(k.METRICS_PORT)],
        "env": _driver_env(namespace, digest),
        "envFrom": library_env_from(),
        "ports": [
            {"name": "driver", "containerPort": k.DRIVER_PORT},
            {"name": "blockmanager", "containerPort": k.BLOCK_MANAGER_PORT},
            {"name": "metrics", "containerPort": k.METRICS_PORT},
        ],
        "resources": {
            "requests": {"cpu": r.driver_cpu, "memory": memory},
            "limits": {"cpu": r.driver_cpu, "memory": memory},
        },
        # the metrics endpoint is served before the session starts; startup covers jar loading
        "startupProbe": _probe(initial=5, period=5, failures=60),
        "livenessProbe": _probe(initial=0, period=20, failures=3),
        "readinessProbe": _probe(initial=0, period=10, failures=3),
        "securityContext": k.container_security(read_only_root=True),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "conf", "mountPath": CATALOG_DIR, "readOnly": True},
            {"name": "spark-conf", "mountPath": SPARK_DIR, "readOnly": True},
        ],
    }


def stateful_set(
    spec: AppSpec, image: str, namespace: str, config: dict[str, Any], digest: str
) -> dict[str, Any]:
    container = driver_container(spec, image, namespace, digest)
    template_labels = {**k.labels(DRIVER_NAME, "driver", spec.name), k.SPARK_ROLE: "driver"}
    name = k.app_config_name(spec.name)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": k.driver_name(spec.name),
            "namespace": namespace,
            "labels": k.labels(DRIVER_NAME, "driver", spec.name),
            "annotations": {"highway.dev/description": spec.description or spec.name},
        },
        "spec": {
            "replicas": 1,
            "serviceName": k.driver_name(spec.name),
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": k.selector(DRIVER_NAME, spec.name)},
            "template": {
                "metadata": {"labels": template_labels, "annotations": {SPEC_HASH: spec_hash(config)}},
                "spec": {
                    "serviceAccountName": k.SA_DRIVER,
                    "automountServiceAccountToken": True,  # the driver creates its executor pods
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": k.STOP_GRACE_SECONDS,
                    "securityContext": k.pod_security(k.SPARK_UID),
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "4Gi"}},
                        {
                            "name": "conf",
                            "configMap": {
                                "name": name,
                                "items": [{"key": f"{spec.name}.yaml", "path": f"{spec.name}.yaml"}],
                            },
                        },
                        {
                            "name": "spark-conf",
                            "configMap": {
                                "name": name,
                                "items": [
                                    {"key": "spark.conf", "path": "spark.conf"},
                                    {"key": "executor-template.yaml", "path": "executor-template.yaml"},
                                ],
                            },
                        },
                    ],
                },
            },
        },
    }


def _to_service(service: k.Service) -> dict[str, Any]:
    return {
        "to": [{"podSelector": {"matchLabels": {k.PART_OF: "highway", k.NAME: service.name}}}],
        "ports": [{"protocol": "TCP", "port": service.port}],
    }


def network_policy(spec: AppSpec, namespace: str) -> dict[str, Any]:
    """Driver and executors of this app: each other, the stores, the API server; metrics to highway pods."""
    same_app = {"podSelector": {"matchLabels": {k.PART_OF: "highway", k.APP_LABEL: spec.name}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": k.driver_name(spec.name),
            "namespace": namespace,
            "labels": k.labels(DRIVER_NAME, "driver", spec.name),
        },
        "spec": {
            "podSelector": {"matchLabels": {k.PART_OF: "highway", k.APP_LABEL: spec.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [same_app]},
                {
                    "from": [{"podSelector": {"matchLabels": {k.PART_OF: "highway"}}}],
                    "ports": [{"protocol": "TCP", "port": k.METRICS_PORT}],
                },
            ],
            "egress": [
                {"to": [same_app]},
                *(_to_service(s) for s in (k.KAFKA, k.S3, k.ELASTICSEARCH, k.POSTGRES)),
                {  # the API server is not a pod: allow its ports (the driver manages executor pods)
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                    "ports": [{"protocol": "TCP", "port": p} for p in k.KUBE_API_PORTS],
                },
            ],
        },
    }


def app_objects(
    spec: AppSpec, catalog_text: str, image: str | None = None, namespace: str = k.NAMESPACE
) -> list[dict[str, Any]]:
    """Everything one app needs, in apply order. ``image`` overrides the catalog's (a deploy parameter)."""
    chosen = image or spec.image
    config = config_map(spec, catalog_text, chosen, namespace)
    return [
        config,
        headless_service(spec, namespace),
        stateful_set(spec, chosen, namespace, config, spec_digest(catalog_text, image)),
        network_policy(spec, namespace),
    ]
