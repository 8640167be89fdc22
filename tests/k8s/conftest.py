"""The ``kube`` session fixture: one real control plane (etcd, kube-apiserver, controller manager, scheduler,
kwok) for every Kubernetes test, built on first use by ``bash tools/k8s/build.sh``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import pytest

# tests/k8s is a package: pytest puts tests/ (its first parent without __init__.py) on sys.path, as for hwtest
from kubecluster import KubeCluster


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[KubeCluster]:
    capture = request.config.pluginmanager.getplugin("capturemanager")
    cluster = KubeCluster()
    try:
        # uncaptured, so a first build's progress lines (minutes) reach the terminal as they come
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            cluster.start()
            print(
                f"\nkube: control plane up in {cluster.start_seconds:.1f} s "
                f"(build {cluster.build_seconds:.1f} s) at {cluster.server}",
                file=sys.stderr,
            )
        yield cluster
    finally:
        cluster.stop()
