"""One catalog app as Kubernetes objects (pure dicts): the driver StatefulSet and what it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from highway import catalog
from highway.core.k8s import common as k
from highway.core.k8s.apps import app_objects, executor_template, memory_mib, pod_memory, spark_conf

SHIPPED = Path(__file__).resolve().parents[2] / "spark_apps" / "catalog"


def _objects(name: str, image: str | None = None) -> dict[str, dict[str, Any]]:
    path = SHIPPED / f"{name}.yaml"
    objs = app_objects(catalog.load(path), path.read_text(), image=image)
    return {o["kind"]: o for o in objs}


@pytest.mark.parametrize("name", ["bronze_shop_events", "silver_shop_events", "gold_product_hourly"])
def test_one_driver_statefulset_with_its_headless_service(name: str) -> None:
    objs = _objects(name)
    assert list(objs) == ["ConfigMap", "Service", "StatefulSet", "NetworkPolicy"]
    sts, svc = objs["StatefulSet"], objs["Service"]
    assert sts["spec"]["replicas"] == 1
    assert sts["metadata"]["name"] == k.driver_name(name) == svc["metadata"]["name"]
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None"
    template = sts["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert labels[k.APP_LABEL] == name
    assert labels[k.SPARK_ROLE] == "driver"
    assert all(o["metadata"]["namespace"] == k.NAMESPACE for o in objs.values())


def test_driver_pod_is_least_privilege_and_gracefully_stopped() -> None:
    pod = _objects("silver_shop_events")["StatefulSet"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == k.SA_DRIVER
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == k.SPARK_UID
    (container,) = pod["containers"]
    sec = container["securityContext"]
    assert sec == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp"}
    assert pod["terminationGracePeriodSeconds"] > 120  # the driver waits up to 120 s for its batch
    assert container["command"][:3] == ["highway", "run", "silver_shop_events"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert {"name": "metrics", "containerPort": k.METRICS_PORT} in container["ports"]


def test_no_secret_value_is_inline() -> None:
    container = _objects("silver_shop_events")["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    for env in container["env"]:
        if any(word in env["name"] for word in ("PASSWORD", "SECRET", "ACCESS_KEY")):
            assert env["valueFrom"]["secretKeyRef"]["name"] == k.SECRET, env
    text = yaml.safe_dump(_objects("silver_shop_events"))
    assert "kind: Secret" not in text


def test_resources_and_spark_conf_come_from_the_catalog() -> None:
    spec = catalog.parse(
        {
            **yaml.safe_load((SHIPPED / "bronze_shop_events.yaml").read_text()),
            "resources": {
                "driver_memory": "2g",
                "driver_cpu": "1500m",
                "executor_instances": 3,
                "executor_memory": "3g",
                "executor_cpu": "2",
            },
        },
        "x.yaml",
    )
    objs = {o["kind"]: o for o in app_objects(spec, "name: x\n")}
    container = objs["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "1500m", "memory": pod_memory("2g")}
    assert container["resources"]["limits"]["memory"] == pod_memory("2g")
    conf = dict(line.split("=", 1) for line in objs["ConfigMap"]["data"]["spark.conf"].splitlines() if line)
    assert conf["spark.executor.instances"] == "3"
    assert conf["spark.executor.memory"] == "3g"
    assert conf["spark.kubernetes.executor.request.cores"] == "2"
    assert conf["spark.kubernetes.driver.pod.name"] == "${HIGHWAY_POD_NAME}"
    assert conf["spark.kubernetes.namespace"] == k.NAMESPACE
    assert conf["spark.kubernetes.executor.label." + k.APP_LABEL] == spec.name
    assert conf["spark.kubernetes.container.image"] == k.SPARK_IMAGE


def test_image_parameter_overrides_the_catalog_and_changes_the_spec_hash() -> None:
    default, other = _objects("gold_product_hourly"), _objects("gold_product_hourly", "reg.example/hw:2")
    assert other["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]["image"] == "reg.example/hw:2"
    annotation = "highway.dev/spec-hash"
    hashes = (
        default["StatefulSet"]["spec"]["template"]["metadata"]["annotations"][annotation],
        other["StatefulSet"]["spec"]["template"]["metadata"]["annotations"][annotation],
    )
    assert hashes[0] != hashes[1]  # a new image or spec rolls the driver


def test_the_driver_learns_its_spec_digest_and_pod_uid_for_its_heartbeats() -> None:
    """The digest a deploy records (text + image given) is the one the driver stamps on its heartbeats."""
    from highway.core.release import driver_identity, spec_digest

    text = (SHIPPED / "gold_product_hourly.yaml").read_text()
    for image in (None, "reg.example/hw:2"):
        container = _objects("gold_product_hourly", image)["StatefulSet"]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in container["containers"][0]["env"]}
        assert env["HIGHWAY_SPEC_DIGEST"]["value"] == spec_digest(text, image)
        assert env["HIGHWAY_POD_UID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert spec_digest(text, None) != spec_digest(text, "reg.example/hw:2") != spec_digest(text + "\n", None)
    assert len(spec_digest(text, None)) == 12
    assert driver_identity({"HIGHWAY_SPEC_DIGEST": "abc", "HIGHWAY_POD_UID": "u-1", "OTHER": "x"}) == {
        "spec_digest": "abc",
        "pod_uid": "u-1",
    }
    assert driver_identity({}) == {}  # `highway run` by hand: nothing to claim


def test_catalog_entry_travels_verbatim_in_the_configmap() -> None:
    text = (SHIPPED / "gold_product_hourly.yaml").read_text()
    data = _objects("gold_product_hourly")["ConfigMap"]["data"]
    assert data["gold_product_hourly.yaml"] == text


def test_executor_template_is_non_root_without_token() -> None:
    spec = catalog.load(SHIPPED / "bronze_shop_events.yaml")
    pod = executor_template(spec)["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spark_conf(spec, "img:1", "ns")["spark.kubernetes.executor.podTemplateContainerName"] == "executor"


def test_network_policy_covers_driver_and_executors_of_the_app() -> None:
    policy = _objects("silver_shop_events")["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"][k.APP_LABEL] == "silver_shop_events"
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ports = {p["port"] for rule in policy["egress"] for p in rule.get("ports", [])}
    assert {k.KAFKA.port, k.S3.port, k.ELASTICSEARCH.port, k.POSTGRES.port, 443} <= ports


@pytest.mark.parametrize(("jvm", "mib"), [("512m", 512), ("2g", 2048), ("1g", 1024)])
def test_memory_sizes(jvm: str, mib: int) -> None:
    assert memory_mib(jvm) == mib
    assert int(pod_memory(jvm).removesuffix("Mi")) >= mib + 384 + 512
