"""The environment of pods that use highway's library: the ConfigMap's HIGHWAY_* settings and the Secret refs.

Read by the base stack (its ConfigMap, the stores, Airflow, the demo producer) and by each app's pods
(``core.k8s.apps``).
"""

from __future__ import annotations

from typing import Any

from highway.core.k8s import _workload as w
from highway.core.k8s import common as k

ES_USER = "elastic"


def config_data(namespace: str = k.NAMESPACE) -> dict[str, str]:
    """The non-secret HIGHWAY_* settings, as in-cluster DNS names."""
    return {
        "HIGHWAY_KAFKA_BOOTSTRAP": f"{w.svc_host(k.KAFKA, namespace)}:{k.KAFKA.port}",
        "HIGHWAY_S3_ENDPOINT": f"http://{w.svc_host(k.S3, namespace)}:{k.S3.port}",
        "HIGHWAY_LAKE_BUCKET": "lake",
        "HIGHWAY_PG_HOST": w.svc_host(k.POSTGRES, namespace),
        "HIGHWAY_PG_PORT": str(k.POSTGRES.port),
        "HIGHWAY_PG_USER": "highway",
        "HIGHWAY_PG_DATABASE": "highway",
    }


def library_env(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """Secret settings (secretKeyRef only) and the Elasticsearch URL built from them by Kubernetes:
    ``$(HIGHWAY_ES_PASSWORD)`` expands because that variable comes earlier in the list."""
    es_host = f"{w.svc_host(k.ELASTICSEARCH, namespace)}:{k.ELASTICSEARCH.port}"
    return [
        k.secret_env("HIGHWAY_S3_ACCESS_KEY", "s3_access_key"),
        k.secret_env("HIGHWAY_S3_SECRET_KEY", "s3_secret_key"),
        k.secret_env("HIGHWAY_PG_PASSWORD", "pg_password"),
        k.secret_env("HIGHWAY_ES_PASSWORD", "es_password"),
        {"name": "HIGHWAY_ES_URL", "value": f"http://{ES_USER}:$(HIGHWAY_ES_PASSWORD)@{es_host}"},
    ]


def library_env_from() -> list[dict[str, Any]]:
    return [{"configMapRef": {"name": k.CONFIG}}]
