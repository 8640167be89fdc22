"""The Spark conf file a Kubernetes driver pod mounts: key=value lines, ${VAR} from the pod's env."""

from __future__ import annotations

import pytest

from highway.spark.session import conf_overrides


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
