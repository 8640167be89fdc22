"""interpret(): an app's state from its StatefulSet and driver pod, table-driven over API JSON dicts."""

from __future__ import annotations

from typing import Any

import pytest

from highway.core.k8s.status import STATES, AppStatus, interpret

APP = "silver_shop_events"
POD = "silver-shop-events-driver-0"
IMAGE = "highway-spark:0.1.0"


def sts(replicas: int | None = 1, image: str = IMAGE) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "driver", "image": image}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"name": "silver-shop-events-driver"}, "spec": spec}


def pod(
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    deleting: bool = False,
    image: str = IMAGE,
    conditions: list[dict[str, Any]] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "driver",
        "ready": ready,
        "restartCount": restarts,
        "image": image,
        "state": state if state is not None else {"running": {"startedAt": "2026-11-26T09:00:00Z"}},
    }
    if last is not None:
        container["lastState"] = last
    meta: dict[str, Any] = {"name": POD, "uid": "u-1"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-26T09:01:00Z"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions
        if conditions is not None
        else [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "sidecar", "restartCount": 9, "state": {}}, container],
    }
    if reason is not None:
        status["reason"] = reason
    return {"metadata": meta, "spec": {"containers": [{"name": "driver", "image": image}]}, "status": status}


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"waiting": {"reason": reason}}
    if message is not None:
        out["waiting"]["message"] = message
    return out


ERROR_1 = {"terminated": {"reason": "Error", "exitCode": 1}}

# (id, statefulset, pod, expected fields)
CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]]] = [
    ("no statefulset", None, None, {"state": "absent", "desired_replicas": 0, "pod": None, "image": None}),
    ("no statefulset, orphan pod", None, pod(), {"state": "absent", "pod": None}),
    ("scaled to 0, pod gone", sts(0), None, {"state": "stopped", "desired_replicas": 0, "image": IMAGE}),
    (
        "scaled to 0, pod terminating",
        sts(0),
        pod(deleting=True),
        {"state": "stopped", "pod": POD, "phase": "Running", "reason": "Terminating", "ready": True},
    ),
    ("replicas default 1, no pod", sts(None), None, {"state": "starting", "desired_replicas": 1}),
    ("no pod yet", sts(), None, {"state": "starting", "pod": None, "reason": "no driver pod yet"}),
    (
        "running and ready",
        sts(),
        pod(),
        {"state": "running", "ready": True, "restarts": 0, "pod": POD, "phase": "Running", "reason": None},
    ),
    (
        "running, not ready",
        sts(),
        pod(ready=False, conditions=[{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]),
        {"state": "starting", "ready": False, "reason": "ContainersNotReady"},
    ),
    (
        "pending, unschedulable",
        sts(),
        pod(
            phase="Pending",
            ready=False,
            state=waiting("ContainerCreating"),
            conditions=[
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1"}
            ],
        ),
        {"state": "starting", "phase": "Pending", "reason": "ContainerCreating"},
    ),
    (
        "pending, no container status",
        sts(),
        {
            "metadata": {"name": POD},
            "status": {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
            },
        },
        {"state": "starting", "reason": "Unschedulable", "restarts": 0, "image": IMAGE},
    ),
    (
        "crash loop",
        sts(),
        pod(ready=False, restarts=5, state=waiting("CrashLoopBackOff", "back-off 5m0s"), last=ERROR_1),
        {
            "state": "failing",
            "restarts": 5,
            "reason": "CrashLoopBackOff: last exit Error (code 1)",
            "message": "back-off 5m0s",
        },
    ),
    (
        "crash loop, OOM",
        sts(),
        pod(
            ready=False,
            restarts=2,
            state=waiting("CrashLoopBackOff"),
            last={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
        ),
        {"state": "failing", "reason": "CrashLoopBackOff: last exit OOMKilled (code 137)"},
    ),
    (
        "image pull",
        sts(),
        pod(phase="Pending", ready=False, state=waiting("ImagePullBackOff", "pull access denied")),
        {"state": "failing", "reason": "ImagePullBackOff", "message": "pull access denied"},
    ),
    ("err image pull", sts(), pod(ready=False, state=waiting("ErrImagePull")), {"state": "failing"}),
    (
        "missing secret key",
        sts(),
        pod(ready=False, state=waiting("CreateContainerConfigError", 'secret "x" not found')),
        {"state": "failing", "reason": "CreateContainerConfigError", "message": 'secret "x" not found'},
    ),
    (
        "pod failed",
        sts(),
        pod(phase="Failed", ready=False, state=ERROR_1, reason="Evicted"),
        {"state": "failing", "reason": "Evicted: last exit Error (code 1)", "phase": "Failed"},
    ),
    (
        "restarting pod terminating",
        sts(),
        pod(deleting=True),
        {"state": "starting", "reason": "Terminating", "pod": POD},
    ),
    (
        "image from the pod, not the template",
        sts(image="old:1"),
        pod(image="new:2"),
        {"state": "running", "image": "new:2"},
    ),
    (
        "restarted once, running again",
        sts(),
        pod(restarts=1, last=ERROR_1),
        {"state": "running", "restarts": 1, "reason": None},
    ),
]


@pytest.mark.parametrize(
    ("statefulset", "driver", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_interpret(
    statefulset: dict[str, Any] | None, driver: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    status = interpret(APP, statefulset, driver)
    assert status.app == APP
    assert status.state in STATES
    for key, value in expected.items():
        assert getattr(status, key) == value, f"{key}: {status}"


def test_status_is_frozen_and_prints_one_line() -> None:
    status = interpret(
        APP, sts(), pod(ready=False, restarts=5, state=waiting("CrashLoopBackOff"), last=ERROR_1)
    )
    with pytest.raises(AttributeError):
        status.state = "running"  # type: ignore[misc]
    line = status.line()
    assert "\n" not in line
    assert line.startswith(f"{APP}: failing (pod {POD} Running")
    assert "5 restarts" in line and "CrashLoopBackOff: last exit Error (code 1)" in line
    assert AppStatus(APP, "absent").line() == f"{APP}: absent"


def test_started_at_is_the_running_driver_containers_start() -> None:
    status = interpret(APP, sts(), pod(state={"running": {"startedAt": "2026-11-26T09:00:00Z"}}))
    assert status.started_at == 1795683600.0  # 2026-11-26 09:00:00 UTC
    waiting_pod = pod(ready=False, state=waiting("CrashLoopBackOff"), last=ERROR_1)
    assert interpret(APP, sts(), waiting_pod).started_at is None
    assert interpret(APP, sts(), pod(state={"running": {"startedAt": "not a time"}})).started_at is None
    assert interpret(APP, sts(), None).started_at is None
