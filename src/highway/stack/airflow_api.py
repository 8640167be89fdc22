"""A small client of Airflow 3's REST API (v2), for tests and ``make demo``: log in, find, run, read logs.

``AirflowClient(base_url, user, password)``; ``AirflowClient.for_stack(home, port_base)`` logs in as the
stack's admin. Every failure is an ``AirflowApiError`` with one line: method, path, status and Airflow's
``detail``. Only the standard library: importing this module is cheap.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from highway.errors import HighwayError

FINAL_RUN_STATES = ("success", "failed")
FINAL_TASK_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")


class AirflowApiError(HighwayError):
    """Airflow's API refused or failed a request (``status`` 0: it did not answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def detail_of(body: bytes) -> str:
    """Airflow's ``detail`` from an error body, on one line (pure)."""
    text = body.decode(errors="replace").strip()
    try:
        detail: Any = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    return " ".join(detail.split())[:300]


def log_text(content: Any) -> str:
    """The lines of a task log answer (structured entries or plain strings) as text (pure)."""
    lines = []
    for entry in content or []:
        if isinstance(entry, Mapping):
            level = f"[{entry['level']}] " if entry.get("level") else ""
            lines.append(f"{level}{entry.get('event', '')}")
            for error in entry.get("error_detail") or []:  # a failed task's exception: type and message
                if isinstance(error, Mapping):
                    lines.append(f"  {error.get('exc_type', '')}: {error.get('exc_value', '')}")
        else:
            lines.append(str(entry))
    return "\n".join(lines)


def _request(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 15.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    path = url.split("://", 1)[-1].partition("/")[2]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        raise AirflowApiError(
            f"Airflow {method} /{path}: {exc.code} {detail_of(exc.read())}", exc.code
        ) from None
    except OSError as exc:
        raise AirflowApiError(f"Airflow {method} /{path}: no answer ({exc})") from None
    return json.loads(raw) if raw.strip() else None


def token(base_url: str, user: str, password: str) -> str:
    """A JWT from the simple auth manager (``POST /auth/token``); 401 on a wrong password."""
    answer = _request("POST", f"{base_url}/auth/token", {"username": user, "password": password})
    return str(answer["access_token"])


class AirflowClient:
    def __init__(self, base_url: str, user: str, password: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token(self.base_url, user, password)

    @classmethod
    def for_stack(cls, home: Path, port_base: int) -> AirflowClient:
        """Logged in as the admin of the stack in ``home`` (its generated password)."""
        from highway.connection import read_credentials
        from highway.settings import Ports
        from highway.stack.airflow import admin_login

        user, password = admin_login(read_credentials(home))
        return cls(f"http://127.0.0.1:{Ports(port_base).of('airflow_api')}", user, password)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request to ``/api/v2/<path>``; the decoded JSON answer."""
        url = f"{self.base_url}/api/v2/{path.lstrip('/')}"
        return _request(method, url, body, self._token, self.timeout)

    # --- reading ----------------------------------------------------------------------------

    def dags(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "dags?limit=1000&order_by=dag_id")["dags"])

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.call("GET", f"dags/{quote(dag_id, safe='')}")
        except AirflowApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "importErrors?limit=1000")["import_errors"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self.call("GET", path)["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = (
            f"dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/logs/{try_number}?full_content=true"
        )
        return log_text(self.call("GET", path).get("content"))

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """What a task returned (its ``return_value`` XCom)."""
        path = (
            f"dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/xcomEntries/return_value"
        )
        return self.call("GET", path)["value"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        run = self.call("GET", f"dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")
        return str(run["state"])

    # --- acting -----------------------------------------------------------------------------

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"dags/{quote(dag_id, safe='')}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Start a run now; its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        run = self.call("POST", f"dags/{quote(dag_id, safe='')}/dagRuns", body)
        return str(run["dag_run_id"])

    # --- waiting ----------------------------------------------------------------------------

    def wait_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed and listed it; else the import errors, in one line."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.dag(dag_id)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                errors = self.import_errors()
                where = "; ".join(
                    f"{err.get('filename')}: {_last_line(err.get('stack_trace'))}" for err in errors[:3]
                )
                raise AirflowApiError(
                    f"DAG {dag_id!r} is not listed after {timeout:.0f} s"
                    + (f"; {len(errors)} import error(s): {where}" if errors else "; no import errors")
                )
            time.sleep(1.0)

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """The run's final state (success or failed); an error if it is still going after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in FINAL_RUN_STATES:
                return state
            if time.monotonic() >= deadline:
                raise AirflowApiError(f"run {run_id} of {dag_id} is still {state} after {timeout:.0f} s")
            time.sleep(1.0)


def _last_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""
