"""Pure pieces of operating the apps: the Airflow connection contract, lag, the health record, overrides."""

from __future__ import annotations

import json

import pytest

from highway.catalog import Health, parse
from highway.connection import Connection
from highway.core.health import History, history_from_json, history_to_json, policy_for
from highway.core.progress import records_behind
from highway.errors import CatalogError, ConfigError
from highway.ops import connections as ids
from highway.ops.deploy import _merge

CONN = Connection(
    kafka_bootstrap="127.0.0.1:19092",
    s3_endpoint="http://127.0.0.1:19080",
    s3_access_key="ak",
    s3_secret_key="sk",
    lake_bucket="lake",
    pg_host="127.0.0.1",
    pg_port=19432,
    pg_user="highway",
    pg_password="pw",
    pg_database="highway",
    es_url="http://127.0.0.1:19200",
)


def test_connections_round_trip_through_airflow_json() -> None:
    env = ids.airflow_env(CONN, ids.runtime_connection("local", home="/state"))
    assert sorted(env) == [
        "AIRFLOW_CONN_HIGHWAY_ELASTICSEARCH",
        "AIRFLOW_CONN_HIGHWAY_KAFKA",
        "AIRFLOW_CONN_HIGHWAY_POSTGRES",
        "AIRFLOW_CONN_HIGHWAY_RUNTIME",
        "AIRFLOW_CONN_HIGHWAY_S3",
    ]
    conns = {key.removeprefix("AIRFLOW_CONN_").lower(): json.loads(v) for key, v in env.items()}
    assert ids.from_airflow(conns) == CONN
    assert ids.runtime_settings(conns) == {"kind": "local", "home": "/state"}


def test_extra_may_arrive_as_json_text_and_kafka_from_host_port() -> None:
    conns = ids.to_airflow(CONN)
    conns[ids.S3]["extra"] = json.dumps(conns[ids.S3]["extra"])
    conns[ids.KAFKA]["extra"] = {}
    assert ids.from_airflow(conns) == CONN


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c.pop(ids.POSTGRES), "highway_postgres is missing"),
        (lambda c: c[ids.S3].update(password=""), "highway_s3: password is not set"),
        (lambda c: c[ids.S3].update(extra={"bucket": "lake"}), "highway_s3: extra endpoint_url"),
        (lambda c: c[ids.ELASTICSEARCH].update(extra="{not json"), "extra is not JSON"),
    ],
)
def test_a_bad_connection_is_named(change, named: str) -> None:
    conns = ids.to_airflow(CONN)
    change(conns)
    with pytest.raises(ConfigError, match=named):
        ids.from_airflow(conns)


def test_runtime_connection_kinds() -> None:
    with pytest.raises(ConfigError, match="kind 'docker'"):
        ids.runtime_connection("docker")
    with pytest.raises(ConfigError, match="allowed: local, kubernetes"):
        ids.runtime_settings({ids.RUNTIME: {"extra": {"kind": "nomad"}}})
    with pytest.raises(ConfigError, match="needs extra home"):
        ids.runtime_settings({ids.RUNTIME: {"extra": {"kind": "local"}}})
    assert ids.runtime_settings({ids.RUNTIME: {"extra": {"kind": "kubernetes", "in_cluster": True}}})[
        "in_cluster"
    ]


def test_records_behind_counts_unread_partitions_in_full() -> None:
    ends = {0: 100, 1: 50, 2: 7}
    hb = {"offsets": {"shop.events": {"0": 90, "1": 50}}}
    assert records_behind(ends, hb, "shop.events") == 10 + 0 + 7
    assert records_behind(ends, None, "shop.events") == 157
    assert records_behind(ends, {"offsets": {"other": {"0": 100}}}, "shop.events") == 157
    assert records_behind({0: 5}, {"offsets": {"t": {"0": 9}}}, "t") == 0  # never negative


def test_history_survives_json_and_garbage_is_no_history() -> None:
    history = History(restarts=(1.0, 2.5), supervisor=((1.0, 3),), lags=((2.0, 40),), failed="budget spent")
    assert history_from_json(json.loads(json.dumps(history_to_json(history)))) == history
    assert history_from_json(None) == History()
    assert history_from_json({"restarts": ["x"]}) == History()
    assert history_from_json({"supervisor": [[1.0]]}) == History()


def test_policy_from_the_catalog_health_section() -> None:
    policy = policy_for(
        5.0, Health(stall_triggers=4, stall_floor_seconds=15, window_minutes=10, restart_budget=2)
    )
    assert policy.stall_seconds == 20.0  # 4 x 5 s beats the 15 s floor
    assert policy.window_seconds == 600.0
    assert policy.restart_budget == 2
    assert policy_for(5.0, Health()).stall_seconds == 300.0  # the default floor outlasts a sink's retries


def _entry(**health: object) -> dict[str, object]:
    return {
        "name": "bronze_x",
        "kind": "bronze",
        "source": {
            "topic": "t",
            "partitions": 1,
            "starting_offsets": "earliest",
            "max_offsets_per_trigger": 10,
            "max_event_bytes": 1000,
        },
        "schema": [{"name": "event_id", "type": "string", "required": True}],
        "sink": {"table": "bronze/t"},
        "dlq": {"table": "dlq/t"},
        "checkpoint": "_checkpoints/b",
        "status_prefix": "_status/b",
        **({"health": health} if health else {}),
    }


def test_catalog_health_section_is_validated() -> None:
    assert parse(_entry()).health == Health()
    assert parse(_entry(stall_floor_seconds=20, restart_budget=1)).health.stall_floor_seconds == 20.0
    with pytest.raises(CatalogError, match=r"health.restart_budget.*a positive int"):
        parse(_entry(restart_budget=0))
    with pytest.raises(CatalogError, match=r"health.*stall_window"):
        parse(_entry(stall_window=3))


def test_overrides_merge_deeply_and_replace_lists() -> None:
    base = {
        "trigger": {"interval_seconds": 5},
        "resources": {"driver_memory": "2g", "cpu": "1"},
        "tags": [1, 2],
    }
    merged = _merge(base, {"resources": {"driver_memory": "1g"}, "tags": [3]})
    assert merged == {
        "trigger": {"interval_seconds": 5},
        "resources": {"driver_memory": "1g", "cpu": "1"},
        "tags": [3],
    }
    assert base["resources"]["driver_memory"] == "2g"  # the input is not changed
