"""Observe one app: the runtime's status, the app's heartbeat, its Kafka lag; read and write its records.

The app's own status area in the lake (``<status_prefix>/`` in the lake bucket) holds what every
operator tool reads, whichever runtime runs the app:

- ``heartbeat.json``   written by the driver after each batch and on idle ticks (``highway.spark.progress``)
- ``health.json``      written by reconcile: the last decision, its reason, and the history it keeps
- ``deployments.json`` written by deploy: the current spec and the last spec that made progress
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from highway.catalog import AppSpec, BronzeSpec
from highway.connection import Connection
from highway.core.health import Observation
from highway.core.k8s.status import AppStatus
from highway.core.progress import records_behind
from highway.errors import HighwayError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from highway.runtime.base import AppRuntime

HEARTBEAT = "heartbeat.json"
HEALTH = "health.json"
CHECKPOINT = "checkpoint.json"  # the last checkpoint recovery a driver made by itself at its start
DEPLOYMENTS = "deployments.json"


@dataclass(frozen=True)
class AppView:
    """Everything known about one app at one moment."""

    spec: AppSpec
    status: AppStatus
    heartbeat: dict[str, Any] | None
    lag: int | None
    observation: Observation
    problems: tuple[str, ...] = ()  # what could not be read (the view is partial then)


class Records:
    """The app's JSON documents in its status area (one S3 client, reused)."""

    def __init__(self, conn: Connection, client: S3Client | None = None) -> None:
        from highway.adapters import s3

        self.conn = conn
        self.client = client or s3.client(conn)

    @staticmethod
    def _key(app: AppSpec | str, name: str) -> str:
        """``app`` is a spec or its status prefix (a trigger carries only the prefix)."""
        prefix = app if isinstance(app, str) else app.status_prefix
        return f"{prefix}/{name}"

    def read(self, spec: AppSpec | str, name: str) -> Any:
        from highway.adapters import s3

        return s3.get_json_or_none(self.client, self.conn.lake_bucket, self._key(spec, name))

    def write(self, spec: AppSpec | str, name: str, doc: Any) -> None:
        from highway.adapters import s3

        s3.put_json(self.client, self.conn.lake_bucket, self._key(spec, name), doc)


def kafka_lag(conn: Connection, spec: AppSpec, heartbeat: dict[str, Any] | None) -> int | None:
    """Records behind the topic's end for a Kafka app; None for apps that read a Delta table."""
    if not isinstance(spec, BronzeSpec):
        return None
    from highway.adapters import kafka

    ends = kafka.end_offsets(conn.kafka_bootstrap, spec.source.topic, timeout=10.0)
    return records_behind(ends, heartbeat, spec.source.topic)


def observe(runtime: AppRuntime, records: Records, spec: AppSpec) -> AppView:
    """The app now. The runtime's answer is required; heartbeat and lag are best effort (named if not)."""
    status = runtime.status(spec.name)
    problems: list[str] = []
    heartbeat: dict[str, Any] | None = None
    lag: int | None = None
    try:
        heartbeat = records.read(spec, HEARTBEAT)
    except HighwayError as exc:
        problems.append(f"heartbeat: {exc}")
    try:
        lag = kafka_lag(records.conn, spec, heartbeat)
    except HighwayError as exc:
        problems.append(f"lag: {exc}")
    alive_at = heartbeat.get("written_at") if isinstance(heartbeat, dict) else None
    observation = Observation(
        state=status.state,
        started_at=status.started_at,
        last_progress_at=float(alive_at) if isinstance(alive_at, int | float) else None,
        supervisor_restarts=status.restarts,
        lag=lag,
        reason=status.reason,
        supervised=status.supervised,
    )
    return AppView(spec, status, heartbeat, lag, observation, tuple(problems))
