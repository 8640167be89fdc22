"""The Spark conf file a Kubernetes driver pod mounts: key=value lines, ${VAR} from the pod's env."""

from __future__ import annotations

from pathlib import Path

import pytest

from highway import catalog
from highway.connection import Connection
from highway.core.k8s.apps import app_objects
from highway.spark.session import base_conf, conf_overrides

SHIPPED = Path(__file__).resolve().parents[2] / "spark_apps" / "catalog"


def test_lines_become_conf_and_variables_expand() -> None:
    text = (
        "# comment\n\n"
        "spark.kubernetes.driver.pod.name=${HIGHWAY_POD_NAME}\n"
        "spark.driver.host = ${HIGHWAY_POD_NAME}.svc-a.ns.svc\n"
        "spark.executor.instances=2\n"
        "spark.x=a=b\n"
    )
    conf = conf_overrides(text, {"HIGHWAY_POD_NAME": "bronze-driver-0"})
    assert conf == {
        "spark.kubernetes.driver.pod.name": "bronze-driver-0",
        "spark.driver.host": "bronze-driver-0.svc-a.ns.svc",
        "spark.executor.instances": "2",
        "spark.x": "a=b",
    }


def test_an_unknown_variable_stays_visible() -> None:
    assert conf_overrides("k=${NOPE}", {}) == {"k": "${NOPE}"}


def test_a_line_without_equals_names_its_number() -> None:
    with pytest.raises(ValueError, match="line 2"):
        conf_overrides("a=1\nbroken line\n", {})


def test_a_driver_pod_gets_the_rendered_spark_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod's side of the contract: the app ConfigMap's spark.conf (mounted, named by HIGHWAY_SPARK_CONF)
    overrides the local defaults, with the pod's own name filled in; jars come from the image's directory."""
    spec = catalog.load(SHIPPED / "bronze_shop_events.yaml")
    (config,) = [o for o in app_objects(spec, "x") if o["kind"] == "ConfigMap"]
    conf_file = tmp_path / "spark.conf"
    conf_file.write_text(config["data"]["spark.conf"])
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("delta-spark_2.13-4.4.0.jar", "hadoop-aws-3.5.0.jar"):
        (jars / name).write_bytes(b"")
    monkeypatch.setenv("HIGHWAY_SPARK_CONF", str(conf_file))
    monkeypatch.setenv("HIGHWAY_SPARK_JARS", str(jars))
    monkeypatch.setenv("HIGHWAY_POD_NAME", "bronze-shop-events-driver-0")
    conn = Connection(
        "k:9092", "http://s3:8080", "a", "b", "lake", "pg", 5432, "u", "p", "d", "http://es:9200"
    )
    conf = base_conf(conn, spec.name, 4, "2g")
    assert conf["spark.master"] == "k8s://https://kubernetes.default.svc:443"
    assert conf["spark.kubernetes.driver.pod.name"] == "bronze-shop-events-driver-0"
    assert conf["spark.driver.host"] == "bronze-shop-events-driver-0.bronze-shop-events-driver.highway.svc"
    assert conf["spark.driver.bindAddress"] == "0.0.0.0"
    assert conf["spark.executor.instances"] == str(spec.resources.executor_instances)
    assert sorted(Path(j).name for j in conf["spark.jars"].split(",")) == sorted(
        p.name for p in jars.iterdir()
    )
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://s3:8080"  # the base conf is still there
