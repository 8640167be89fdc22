"""The local Airflow's configuration, environment, health reading and REST helpers, with plain values."""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path

import pytest

from highway.errors import StackError
from highway.settings import PORT_OFFSETS, Ports
from highway.stack.airflow import (
    AirflowSettings,
    admin_login,
    airflow_config,
    airflow_environ,
    component_healthy,
    dag_bundles,
    dags_folders,
    render_cfg,
)
from highway.stack.airflow_api import detail_of, log_text
from highway.stack.state import AIRFLOW_SERVICES, CREDENTIAL_KEYS, new_credentials, select_services

CREDS = new_credentials(lambda n: "ab" * n)


def settings(tmp: Path, *folders: Path) -> AirflowSettings:
    return AirflowSettings(tmp / "airflow", Ports(25000), folders or (tmp / "dags",), tmp / "plugins", CREDS)


def test_airflow_ports_are_offsets_below_500_that_collide_with_nothing() -> None:
    offsets = list(PORT_OFFSETS.values())
    assert len(offsets) == len(set(offsets)) and max(offsets) < 500
    assert {PORT_OFFSETS[k] for k in ("airflow_api", "airflow_worker_log", "airflow_trigger_log")}


def test_airflow_needs_postgres_and_the_api_server_and_the_group_names_all_four() -> None:
    assert select_services(["airflow"]) == ["postgres", *AIRFLOW_SERVICES]
    assert select_services(["airflow-scheduler"]) == ["postgres", "airflow-api", "airflow-scheduler"]
    assert select_services(["airflow-api", "kafka"]) == ["kafka", "postgres", "airflow-api"]
    with pytest.raises(StackError, match=r"'airflow-webserver'.*airflow-triggerer"):
        select_services(["airflow-webserver"])


def test_credentials_include_airflow_secrets_and_a_valid_fernet_key() -> None:
    from cryptography.fernet import Fernet

    assert {"airflow_db_password", "airflow_admin_password", "airflow_jwt_secret"} <= set(CREDENTIAL_KEYS)
    assert {"airflow_api_secret_key", "airflow_fernet_key"} <= set(CREDS)
    token = Fernet(CREDS["airflow_fernet_key"].encode()).encrypt(b"x")
    assert Fernet(CREDS["airflow_fernet_key"].encode()).decrypt(token) == b"x"


def test_config_runs_local_executor_on_the_stacks_postgres_with_the_stacks_ports(tmp_path: Path) -> None:
    config = airflow_config(settings(tmp_path))
    core, db = config["core"], config["database"]
    assert core["executor"] == "LocalExecutor" and core["load_examples"] == "False"
    assert core["dags_are_paused_at_creation"] == "True"
    assert core["execution_api_server_url"] == "http://127.0.0.1:25280/execution/"
    assert core["simple_auth_manager_users"] == "admin:admin"
    assert core["plugins_folder"] == str(tmp_path / "plugins")
    password = CREDS["airflow_db_password"]
    assert db["sql_alchemy_conn"] == f"postgresql+psycopg://airflow:{password}@127.0.0.1:25432/airflow"
    assert db["sql_alchemy_conn_async"].startswith("postgresql+psycopg_async://airflow:")
    assert config["api"]["port"] == "25280" and config["api"]["host"] == "127.0.0.1"
    assert config["api"]["secret_key"] == CREDS["airflow_api_secret_key"]
    assert config["api_auth"]["jwt_secret"] == CREDS["airflow_jwt_secret"]
    assert config["logging"]["worker_log_server_port"] == "25281"
    assert config["logging"]["trigger_log_server_port"] == "25282"
    assert int(config["dag_processor"]["refresh_interval"]) <= 15


def test_rendered_cfg_reads_back_as_the_same_options(tmp_path: Path) -> None:
    config = airflow_config(settings(tmp_path))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(render_cfg(config))
    assert {section: dict(parser[section]) for section in config} == config
    bundles = json.loads(parser["dag_processor"]["dag_bundle_config_list"])
    assert bundles[0]["name"] == "dags-folder" and bundles[0]["kwargs"]["path"] == str(tmp_path / "dags")


def test_dag_folders_default_to_the_repo_and_each_extra_folder_is_a_bundle(tmp_path: Path) -> None:
    assert dags_folders(None, tmp_path) == (tmp_path / "dags",)
    assert dags_folders("", tmp_path) == (tmp_path / "dags",)
    value = os.pathsep.join([str(tmp_path / "dags"), str(tmp_path / "airflow_dags")])
    folders = dags_folders(value, Path("/elsewhere"))
    assert folders == (tmp_path / "dags", tmp_path / "airflow_dags")
    assert [bundle["name"] for bundle in dag_bundles(folders)] == ["dags-folder", "airflow_dags"]
    with pytest.raises(StackError, match="bundle name"):
        dag_bundles([tmp_path / "a" / "x", tmp_path / "b" / "x", tmp_path / "c" / "x"])


def test_environment_carries_home_port_base_python_and_connections(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "HIGHWAY_CATALOG": "/catalog"}
    conns = {"AIRFLOW_CONN_HIGHWAY_RUNTIME": "{}"}
    env = airflow_environ(base, settings(tmp_path), tmp_path, conns, "/venv/bin/python")
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW_CONFIG"] == str(tmp_path / "airflow" / "airflow.cfg")
    assert env["HIGHWAY_HOME"] == str(tmp_path) and env["HIGHWAY_PORT_BASE"] == "25000"
    assert env["PYSPARK_PYTHON"] == "/venv/bin/python" and env["HIGHWAY_CATALOG"] == "/catalog"
    assert env["AIRFLOW_CONN_HIGHWAY_RUNTIME"] == "{}" and env["PATH"] == "/usr/bin"


def test_a_component_is_healthy_only_with_a_heartbeat_after_its_start() -> None:
    health = {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "2026-11-26T12:00:10+00:00"},
        "triggerer": {"status": None, "latest_triggerer_heartbeat": None},
    }
    started = 1795694400.0  # 2026-11-26T12:00:00Z
    assert component_healthy(health, "scheduler", started)
    assert not component_healthy(health, "scheduler", started + 20)  # a heartbeat of the process before
    assert not component_healthy(health, "triggerer", started)
    assert not component_healthy(health, "dag_processor", started)


def test_admin_login_is_the_generated_password() -> None:
    assert admin_login(CREDS) == ("admin", CREDS["airflow_admin_password"])
    assert admin_login({}) == ("admin", "")


def test_api_errors_and_logs_become_plain_text() -> None:
    assert detail_of(b'{"detail": "Invalid credentials"}') == "Invalid credentials"
    assert detail_of(b'{"detail": [{"msg": "field required"}]}') == '[{"msg": "field required"}]'
    assert detail_of(b"Internal\nServer Error") == "Internal Server Error"
    content = [{"event": "hello", "level": "info"}, {"event": "::group::x"}, "plain"]
    assert log_text(content) == "[info] hello\n::group::x\nplain"
