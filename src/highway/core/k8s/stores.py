"""The stores of the base stack as Kubernetes objects: Kafka, S3 (s3proxy), Elasticsearch, PostgreSQL.

Each is one Service and one single-replica StatefulSet with a volume claim of storage class
``standard``, where the overlays' patches find it; passwords and keys come from the Secret
(secretKeyRef only).

The S3 server is s3proxy (``andrewgaul/s3proxy``) on its filesystem backend, because it is what the local
stack runs and what our s3a + Delta tests pass against (same release, same backend: Kubernetes runs what is
tested); it is actively maintained (releases and a CI running the s3-tests suite), Apache-2.0, one JVM
process that needs no root. MinIO's open-source edition is in maintenance mode and no longer publishes
images. SeaweedFS is the alternative if replication or several nodes are ever needed. A bucket of the
filesystem backend is a directory, so an init container creates ``lake`` before the server starts.
"""

from __future__ import annotations

from typing import Any

from highway.core.k8s import _workload as w
from highway.core.k8s import common as k
from highway.core.k8s.env import config_data

KAFKA_IMAGE = "apache/kafka:4.2.0"  # the broker version the local stack runs (tools/maven/kafka)
S3_IMAGE = "andrewgaul/s3proxy:s3proxy-4.0.0"  # the s3proxy release the local stack runs
ELASTICSEARCH_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch:9.2.0"
POSTGRES_IMAGE = "postgres:15.14"
KAFKA_UID = 1000  # appuser of the apache/kafka image
ELASTICSEARCH_UID = 1000  # elasticsearch user of the official image
POSTGRES_UID = 999  # postgres user of the Debian-based official image
S3_UID = 1000  # the s3proxy image has no user of its own: any non-root uid works
KAFKA_CLUSTER_ID = "7rHPeXTpCbyH9su2EoTjNQ"  # fixed: one cluster, formatted once on its volume
KAFKA_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # as the local stack: apps send > 1 MiB events to their DLQ
STORAGE_CLASS = "standard"


def _claim(name: str, size: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": STORAGE_CLASS,
            "resources": {"requests": {"storage": size}},
        },
    }


def _stateful_set(
    service: k.Service, namespace: str, component: str, pod: dict[str, Any], claim: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": w.meta(service.name, namespace, component),
        "spec": {
            "replicas": 1,
            "serviceName": service.name,
            "selector": {"matchLabels": k.selector(service.name)},
            "template": w.template(service.name, component, pod),
            "volumeClaimTemplates": [claim],
        },
    }


def kafka_objects(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """KRaft, one node that is broker and controller (the controller listens on loopback only).

    The image writes its rendered config to /opt/kafka/config and logs to /opt/kafka/logs: both are
    emptyDirs, so the root filesystem stays read-only (the image copies its defaults in on every start).
    """
    env = {
        "CLUSTER_ID": KAFKA_CLUSTER_ID,
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{k.KAFKA.port},CONTROLLER://127.0.0.1:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{w.svc_host(k.KAFKA, namespace)}:{k.KAFKA.port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:9093",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data/logs",
        "KAFKA_NUM_PARTITIONS": "4",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_MESSAGE_MAX_BYTES": str(KAFKA_MAX_MESSAGE_BYTES),
        "KAFKA_REPLICA_FETCH_MAX_BYTES": str(KAFKA_MAX_MESSAGE_BYTES),
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_HEAP_OPTS": "-Xms512m -Xmx512m",
    }
    container = w.container(
        "kafka",
        KAFKA_IMAGE,
        env=w.env(env),
        ports=[{"name": "kafka", "containerPort": k.KAFKA.port}],
        resources=w.resources("500m", "1Gi", "2"),
        startupProbe=w.tcp_probe("kafka", 5, 5, 60),
        livenessProbe=w.tcp_probe("kafka", 0, 20, 3),
        readinessProbe=w.tcp_probe("kafka", 0, 10, 3),
        volumeMounts=[
            w.mount("data", "/var/lib/kafka/data"),
            w.mount("config", "/opt/kafka/config"),
            w.mount("logs", "/opt/kafka/logs"),
            w.mount("tmp", "/tmp"),
        ],
    )
    volumes = [w.empty("config", "16Mi"), w.empty("logs", "1Gi"), w.empty("tmp")]
    pod = w.pod_spec(k.SA_INFRA, KAFKA_UID, [container], volumes, terminationGracePeriodSeconds=60)
    return [
        w.service(k.KAFKA, namespace, "kafka", "kafka"),
        _stateful_set(k.KAFKA, namespace, "kafka", pod, _claim("data", "10Gi")),
    ]


def s3_objects(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """s3proxy over a directory of the volume; keys from the Secret; the ``lake`` bucket made at start."""
    basedir = "/data/blobs"
    env = [
        {"name": "S3PROXY_ENDPOINT", "value": f"http://0.0.0.0:{k.S3.port}"},
        {"name": "S3PROXY_AUTHORIZATION", "value": "aws-v2-or-v4"},
        k.secret_env("S3PROXY_IDENTITY", "s3_access_key"),
        k.secret_env("S3PROXY_CREDENTIAL", "s3_secret_key"),
        {"name": "JCLOUDS_PROVIDER", "value": "filesystem-nio2"},
        {"name": "JCLOUDS_FILESYSTEM_BASEDIR", "value": basedir},
        {"name": "S3PROXY_JAVA_OPTS", "value": "-Xmx512m"},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    bucket = w.container(
        "create-bucket",
        S3_IMAGE,
        command=["mkdir", "-p", f"{basedir}/{config_data(namespace)['HIGHWAY_LAKE_BUCKET']}"],
        resources=w.resources("50m", "32Mi"),
        volumeMounts=[w.mount("data", "/data")],
    )
    server = w.container(
        "s3",
        S3_IMAGE,
        env=env,
        ports=[{"name": "s3", "containerPort": k.S3.port}],
        resources=w.resources("250m", "768Mi", "2"),
        startupProbe=w.tcp_probe("s3", 3, 3, 40),
        livenessProbe=w.tcp_probe("s3", 0, 20, 3),
        readinessProbe=w.tcp_probe("s3", 0, 10, 3),
        volumeMounts=[w.mount("data", "/data"), w.mount("tmp", "/tmp")],
    )
    pod = w.pod_spec(k.SA_INFRA, S3_UID, [server], [w.empty("tmp")], initContainers=[bucket])
    return [
        w.service(k.S3, namespace, "s3", "s3"),
        _stateful_set(k.S3, namespace, "s3", pod, _claim("data", "20Gi")),
    ]


def elasticsearch_objects(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """Single node, security on (user ``elastic``, password from the Secret), plain HTTP in the cluster.

    ``node.store.allow_mmap: false`` replaces the vm.max_map_count sysctl (no privileged init container).
    The image writes its keystore into its config directory: an init container copies the shipped config
    into an emptyDir mounted there, so the root filesystem stays read-only.
    """
    home = "/usr/share/elasticsearch"
    env = {
        "cluster.name": "highway",
        "discovery.type": "single-node",
        "node.store.allow_mmap": "false",
        "xpack.security.enabled": "true",
        "xpack.security.http.ssl.enabled": "false",
        "xpack.security.transport.ssl.enabled": "false",
        "ES_JAVA_OPTS": "-Xms512m -Xmx512m",
    }
    copy_config = w.container(
        "copy-config",
        ELASTICSEARCH_IMAGE,
        command=["cp", "-a", f"{home}/config/.", "/mnt/config/"],
        resources=w.resources("100m", "64Mi"),
        volumeMounts=[w.mount("config", "/mnt/config")],
    )
    server = w.container(
        "elasticsearch",
        ELASTICSEARCH_IMAGE,
        env=[*w.env(env), k.secret_env("ELASTIC_PASSWORD", "es_password")],
        ports=[{"name": "http", "containerPort": k.ELASTICSEARCH.port}],
        resources=w.resources("500m", "1536Mi", "2"),
        startupProbe=w.tcp_probe("http", 10, 5, 60),
        livenessProbe=w.tcp_probe("http", 0, 20, 3),
        readinessProbe=w.tcp_probe("http", 0, 10, 3),
        volumeMounts=[
            w.mount("data", f"{home}/data"),
            w.mount("config", f"{home}/config"),
            w.mount("logs", f"{home}/logs"),
            w.mount("tmp", "/tmp"),
        ],
    )
    volumes = [w.empty("config", "64Mi"), w.empty("logs", "1Gi"), w.empty("tmp", "1Gi")]
    pod = w.pod_spec(k.SA_INFRA, ELASTICSEARCH_UID, [server], volumes, initContainers=[copy_config])
    return [
        w.service(k.ELASTICSEARCH, namespace, "elasticsearch", "http"),
        _stateful_set(k.ELASTICSEARCH, namespace, "elasticsearch", pod, _claim("data", "10Gi")),
    ]


def postgres_objects(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """PostgreSQL 15: user and database ``highway``; the first start also creates Airflow's ``airflow``."""
    user = config_data(namespace)["HIGHWAY_PG_USER"]
    init = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": w.meta("postgres-init", namespace, "postgres"),
        "data": {"10-airflow.sql": f"CREATE DATABASE airflow OWNER {user};\n"},
    }
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", user, "-d", "highway"]
    server = w.container(
        "postgres",
        POSTGRES_IMAGE,
        env=[
            *w.env({"POSTGRES_USER": user, "POSTGRES_DB": "highway"}),
            k.secret_env("POSTGRES_PASSWORD", "pg_password"),
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},  # a subdir: no lost+found
        ],
        ports=[{"name": "postgres", "containerPort": k.POSTGRES.port}],
        resources=w.resources("250m", "512Mi", "2"),
        startupProbe=w.exec_probe(ready, 5, 5, 60),
        livenessProbe=w.exec_probe(ready, 20, 5, 3),
        readinessProbe=w.exec_probe(ready, 10, 5, 3),
        volumeMounts=[
            w.mount("data", "/var/lib/postgresql/data"),
            w.mount("run", "/var/run/postgresql"),
            w.mount("tmp", "/tmp"),
            w.mount("init", "/docker-entrypoint-initdb.d", read_only=True),
        ],
    )
    volumes = [
        w.empty("run", "16Mi"),
        w.empty("tmp"),
        {"name": "init", "configMap": {"name": "postgres-init"}},
    ]
    pod = w.pod_spec(k.SA_INFRA, POSTGRES_UID, [server], volumes, terminationGracePeriodSeconds=60)
    return [
        init,
        w.service(k.POSTGRES, namespace, "postgres", "postgres"),
        _stateful_set(k.POSTGRES, namespace, "postgres", pod, _claim("data", "5Gi")),
    ]
