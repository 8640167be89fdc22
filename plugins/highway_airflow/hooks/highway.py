"""Hooks: highway's services and runtime, configured from Airflow connections (see highway.ops.connections).

Each hook reads its connection when asked (never at import or construction), builds highway's own
client for it and leaves the I/O to the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException  # loaded with airflow.sdk already

from highway.errors import ConfigError
from highway.ops import connections as ids

if TYPE_CHECKING:
    from airflow.sdk import Connection as AirflowConnection

    from highway.connection import Connection
    from highway.ops.observe import Records
    from highway.runtime.base import AppRuntime


def as_dict(conn: AirflowConnection) -> dict[str, Any]:
    """An Airflow connection as the plain dict ``highway.ops.connections`` reads."""
    return {
        "conn_type": conn.conn_type,
        "host": conn.host,
        "port": conn.port,
        "login": conn.login,
        "password": conn.password,
        "schema": conn.schema,
        "extra": conn.extra_dejson,
    }


def _lookup(conn_id: str) -> dict[str, Any] | None:
    """The connection as a dict, or None when Airflow has no connection of that id."""
    try:
        return as_dict(BaseHook.get_connection(conn_id))
    except AirflowNotFoundException:
        return None


class HighwayHook(BaseHook):
    """The stack as highway sees it: the four service connections -> ``highway.connection.Connection``."""

    conn_name_attr = "highway_conn_id"
    default_conn_name = ids.S3
    conn_type = "generic"
    hook_name = "highway"

    def connection(self) -> Connection:
        found = {cid: c for cid in ids.CONNECTION_IDS if (c := _lookup(cid)) is not None}
        return ids.from_airflow(found)

    def records(self) -> Records:
        """The apps' status documents (heartbeat, health, deployments) in the lake."""
        from highway.ops.observe import Records

        return Records(self.connection())


class KafkaHook(HighwayHook):
    default_conn_name = ids.KAFKA

    def end_offsets(self, topic: str) -> dict[int, int]:
        from highway.adapters import kafka

        return kafka.end_offsets(self.connection().kafka_bootstrap, topic)


class LakeHook(HighwayHook):
    """S3: the lake bucket."""

    default_conn_name = ids.S3

    def read_json(self, key: str) -> Any:
        from highway.adapters import s3

        conn = self.connection()
        return s3.get_json_or_none(s3.client(conn), conn.lake_bucket, key)


class SearchHook(HighwayHook):
    """Elasticsearch."""

    default_conn_name = ids.ELASTICSEARCH

    def client(self) -> Any:
        from highway.adapters import elasticsearch

        return elasticsearch.client(self.connection())


class WarehouseHook(HighwayHook):
    """PostgreSQL (the warehouse)."""

    default_conn_name = ids.POSTGRES

    def connect(self) -> Any:
        from highway.adapters import postgres

        return postgres.connect(self.connection())


class RuntimeHook(BaseHook):
    """Where the apps run: ``highway_runtime`` (or ``highway_runtime_<kind>`` when a run asks for a kind)."""

    conn_name_attr = "runtime_conn_id"
    default_conn_name = ids.RUNTIME
    conn_type = "generic"
    hook_name = "highway runtime"

    def __init__(self, kind: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind or None
        self._settings: dict[str, Any] | None = None

    def settings(self) -> dict[str, Any]:
        """The runtime connection's extra for the asked kind (read once per hook); a missing one is named
        with what to add."""
        if self._settings is None:
            self._settings = self._find()
        return self._settings

    def _find(self) -> dict[str, Any]:
        candidates = [f"{ids.RUNTIME}_{self.kind}", ids.RUNTIME] if self.kind else [ids.RUNTIME]
        for cid in candidates:
            found = _lookup(cid)
            if found is None:
                continue
            settings = ids.runtime_settings({ids.RUNTIME: found})
            if self.kind is None or settings["kind"] == self.kind:
                return settings
        want = f"kind {self.kind}" if self.kind else "a runtime"
        raise ConfigError(
            f"no Airflow connection for {want}: add {candidates[0]} (extra kind: local with home, or "
            "kubernetes with namespace and kubeconfig or in_cluster)"
        )

    def runtime(self) -> AppRuntime:
        from highway.ops.runtimes import runtime_from

        return runtime_from(self.settings())
