"""A test DAG: each highway_airflow hook, built from the stack's Airflow connections, makes one real call."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(dag_id="highway_hooks_probe", schedule=None, catchup=False, tags=["highway-test"])
def highway_hooks_probe() -> None:
    @task
    def use_every_hook() -> dict[str, object]:
        from highway_airflow.hooks.highway import (
            KafkaHook,
            LakeHook,
            RuntimeHook,
            SearchHook,
            WarehouseHook,
        )

        from highway.catalog import BronzeSpec, load_all

        spec = next(s for s in load_all().values() if isinstance(s, BronzeSpec))  # the first, by name
        with WarehouseHook().connect() as pg:
            one = pg.execute("SELECT 1").fetchone()[0]
        health = SearchHook().client().cluster.health()
        return {
            "kafka_partitions": len(KafkaHook().end_offsets(spec.source.topic)),
            "lake_missing_is_none": LakeHook().read_json("no/such/key.json") is None,
            "warehouse": one,
            "elasticsearch": health["status"],
            "runtime": RuntimeHook().settings()["kind"],
            "runtime_status": RuntimeHook().runtime().status(spec.name).state,
        }

    use_every_hook()


highway_hooks_probe()
