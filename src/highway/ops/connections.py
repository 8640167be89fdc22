"""Airflow connections <-> highway's ``Connection`` (pure: plain dicts in, plain dicts out).

Airflow reaches the stack through five connections, so an operator can see and change them in the UI
(Admin -> Connections) like any other service's:

============================  ==============================================================
``highway_kafka``             host, port (the bootstrap broker); extra ``bootstrap_servers`` wins
``highway_s3``                login = access key, password = secret key; extra ``endpoint_url``,
                              ``bucket`` (the lake)
``highway_postgres``          host, port, login, password, schema = database (the warehouse)
``highway_elasticsearch``     extra ``url``
``highway_runtime``           extra ``kind``: ``local`` (``home``: the stack's state dir) or
                              ``kubernetes`` (``namespace``, and ``kubeconfig`` + ``context`` or
                              ``in_cluster: true``)
============================  ==============================================================

``airflow_env`` renders them as ``AIRFLOW_CONN_<ID>`` environment variables (Airflow's JSON form), which
is how the local stack hands them to its Airflow processes; ``from_airflow`` reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from highway.connection import Connection
from highway.errors import ConfigError

KAFKA = "highway_kafka"
S3 = "highway_s3"
POSTGRES = "highway_postgres"
ELASTICSEARCH = "highway_elasticsearch"
RUNTIME = "highway_runtime"
CONNECTION_IDS = (KAFKA, S3, POSTGRES, ELASTICSEARCH)
RUNTIME_KINDS = ("local", "kubernetes")


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.rpartition(":")
    return host, int(port)


def to_airflow(conn: Connection) -> dict[str, dict[str, Any]]:
    """The four service connections (by id) for one stack, in Airflow's JSON connection form."""
    kafka_host, kafka_port = _host_port(conn.kafka_bootstrap.split(",")[0])
    return {
        KAFKA: {
            "conn_type": "generic",
            "host": kafka_host,
            "port": kafka_port,
            "extra": {"bootstrap_servers": conn.kafka_bootstrap},
        },
        S3: {
            "conn_type": "aws",
            "login": conn.s3_access_key,
            "password": conn.s3_secret_key,
            "extra": {"endpoint_url": conn.s3_endpoint, "bucket": conn.lake_bucket},
        },
        POSTGRES: {
            "conn_type": "postgres",
            "host": conn.pg_host,
            "port": conn.pg_port,
            "login": conn.pg_user,
            "password": conn.pg_password,
            "schema": conn.pg_database,
        },
        ELASTICSEARCH: {"conn_type": "generic", "extra": {"url": conn.es_url}},
    }


def runtime_connection(kind: str, **extra: Any) -> dict[str, Any]:
    """``highway_runtime``: ``runtime_connection("local", home=...)`` or ``("kubernetes", namespace=...)``."""
    if kind not in RUNTIME_KINDS:
        raise ConfigError(f"connection {RUNTIME}: kind {kind!r} is not one of {', '.join(RUNTIME_KINDS)}")
    return {"conn_type": "generic", "extra": {"kind": kind, **extra}}


def airflow_env(conn: Connection, runtime: Mapping[str, Any]) -> dict[str, str]:
    """``AIRFLOW_CONN_HIGHWAY_*`` variables for the four services and the runtime."""
    conns = {**to_airflow(conn), RUNTIME: dict(runtime)}
    return {f"AIRFLOW_CONN_{cid.upper()}": json.dumps(value) for cid, value in conns.items()}


def _need(conns: Mapping[str, Mapping[str, Any]], cid: str, key: str) -> Any:
    value = conns.get(cid, {}).get(key)
    if value in (None, ""):
        raise ConfigError(f"Airflow connection {cid}: {key} is not set (see highway.ops.connections)")
    return value


def _extra(conns: Mapping[str, Mapping[str, Any]], cid: str) -> dict[str, Any]:
    extra = conns.get(cid, {}).get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            raise ConfigError(f"Airflow connection {cid}: extra is not JSON: {extra[:60]!r}") from None
    return dict(extra)


def from_airflow(conns: Mapping[str, Mapping[str, Any]]) -> Connection:
    """highway's ``Connection`` from the four Airflow connections (as dicts: host, port, login, ...)."""
    for cid in CONNECTION_IDS:
        if cid not in conns:
            raise ConfigError(f"Airflow connection {cid} is missing; needed: {', '.join(CONNECTION_IDS)}")
    kafka = _extra(conns, KAFKA).get("bootstrap_servers") or (
        f"{_need(conns, KAFKA, 'host')}:{_need(conns, KAFKA, 'port')}"
    )
    s3 = _extra(conns, S3)
    es = _extra(conns, ELASTICSEARCH)
    if not s3.get("endpoint_url"):
        raise ConfigError(f"Airflow connection {S3}: extra endpoint_url is not set")
    if not es.get("url"):
        raise ConfigError(f"Airflow connection {ELASTICSEARCH}: extra url is not set")
    return Connection(
        kafka_bootstrap=str(kafka),
        s3_endpoint=str(s3["endpoint_url"]),
        s3_access_key=str(_need(conns, S3, "login")),
        s3_secret_key=str(_need(conns, S3, "password")),
        lake_bucket=str(s3.get("bucket") or "lake"),
        pg_host=str(_need(conns, POSTGRES, "host")),
        pg_port=int(_need(conns, POSTGRES, "port")),
        pg_user=str(_need(conns, POSTGRES, "login")),
        pg_password=str(_need(conns, POSTGRES, "password")),
        pg_database=str(_need(conns, POSTGRES, "schema")),
        es_url=str(es["url"]),
    )


def runtime_settings(conns: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The runtime connection's extra, checked: ``kind`` and what that kind needs."""
    extra = _extra(conns, RUNTIME) if RUNTIME in conns else {}
    kind = extra.get("kind")
    if kind not in RUNTIME_KINDS:
        raise ConfigError(
            f"Airflow connection {RUNTIME}: extra kind is {kind!r}; allowed: {', '.join(RUNTIME_KINDS)}"
        )
    if kind == "local" and not extra.get("home"):
        raise ConfigError(f"Airflow connection {RUNTIME}: a local runtime needs extra home (the state dir)")
    return extra
