"""Airflow as Kubernetes objects: the migration Job, the api-server and its Service, scheduler, dag-processor
and triggerer Deployments (LocalExecutor: the scheduler runs the tasks, which call the Kubernetes API).
"""

from __future__ import annotations

from typing import Any

from highway.core.k8s import _workload as w
from highway.core.k8s import common as k
from highway.core.k8s.env import ES_USER, config_data, library_env, library_env_from

SCHEDULER_HEALTH_PORT = 8974
SCHEDULER_LOG_PORT = 8793  # Airflow serves task logs from the pod that ran them
TRIGGERER_LOG_PORT = 8794
AIRFLOW_COMPONENT = "airflow"
AIRFLOW_WORKERS = ("airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def airflow_connections(namespace: str) -> dict[str, str]:
    """``AIRFLOW_CONN_HIGHWAY_*`` (see ``highway.ops.connections``) for the cluster's services and the
    in-cluster runtime. Secrets are not in the manifest: ``$(HIGHWAY_…)`` makes Kubernetes expand the
    Secret-backed variables listed before these (create-secret.sh's values are URL-safe, so JSON-safe)."""
    from highway.connection import Connection
    from highway.ops.connections import airflow_env, runtime_connection

    data = config_data(namespace)
    es_host = f"{w.svc_host(k.ELASTICSEARCH, namespace)}:{k.ELASTICSEARCH.port}"
    conn = Connection(
        kafka_bootstrap=data["HIGHWAY_KAFKA_BOOTSTRAP"],
        s3_endpoint=data["HIGHWAY_S3_ENDPOINT"],
        s3_access_key="$(HIGHWAY_S3_ACCESS_KEY)",
        s3_secret_key="$(HIGHWAY_S3_SECRET_KEY)",
        lake_bucket=data["HIGHWAY_LAKE_BUCKET"],
        pg_host=data["HIGHWAY_PG_HOST"],
        pg_port=int(data["HIGHWAY_PG_PORT"]),
        pg_user=data["HIGHWAY_PG_USER"],
        pg_password="$(HIGHWAY_PG_PASSWORD)",
        pg_database=data["HIGHWAY_PG_DATABASE"],
        es_url=f"http://{ES_USER}:$(HIGHWAY_ES_PASSWORD)@{es_host}",
    )
    return airflow_env(conn, runtime_connection("kubernetes", namespace=namespace, in_cluster=True))


def _airflow_env(namespace: str) -> list[dict[str, Any]]:
    """Airflow's settings (metadata DB and keys from the Secret) plus the library env its tasks use."""
    api = f"http://{w.svc_host(k.AIRFLOW_API, namespace)}:{k.AIRFLOW_API.port}"
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
        *w.env(plain),
        k.secret_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow_db_url"),
        k.secret_env("AIRFLOW__API__SECRET_KEY", "airflow_secret_key"),
        # the api-server and the workers sign and check execution-API tokens with one shared key
        k.secret_env("AIRFLOW__API_AUTH__JWT_SECRET", "airflow_secret_key"),
        *library_env(namespace),
        *w.env(airflow_connections(namespace)),  # after the Secret refs they expand
    ]


_AIRFLOW_MOUNTS = [w.mount("tmp", "/tmp"), w.mount("logs", "/opt/airflow/logs")]
_AIRFLOW_VOLUMES = [w.empty("tmp", "1Gi"), w.empty("logs", "2Gi")]


def _airflow_container(name: str, args: list[str], namespace: str, **fields: Any) -> dict[str, Any]:
    mounts = fields.pop("volumeMounts", [])
    return w.container(
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
        resources=w.resources("100m", "512Mi", "1"),
    )


def _airflow_deployment(name: str, namespace: str, container: dict[str, Any], **pod: Any) -> dict[str, Any]:
    """One Airflow component, replicas 1, recreated (never two schedulers at once)."""
    sa = pod.pop("sa", k.SA_AIRFLOW)
    volumes = [*_AIRFLOW_VOLUMES, *pod.pop("volumes", [])]
    init = [*pod.pop("initContainers", []), _wait_for_migrations(namespace)]
    spec = w.pod_spec(sa, k.AIRFLOW_UID, [container], volumes, initContainers=init, **pod)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": w.meta(name, namespace, AIRFLOW_COMPONENT),
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": k.selector(name)},
            "template": w.template(name, AIRFLOW_COMPONENT, spec),
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
        resources=w.resources("250m", "1Gi", "1"),
        startupProbe={**health, "periodSeconds": 5, "failureThreshold": 60},
        livenessProbe={**health, "timeoutSeconds": 10, "failureThreshold": 5},
        readinessProbe={**health, "timeoutSeconds": 10, "failureThreshold": 3},
        volumeMounts=[w.mount("auth", "/opt/airflow/auth")],
    )
    write = (
        "import json, os; json.dump({'admin': os.environ['ADMIN_PASSWORD']}, open(os.environ['OUT'], 'w'))"
    )
    passwords = w.container(
        "admin-password",
        k.AIRFLOW_IMAGE,
        command=["python", "-c", write],
        env=[
            k.secret_env("ADMIN_PASSWORD", "airflow_admin_password"),
            {"name": "OUT", "value": "/opt/airflow/auth/passwords.json"},
        ],
        resources=w.resources("50m", "64Mi"),
        volumeMounts=[w.mount("auth", "/opt/airflow/auth")],
    )
    return _airflow_deployment(
        k.AIRFLOW_API.name,
        namespace,
        container,
        sa=k.SA_INFRA,
        volumes=[w.empty("auth", "1Mi")],
        initContainers=[passwords],
    )


def _job_check(job_type: str) -> dict[str, Any]:
    return w.exec_probe(["airflow", "jobs", "check", "--job-type", job_type, "--local"], 60, 30, 5)


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
        resources=w.resources("500m", "2Gi", "2"),
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
        resources=w.resources("250m", "1Gi", "1"),
        livenessProbe=_job_check("DagProcessorJob"),
    )
    triggerer = _airflow_container(
        "triggerer",
        ["airflow", "triggerer"],
        namespace,
        ports=[{"name": "logs", "containerPort": TRIGGERER_LOG_PORT}],
        resources=w.resources("250m", "1Gi", "1"),
        livenessProbe=_job_check("TriggererJob"),
    )
    containers = zip(AIRFLOW_WORKERS, (scheduler, dag_processor, triggerer), strict=True)
    return [_airflow_deployment(name, namespace, c, token=True) for name, c in containers]


def _migrate_job(namespace: str) -> dict[str, Any]:
    name = "airflow-db-migrate"
    container = _airflow_container(
        "migrate", ["airflow", "db", "migrate"], namespace, resources=w.resources("250m", "1Gi", "1")
    )
    pod = w.pod_spec(
        k.SA_INFRA, k.AIRFLOW_UID, [container], list(_AIRFLOW_VOLUMES), restartPolicy="OnFailure"
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": w.meta(name, namespace, AIRFLOW_COMPONENT),
        "spec": {
            "backoffLimit": 6,
            "ttlSecondsAfterFinished": 600,  # gone before the next apply, which migrates again (idempotent)
            "template": w.template(name, AIRFLOW_COMPONENT, pod),
        },
    }


def airflow_objects(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    return [
        _migrate_job(namespace),
        w.service(k.AIRFLOW_API, namespace, AIRFLOW_COMPONENT, "api"),
        _api_server(namespace),
        *_workers(namespace),
    ]
