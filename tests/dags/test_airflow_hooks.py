"""Each highway_airflow hook works from the connections the local stack gives Airflow: a test DAG
(tests/airflow_dags/highway_hooks_probe.py) makes one real call through each and returns what it saw."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from hwtest import DagApps

pytestmark = [pytest.mark.integration]


def test_every_hook_reaches_its_service_through_airflow_connections(dag_apps: DagApps, es_url: str) -> None:
    from highway.adapters import kafka

    spec = dag_apps.local
    kafka.ensure_topic(dag_apps.stack.connection().kafka_bootstrap, spec.source.topic, spec.source.partitions)
    dag_apps.client.wait_dag("highway_hooks_probe", timeout=180)
    dag_apps.client.unpause("highway_hooks_probe")
    run_id = dag_apps.client.trigger("highway_hooks_probe", {})
    state = dag_apps.client.wait_run("highway_hooks_probe", run_id, timeout=300)
    assert state == "success", dag_apps.client.task_log("highway_hooks_probe", run_id, "use_every_hook")
    seen = dag_apps.xcom("highway_hooks_probe", run_id, "use_every_hook")
    assert seen["kafka_partitions"] == spec.source.partitions  # Kafka: the topic's end offsets
    assert seen["lake_missing_is_none"] is True  # S3: a real GET, NoSuchKey read as "absent"
    assert seen["warehouse"] == 1  # PostgreSQL: SELECT 1 as the highway user
    assert seen["elasticsearch"] in ("green", "yellow")  # Elasticsearch: cluster health
    assert seen["runtime"] == "local"  # the runtime connection the stack gives Airflow
    assert seen["runtime_status"] in ("absent", "running", "stopped")
