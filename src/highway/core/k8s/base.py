"""The base stack as Kubernetes objects: namespace, RBAC, config, the stores, Airflow, NetworkPolicies.

One file name (``k8s/base/<name>``) maps to its objects; overlays set image names, storage classes and
sizes through patches, so resources and ``storageClassName: standard`` sit where a patch finds them.
Credentials live in one Secret the operator creates (README); pods read it only through secretKeyRef.

The S3 server is s3proxy (``andrewgaul/s3proxy``) on its filesystem backend, because it is what the local
stack runs and what our s3a + Delta tests pass against (same release, same backend: Kubernetes runs what is
tested); it is actively maintained (releases and a CI running the s3-tests suite), Apache-2.0, one JVM
process that needs no root. MinIO's open-source edition is in maintenance mode and no longer publishes
images. SeaweedFS is the alternative if replication or several nodes are ever needed. A bucket of the
filesystem backend is a directory, so an init container creates ``lake`` before the server starts.
"""

from __future__ import annotations

import json
from typing import Any

from highway.core.k8s import common as k

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
ES_USER = "elastic"
SCHEDULER_HEALTH_PORT = 8974
SCHEDULER_LOG_PORT = 8793  # Airflow serves task logs from the pod that ran them
TRIGGERER_LOG_PORT = 8794
AIRFLOW_COMPONENT = "airflow"
AIRFLOW_WORKERS = ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
CLIENT_COMPONENTS = ("driver", "executor", AIRFLOW_COMPONENT)  # who uses the stores

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
]


# --- small builders -----------------------------------------------------------------------------------


def _unshared(objects: Any) -> Any:
    """A copy with no sub-object shared between two places (pyyaml would write anchors and aliases)."""
    return json.loads(json.dumps(objects))


def _meta(name: str, namespace: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": k.labels(name, component)}


def _svc_host(service: k.Service, namespace: str) -> str:
    return f"{service.name}.{namespace}.svc"


def _resources(cpu: str, memory: str, cpu_limit: str | None = None) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory},
    }


def _env(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def _tcp_probe(port: str, initial: int, period: int, failures: int) -> dict[str, Any]:
    return {
        "tcpSocket": {"port": port},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "failureThreshold": failures,
    }


def _exec_probe(command: list[str], period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": command},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def _container(name: str, image: str, **fields: Any) -> dict[str, Any]:
    """A container with highway's security context: every one here runs with a read-only root."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        **fields,
        "securityContext": k.container_security(read_only_root=True),
    }


def _pod_spec(
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


def _template(name: str, component: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": k.labels(name, component)}, "spec": spec}


def _claim(name: str, size: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": STORAGE_CLASS,
            "resources": {"requests": {"storage": size}},
        },
    }


def _empty(name: str, size: str = "256Mi") -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": size}}


def _mount(name: str, path: str, read_only: bool = False) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    return mount


def _service(service: k.Service, namespace: str, component: str, port_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(service.name, namespace, component),
        "spec": {
            "selector": k.selector(service.name),
            "ports": [{"name": port_name, "port": service.port, "targetPort": port_name, "protocol": "TCP"}],
        },
    }


def _stateful_set(
    service: k.Service, namespace: str, component: str, pod: dict[str, Any], claim: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(service.name, namespace, component),
        "spec": {
            "replicas": 1,
            "serviceName": service.name,
            "selector": {"matchLabels": k.selector(service.name)},
            "template": _template(service.name, component, pod),
            "volumeClaimTemplates": [claim],
        },
    }


# --- environment of pods that use highway's library ---------------------------------------------------


def config_data(namespace: str = k.NAMESPACE) -> dict[str, str]:
    """The non-secret HIGHWAY_* settings, as in-cluster DNS names."""
    return {
        "HIGHWAY_KAFKA_BOOTSTRAP": f"{_svc_host(k.KAFKA, namespace)}:{k.KAFKA.port}",
        "HIGHWAY_S3_ENDPOINT": f"http://{_svc_host(k.S3, namespace)}:{k.S3.port}",
        "HIGHWAY_LAKE_BUCKET": "lake",
        "HIGHWAY_PG_HOST": _svc_host(k.POSTGRES, namespace),
        "HIGHWAY_PG_PORT": str(k.POSTGRES.port),
        "HIGHWAY_PG_USER": "highway",
        "HIGHWAY_PG_DATABASE": "highway",
    }


def library_env(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """Secret settings (secretKeyRef only) and the Elasticsearch URL built from them by Kubernetes:
    ``$(HIGHWAY_ES_PASSWORD)`` expands because that variable comes earlier in the list."""
    es_host = f"{_svc_host(k.ELASTICSEARCH, namespace)}:{k.ELASTICSEARCH.port}"
    return [
        k.secret_env("HIGHWAY_S3_ACCESS_KEY", "s3_access_key"),
        k.secret_env("HIGHWAY_S3_SECRET_KEY", "s3_secret_key"),
        k.secret_env("HIGHWAY_PG_PASSWORD", "pg_password"),
        k.secret_env("HIGHWAY_ES_PASSWORD", "es_password"),
        {"name": "HIGHWAY_ES_URL", "value": f"http://{ES_USER}:$(HIGHWAY_ES_PASSWORD)@{es_host}"},
    ]


def library_env_from() -> list[dict[str, Any]]:
    return [{"configMapRef": {"name": k.CONFIG}}]


# --- the stores ---------------------------------------------------------------------------------------


def _kafka(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """KRaft, one node that is broker and controller (the controller listens on loopback only).

    The image writes its rendered config to /opt/kafka/config and logs to /opt/kafka/logs: both are
    emptyDirs, so the root filesystem stays read-only (the image copies its defaults in on every start).
    """
    env = {
        "CLUSTER_ID": KAFKA_CLUSTER_ID,
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{k.KAFKA.port},CONTROLLER://127.0.0.1:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{_svc_host(k.KAFKA, namespace)}:{k.KAFKA.port}",
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
    container = _container(
        "kafka",
        KAFKA_IMAGE,
        env=_env(env),
        ports=[{"name": "kafka", "containerPort": k.KAFKA.port}],
        resources=_resources("500m", "1Gi", "2"),
        startupProbe=_tcp_probe("kafka", 5, 5, 60),
        livenessProbe=_tcp_probe("kafka", 0, 20, 3),
        readinessProbe=_tcp_probe("kafka", 0, 10, 3),
        volumeMounts=[
            _mount("data", "/var/lib/kafka/data"),
            _mount("config", "/opt/kafka/config"),
            _mount("logs", "/opt/kafka/logs"),
            _mount("tmp", "/tmp"),
        ],
    )
    volumes = [_empty("config", "16Mi"), _empty("logs", "1Gi"), _empty("tmp")]
    pod = _pod_spec(k.SA_INFRA, KAFKA_UID, [container], volumes, terminationGracePeriodSeconds=60)
    return [
        _service(k.KAFKA, namespace, "kafka", "kafka"),
        _stateful_set(k.KAFKA, namespace, "kafka", pod, _claim("data", "10Gi")),
    ]


def _s3(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
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
    bucket = _container(
        "create-bucket",
        S3_IMAGE,
        command=["mkdir", "-p", f"{basedir}/{config_data(namespace)['HIGHWAY_LAKE_BUCKET']}"],
        resources=_resources("50m", "32Mi"),
        volumeMounts=[_mount("data", "/data")],
    )
    server = _container(
        "s3",
        S3_IMAGE,
        env=env,
        ports=[{"name": "s3", "containerPort": k.S3.port}],
        resources=_resources("250m", "768Mi", "2"),
        startupProbe=_tcp_probe("s3", 3, 3, 40),
        livenessProbe=_tcp_probe("s3", 0, 20, 3),
        readinessProbe=_tcp_probe("s3", 0, 10, 3),
        volumeMounts=[_mount("data", "/data"), _mount("tmp", "/tmp")],
    )
    pod = _pod_spec(k.SA_INFRA, S3_UID, [server], [_empty("tmp")], initContainers=[bucket])
    return [
        _service(k.S3, namespace, "s3", "s3"),
        _stateful_set(k.S3, namespace, "s3", pod, _claim("data", "20Gi")),
    ]


def _elasticsearch(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
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
    copy_config = _container(
        "copy-config",
        ELASTICSEARCH_IMAGE,
        command=["cp", "-a", f"{home}/config/.", "/mnt/config/"],
        resources=_resources("100m", "64Mi"),
        volumeMounts=[_mount("config", "/mnt/config")],
    )
    server = _container(
        "elasticsearch",
        ELASTICSEARCH_IMAGE,
        env=[*_env(env), k.secret_env("ELASTIC_PASSWORD", "es_password")],
        ports=[{"name": "http", "containerPort": k.ELASTICSEARCH.port}],
        resources=_resources("500m", "1536Mi", "2"),
        startupProbe=_tcp_probe("http", 10, 5, 60),
        livenessProbe=_tcp_probe("http", 0, 20, 3),
        readinessProbe=_tcp_probe("http", 0, 10, 3),
        volumeMounts=[
            _mount("data", f"{home}/data"),
            _mount("config", f"{home}/config"),
            _mount("logs", f"{home}/logs"),
            _mount("tmp", "/tmp"),
        ],
    )
    volumes = [_empty("config", "64Mi"), _empty("logs", "1Gi"), _empty("tmp", "1Gi")]
    pod = _pod_spec(k.SA_INFRA, ELASTICSEARCH_UID, [server], volumes, initContainers=[copy_config])
    return [
        _service(k.ELASTICSEARCH, namespace, "elasticsearch", "http"),
        _stateful_set(k.ELASTICSEARCH, namespace, "elasticsearch", pod, _claim("data", "10Gi")),
    ]


def _postgres(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    """PostgreSQL 15: user and database ``highway``; the first start also creates Airflow's ``airflow``."""
    user = config_data(namespace)["HIGHWAY_PG_USER"]
    init = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("postgres-init", namespace, "postgres"),
        "data": {"10-airflow.sql": f"CREATE DATABASE airflow OWNER {user};\n"},
    }
    ready = ["pg_isready", "-h", "127.0.0.1", "-U", user, "-d", "highway"]
    server = _container(
        "postgres",
        POSTGRES_IMAGE,
        env=[
            *_env({"POSTGRES_USER": user, "POSTGRES_DB": "highway"}),
            k.secret_env("POSTGRES_PASSWORD", "pg_password"),
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},  # a subdir: no lost+found
        ],
        ports=[{"name": "postgres", "containerPort": k.POSTGRES.port}],
        resources=_resources("250m", "512Mi", "2"),
        startupProbe=_exec_probe(ready, 5, 5, 60),
        livenessProbe=_exec_probe(ready, 20, 5, 3),
        readinessProbe=_exec_probe(ready, 10, 5, 3),
        volumeMounts=[
            _mount("data", "/var/lib/postgresql/data"),
            _mount("run", "/var/run/postgresql"),
            _mount("tmp", "/tmp"),
            _mount("init", "/docker-entrypoint-initdb.d", read_only=True),
        ],
    )
    volumes = [_empty("run", "16Mi"), _empty("tmp"), {"name": "init", "configMap": {"name": "postgres-init"}}]
    pod = _pod_spec(k.SA_INFRA, POSTGRES_UID, [server], volumes, terminationGracePeriodSeconds=60)
    return [
        init,
        _service(k.POSTGRES, namespace, "postgres", "postgres"),
        _stateful_set(k.POSTGRES, namespace, "postgres", pod, _claim("data", "5Gi")),
    ]


# --- Airflow ------------------------------------------------------------------------------------------


def _airflow_env(namespace: str) -> list[dict[str, Any]]:
    """Airflow's settings (metadata DB and keys from the Secret) plus the library env its tasks use."""
    api = f"http://{_svc_host(k.AIRFLOW_API, namespace)}:{k.AIRFLOW_API.port}"
    plain = {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        # task logs are fetched from the pod that ran the task: its IP is reachable, its name is not
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow.utils.net.get_host_ip_address",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/opt/airflow/auth/passwords.json",
        "AIRFLOW_CONFIG": "/tmp/airflow.cfg",  # Airflow writes a default config file: not into the image
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return [
        *_env(plain),
        k.secret_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow_db_url"),
        k.secret_env("AIRFLOW__API__SECRET_KEY", "airflow_secret_key"),
        # the api-server and the workers sign and check execution-API tokens with one shared key
        k.secret_env("AIRFLOW__API_AUTH__JWT_SECRET", "airflow_secret_key"),
        *library_env(namespace),
    ]


_AIRFLOW_MOUNTS = [_mount("tmp", "/tmp"), _mount("logs", "/opt/airflow/logs")]
_AIRFLOW_VOLUMES = [_empty("tmp", "1Gi"), _empty("logs", "2Gi")]


def _airflow_container(name: str, args: list[str], namespace: str, **fields: Any) -> dict[str, Any]:
    mounts = fields.pop("volumeMounts", [])
    return _container(
        name,
        k.AIRFLOW_IMAGE,
        args=args,
        env=_airflow_env(namespace),
        envFrom=library_env_from(),
        volumeMounts=[*_AIRFLOW_MOUNTS, *mounts],
        **fields,
    )


def _wait_for_migrations(namespace: str) -> dict[str, Any]:
    return _airflow_container(
        "wait-for-migrations",
        ["airflow", "db", "check-migrations", "--migration-wait-timeout", "600"],
        namespace,
        resources=_resources("100m", "512Mi", "1"),
    )


def _airflow_deployment(name: str, namespace: str, container: dict[str, Any], **pod: Any) -> dict[str, Any]:
    """One Airflow component, replicas 1, recreated (never two schedulers at once)."""
    sa = pod.pop("sa", k.SA_AIRFLOW)
    volumes = [*_AIRFLOW_VOLUMES, *pod.pop("volumes", [])]
    init = [*pod.pop("initContainers", []), _wait_for_migrations(namespace)]
    spec = _pod_spec(sa, k.AIRFLOW_UID, [container], volumes, initContainers=init, **pod)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, AIRFLOW_COMPONENT),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": k.selector(name)},
            "template": _template(name, AIRFLOW_COMPONENT, spec),
        },
    }


def _api_server(namespace: str) -> dict[str, Any]:
    """The UI and REST/execution API; no Kubernetes token. The admin password file comes from the Secret."""
    health = {"httpGet": {"path": "/api/v2/monitor/health", "port": "api"}, "periodSeconds": 20}
    container = _airflow_container(
        "api-server",
        ["airflow", "api-server", "--port", str(k.AIRFLOW_API.port)],
        namespace,
        ports=[{"name": "api", "containerPort": k.AIRFLOW_API.port}],
        resources=_resources("250m", "1Gi", "1"),
        startupProbe={**health, "periodSeconds": 5, "failureThreshold": 60},
        livenessProbe={**health, "timeoutSeconds": 10, "failureThreshold": 5},
        readinessProbe={**health, "timeoutSeconds": 10, "failureThreshold": 3},
        volumeMounts=[_mount("auth", "/opt/airflow/auth")],
    )
    write = (
        "import json, os; json.dump({'admin': os.environ['ADMIN_PASSWORD']}, open(os.environ['OUT'], 'w'))"
    )
    passwords = _container(
        "admin-password",
        k.AIRFLOW_IMAGE,
        command=["python", "-c", write],
        env=[
            k.secret_env("ADMIN_PASSWORD", "airflow_admin_password"),
            {"name": "OUT", "value": "/opt/airflow/auth/passwords.json"},
        ],
        resources=_resources("50m", "64Mi"),
        volumeMounts=[_mount("auth", "/opt/airflow/auth")],
    )
    return _airflow_deployment(
        k.AIRFLOW_API.name,
        namespace,
        container,
        sa=k.SA_INFRA,
        volumes=[_empty("auth", "1Mi")],
        initContainers=[passwords],
    )


def _job_check(job_type: str) -> dict[str, Any]:
    return _exec_probe(["airflow", "jobs", "check", "--job-type", job_type, "--local"], 60, 30, 5)


def _workers(namespace: str) -> list[dict[str, Any]]:
    """Scheduler (runs the tasks, LocalExecutor), dag-processor, triggerer: they call the Kubernetes API."""
    scheduler = _airflow_container(
        "scheduler",
        ["airflow", "scheduler"],
        namespace,
        ports=[
            {"name": "logs", "containerPort": SCHEDULER_LOG_PORT},
            {"name": "health", "containerPort": SCHEDULER_HEALTH_PORT},
        ],
        resources=_resources("500m", "2Gi", "2"),
        livenessProbe={
            "httpGet": {"path": "/health", "port": "health"},
            "initialDelaySeconds": 30,
            "periodSeconds": 30,
            "timeoutSeconds": 10,
            "failureThreshold": 5,
        },
    )
    dag_processor = _airflow_container(
        "dag-processor",
        ["airflow", "dag-processor"],
        namespace,
        resources=_resources("250m", "1Gi", "1"),
        livenessProbe=_job_check("DagProcessorJob"),
    )
    triggerer = _airflow_container(
        "triggerer",
        ["airflow", "triggerer"],
        namespace,
        ports=[{"name": "logs", "containerPort": TRIGGERER_LOG_PORT}],
        resources=_resources("250m", "1Gi", "1"),
        livenessProbe=_job_check("TriggererJob"),
    )
    containers = zip(AIRFLOW_WORKERS, (scheduler, dag_processor, triggerer), strict=True)
    return [_airflow_deployment(name, namespace, c, token=True) for name, c in containers]


def _migrate_job(namespace: str) -> dict[str, Any]:
    name = "airflow-db-migrate"
    container = _airflow_container(
        "migrate", ["airflow", "db", "migrate"], namespace, resources=_resources("250m", "1Gi", "1")
    )
    pod = _pod_spec(k.SA_INFRA, k.AIRFLOW_UID, [container], list(_AIRFLOW_VOLUMES), restartPolicy="OnFailure")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(name, namespace, AIRFLOW_COMPONENT),
        "spec": {
            "backoffLimit": 6,
            "ttlSecondsAfterFinished": 600,  # gone before the next apply, which migrates again (idempotent)
            "template": _template(name, AIRFLOW_COMPONENT, pod),
        },
    }


def _airflow(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    return [
        _migrate_job(namespace),
        _service(k.AIRFLOW_API, namespace, AIRFLOW_COMPONENT, "api"),
        _api_server(namespace),
        *_workers(namespace),
    ]


def demo_producer_job(namespace: str = k.NAMESPACE, count: int = 20000) -> dict[str, Any]:
    """``highway produce --count N`` once, in the apps image, with the library env."""
    name = "demo-producer"
    container = _container(
        "producer",
        k.SPARK_IMAGE,
        command=["highway", "produce", "--count", str(count)],
        env=[{"name": "HOME", "value": "/tmp/home"}, *library_env(namespace)],
        envFrom=library_env_from(),
        resources=_resources("250m", "512Mi", "1"),
        volumeMounts=[_mount("tmp", "/tmp")],
    )
    pod = _pod_spec(k.SA_INFRA, k.SPARK_UID, [container], [_empty("tmp")], restartPolicy="Never")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(name, namespace, "producer"),
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 3600,
            "template": _template(name, "producer", pod),
        },
    }
    return dict(_unshared(job))


# --- NetworkPolicies ----------------------------------------------------------------------------------


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
        "metadata": _meta(name, namespace, "network"),
        "spec": {"podSelector": pods, "policyTypes": list(types), **rules},
    }


def _store_policy(service: k.Service, namespace: str, *clients: str) -> dict[str, Any]:
    rule = {"from": _clients(*clients), "ports": _tcp(service.port)}
    return _policy(service.name, namespace, _pods(names=(service.name,)), ingress=[rule])


def _network_policies(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
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


# --- namespace, RBAC, config, the whole base ----------------------------------------------------------


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
    meta = _meta(name, namespace, "rbac")
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
        account["metadata"] = _meta(sa, namespace, "rbac")
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
        "metadata": _meta(k.CONFIG, namespace, "config"),
        "data": config_data(namespace),
    }


def base_objects(namespace: str = k.NAMESPACE) -> dict[str, list[dict[str, Any]]]:
    """``k8s/base/<file>`` -> its objects, in apply order within each file."""
    files: dict[str, list[dict[str, Any]]] = {
        "namespace.yaml": [_namespace(namespace)],
        "rbac.yaml": _rbac(namespace),
        "config.yaml": [_config(namespace)],
        "network-policies.yaml": _network_policies(namespace),
        "kafka.yaml": _kafka(namespace),
        "s3.yaml": _s3(namespace),
        "elasticsearch.yaml": _elasticsearch(namespace),
        "postgres.yaml": _postgres(namespace),
        "airflow.yaml": _airflow(namespace),
    }
    return {name: _unshared(objects) for name, objects in files.items()}
