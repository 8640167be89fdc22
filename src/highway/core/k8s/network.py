"""The base stack's NetworkPolicies: deny everything, then open DNS and exactly the paths each component
uses (clients to the stores, Airflow to its database, logs and the Kubernetes API)."""

from __future__ import annotations

from typing import Any

from highway.core.k8s import _workload as w
from highway.core.k8s import common as k
from highway.core.k8s.airflow import (
    AIRFLOW_COMPONENT,
    AIRFLOW_WORKERS,
    SCHEDULER_LOG_PORT,
    TRIGGERER_LOG_PORT,
)

CLIENT_COMPONENTS = ("driver", "executor", AIRFLOW_COMPONENT)  # who uses the stores


def _pods(component: str | None = None, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """A pod selector of highway's pods: by component, or by app.kubernetes.io/name."""
    match: dict[str, Any] = {"matchLabels": {k.PART_OF: "highway"}}
    if component is not None:
        match["matchLabels"][k.COMPONENT] = component
    if names:
        match["matchExpressions"] = [{"key": k.NAME, "operator": "In", "values": list(names)}]
    return match


def _clients(*components: str) -> list[dict[str, Any]]:
    selector = {
        "matchLabels": {k.PART_OF: "highway"},
        "matchExpressions": [{"key": k.COMPONENT, "operator": "In", "values": list(components)}],
    }
    return [{"podSelector": selector}]


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _to(service: k.Service) -> dict[str, Any]:
    return {"to": [{"podSelector": _pods(names=(service.name,))}], "ports": _tcp(service.port)}


def _policy(
    name: str,
    namespace: str,
    pods: dict[str, Any],
    types: tuple[str, ...] = (),
    **rules: list[dict[str, Any]],
) -> dict[str, Any]:
    """A NetworkPolicy; its policyTypes are the directions given rules (or ``types``: deny all of them)."""
    types = types or tuple(kind for kind in ("Ingress", "Egress") if kind.lower() in rules)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": w.meta(name, namespace, "network"),
        "spec": {"podSelector": pods, "policyTypes": list(types), **rules},
    }


def _store_policy(service: k.Service, namespace: str, *clients: str) -> dict[str, Any]:
    rule = {"from": _clients(*clients), "ports": _tcp(service.port)}
    return _policy(service.name, namespace, _pods(names=(service.name,)), ingress=[rule])


def network_policies(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """Deny everything, then open DNS and exactly the paths each component uses."""
    dns = {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    api_server = _pods(names=(k.AIRFLOW_API.name,))
    workers = _pods(AIRFLOW_COMPONENT, AIRFLOW_WORKERS)
    log_ports = _tcp(SCHEDULER_LOG_PORT, TRIGGERER_LOG_PORT)
    kube_api = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(*k.KUBE_API_PORTS)}
    driver_metrics = {"to": [{"podSelector": _pods("driver")}], "ports": _tcp(k.METRICS_PORT)}
    return [
        _policy("default-deny", namespace, {}, types=("Ingress", "Egress")),
        _policy("allow-dns", namespace, {}, egress=[dns]),
        _store_policy(k.KAFKA, namespace, *CLIENT_COMPONENTS, "producer", "kafka"),
        _policy("kafka-self", namespace, _pods("kafka"), egress=[_to(k.KAFKA)]),  # its advertised address
        _store_policy(k.S3, namespace, *CLIENT_COMPONENTS),
        _store_policy(k.ELASTICSEARCH, namespace, *CLIENT_COMPONENTS),
        _store_policy(k.POSTGRES, namespace, *CLIENT_COMPONENTS),
        _policy("airflow", namespace, _pods(AIRFLOW_COMPONENT), egress=[_to(k.POSTGRES)]),
        _policy(
            k.AIRFLOW_API.name,
            namespace,
            api_server,
            ingress=[{"from": _clients(AIRFLOW_COMPONENT), "ports": _tcp(k.AIRFLOW_API.port)}],
            egress=[{"to": [{"podSelector": workers}], "ports": log_ports}],
        ),
        _policy(
            "airflow-workers",
            namespace,
            workers,
            ingress=[{"from": [{"podSelector": api_server}], "ports": log_ports}],
            egress=[
                *(_to(s) for s in (k.KAFKA, k.S3, k.ELASTICSEARCH, k.AIRFLOW_API)),
                driver_metrics,
                kube_api,
            ],
        ),
        _policy("demo-producer", namespace, _pods("producer"), egress=[_to(k.KAFKA)]),
    ]
