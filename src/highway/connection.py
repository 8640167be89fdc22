"""Connection settings of one stack instance, as every client in highway sees them.

``highway stack up`` writes them to ``<home>/stack.json`` (ports) and ``<home>/credentials.json``
(generated once per state dir, mode 600). Environment variables override them, which is how
Kubernetes pods and CI point highway at other services:

HIGHWAY_KAFKA_BOOTSTRAP, HIGHWAY_S3_ENDPOINT, HIGHWAY_S3_ACCESS_KEY, HIGHWAY_S3_SECRET_KEY,
HIGHWAY_LAKE_BUCKET, HIGHWAY_PG_HOST, HIGHWAY_PG_PORT, HIGHWAY_PG_USER, HIGHWAY_PG_PASSWORD,
HIGHWAY_PG_DATABASE, HIGHWAY_ES_URL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from highway.settings import Ports, default_home, default_port_base

LAKE_BUCKET = "lake"


@dataclass(frozen=True)
class Connection:
    kafka_bootstrap: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    lake_bucket: str
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str = field(repr=False)
    pg_database: str
    es_url: str

    @property
    def lake_root(self) -> str:
        """Root URI of the lake as Spark (s3a) sees it."""
        return f"s3a://{self.lake_bucket}"

    def lake_path(self, relative: str) -> str:
        """A catalog path (table, checkpoint, status prefix) as an s3a URI."""
        return f"{self.lake_root}/{relative}"

    def public_env(self) -> dict[str, str]:
        """Settings as environment variables, secrets included (for ``highway stack env``)."""
        return {
            "HIGHWAY_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "HIGHWAY_S3_ENDPOINT": self.s3_endpoint,
            "HIGHWAY_S3_ACCESS_KEY": self.s3_access_key,
            "HIGHWAY_S3_SECRET_KEY": self.s3_secret_key,
            "HIGHWAY_LAKE_BUCKET": self.lake_bucket,
            "HIGHWAY_PG_HOST": self.pg_host,
            "HIGHWAY_PG_PORT": str(self.pg_port),
            "HIGHWAY_PG_USER": self.pg_user,
            "HIGHWAY_PG_PASSWORD": self.pg_password,
            "HIGHWAY_PG_DATABASE": self.pg_database,
            "HIGHWAY_ES_URL": self.es_url,
        }


def credentials_path(home: Path) -> Path:
    return home / "credentials.json"


def read_credentials(home: Path) -> dict[str, str]:
    path = credentials_path(home)
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text())
    return data


def port_base_of(home: Path) -> int:
    """The port base an instance was started with (kept in stack.json), else the default."""
    path = home / "stack.json"
    if path.exists():
        return int(json.loads(path.read_text()).get("port_base", default_port_base()))
    return default_port_base()


def load(home: Path | None = None) -> Connection:
    """Connection settings for the stack in ``home`` (default: HIGHWAY_HOME), env overriding."""
    home = home or default_home()
    ports = Ports(port_base_of(home))
    creds = read_credentials(home)
    env = os.environ.get
    return Connection(
        kafka_bootstrap=env("HIGHWAY_KAFKA_BOOTSTRAP", f"127.0.0.1:{ports.of('kafka')}"),
        s3_endpoint=env("HIGHWAY_S3_ENDPOINT", f"http://127.0.0.1:{ports.of('s3')}"),
        s3_access_key=env("HIGHWAY_S3_ACCESS_KEY", creds.get("s3_access_key", "")),
        s3_secret_key=env("HIGHWAY_S3_SECRET_KEY", creds.get("s3_secret_key", "")),
        lake_bucket=env("HIGHWAY_LAKE_BUCKET", LAKE_BUCKET),
        pg_host=env("HIGHWAY_PG_HOST", "127.0.0.1"),
        pg_port=int(env("HIGHWAY_PG_PORT", str(ports.of("postgres")))),
        pg_user=env("HIGHWAY_PG_USER", "highway"),
        pg_password=env("HIGHWAY_PG_PASSWORD", creds.get("pg_password", "")),
        pg_database=env("HIGHWAY_PG_DATABASE", "highway"),
        es_url=env("HIGHWAY_ES_URL", f"http://127.0.0.1:{ports.of('elasticsearch')}"),
    )
