"""Where one stack instance keeps its things, and what it writes once: ports and credentials.

A stack instance is a state directory (``home``) plus a port base. Everything it owns lives under
``home``: ``stack.json`` (port base, read by :mod:`highway.connection`), ``credentials.json``
(generated once, mode 600), ``run/<service>.pid``, ``logs/<service>.log`` and one data directory
per service.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from highway.connection import credentials_path
from highway.errors import StackError
from highway.settings import Ports

AIRFLOW_SERVICES = ("airflow-api", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
# start order: a service comes after the ones it needs
SERVICES: tuple[str, ...] = ("kafka", "s3", "postgres", "elasticsearch", *AIRFLOW_SERVICES)
GROUPS: dict[str, tuple[str, ...]] = {"airflow": AIRFLOW_SERVICES}
# what must run before a service starts (``up`` starts it too); listed in full, not transitively
NEEDS: dict[str, tuple[str, ...]] = {
    "airflow-api": ("postgres",),
    **{name: ("postgres", "airflow-api") for name in AIRFLOW_SERVICES[1:]},
}

CREDENTIAL_KEYS = (
    "s3_access_key",
    "s3_secret_key",
    "pg_password",
    "pg_superuser_password",
    "airflow_db_password",
    "airflow_admin_password",
    "airflow_jwt_secret",
    "airflow_api_secret_key",
    "airflow_fernet_key",
)


def service_ports(base: int) -> dict[str, dict[str, int]]:
    """Every port each service listens on, by label (pure)."""
    ports = Ports(base)
    return {
        "kafka": {"kafka": ports.of("kafka"), "kafka_controller": ports.of("kafka_controller")},
        "s3": {"s3": ports.of("s3")},
        "postgres": {"postgres": ports.of("postgres")},
        "elasticsearch": {
            "elasticsearch": ports.of("elasticsearch"),
            "elasticsearch_transport": ports.of("elasticsearch_transport"),
        },
        "airflow-api": {"airflow_api": ports.of("airflow_api")},
        "airflow-scheduler": {"airflow_worker_log": ports.of("airflow_worker_log")},
        "airflow-dag-processor": {},
        "airflow-triggerer": {"airflow_trigger_log": ports.of("airflow_trigger_log")},
    }


def service_name(name: str) -> str:
    """``name`` if it is a service, else a StackError naming the allowed ones (pure)."""
    if name not in SERVICES:
        raise StackError(f"unknown service {name!r}; allowed: {', '.join(SERVICES)}")
    return name


def select_services(only: Sequence[str] | None) -> list[str]:
    """The services to act on, in start order (pure).

    ``only`` names a subset (or a group: ``airflow``); the services those need come along.
    """
    if not only:
        return list(SERVICES)
    wanted: set[str] = set()
    for name in only:
        members = GROUPS[name] if name in GROUPS else (service_name(name),)
        for member in members:
            wanted.update((member, *NEEDS.get(member, ())))
    return [name for name in SERVICES if name in wanted]


def parse_only(value: str | None) -> list[str] | None:
    """``"kafka, s3"`` -> ``["kafka", "s3"]``; empty -> None (pure)."""
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise StackError(f"--only {value!r} names no service; allowed: {', '.join(SERVICES)}, airflow")
    return select_services(names)


def new_credentials(token: Callable[[int], str], missing: Iterable[str] = CREDENTIAL_KEYS) -> dict[str, str]:
    """Fresh secrets for the keys in ``missing``; ``token(n)`` returns n random hex bytes."""
    made: dict[str, str] = {}
    for key in missing:
        if key == "s3_access_key":
            made[key] = "HW" + token(8).upper()
        elif key == "airflow_fernet_key":  # Fernet's format: url-safe base64 of 32 bytes
            made[key] = base64.urlsafe_b64encode(bytes.fromhex(token(32))).decode()
        else:
            made[key] = token(20)
    return made


@dataclass(frozen=True)
class Layout:
    """Paths inside one state directory."""

    home: Path

    @property
    def stack_json(self) -> Path:
        return self.home / "stack.json"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def log_file(self, service: str) -> Path:
        return self.logs_dir / f"{service}.log"

    def service_dir(self, service: str) -> Path:
        return self.home / service

    def create(self) -> None:
        for path in (self.home, self.run_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.tighten()

    def tighten(self) -> None:
        """Other users may pass through the state dir (services running as their own users reach their
        folders) but neither list it nor enter anything in it: each entry loses every "other" bit."""
        self.home.chmod(0o711)
        for entry in self.home.iterdir():
            mode = entry.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o007:
                entry.chmod(stat.S_IMODE(mode) & ~0o007)

    def recorded_port_base(self) -> int | None:
        if not self.stack_json.exists():
            return None
        return int(json.loads(self.stack_json.read_text())["port_base"])

    def write_stack_json(self, port_base: int) -> None:
        recorded = self.recorded_port_base()
        if recorded is not None and recorded != port_base:
            raise StackError(
                f"the stack in {self.home} was created with port base {recorded}, not {port_base}: "
                f"pass --port-base {recorded} (or HIGHWAY_PORT_BASE={recorded}), or use another --home"
            )
        data = {"port_base": port_base, "ports": service_ports(port_base)}
        self.stack_json.write_text(json.dumps(data, indent=2) + "\n")

    def ensure_credentials(self) -> dict[str, str]:
        """Read the credentials, generating the missing ones once (file mode 600)."""
        path = credentials_path(self.home)
        creds: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [key for key in CREDENTIAL_KEYS if key not in creds]
        if missing:
            creds.update(new_credentials(secrets.token_hex, missing))
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(creds, out, indent=2)
            tmp.replace(path)
        return creds
