"""Small builders shared by the base stack's workloads: metadata, containers, pod specs, volumes, Services.

Every container gets highway's hardened security context (read-only root); every pod an explicit
service account and no API token unless asked. Private to ``core.k8s``: the modules that build objects
call these as ``w.<name>``.
"""

from __future__ import annotations

import json
from typing import Any

from highway.core.k8s import common as k


def unshared(objects: Any) -> Any:
    """A copy with no sub-object shared between two places (pyyaml would write anchors and aliases)."""
    return json.loads(json.dumps(objects))


def meta(name: str, namespace: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": k.labels(name, component)}


def svc_host(service: k.Service, namespace: str) -> str:
    return f"{service.name}.{namespace}.svc"


def resources(cpu: str, memory: str, cpu_limit: str | None = None) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory},
    }


def env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def tcp_probe(port: str, initial: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "tcpSocket": {"port": port},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "failureThreshold": failures,
    }


def exec_probe(command: list[str], period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": command},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def container(name: str, image: str, **fields: Any) -> dict[str, Any]:
    """A container with highway's security context: every one here runs with a read-only root."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        **fields,
        "securityContext": k.container_security(read_only_root=True),
    }


def pod_spec(
    sa: str, uid: int, containers: list[dict[str, Any]], volumes: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """Pod spec: explicit service account, no API token unless ``token=True``, no service env links."""
    token = extra.pop("token", False)
    spec: dict[str, Any] = {
        "serviceAccountName": sa,
        "automountServiceAccountToken": token,
        "enableServiceLinks": False,  # a Service named kafka would inject KAFKA_PORT, which the image reads
        "securityContext": k.pod_security(uid),
        **extra,
        "containers": containers,
        "volumes": volumes,
    }
    return spec


def template(name: str, component: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": k.labels(name, component)}, "spec": spec}


def empty(name: str, size: str = "256Mi") -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": size}}


def mount(name: str, path: str, read_only: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        entry["readOnly"] = True
    return entry


def service(service: k.Service, namespace: str, component: str, port_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(service.name, namespace, component),
        "spec": {
            "selector": k.selector(service.name),
            "ports": [{"name": port_name, "port": service.port, "targetPort": port_name, "protocol": "TCP"}],
        },
    }
