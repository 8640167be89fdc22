"""One driver per checkpoint on Kubernetes: the checkpoint's Lease, held and renewed as the driver's service
account against the real API server. A second driver is refused naming the holder; when the holder stops
renewing, it stops trusting its lease before the other may take it, and the other then takes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from highway.core.k8s import common as k
from highway.core.lease import lease_object_name
from highway.errors import LeaseRefused
from highway.runtime.lease import CheckpointLease
from kubecluster import KubeCluster

NS = k.NAMESPACE


@pytest.fixture(scope="module")
def driver_api(kube: KubeCluster, highway_base: str) -> Iterator[Any]:
    with kube.api_client(token=kube.service_account_token(highway_base, k.SA_DRIVER)) as api:
        yield api


def test_a_second_driver_is_refused_until_the_first_lease_runs_out(driver_api: Any) -> None:
    name = lease_object_name(f"_checkpoints/lease_test_{time.time_ns()}")
    first = CheckpointLease(driver_api, NS, name, "driver-a-0", duration=6).acquire()
    try:
        first.check()  # it may commit
        second = CheckpointLease(driver_api, NS, name, "driver-b-0", duration=6)
        with pytest.raises(LeaseRefused, match="is held by driver-a-0"):
            second.acquire()
        first._stop.set()  # the first driver freezes: it renews no more (and is not told)
        deadline = time.monotonic() + 60
        while True:  # the API server's lease runs out; the other driver takes it
            try:
                second.acquire()
                break
            except LeaseRefused:
                assert time.monotonic() < deadline, "the stale lease was never taken over"
                time.sleep(0.5)  # poll interval (the deadline is above)
        with pytest.raises(LeaseRefused, match="lost"):
            first.check()  # it stopped trusting its lease before the second could take it
        second.check()
        with pytest.raises(LeaseRefused, match="is held by driver-b-0"):
            CheckpointLease(driver_api, NS, name, "driver-a-0", duration=6)._attempt()
    finally:
        first.release()
        if "second" in locals():
            second.release()
