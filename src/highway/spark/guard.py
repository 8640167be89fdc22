"""What a driver checks before its query starts: it alone holds the checkpoint, and the checkpoint agrees
with what its sinks committed (or is mended under the catalog's ``recovery`` policy)."""

from __future__ import annotations

import os
from typing import Any

from highway.catalog import AppSpec, GoldSpec, SilverSpec
from highway.connection import Connection
from highway.core import recovery
from highway.errors import CheckpointRefused, LeaseRefused

LEASE_FD_ENV = "HIGHWAY_LEASE_FD"  # set by the local runtime's supervisor: it took the lease for us
START_RETRY_SECONDS = (
    60.0  # a store out of reach at start is waited for this long (silver/gold: their sink's)
)
SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_held: list[int] = []  # the lease's descriptor, open for the life of the process
_k8s: list[Any] = []  # the Kubernetes Lease a driver in a pod holds (highway.runtime.lease.CheckpointLease)


def hold_lease(spec: AppSpec) -> None:
    """Take the checkpoint's lease (the same lock file the local runtime's supervisor takes), unless a
    supervisor passed its own down, or the driver runs in a Kubernetes pod (its StatefulSet fences it)."""
    from highway.core.supervise import lease_name
    from highway.runtime.supervisor import LeaseHeld, note_holder, take_lease
    from highway.settings import default_home

    passed = os.environ.get(LEASE_FD_ENV)
    if passed and passed.isdigit():
        try:
            os.fstat(int(passed))
            return
        except OSError:
            pass  # not inherited after all: take it ourselves
    if _held or _k8s:
        return
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        _k8s.append(_pod_lease(spec))
        return
    lock = default_home() / "leases" / lease_name(spec.checkpoint)
    try:
        fd = take_lease(lock, spec.name, spec.checkpoint)
    except LeaseHeld as held:
        raise LeaseRefused(str(held)) from None
    note_holder(fd, spec.name, None, os.getpid())
    _held.append(fd)


def _pod_lease(spec: AppSpec) -> Any:
    """In a pod: the checkpoint's ``coordination.k8s.io`` Lease, held as the pod (its name: the identity)."""
    import socket
    from pathlib import Path

    from kubernetes import client, config

    from highway.core.lease import lease_object_name
    from highway.runtime.lease import CheckpointLease

    config.load_incluster_config()
    namespace = Path(SA_NAMESPACE).read_text().strip()
    identity = os.environ.get("HOSTNAME") or socket.gethostname()
    return CheckpointLease(
        client.ApiClient(), namespace, lease_object_name(spec.checkpoint), identity
    ).acquire()


def check_lease() -> None:
    """Before a commit: raise ``LeaseRefused`` if this driver's Kubernetes Lease can no longer be trusted."""
    for lease in _k8s:
        lease.check()


def _say(line: str) -> None:
    print(line, flush=True)


def _note(conn: Connection, spec: AppSpec, mode: str, backup: str | None, why: str, line: str) -> None:
    """Leave the recovery where reconcile reports it (health.json, ``highway status``, the DAG log)."""
    import time

    from highway.ops.observe import CHECKPOINT, Records

    doc = {"at": time.time(), "mode": mode, "policy": spec.recovery.policy, "backup": backup, "why": why,
           "line": line, "pid": os.getpid()}  # fmt: skip
    Records(conn).write(spec, CHECKPOINT, doc)


def checked_start(spec: AppSpec, conn: Connection, reporter: Any) -> None:
    """Examine the checkpoint against the sinks; recover by itself as far as ``spec.recovery.policy``
    allows; refuse with one line otherwise (``CheckpointRefused``, also the final heartbeat's error)."""
    import time

    from highway.core.retry import retry_transient
    from highway.ops import checkpoints

    wait = spec.warehouse.retry_seconds if isinstance(spec, SilverSpec | GoldSpec) else START_RETRY_SECONDS
    exam, _ = retry_transient(
        lambda: checkpoints.examine(conn, spec), f"app {spec.name}: read its checkpoint and sinks' commits",
        wait, time.monotonic, time.sleep, _say,
    )  # fmt: skip
    if recovery.tidy_plan(spec.name, exam.view) is not None:
        done = checkpoints.recover(
            conn,
            spec,
            recovery.TIDY,
            "a killed driver left temp files",
            who=f"app {spec.name} (pid {os.getpid()})",
        )
        for text in done.plan.lines():
            _say(text)
        exam = done.after or exam
    line = recovery.refusal_line(spec.name, exam.findings)
    auto = () if recovery.needs_operator(exam.findings) else recovery.modes_for(spec.recovery.policy)
    for mode in auto if line else ():
        why = f"automatic ({spec.recovery.policy} policy): {line}"
        done = checkpoints.recover(conn, spec, mode, why, who=f"app {spec.name} (pid {os.getpid()})")
        for text in done.plan.lines():
            _say(text)
        if done.after is not None:
            exam = done.after
            line = recovery.refusal_line(spec.name, exam.findings)
            if line is None:
                said = f"{spec.name}: checkpoint recovered by {mode} (backup {done.backup_id})"
                _say(said)
                _note(conn, spec, mode, done.backup_id, why, said)
                break
    if line is None:
        return
    reporter.finish(line)
    raise CheckpointRefused(line)
