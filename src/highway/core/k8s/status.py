"""What a catalog app's driver is doing, read from its StatefulSet and its one pod (pure).

``interpret`` takes the objects as the API server returns them (JSON dicts, camelCase keys) and
answers with one ``AppStatus``; the runtime reads the objects, the CLI and Airflow print or act on
the status. Nothing here talks to a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

State = Literal["absent", "stopped", "starting", "running", "failing"]
STATES: tuple[State, ...] = ("absent", "stopped", "starting", "running", "failing")
DRIVER_CONTAINER = "driver"

# a container waiting for one of these will not get better on its own
FAILING_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreStartHookError",
        "PostStartHookError",
    }
)


@dataclass(frozen=True)
class AppStatus:
    """One app's driver as the cluster sees it.

    ``desired_replicas`` is the StatefulSet's (1 running, 0 stopped); ``pod`` the driver pod's name when
    it exists; ``reason``/``message`` say why it is failing or not ready, e.g.
    ``CrashLoopBackOff: last exit Error (code 1)``; ``image`` the image the driver runs (or will run);
    ``started_at`` when the running driver started (epoch seconds).
    """

    app: str
    state: State
    desired_replicas: int = 0
    ready: bool = False
    restarts: int = 0
    pod: str | None = None
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    image: str | None = None
    started_at: float | None = None
    supervised: bool = True  # something (kubelet, local supervisor) restarts the driver when it dies

    def line(self) -> str:
        """One human line: ``silver_shop_events: running (pod ..., ready, 0 restarts, image ...)``."""
        parts = []
        if self.pod:
            parts.append(f"pod {self.pod}" + (f" {self.phase}" if self.phase else ""))
        if self.state not in ("absent",):
            parts.append("ready" if self.ready else "not ready")
            parts.append(f"{self.restarts} restart{'' if self.restarts == 1 else 's'}")
        if self.reason:
            parts.append(self.reason)
        if self.message:
            parts.append(self.message)
        if self.image:
            parts.append(f"image {self.image}")
        return f"{self.app}: {self.state}" + (f" ({', '.join(parts)})" if parts else "")


def _get(obj: dict[str, Any] | None, *keys: str) -> Any:
    """``obj[k1][k2]...`` or None when any level is missing (API objects omit empty fields)."""
    value: Any = obj
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _containers(spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    containers = _get(spec, "containers")
    return [c for c in containers if isinstance(c, dict)] if isinstance(containers, list) else []


def _driver(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The driver container (or its status): by name, else the first."""
    for item in items:
        if item.get("name") == DRIVER_CONTAINER:
            return item
    return items[0] if items else None


def _image(statefulset: dict[str, Any], pod: dict[str, Any] | None) -> str | None:
    container = _driver(_containers(_get(pod, "spec"))) if pod else None
    if container is None:
        container = _driver(_containers(_get(statefulset, "spec", "template", "spec")))
    image = _get(container, "image")
    return image if isinstance(image, str) else None


def _replicas(statefulset: dict[str, Any]) -> int:
    replicas = _get(statefulset, "spec", "replicas")
    return replicas if isinstance(replicas, int) else 1  # the API's default


def _ready(pod: dict[str, Any]) -> bool:
    conditions = _get(pod, "status", "conditions")
    if not isinstance(conditions, list):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, dict)
    )


def _last_exit(status: dict[str, Any]) -> str | None:
    """``last exit Error (code 1)`` from a container's last (or current) termination."""
    for key in ("lastState", "state"):
        terminated = _get(status, key, "terminated")
        if isinstance(terminated, dict):
            reason = terminated.get("reason") or "terminated"
            code = terminated.get("exitCode")
            return f"last exit {reason}" + (f" (code {code})" if code is not None else "")
    return None


def _started_at(container: dict[str, Any] | None) -> float | None:
    """The running driver container's start (RFC 3339, e.g. ``2026-11-26T09:00:00Z``) as epoch seconds."""
    value = _get(container, "state", "running", "startedAt")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _failure(pod: dict[str, Any], container: dict[str, Any] | None) -> tuple[str, str | None] | None:
    """(reason, message) when the driver pod is failing, else None."""
    if container is not None:
        waiting = _get(container, "state", "waiting")
        reason = _get(waiting, "reason")
        if isinstance(reason, str) and reason in FAILING_REASONS:
            last = _last_exit(container)
            return (f"{reason}: {last}" if last else reason), _get(waiting, "message")
    if _get(pod, "status", "phase") == "Failed":
        reason = _get(pod, "status", "reason") or "Failed"
        last = _last_exit(container) if container is not None else None
        return (f"{reason}: {last}" if last else reason), _get(pod, "status", "message")
    return None


def _not_ready(pod: dict[str, Any], container: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """Why a pod that is not failing is not running yet (a waiting reason, a pending condition)."""
    if _get(pod, "metadata", "deletionTimestamp"):
        return "Terminating", None
    waiting = _get(container, "state", "waiting")
    if isinstance(waiting, dict) and waiting.get("reason"):
        return waiting["reason"], waiting.get("message")
    conditions = _get(pod, "status", "conditions")
    if isinstance(conditions, list):
        for c in conditions:
            if isinstance(c, dict) and c.get("status") == "False" and c.get("reason"):
                return c["reason"], c.get("message")
    return None, None


def interpret(app: str, statefulset: dict[str, Any] | None, pod: dict[str, Any] | None) -> AppStatus:
    """The app's status from its driver StatefulSet and the pod ``<driver>-0`` (either may be None)."""
    if statefulset is None:
        return AppStatus(app=app, state="absent")
    desired = _replicas(statefulset)
    image = _image(statefulset, pod)
    if pod is None:
        if desired == 0:
            return AppStatus(app=app, state="stopped", image=image)
        return AppStatus(app, "starting", desired, reason="no driver pod yet", image=image)

    statuses = _get(pod, "status", "containerStatuses")
    container = _driver([s for s in statuses if isinstance(s, dict)] if isinstance(statuses, list) else [])
    restarts = _get(container, "restartCount")
    common: dict[str, Any] = {
        "app": app,
        "desired_replicas": desired,
        "ready": _ready(pod),
        "restarts": restarts if isinstance(restarts, int) else 0,
        "pod": _get(pod, "metadata", "name"),
        "phase": _get(pod, "status", "phase"),
        "image": image,
        "started_at": _started_at(container),
    }
    if desired == 0:  # scaled down: the pod is on its way out
        reason, message = _not_ready(pod, container)
        return AppStatus(state="stopped", reason=reason or "Terminating", message=message, **common)
    failure = _failure(pod, container)
    if failure is not None:
        return AppStatus(state="failing", reason=failure[0], message=failure[1], **common)
    if common["phase"] == "Running" and common["ready"] and not _get(pod, "metadata", "deletionTimestamp"):
        return AppStatus(state="running", **common)
    reason, message = _not_ready(pod, container)
    return AppStatus(state="starting", reason=reason, message=message, **common)
