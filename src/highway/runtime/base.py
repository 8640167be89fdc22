"""The AppRuntime port: how the CLI and Airflow deploy, start, stop, restart and read one catalog app.

Adapters: ``highway.runtime.kubernetes.KubernetesRuntime`` (a driver StatefulSet per app) and, later, a
local process runtime. Every method answers with the app's ``AppStatus`` (or its log text) and raises
only ``RuntimeTransient`` (retry later may help) or ``RuntimeTerminal`` (it will not), each with a
one-line message naming the action, the object and the reason.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from highway.catalog.model import AppSpec
from highway.core.k8s.status import AppStatus
from highway.errors import TerminalError, TransientError

DEFAULT_TIMEOUT = 300.0  # seconds to wait for a pod to go or come


class RuntimeTransient(TransientError):
    """The cluster did not answer, was throttled or did not finish in time: retrying may help."""


class RuntimeTerminal(TerminalError):
    """Bad input, a missing permission or a missing namespace: retrying will not help."""


@runtime_checkable
class AppRuntime(Protocol):
    """Where catalog apps run. ``app`` is a catalog name (``silver_shop_events``)."""

    def deploy(self, spec: AppSpec, catalog_text: str, image: str | None = None) -> AppStatus:
        """Create or update the app (idempotent: the same spec twice changes nothing); ``image`` overrides
        the catalog's. Input is validated before anything is changed."""
        ...

    def status(self, app: str) -> AppStatus:
        """What the app is doing now (``absent`` when it was never deployed)."""
        ...

    def restart(self, app: str, timeout: float = DEFAULT_TIMEOUT) -> AppStatus:
        """Replace the running driver: the old one is gone before the new one starts."""
        ...

    def stop(self, app: str, timeout: float = DEFAULT_TIMEOUT) -> AppStatus:
        """Stop the driver (graceful: the batch in flight finishes) and wait until it is gone; idempotent."""
        ...

    def start(self, app: str) -> AppStatus:
        """Start a stopped app again (idempotent); returns without waiting for it to be ready."""
        ...

    def logs(self, app: str, tail: int = 200) -> str:
        """The last ``tail`` lines of the driver's log."""
        ...
