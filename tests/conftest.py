"""Shared fixtures: ONE real local stack for the whole test session, started by the tests.

The stack gets its own state dir and port base, so it never touches a demo stack. Its settings are
exported (HIGHWAY_HOME, HIGHWAY_PORT_BASE) so subprocesses (`highway run`, `highway produce`) find it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hwtest import free_port_base

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from highway.connection import Connection
    from highway.stack import Stack
    from highway.stack.airflow_api import AirflowClient
    from hwtest import DagApps


TEST_PORT_BASE = free_port_base(int(os.environ.get("HIGHWAY_TEST_PORT_BASE", "21000")))


@pytest.fixture(scope="session")
def stack_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="highway-test-"))
    home.chmod(0o755)  # services running as their own users must reach their data dirs
    yield home
    if os.environ.get("HIGHWAY_KEEP_TEST_STATE") != "1":
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(stack_home: Path) -> Iterator[Stack]:
    """Kafka and S3 (what the bronze tests need); others start on demand via ``stack.up(only=...)``."""
    from highway.stack import Stack

    os.environ["HIGHWAY_HOME"] = str(stack_home)
    os.environ["HIGHWAY_PORT_BASE"] = str(TEST_PORT_BASE)
    instance = Stack(stack_home, TEST_PORT_BASE)
    try:
        instance.up(only=["kafka", "s3"])
        yield instance
    finally:
        instance.down()


@pytest.fixture(scope="session")
def conn(stack: Stack) -> Connection:
    return stack.connection()


@pytest.fixture(scope="session")
def kafka_bootstrap(conn: Connection) -> str:
    return conn.kafka_bootstrap


@pytest.fixture(scope="session")
def spark(conn: Connection) -> Iterator[SparkSession]:
    """A reader session for audits (the apps under test run in their own processes)."""
    from highway.spark.session import build_session

    session = build_session(conn, "highway-tests", shuffle_partitions=2, driver_memory="2g")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def es_url(stack: Stack, conn: Connection) -> str:
    """Elasticsearch on the shared stack (started on first use)."""
    stack.up(only=["elasticsearch"])
    return conn.es_url


@pytest.fixture(scope="session")
def pg(stack: Stack, conn: Connection) -> Connection:
    """PostgreSQL on the shared stack (started on first use); connect with conn.pg_* settings."""
    stack.up(only=["postgres"])
    return conn


AIRFLOW_TEST_DAGS = Path(__file__).parent / "airflow_dags"


@pytest.fixture(scope="session")
def airflow_catalog(stack_home: Path) -> Path:
    """The catalog the session's Airflow reads (``HIGHWAY_CATALOG``): the DAG tests' apps, written before
    Airflow starts, because the DAGs offer the catalog's apps as the allowed values of their ``app`` param."""
    from hwtest import write_dag_apps

    catalog = stack_home / "airflow-catalog"
    write_dag_apps(catalog)
    return catalog


def _airflow_up(stack: Stack, catalog: Path) -> None:
    """Start what is not running of Airflow (+ PostgreSQL), its processes reading ``catalog`` (only they)."""
    from highway.settings import repo_root
    from highway.stack.airflow import DAGS_ENV

    os.environ[DAGS_ENV] = os.pathsep.join([str(repo_root() / "dags"), str(AIRFLOW_TEST_DAGS)])
    before = os.environ.get("HIGHWAY_CATALOG")
    os.environ["HIGHWAY_CATALOG"] = str(catalog)
    try:
        stack.up(only=["airflow"])
    finally:
        if before is None:
            os.environ.pop("HIGHWAY_CATALOG", None)
        else:
            os.environ["HIGHWAY_CATALOG"] = before


@pytest.fixture(scope="session")
def airflow(stack: Stack, airflow_catalog: Path) -> AirflowClient:
    """Airflow's four components (+ PostgreSQL) on the shared stack, logged in as its admin.

    One Airflow per session; it parses the repo's dags/ (bundle ``dags-folder``) and tests/airflow_dags/
    (bundle ``airflow_dags``), and its catalog is ``airflow_catalog`` (set for Airflow's start only: this
    process's other tests use the shipped catalog). A test waits for its DAG with ``wait_dag(dag_id)``.
    """
    from highway.stack.airflow_api import AirflowClient

    _airflow_up(stack, airflow_catalog)
    return AirflowClient.for_stack(stack.home, stack.port_base)


@pytest.fixture(scope="session")
def dag_apps_session(stack: Stack, airflow: AirflowClient, airflow_catalog: Path) -> DagApps:
    """highway's three DAGs listed and unpaused (reconcile then also runs every minute), and their apps."""
    from highway.catalog import load
    from hwtest import DAG_STAMP, DagApps

    for dag_id in ("highway_deploy", "highway_reconcile", "highway_app_control"):
        airflow.wait_dag(dag_id, timeout=180)
        airflow.unpause(dag_id)
    local = load(airflow_catalog / f"bronze_shop_events_af{DAG_STAMP}.yaml")
    kube = load(airflow_catalog / f"bronze_shop_events_kube{DAG_STAMP}.yaml")
    return DagApps(airflow_catalog, local, kube, airflow, stack)


@pytest.fixture
def dag_apps(dag_apps_session: DagApps) -> DagApps:
    """``dag_apps_session``, with every Airflow component running: the fault tests stop PostgreSQL, and
    Airflow's scheduler, dag-processor and triggerer exit when their database is gone (Airflow's own
    behaviour; Kubernetes restarts them, the local stack's ``up`` does). A no-op when all run."""
    _airflow_up(dag_apps_session.stack, dag_apps_session.catalog)
    return dag_apps_session


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """What the tests measured (``hwtest.measured``), one line each, after the results."""
    from hwtest import MEASURED

    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)
