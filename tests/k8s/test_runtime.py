"""KubernetesRuntime against a real API server (kwok plays the node): deploy, status, restart, stop/start,
crash loops, bad input, logs and errors.

The runtime runs as the Airflow service account (its token), so every test also proves the Role grants
what the runtime needs; the admin client only observes (and simulates failures).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

import hwtest
from highway.catalog import AppSpec, catalog_dir, parse
from highway.catalog.variant import variant
from highway.core.k8s import common as k
from highway.core.k8s.apps import pod_memory
from highway.core.k8s.status import AppStatus
from highway.errors import CatalogError
from highway.runtime import AppRuntime, RuntimeTerminal, RuntimeTransient
from highway.runtime.kubernetes import KubernetesRuntime, from_kubeconfig, in_cluster
from kubecluster import HOLD_DELETION, KubeCluster, simulate_crashloop, wait_for

NS = k.NAMESPACE
RESOURCES = {
    "driver_memory": "1g",
    "driver_cpu": "500m",
    "shuffle_partitions": 4,
    "executor_instances": 2,
    "executor_memory": "2g",
    "executor_cpu": "750m",
}


@pytest.fixture(scope="session")
def runtime(airflow_api: Any) -> KubernetesRuntime:
    return KubernetesRuntime(airflow_api, namespace=NS, poll=0.1)


def app_data(suffix: str, base: str = "silver_shop_events") -> dict[str, Any]:
    shipped = yaml.safe_load((catalog_dir() / f"{base}.yaml").read_text())
    data = variant(shipped, suffix, f"t_{suffix}")
    data["resources"] = dict(RESOURCES)
    return data


def app(suffix: str, base: str = "silver_shop_events") -> tuple[AppSpec, str]:
    data = app_data(suffix, base)
    return parse(data, f"{data['name']}.yaml"), yaml.safe_dump(data, sort_keys=False)


def running(runtime: KubernetesRuntime, name: str) -> AppStatus:
    return wait_for(f"{name} running", lambda: runtime.status(name), lambda s: s.state == "running")


def deployed(runtime: KubernetesRuntime, suffix: str, base: str = "silver_shop_events") -> AppSpec:
    spec, text = app(suffix, base)
    runtime.deploy(spec, text)
    running(runtime, spec.name)
    return spec


def read_pod(admin: Any, name: str) -> Any:
    """The driver pod (a V1Pod) or None."""
    try:
        return client.CoreV1Api(admin).read_namespaced_pod(k.driver_pod(name), NS)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def objects_of(admin: Any, name: str) -> list[str]:
    """Every object of the app that exists (by name, and by its app label)."""
    core, apps, net = client.CoreV1Api(admin), client.AppsV1Api(admin), client.NetworkingV1Api(admin)
    selector = f"{k.APP_LABEL}={name}"
    found = []
    for kind, lister in (
        ("ConfigMap", core.list_namespaced_config_map),
        ("Service", core.list_namespaced_service),
        ("StatefulSet", apps.list_namespaced_stateful_set),
        ("NetworkPolicy", net.list_namespaced_network_policy),
        ("Pod", core.list_namespaced_pod),
    ):
        found += [f"{kind}/{o.metadata.name}" for o in lister(NS, label_selector=selector).items]
    names = {k.app_config_name(name), k.driver_name(name), k.driver_pod(name)}
    for kind, lister in (
        ("ConfigMap", core.list_namespaced_config_map),
        ("StatefulSet", apps.list_namespaced_stateful_set),
        ("Pod", core.list_namespaced_pod),
    ):
        found += [f"{kind}/{o.metadata.name}" for o in lister(NS).items if o.metadata.name in names]
    return sorted(set(found))


# ---- deploy -----------------------------------------------------------------------------------------------
def test_deploy_renders_the_app_and_a_second_deploy_changes_nothing(
    runtime: KubernetesRuntime, admin: Any
) -> None:
    spec, text = app("dep")
    first = runtime.deploy(spec, text)
    assert first.app == spec.name and first.state in ("starting", "running"), first
    status = running(runtime, spec.name)
    assert status.ready and status.pod == k.driver_pod(spec.name) and status.desired_replicas == 1
    assert status.restarts == 0 and status.image == spec.image

    apps, core = client.AppsV1Api(admin), client.CoreV1Api(admin)
    sts = apps.read_namespaced_stateful_set(k.driver_name(spec.name), NS)
    assert sts.spec.replicas == 1
    pod = core.read_namespaced_pod(k.driver_pod(spec.name), NS)
    for labels in (sts.metadata.labels, pod.metadata.labels):
        assert labels[k.APP_LABEL] == spec.name and labels[k.COMPONENT] == "driver"
    assert pod.spec.service_account_name == k.SA_DRIVER
    assert pod.spec.security_context.run_as_non_root is True
    container = pod.spec.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.capabilities.drop == ["ALL"]
    memory = pod_memory(str(RESOURCES["driver_memory"]))
    assert container.resources.requests == {"cpu": "500m", "memory": memory}
    assert container.resources.limits == {"cpu": "500m", "memory": memory}
    conf = core.read_namespaced_config_map(k.app_config_name(spec.name), NS).data
    lines = set(conf["spark.conf"].splitlines())
    assert any(line.startswith("spark.kubernetes.driver.pod.name=") for line in lines)
    for line in (
        "spark.executor.instances=2",
        "spark.executor.memory=2g",
        "spark.kubernetes.executor.request.cores=750m",
        "spark.kubernetes.executor.limit.cores=750m",
    ):
        assert line in lines, line
    assert yaml.safe_load(conf[f"{spec.name}.yaml"])["name"] == spec.name

    def applied_at(obj: Any) -> object:
        return [(m.manager, m.time) for m in obj.metadata.managed_fields if m.operation == "Apply"]

    generation, applied = sts.metadata.generation, applied_at(sts)
    again = runtime.deploy(spec, text)
    assert again.state == "running" and again.pod == status.pod
    after = apps.read_namespaced_stateful_set(k.driver_name(spec.name), NS)
    assert after.metadata.generation == generation
    # the controller may still write .status (resourceVersion moves); our apply must change nothing
    assert applied_at(after) == applied, "a second deploy must not write anything"
    assert read_pod(admin, spec.name).metadata.uid == pod.metadata.uid
    managers = {m.manager for m in after.metadata.managed_fields if m.operation == "Apply"}
    assert managers == {k.FIELD_MANAGER}


# ---- restart ----------------------------------------------------------------------------------------------
def test_restart_replaces_the_driver_and_never_runs_two(runtime: KubernetesRuntime, admin: Any) -> None:
    spec = deployed(runtime, "rst")
    core = client.CoreV1Api(admin)
    old_uid = read_pod(admin, spec.name).metadata.uid
    selector = f"{k.APP_LABEL}={spec.name},{k.COMPONENT}=driver"
    version = core.list_namespaced_pod(NS, label_selector=selector).metadata.resource_version
    events: list[tuple[str, str, str, str | None]] = []  # (type, name, uid, phase)
    errors: list[BaseException] = []

    pod_watch = watch.Watch()
    stopping = threading.Event()

    def watch_pods() -> None:  # until stopped (or the server ends the watch)
        try:
            stream = pod_watch.stream(
                core.list_namespaced_pod,
                NS,
                label_selector=selector,
                resource_version=version,
                timeout_seconds=90,
            )
            for event in stream:
                pod = event["object"]
                events.append((event["type"], pod.metadata.name, pod.metadata.uid, pod.status.phase))
        except BaseException as error:
            if not stopping.is_set():  # stop() shuts the socket down under the read
                errors.append(error)

    watcher = threading.Thread(target=watch_pods, daemon=True)
    watcher.start()
    # the watch starts from `version`: nothing after it is missed, whenever the thread gets to open it
    status = runtime.restart(spec.name, timeout=60)
    assert status.pod == k.driver_pod(spec.name) and status.state in ("starting", "running"), status
    status = running(runtime, spec.name)
    current = read_pod(admin, spec.name).metadata.uid
    deadline = time.monotonic() + 60  # the watch has seen the replacement running
    while not any(uid == current and phase == "Running" for _k, _n, uid, phase in events):
        assert time.monotonic() < deadline and not errors, (errors, events)
        time.sleep(0.1)  # the poll interval of a wait with a deadline, not a pause
    stopping.set()
    pod_watch.stop()
    watcher.join(timeout=30)
    assert not errors, (errors, events)

    alive = {old_uid}  # the driver pods that exist, starting from the one before the restart
    for kind, _name, uid, _phase in events:
        if kind in ("ADDED", "MODIFIED"):
            alive.add(uid)
        elif kind == "DELETED":
            alive.discard(uid)
        assert len(alive) <= 1, f"two driver pods at once: {events}"
    kinds = [(kind, uid) for kind, _n, uid, _p in events]
    added = [uid for kind, uid in kinds if kind == "ADDED"]
    assert ("DELETED", old_uid) in kinds and added, events
    # the replacement appears only after the old pod is gone (kwok may replace the replacement once more:
    # it deletes terminating pods by name; see kubecluster)
    assert kinds.index(("DELETED", old_uid)) < kinds.index(("ADDED", added[0])), events
    assert read_pod(admin, spec.name).metadata.uid != old_uid
    assert status.state == "running" and status.ready


def test_restart_of_an_app_never_deployed_is_refused(runtime: KubernetesRuntime) -> None:
    with pytest.raises(RuntimeTerminal, match=r"not deployed .*StatefulSet highway/never-there-driver"):
        runtime.restart("never_there")


# ---- stop / start -----------------------------------------------------------------------------------------
def test_stop_then_start(runtime: KubernetesRuntime, admin: Any) -> None:
    spec = deployed(runtime, "stp")
    old_uid = read_pod(admin, spec.name).metadata.uid
    stopped = runtime.stop(spec.name, timeout=60)
    assert stopped.state == "stopped" and stopped.pod is None and stopped.desired_replicas == 0, stopped
    assert read_pod(admin, spec.name) is None
    assert runtime.stop(spec.name, timeout=10).state == "stopped"  # idempotent
    assert runtime.status(spec.name).state == "stopped"
    with pytest.raises(RuntimeTerminal, match="stopped"):
        runtime.restart(spec.name)

    started = runtime.start(spec.name)
    assert started.desired_replicas == 1 and started.state in ("starting", "running"), started
    assert running(runtime, spec.name).ready
    assert runtime.start(spec.name).state == "running"  # idempotent
    assert read_pod(admin, spec.name).metadata.uid != old_uid


def test_stop_times_out_with_a_transient_error(runtime: KubernetesRuntime, admin: Any) -> None:
    """A clock that has run out: the wait for the pod ends with RuntimeTransient naming the pod."""
    spec = deployed(runtime, "sto")
    ticks = iter([0.0, 0.0, 1000.0, 1000.0, 1000.0])
    late = KubernetesRuntime(runtime.api, namespace=NS, clock=lambda: next(ticks, 1000.0), poll=0)
    # the pod stays Terminating (as behind a slow kubelet) until the hold is lifted; see kubecluster
    hold = {"metadata": {"annotations": {HOLD_DELETION: "true"}}}
    client.CoreV1Api(admin).patch_namespaced_pod(k.driver_pod(spec.name), NS, hold)
    try:
        with pytest.raises(RuntimeTransient) as caught:
            late.stop(spec.name, timeout=5)
        message = str(caught.value)
        assert "timed out after 5 s" in message and f"{NS}/{k.driver_pod(spec.name)}" in message
        assert "\n" not in message
    finally:
        release = {"metadata": {"annotations": {HOLD_DELETION: None}}}
        client.CoreV1Api(admin).patch_namespaced_pod(k.driver_pod(spec.name), NS, release)
    wait_for("stopped", lambda: runtime.status(spec.name), lambda s: s.state == "stopped" and s.pod is None)


# ---- failures ---------------------------------------------------------------------------------------------
def test_a_crash_looping_driver_is_failing_and_restart_recovers(
    runtime: KubernetesRuntime, admin: Any
) -> None:
    spec = deployed(runtime, "crl")
    simulate_crashloop(admin, NS, k.driver_pod(spec.name), reason="Error", exit_code=1, restarts=5)
    status = runtime.status(spec.name)
    assert status.state == "failing" and not status.ready, status
    assert status.reason is not None and "CrashLoopBackOff" in status.reason
    assert "Error (code 1)" in status.reason and status.restarts == 5
    assert "failing" in status.line() and "\n" not in status.line()

    runtime.restart(spec.name, timeout=60)
    fresh = running(runtime, spec.name)
    assert fresh.restarts == 0 and fresh.reason is None


def test_bad_input_is_refused_before_anything_is_created(runtime: KubernetesRuntime, admin: Any) -> None:
    data = app_data("bad")
    data["resources"]["driver_cpu"] = "lots"
    with pytest.raises(CatalogError) as caught:
        parse(data, "bad.yaml")
    assert caught.value.key == "resources.driver_cpu" and caught.value.value == "lots"
    assert "resources.driver_cpu" in str(caught.value)

    spec, text = app("bad")
    with pytest.raises(RuntimeTerminal) as refused:
        runtime.deploy(spec, text, image="Bad Image!!")
    message = str(refused.value)
    assert "image" in message and "'Bad Image!!'" in message and "allowed" in message
    assert objects_of(admin, spec.name) == []
    assert runtime.status(spec.name).state == "absent"


def test_an_unreachable_api_server_is_transient(runtime: KubernetesRuntime) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"https://127.0.0.1:{port}"
    configuration.retries = 0
    with client.ApiClient(configuration) as api:
        closed = KubernetesRuntime(api, namespace=NS)
        began = time.monotonic()
        with pytest.raises(RuntimeTransient) as caught:
            closed.status("silver_shop_events")
        hwtest.measured(
            f"Kubernetes runtime, API server refused: one-line error after {time.monotonic() - began:.1f} s"
        )
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert f"127.0.0.1:{port}" in message and "refused" in message.lower(), message
    assert "StatefulSet highway/silver-shop-events-driver" in message


def test_a_missing_namespace_is_terminal(admin: Any) -> None:
    elsewhere = KubernetesRuntime(admin, namespace="no-such-namespace")
    spec, text = app("nsx")
    with pytest.raises(RuntimeTerminal) as caught:
        elsewhere.deploy(spec, text)
    message = str(caught.value)
    assert "HTTP 404" in message and "no-such-namespace" in message and "\n" not in message
    assert elsewhere.status(spec.name).state == "absent"


# ---- logs -------------------------------------------------------------------------------------------------
def test_logs_of_the_driver(kube: KubeCluster, runtime: KubernetesRuntime) -> None:
    spec = deployed(runtime, "log")
    kube.write_pod_log("\n".join(f"batch {i} committed" for i in range(10)))
    text = wait_for_logs(runtime, spec.name)
    assert "batch 9 committed" in text
    assert runtime.logs(spec.name, tail=3).splitlines() == [f"batch {i} committed" for i in (7, 8, 9)]


def wait_for_logs(runtime: KubernetesRuntime, name: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = runtime.logs(name)
        except RuntimeTransient:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        if text or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_logs_without_a_pod_say_so(runtime: KubernetesRuntime) -> None:
    with pytest.raises(RuntimeTerminal) as caught:
        runtime.logs("never_there")
    message = str(caught.value)
    assert "no driver pod highway/never-there-driver-0" in message and "\n" not in message


# ---- what is refused before any request, and how long restart waits (real API server) -------------------
def test_bad_input_makes_no_request(runtime: KubernetesRuntime, admin: Any) -> None:
    spec, text = app("val")
    with pytest.raises(
        RuntimeTerminal, match="key 'image' has value 'Bad Image!!'; allowed: an image reference"
    ):
        runtime.deploy(spec, text, image="Bad Image!!")
    long_data = app_data("x" * 40)
    with pytest.raises(RuntimeTerminal, match=r"key 'name'.* at most 45 characters"):
        runtime.deploy(parse(long_data, "long.yaml"), text)
    with pytest.raises(RuntimeTerminal, match="catalog text is"):
        runtime.deploy(spec, "x" * 1_000_000)
    with pytest.raises(RuntimeTerminal, match="namespace 'Not_A_Namespace'"):
        KubernetesRuntime(runtime.api, namespace="Not_A_Namespace")
    assert objects_of(admin, spec.name) == []  # nothing of the refused app reached the API server


def test_restart_waits_on_the_clock_and_names_what_it_waited_for(
    runtime: KubernetesRuntime, admin: Any
) -> None:
    spec = deployed(runtime, "rwt")
    core = client.CoreV1Api(admin)
    pod_name = k.driver_pod(spec.name)
    old = core.read_namespaced_pod(pod_name, NS)
    # the old pod stays Terminating (as behind a slow kubelet) until the hold is lifted; see kubecluster
    core.patch_namespaced_pod(pod_name, NS, {"metadata": {"annotations": {HOLD_DELETION: "true"}}})
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += 1.0

    late = KubernetesRuntime(runtime.api, namespace=NS, clock=lambda: now[0], sleep=sleep, poll=0.25)
    try:
        with pytest.raises(RuntimeTransient) as caught:
            late.restart(spec.name, timeout=3)
        message = str(caught.value)
        assert message == (
            f"restart {spec.name}: timed out after 3 s waiting for the old driver pod "
            f"{NS}/{pod_name} (uid {old.metadata.uid}) to be gone"
        )
        assert sleeps == [0.25, 0.25, 0.25]
        held = core.read_namespaced_pod(pod_name, NS)
        assert (
            held.metadata.uid == old.metadata.uid and held.metadata.deletion_timestamp is not None
        )  # deleted
        pods = core.list_namespaced_pod(NS, label_selector=f"{k.APP_LABEL}={spec.name}").items
        assert len(pods) == 1, "the runtime never creates a pod"
    finally:
        release = {"metadata": {"annotations": {HOLD_DELETION: None}}}
        core.patch_namespaced_pod(pod_name, NS, release)
    running(runtime, spec.name)


def test_a_name_that_is_no_app_is_refused_without_a_request(runtime: KubernetesRuntime) -> None:
    for call in (runtime.status, runtime.restart, runtime.stop, runtime.start, runtime.logs):
        with pytest.raises(RuntimeTerminal, match="is not allowed; allowed: a catalog app name"):
            call("../secrets/x")


# ---- factories ---------------------------------------------------------------------------------------------
def test_from_kubeconfig_leaves_the_default_configuration_alone(kube: KubeCluster, highway_base: str) -> None:
    before = client.Configuration.get_default_copy()
    runtime = from_kubeconfig(kube.kubeconfig, namespace=highway_base)
    assert isinstance(runtime, AppRuntime)
    assert runtime.status("never_there").state == "absent"
    after = client.Configuration.get_default_copy()
    assert (after.host, after.api_key, after.ssl_ca_cert) == (before.host, before.api_key, before.ssl_ca_cert)
    with pytest.raises(RuntimeTerminal, match=r"cannot load kubeconfig .*\(context nowhere\)"):
        from_kubeconfig(kube.kubeconfig, context="nowhere")
    with pytest.raises(RuntimeTerminal, match="cannot load kubeconfig"):
        from_kubeconfig(kube.state_dir / "no-such-kubeconfig")


def test_in_cluster_outside_a_pod_is_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(RuntimeTerminal, match="not running in a Kubernetes pod"):
        in_cluster()
