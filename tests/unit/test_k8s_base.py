"""The base stack's Kubernetes objects as plain dicts: least privilege, secret refs, hardened pods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from highway.core.k8s import common as k
from highway.core.k8s.base import (
    AIRFLOW_WORKERS,
    DRIVER_RULES,
    RUNTIME_RULES,
    base_objects,
    config_data,
    demo_producer_job,
    library_env,
    library_env_from,
)

WORKLOADS = ("StatefulSet", "Deployment", "Job")
SECRET_WORDS = ("PASSWORD", "KEY", "SECRET")


def everything(namespace: str = k.NAMESPACE) -> list[dict[str, Any]]:
    objects = [obj for objs in base_objects(namespace).values() for obj in objs]
    return [*objects, demo_producer_job(namespace)]


def workloads() -> list[dict[str, Any]]:
    return [obj for obj in everything() if obj["kind"] in WORKLOADS]


def containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics for matchLabels and the In operator (all this code uses)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def policies() -> list[dict[str, Any]]:
    return base_objects()["network-policies.yaml"]


def test_files_and_kinds() -> None:
    files = base_objects()
    assert set(files) == {
        "namespace.yaml",
        "rbac.yaml",
        "config.yaml",
        "network-policies.yaml",
        "kafka.yaml",
        "s3.yaml",
        "elasticsearch.yaml",
        "postgres.yaml",
        "airflow.yaml",
    }
    assert [o["kind"] for o in files["namespace.yaml"]] == ["Namespace"]
    assert {o["kind"] for o in files["network-policies.yaml"]} == {"NetworkPolicy"}
    names = {(o["kind"], o["metadata"]["name"]) for o in everything()}
    assert len(names) == len(everything()), "two objects of one kind share a name"


def test_no_cluster_wide_rbac() -> None:
    kinds = {obj["kind"] for obj in everything()}
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    for obj in everything():
        if obj["kind"] == "RoleBinding":
            assert obj["roleRef"]["kind"] == "Role"
            assert all(s["namespace"] == k.NAMESPACE for s in obj["subjects"])


def granted(rules: list[dict[str, Any]], resource: str, verb: str, group: str = "") -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


@pytest.mark.parametrize("rules", [RUNTIME_RULES, DRIVER_RULES])
def test_rules_have_no_wildcard(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field]
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule


def test_runtime_rules_are_exactly_what_the_runtime_does() -> None:
    for group, resource in (("apps", "statefulsets"), ("", "services"), ("", "configmaps")):
        for verb in ("create", "patch"):  # server-side apply
            assert granted(RUNTIME_RULES, resource, verb, group)
    assert granted(RUNTIME_RULES, "networkpolicies", "patch", "networking.k8s.io")
    assert granted(RUNTIME_RULES, "statefulsets", "get", "apps")
    assert granted(RUNTIME_RULES, "statefulsets/scale", "patch", "apps")
    assert granted(RUNTIME_RULES, "pods", "get")
    assert granted(RUNTIME_RULES, "pods", "delete")
    assert granted(RUNTIME_RULES, "pods/log", "get")
    # and nothing it does not do
    assert not granted(RUNTIME_RULES, "secrets", "get")
    assert not granted(RUNTIME_RULES, "pods", "create")
    assert not granted(RUNTIME_RULES, "pods/exec", "create")
    assert not granted(RUNTIME_RULES, "statefulsets", "delete", "apps")
    assert not granted(RUNTIME_RULES, "pods", "list")
    triples = [
        (g, r, v)
        for rule in RUNTIME_RULES
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    ]
    assert len(triples) == len(set(triples)) == 13


def test_driver_role_only_touches_pods_configmaps_and_its_checkpoint_lease() -> None:
    by_group = {
        group: {res for rule in DRIVER_RULES if group in rule["apiGroups"] for res in rule["resources"]}
        for rule in DRIVER_RULES
        for group in rule["apiGroups"]
    }
    assert by_group == {"": {"pods", "configmaps"}, "coordination.k8s.io": {"leases"}}
    for verb in ("create", "get", "list", "watch", "delete", "deletecollection"):
        assert granted(DRIVER_RULES, "pods", verb)
    lease_verbs = {v for rule in DRIVER_RULES if "leases" in rule["resources"] for v in rule["verbs"]}
    assert lease_verbs == {"get", "create", "update"}  # no list, watch or delete


def test_roles_are_bound_to_their_service_accounts() -> None:
    rbac = base_objects()["rbac.yaml"]
    roles = {o["metadata"]["name"]: o["rules"] for o in rbac if o["kind"] == "Role"}
    bindings = {o["roleRef"]["name"]: o["subjects"] for o in rbac if o["kind"] == "RoleBinding"}
    assert roles == {"highway-runtime": RUNTIME_RULES, "highway-driver": DRIVER_RULES}
    assert [s["name"] for s in bindings["highway-runtime"]] == [k.SA_AIRFLOW]
    assert [s["name"] for s in bindings["highway-driver"]] == [k.SA_DRIVER]
    accounts = {o["metadata"]["name"]: o for o in rbac if o["kind"] == "ServiceAccount"}
    assert set(accounts) == {k.SA_AIRFLOW, k.SA_DRIVER, k.SA_INFRA}
    assert accounts[k.SA_INFRA]["automountServiceAccountToken"] is False


def test_no_secret_object_and_no_inline_secret() -> None:
    assert all(obj["kind"] != "Secret" for obj in everything())
    checked = 0
    for obj in workloads():
        for container in containers(obj["spec"]["template"]["spec"]):
            for var in container.get("env", []):
                name = var["name"].upper()
                if not any(word in name for word in SECRET_WORDS):
                    continue
                checked += 1
                if name.endswith("_FILE"):  # a path to a file, not a secret
                    assert var["value"].startswith("/")
                    continue
                ref = var["valueFrom"]["secretKeyRef"]
                assert ref["name"] == k.SECRET and ref["key"] in k.SECRET_KEYS.values()
                assert "value" not in var
    assert checked > 10


def test_es_url_is_built_from_the_earlier_password_variable() -> None:
    env = library_env("ns1")
    names = [var["name"] for var in env]
    assert names.index("HIGHWAY_ES_PASSWORD") < names.index("HIGHWAY_ES_URL")
    url = env[names.index("HIGHWAY_ES_URL")]["value"]
    assert url == "http://elastic:$(HIGHWAY_ES_PASSWORD)@elasticsearch.ns1.svc:9200"
    assert library_env_from() == [{"configMapRef": {"name": k.CONFIG}}]


def test_config_holds_in_cluster_addresses_and_no_secret() -> None:
    data = config_data("ns1")
    assert data["HIGHWAY_KAFKA_BOOTSTRAP"] == "kafka.ns1.svc:9092"
    assert data["HIGHWAY_S3_ENDPOINT"] == "http://s3.ns1.svc:8080"
    assert data["HIGHWAY_PG_HOST"] == "postgres.ns1.svc"
    assert (data["HIGHWAY_LAKE_BUCKET"], data["HIGHWAY_PG_USER"]) == ("lake", "highway")
    assert not any(word in key for key in data for word in SECRET_WORDS)


@pytest.mark.parametrize("obj", workloads(), ids=lambda o: o["metadata"]["name"])
def test_pods_are_hardened(obj: dict[str, Any]) -> None:
    pod = obj["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] in (k.SA_AIRFLOW, k.SA_INFRA)
    assert pod["enableServiceLinks"] is False
    for container in containers(pod):
        ctx = container["securityContext"]
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        for part in ("requests", "limits"):
            assert set(container["resources"][part]) == {"cpu", "memory"}
        for port in container.get("ports", []):
            assert len(port["name"]) <= 15


def test_only_the_airflow_workers_get_an_api_token() -> None:
    with_token = set()
    for obj in workloads():
        pod = obj["spec"]["template"]["spec"]
        if pod["automountServiceAccountToken"]:
            assert pod["serviceAccountName"] == k.SA_AIRFLOW
            with_token.add(obj["metadata"]["name"])
    assert with_token == set(AIRFLOW_WORKERS)


@pytest.mark.parametrize("obj", workloads(), ids=lambda o: o["metadata"]["name"])
def test_selector_matches_template_labels(obj: dict[str, Any]) -> None:
    labels = obj["spec"]["template"]["metadata"]["labels"]
    assert labels[k.PART_OF] == "highway"
    if obj["kind"] != "Job":  # a Job's selector is generated
        assert matches(obj["spec"]["selector"], labels)


def test_services_select_their_pods() -> None:
    templates = [o["spec"]["template"]["metadata"]["labels"] for o in workloads()]
    services = [o for o in everything() if o["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} == {
        s.name for s in (k.KAFKA, k.S3, k.ELASTICSEARCH, k.POSTGRES, k.AIRFLOW_API)
    }
    for service in services:
        assert sum(matches({"matchLabels": service["spec"]["selector"]}, t) for t in templates) == 1


def test_every_workload_has_its_own_network_policy() -> None:
    specific = [p["spec"]["podSelector"] for p in policies() if p["spec"]["podSelector"]]
    for obj in workloads():
        labels = obj["spec"]["template"]["metadata"]["labels"]
        assert any(matches(sel, labels) for sel in specific), obj["metadata"]["name"]


def test_default_deny_and_dns() -> None:
    by_name = {p["metadata"]["name"]: p["spec"] for p in policies()}
    deny = by_name["default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ports = by_name["allow-dns"]["egress"][0]["ports"]
    assert {(p["protocol"], p["port"]) for p in ports} == {("UDP", 53), ("TCP", 53)}


def allowed_in(service: k.Service, labels: dict[str, str]) -> bool:
    for policy in policies():
        spec = policy["spec"]
        if spec["podSelector"] and matches(spec["podSelector"], {k.NAME: service.name, k.PART_OF: "highway"}):
            for rule in spec.get("ingress", []):
                ports = {p["port"] for p in rule["ports"]}
                if service.port in ports and any(matches(f["podSelector"], labels) for f in rule["from"]):
                    return True
    return False


def test_drivers_executors_and_airflow_reach_the_stores() -> None:
    driver = {**k.labels("spark-driver", "driver", "bronze_x"), k.SPARK_ROLE: "driver"}
    executor = k.labels("spark-executor", "executor", "bronze_x")
    scheduler = k.labels("airflow-scheduler", "airflow")
    producer = k.labels("demo-producer", "producer")
    stranger = {k.PART_OF: "other", k.COMPONENT: "driver"}
    for service in (k.KAFKA, k.S3, k.ELASTICSEARCH, k.POSTGRES):
        assert (
            allowed_in(service, driver) and allowed_in(service, executor) and allowed_in(service, scheduler)
        )
        assert not allowed_in(service, stranger)
    assert allowed_in(k.KAFKA, producer) and not allowed_in(k.S3, producer)
    assert allowed_in(k.AIRFLOW_API, scheduler) and not allowed_in(k.AIRFLOW_API, driver)


def test_airflow_workers_may_reach_the_kube_api() -> None:
    workers = next(p["spec"] for p in policies() if p["metadata"]["name"] == "airflow-workers")
    api_ports = {p["port"] for rule in workers["egress"] for p in rule["ports"] if "ipBlock" in rule["to"][0]}
    assert api_ports == set(k.KUBE_API_PORTS)


def test_every_object_is_namespaced_but_the_namespace() -> None:
    for obj in everything("ns1"):
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "ns1" and "namespace" not in obj["metadata"]
            assert obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
        else:
            assert obj["metadata"]["namespace"] == "ns1"


def test_images_are_pinned() -> None:
    for obj in workloads():
        for container in containers(obj["spec"]["template"]["spec"]):
            image = container["image"]
            assert k.is_image(image), image
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", image


def test_volume_claims_name_the_standard_storage_class() -> None:
    claims = [c for o in workloads() for c in o["spec"].get("volumeClaimTemplates", [])]
    assert len(claims) == 4
    for claim in claims:
        assert claim["spec"]["storageClassName"] == "standard"
        assert claim["spec"]["resources"]["requests"]["storage"].endswith("Gi")


def test_mounts_name_declared_volumes() -> None:
    for obj in workloads():
        pod = obj["spec"]["template"]["spec"]
        declared = {v["name"] for v in pod["volumes"]}
        declared |= {c["metadata"]["name"] for c in obj["spec"].get("volumeClaimTemplates", [])}
        for container in containers(pod):
            assert {m["name"] for m in container.get("volumeMounts", [])} <= declared


def test_demo_producer_job() -> None:
    job = demo_producer_job("ns1", count=5)
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["ttlSecondsAfterFinished"] > 0
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["command"] == ["highway", "produce", "--count", "5"]
    assert container["image"] == k.SPARK_IMAGE
    assert job["spec"]["template"]["metadata"]["labels"][k.COMPONENT] == "producer"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_yaml_has_no_anchors() -> None:
    """No sub-object is shared between two places: the rendered files carry no anchors or aliases."""
    for objects in [*base_objects().values(), [demo_producer_job()]]:
        text = yaml.safe_dump_all(objects)
        assert "&id" not in text and "*id" not in text


def test_airflow_pods_get_highways_connections_with_secrets_expanded_by_kubernetes() -> None:
    import json
    import re

    airflow = [w for w in workloads() if w["metadata"]["name"].startswith("airflow-")]
    assert len(airflow) >= 4
    for workload in airflow:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            env = container.get("env", [])
            names = [e["name"] for e in env]
            conns = {e["name"]: json.loads(e["value"]) for e in env if e["name"].startswith("AIRFLOW_CONN_")}
            assert sorted(conns) == [
                "AIRFLOW_CONN_HIGHWAY_ELASTICSEARCH",
                "AIRFLOW_CONN_HIGHWAY_KAFKA",
                "AIRFLOW_CONN_HIGHWAY_POSTGRES",
                "AIRFLOW_CONN_HIGHWAY_RUNTIME",
                "AIRFLOW_CONN_HIGHWAY_S3",
            ]
            assert conns["AIRFLOW_CONN_HIGHWAY_RUNTIME"]["extra"] == {
                "kind": "kubernetes",
                "namespace": k.NAMESPACE,
                "in_cluster": True,
            }
            assert conns["AIRFLOW_CONN_HIGHWAY_S3"]["password"] == "$(HIGHWAY_S3_SECRET_KEY)"
            for name, conn in conns.items():
                for ref in re.findall(r"\$\((\w+)\)", json.dumps(conn)):
                    # Kubernetes expands $(VAR) only for variables listed before (here: Secret refs)
                    assert ref in names[: names.index(name)], (name, ref)
                    assert "valueFrom" in env[names.index(ref)], ref
