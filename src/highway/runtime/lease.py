"""The checkpoint's Lease on Kubernetes (``coordination.k8s.io/v1``), held by the running driver.

``CheckpointLease.acquire`` creates or takes the Lease (refused, naming the holder, while another driver's
Lease is valid), then a daemon thread renews it every ``RENEW_EVERY`` s. ``check()`` raises
``LeaseRefused`` once the lease can no longer be trusted (a renewal failed for too long, or another holder
took it): the batch function calls it before it commits, so a fenced-off driver stops writing.
The driver's service account needs get, create and update on ``leases`` in its namespace.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from highway.core.lease import LEASE_SECONDS, RENEW_EVERY, LeaseRecord, next_step, trusted_until
from highway.errors import LeaseRefused


def _record(lease: Any) -> LeaseRecord:
    spec = lease.spec
    renewed = spec.renew_time or spec.acquire_time
    return LeaseRecord(
        spec.holder_identity, renewed.timestamp() if renewed else None, spec.lease_duration_seconds
    )


class CheckpointLease:
    def __init__(
        self,
        api: Any,
        namespace: str,
        name: str,
        identity: str,
        duration: int = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from kubernetes import client

        self.coordination = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity, self.duration = namespace, name, identity, duration
        self.clock = clock
        self.valid_until = 0.0
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self, now: float, transitions: int, acquired: datetime | None = None) -> Any:
        from kubernetes import client

        stamp = datetime.fromtimestamp(now, UTC)
        return client.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=self.duration,
            acquire_time=acquired or stamp,
            renew_time=stamp,
            lease_transitions=transitions,
        )

    def _attempt(self) -> None:
        """One create/take/renew; LeaseRefused when another holder's lease is valid."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        now = self.clock()
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            lease = None
        step = next_step(_record(lease) if lease is not None else None, self.identity, now)
        if step == "refuse":
            raise LeaseRefused(
                f"checkpoint lease {self.namespace}/{self.name} is held by {lease.spec.holder_identity} "
                f"(renewed {lease.spec.renew_time}); one driver per checkpoint: stop that one first"
            )
        if step == "create":
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name), spec=self._body(now, 0))
            self.coordination.create_namespaced_lease(self.namespace, body)
        else:
            transitions = int(lease.spec.lease_transitions or 0) + (1 if step == "take" else 0)
            acquired = lease.spec.acquire_time if step == "renew" else None
            lease.spec = self._body(now, transitions, acquired)
            self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)  # 409 if it moved
        self.valid_until = trusted_until(now, self.duration)

    def acquire(self) -> CheckpointLease:
        self._attempt()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_EVERY if self.duration >= 3 * RENEW_EVERY else self.duration / 3):
            try:
                self._attempt()
            except LeaseRefused as exc:
                self.lost = str(exc)
                return
            except Exception as exc:  # the API server unreachable: keep trying until the lease runs out
                self.lost = None if self.clock() < self.valid_until else f"cannot renew: {exc}"

    def check(self) -> None:
        """Raise ``LeaseRefused`` unless this driver may still commit."""
        if self.lost is not None or self.clock() >= self.valid_until:
            why = self.lost or f"not renewed since {datetime.fromtimestamp(self.valid_until, UTC):%H:%M:%S}"
            raise LeaseRefused(f"checkpoint lease {self.name} lost ({why}): stopping before the next commit")

    def release(self) -> None:
        """Stop renewing and let the next driver take it at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
