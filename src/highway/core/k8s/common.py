"""Names, labels, ports and security settings shared by every Kubernetes object highway renders.

Pure data: the manifest builders (``core.k8s.apps``, ``core.k8s.base``), the runtime and the tests
read these, so a name or a port is written once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

NAMESPACE = "highway"
FIELD_MANAGER = "highway"  # server-side apply field manager of everything highway applies

# labels (app.kubernetes.io/* recommended labels + highway's own)
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"
APP_LABEL = "highway.dev/app"  # the catalog app a driver or executor pod belongs to
SPARK_ROLE = "spark-role"  # Spark labels its pods driver / executor

# images: short names, rewritten per overlay by kustomize `images:` (kind/minikube load them locally)
SPARK_IMAGE = "highway-spark:0.1.0"
AIRFLOW_IMAGE = "highway-airflow:0.1.0"
SPARK_UID = 185  # the spark user of the apps image (Spark's images use 185 too)
AIRFLOW_UID = 50000  # the airflow user of the official Airflow images

# service accounts
SA_AIRFLOW = "highway-airflow"  # the Kubernetes runtime runs as this (Airflow scheduler/triggerer pods)
SA_DRIVER = "highway-driver"  # Spark drivers: may manage their executor pods, nothing else
SA_INFRA = "highway-infra"  # Kafka, S3, Elasticsearch, PostgreSQL, Airflow web: no API access at all

# one Secret, created by the operator (README), read only through secretKeyRef
SECRET = "highway-credentials"
SECRET_KEYS = {
    "s3_access_key": "s3-access-key",
    "s3_secret_key": "s3-secret-key",
    "pg_password": "postgres-password",
    "es_password": "elasticsearch-password",
    "airflow_db_url": "airflow-db-url",
    "airflow_admin_password": "airflow-admin-password",
    "airflow_secret_key": "airflow-secret-key",
}
CONFIG = "highway-config"  # non-secret connection settings (HIGHWAY_* variables)


@dataclass(frozen=True)
class Service:
    name: str  # the Service's name, also the pods' app.kubernetes.io/name
    port: int


KAFKA = Service("kafka", 9092)
S3 = Service("s3", 8080)
ELASTICSEARCH = Service("elasticsearch", 9200)
POSTGRES = Service("postgres", 5432)
AIRFLOW_API = Service("airflow-api-server", 8080)
KUBE_API_PORTS = (443, 6443)  # the API server's service port and its usual pod port (egress rules)

# a Spark driver's ports (the headless service exposes them to its executors)
DRIVER_PORT = 7078
BLOCK_MANAGER_PORT = 7079
METRICS_PORT = 9090
DRIVER_STOP_WAIT_SECONDS = 120  # on SIGTERM the driver waits this long for the batch in flight (spark.apps)
STOP_GRACE_SECONDS = DRIVER_STOP_WAIT_SECONDS + 30  # the pod's grace: that wait plus the query's own stop


def dns_name(app: str) -> str:
    """A catalog name as a Kubernetes object name: ``silver_shop_events`` -> ``silver-shop-events``."""
    return app.replace("_", "-")


def driver_name(app: str) -> str:
    """The app's driver StatefulSet (and headless Service); its one pod is ``<this>-0``."""
    return f"{dns_name(app)}-driver"


def driver_pod(app: str) -> str:
    return f"{driver_name(app)}-0"


def app_config_name(app: str) -> str:
    return f"{dns_name(app)}-conf"


def labels(name: str, component: str, app: str | None = None) -> dict[str, str]:
    out = {PART_OF: "highway", NAME: name, COMPONENT: component, MANAGED_BY: "highway"}
    if app is not None:
        out[APP_LABEL] = app
    return out


def selector(name: str, app: str | None = None) -> dict[str, str]:
    """The immutable subset used in selectors (a StatefulSet's selector cannot change later)."""
    out = {PART_OF: "highway", NAME: name}
    if app is not None:
        out[APP_LABEL] = app
    return out


def pod_security(uid: int, fs_group: int | None = None) -> dict[str, Any]:
    """Pod-level security context: non-root, the runtime's default seccomp profile."""
    ctx: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid if fs_group is None else fs_group,
        "fsGroup": uid if fs_group is None else fs_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return ctx


def container_security(read_only_root: bool = True) -> dict[str, Any]:
    """Container-level: no privilege escalation, every capability dropped, read-only root where possible."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    }


def secret_env(env_name: str, key: str) -> dict[str, Any]:
    """An environment variable read from the credentials Secret (never an inline value)."""
    return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": SECRET_KEYS[key]}}}


# --- validation of what a catalog entry or a deploy request may put into a manifest ---------------

CPU_RE = re.compile(r"^(?:[1-9][0-9]{0,3}(?:\.[0-9]{1,3})?|0\.[0-9]{1,3}|[1-9][0-9]{0,5}m)$")
# [registry[:port]/]path[:tag][@sha256:digest], lower-case path components (the reference grammar)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_REGISTRY = rf"(?:{_HOST}(?:\.{_HOST})*(?::[0-9]+)?/)"
_TAG = r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})"
_DIGEST = r"(?:@sha256:[a-f0-9]{64})"
IMAGE_RE = re.compile(rf"^{_REGISTRY}?{_COMPONENT}(?:/{_COMPONENT})*{_TAG}?{_DIGEST}?$")
CPU_HELP = "a Kubernetes CPU quantity such as 500m, 1 or 2.5"
IMAGE_HELP = "an image reference such as highway-spark:0.1.0 or registry.example:5000/team/highway-spark:1.2"


def is_cpu(value: str) -> bool:
    return bool(CPU_RE.match(value))


def is_image(value: str) -> bool:
    return len(value) <= 255 and bool(IMAGE_RE.match(value))
