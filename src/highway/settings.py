"""Where highway keeps downloads (cache) and service data (state), and which ports it uses.

Both directories live outside the repo and outside a mode-700 home when running as root, because
PostgreSQL and Elasticsearch run as their own users and must be able to read them.
Environment variables override every default:

- ``HIGHWAY_CACHE``      downloads, keyed by version (jars, Elasticsearch, venvs)
- ``HIGHWAY_HOME``       the state directory of one stack instance (data, logs, pids, credentials)
- ``HIGHWAY_PORT_BASE``  ports are ``base + offset`` so instances can sit side by side
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT_BASE = 19000

# offset of each port from the port base
PORT_OFFSETS: dict[str, int] = {
    "kafka": 92,
    "kafka_controller": 93,
    "s3": 80,
    "postgres": 432,
    "elasticsearch": 200,
    "elasticsearch_transport": 300,
    "metrics": 90,
    "airflow_api": 280,
    "airflow_worker_log": 281,
    "airflow_trigger_log": 282,
}


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def cache_dir() -> Path:
    env = os.environ.get("HIGHWAY_CACHE")
    if env:
        return Path(env)
    if _is_root():
        return Path("/var/cache/highway")
    return Path.home() / ".cache" / "highway"


def default_home() -> Path:
    env = os.environ.get("HIGHWAY_HOME")
    if env:
        return Path(env)
    if _is_root():
        return Path("/var/lib/highway/default")
    return Path.home() / ".local" / "share" / "highway"


def default_port_base() -> int:
    return int(os.environ.get("HIGHWAY_PORT_BASE", DEFAULT_PORT_BASE))


@dataclass(frozen=True)
class Ports:
    base: int

    def of(self, name: str) -> int:
        return self.base + PORT_OFFSETS[name]


def repo_root() -> Path:
    """The source checkout (tools/, spark_apps/ live there)."""
    env = os.environ.get("HIGHWAY_REPO")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2]
