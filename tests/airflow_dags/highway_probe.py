"""A trivial DAG for the stack's Airflow test: one Python task writes the file named in the run's conf."""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task


@dag(dag_id="highway_probe", schedule=None, catchup=False, tags=["highway-test"])
def highway_probe() -> None:
    @task
    def write_file() -> str:
        import os
        from pathlib import Path

        conf = get_current_context()["dag_run"].conf or {}
        path = Path(conf["path"])
        path.write_text(f"written by highway_probe; HIGHWAY_HOME={os.environ.get('HIGHWAY_HOME')}\n")
        print(f"highway_probe wrote {path}")
        return str(path)

    write_file()


highway_probe()
