"""Apache Airflow 3's four components as local processes (never ``airflow standalone``).

api-server, scheduler (LocalExecutor), dag-processor and triggerer share one AIRFLOW_HOME
(``<home>/airflow``) and the ``airflow.cfg`` written there on every start; their metadata database is
``airflow`` in the stack's PostgreSQL. Starting the api-server creates that database and runs
``airflow db migrate`` first (once per Airflow version); the other three need the api-server.

The DAGs come from the repo's ``dags/`` folder, or from the folders in ``HIGHWAY_AIRFLOW_DAGS``
(``os.pathsep``-separated; each one a DAG bundle). The functions above the classes are pure.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from highway import connection
from highway.errors import StackError
from highway.settings import Ports, repo_root
from highway.stack.process import run_once, start_detached
from highway.stack.service import Service

AIRFLOW_DIR = "airflow"  # AIRFLOW_HOME, inside the stack's state dir
ADMIN_USER = "admin"
DATABASE = "airflow"  # the metadata database and its role in the stack's PostgreSQL
DAGS_ENV = "HIGHWAY_AIRFLOW_DAGS"
HEALTH_PATH = "/api/v2/monitor/health"
FIRST_BUNDLE = "dags-folder"  # Airflow's own name for the dags folder bundle
LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


@dataclass(frozen=True)
class AirflowSettings:
    """What the configuration of one stack's Airflow depends on."""

    airflow_home: Path
    ports: Ports
    dags_folders: tuple[Path, ...]
    plugins_folder: Path
    credentials: Mapping[str, str]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.of('airflow_api')}"

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json"

    @property
    def config_file(self) -> Path:
        return self.airflow_home / "airflow.cfg"


def dags_folders(value: str | None, repo: Path) -> tuple[Path, ...]:
    """The DAG folders: ``HIGHWAY_AIRFLOW_DAGS`` (``os.pathsep``-separated) or the repo's ``dags/``."""
    folders = tuple(Path(part).absolute() for part in (value or "").split(os.pathsep) if part.strip())
    return folders or (repo / "dags",)


def dag_bundles(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """One local DAG bundle per folder: the first is Airflow's ``dags-folder``, the others by folder name."""
    names = [FIRST_BUNDLE, *(folder.name for folder in folders[1:])]
    if len(set(names)) != len(names):
        raise StackError(f"{DAGS_ENV}: two DAG folders would share a bundle name: {', '.join(names)}")
    return [
        {"name": name, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(folder)}}
        for name, folder in zip(names, folders, strict=True)
    ]


def metadata_url(password: str, pg_port: int, driver: str = "psycopg") -> str:
    """Airflow's metadata database; psycopg 3 for the sync and the async engine (no asyncpg here)."""
    return f"postgresql+{driver}://{DATABASE}:{quote(password, safe='')}@127.0.0.1:{pg_port}/{DATABASE}"


def airflow_config(settings: AirflowSettings) -> dict[str, dict[str, str]]:
    """airflow.cfg by section: LocalExecutor, PostgreSQL metadata, simple auth with one admin, stack ports."""
    creds, ports = settings.credentials, settings.ports
    return {
        "core": {
            "executor": "LocalExecutor",
            "dags_folder": str(settings.dags_folders[0]),
            "plugins_folder": str(settings.plugins_folder),
            "load_examples": "False",
            "dags_are_paused_at_creation": "True",
            "parallelism": "4",
            "fernet_key": creds["airflow_fernet_key"],
            "execution_api_server_url": f"{settings.api_url}/execution/",
            "auth_manager": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "simple_auth_manager_users": f"{ADMIN_USER}:admin",
            "simple_auth_manager_passwords_file": str(settings.passwords_file),
        },
        "database": {
            "sql_alchemy_conn": metadata_url(creds["airflow_db_password"], ports.of("postgres")),
            "sql_alchemy_conn_async": metadata_url(
                creds["airflow_db_password"], ports.of("postgres"), "psycopg_async"
            ),
        },
        "api": {
            "host": "127.0.0.1",
            "port": str(ports.of("airflow_api")),
            "workers": "1",
            "base_url": settings.api_url,
            "secret_key": creds["airflow_api_secret_key"],
        },
        "api_auth": {"jwt_secret": creds["airflow_jwt_secret"]},
        "dag_processor": {
            "refresh_interval": "10",
            "min_file_process_interval": "30",
            "parsing_processes": "1",
            "dag_bundle_config_list": json.dumps(dag_bundles(settings.dags_folders)),
        },
        "logging": {
            "base_log_folder": str(settings.airflow_home / "logs"),
            "worker_log_server_port": str(ports.of("airflow_worker_log")),
            "trigger_log_server_port": str(ports.of("airflow_trigger_log")),
        },
        "scheduler": {"enable_health_check": "False"},
    }


def render_cfg(config: Mapping[str, Mapping[str, str]]) -> str:
    lines = ["# written by highway stack on every start (secrets: mode 600)"]
    for section, options in config.items():
        lines += ["", f"[{section}]", *(f"{key} = {value}" for key, value in options.items())]
    return "\n".join(lines) + "\n"


def airflow_environ(
    base: Mapping[str, str],
    settings: AirflowSettings,
    home: Path,
    connections: Mapping[str, str],
    python: str,
) -> dict[str, str]:
    """The environment of every Airflow process: its home, the stack's settings, highway's connections."""
    return {
        **base,
        "AIRFLOW_HOME": str(settings.airflow_home),
        "AIRFLOW_CONFIG": str(settings.config_file),
        "HIGHWAY_HOME": str(home),
        "HIGHWAY_PORT_BASE": str(settings.ports.base),
        "HIGHWAY_REPO": str(repo_root()),
        "PYSPARK_PYTHON": python,
        **connections,
    }


def component_healthy(health: Mapping[str, Any], section: str, since: float) -> bool:
    """A component's section of the api-server's health answer is healthy, with a heartbeat after ``since``.

    ``since`` (epoch seconds) is when the process was started, so a heartbeat left in the database by the
    process before it does not count.
    """
    part = health.get(section) or {}
    beat = part.get(f"latest_{section}_heartbeat")
    if part.get("status") != "healthy" or not beat:
        return False
    return datetime.fromisoformat(str(beat)).timestamp() >= since


def admin_login(credentials: Mapping[str, str]) -> tuple[str, str]:
    return ADMIN_USER, credentials.get("airflow_admin_password", "")


# --- the services ---------------------------------------------------------------------------


def airflow_binary() -> str:
    path = Path(sys.executable).with_name("airflow")
    if not path.exists():
        raise StackError(f"airflow is not installed next to {sys.executable}; run `bash tools/venv.sh`")
    return str(path)


def fetch_health(api_url: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The api-server's health answer, or None while it does not answer."""
    try:
        with urllib.request.urlopen(api_url + HEALTH_PATH, timeout=timeout) as answer:
            data: dict[str, Any] = json.loads(answer.read())
            return data
    except (OSError, ValueError):
        return None


class AirflowService(Service):
    """What the four components share: home, config, environment, health via the api-server."""

    command: ClassVar[str]  # the airflow subcommand
    section: ClassVar[str]  # its part of the api-server's health answer
    start_timeout = 240.0  # 2 cores: an Airflow process takes 20-60 s to import and heartbeat

    @property
    def dir(self) -> Path:
        return self.ctx.layout.service_dir(AIRFLOW_DIR)

    @property
    def port(self) -> int:
        return next(iter(self.ctx.ports.values()), 0)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port} (logs)" if self.port else "-"

    @property
    def settings(self) -> AirflowSettings:
        folders = dags_folders(os.environ.get(DAGS_ENV), repo_root())
        return AirflowSettings(
            self.dir, Ports(self.ctx.port_base), folders, repo_root() / "plugins", self.ctx.credentials
        )

    @property
    def workdir(self) -> Path:
        return self.dir

    def marker(self) -> str:
        return str(self.dir / f"{self.name}.pid")

    def install(self) -> None:
        self.airflow = airflow_binary()

    def prepare(self) -> None:
        settings = self.settings
        for folder in (self.dir, self.dir / "logs", self.workdir):
            folder.mkdir(parents=True, exist_ok=True)
        missing = [str(folder) for folder in settings.dags_folders if not folder.is_dir()]
        if missing:
            raise StackError(f"{self.name}: DAG folder {missing[0]} does not exist (set by {DAGS_ENV}?)")
        _write_private(settings.config_file, render_cfg(airflow_config(settings)))
        _write_private(settings.passwords_file, json.dumps(dict([admin_login(self.ctx.credentials)])) + "\n")

    def environ(self) -> dict[str, str]:
        from highway.ops.connections import airflow_env, runtime_connection

        home = self.ctx.layout.home
        conns = airflow_env(connection.load(home), runtime_connection("local", home=str(home)))
        return airflow_environ(os.environ, self.settings, home, conns, sys.executable)

    def options(self) -> list[str]:
        return []

    def launch(self) -> int:
        argv = [self.airflow, self.command, *self.options(), "--pid", self.marker()]
        return start_detached(argv, self.log_file, env=self.environ(), cwd=self.workdir)

    def healthy(self) -> bool:
        health = fetch_health(self.settings.api_url)
        if health is None:
            return False
        try:
            since = self.pid_file.stat().st_mtime
        except FileNotFoundError:
            return False
        return component_healthy(health, self.section, since)


class AirflowApi(AirflowService):
    name = "airflow-api"
    command = "api-server"
    section = "metadatabase"

    def options(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]

    @property
    def workdir(self) -> Path:
        return self.dir / "api-server"

    def marker(self) -> str:
        # the api-server rewrites its process title: it is recognised by its working directory
        return str(self.workdir)

    @property
    def address(self) -> str:
        return self.settings.api_url

    def prepare(self) -> None:
        super().prepare()
        created = self._ensure_database()
        stamp = self.dir / "migrated"
        version = metadata.version("apache-airflow-core")
        if created or not stamp.exists() or stamp.read_text().strip() != version:
            self.step(f"airflow db migrate (Airflow {version}; once per version, ~20 s)")
            run_once([self.airflow, "db", "migrate"], "airflow db migrate", timeout=900, env=self.environ())
            stamp.write_text(version + "\n")

    def _ensure_database(self) -> bool:
        """Role and database ``airflow`` in the stack's PostgreSQL (password kept in sync); created?"""
        import psycopg
        from psycopg import sql

        try:
            conn = psycopg.connect(
                host="127.0.0.1",
                port=self.settings.ports.of("postgres"),
                user="postgres",
                password=self.secret("pg_superuser_password"),
                dbname="postgres",
                connect_timeout=5,
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StackError(f"{self.name}: PostgreSQL of this stack does not answer ({first})") from None
        with conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [DATABASE]).fetchone()
            conn.execute(
                sql.SQL(("ALTER" if exists else "CREATE") + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(DATABASE), sql.Literal(self.secret("airflow_db_password"))
                )
            )
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                return False
            self.step(f"creating role and database {DATABASE!r} for Airflow's metadata")
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DATABASE), sql.Identifier(DATABASE)
                )
            )
        return True

    def healthy(self) -> bool:
        health = fetch_health(self.settings.api_url)
        return health is not None and (health.get("metadatabase") or {}).get("status") == "healthy"


class AirflowScheduler(AirflowService):
    name = "airflow-scheduler"
    command = "scheduler"
    section = "scheduler"


class AirflowDagProcessor(AirflowService):
    name = "airflow-dag-processor"
    command = "dag-processor"
    section = "dag_processor"


class AirflowTriggerer(AirflowService):
    name = "airflow-triggerer"
    command = "triggerer"
    section = "triggerer"


def _write_private(path: Path, text: str) -> None:
    """Write atomically with mode 600 (the components prepare side by side)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(text)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)
