"""Operating the apps: what Airflow's DAGs (and ``highway status``) do, as plain functions over a runtime.

Nothing here imports Airflow; the DAGs and the ``highway_airflow`` plugin call into it.
"""
