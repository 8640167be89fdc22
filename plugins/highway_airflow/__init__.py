"""highway's Airflow package (provider layout): hooks, operators, sensors, triggers over the library.

Airflow puts its plugins folder on ``sys.path``, so DAGs import ``highway_airflow``. Importing this
package, or any module in it, loads only Airflow's Task SDK base classes and highway's light modules:
the heavy clients (boto3, confluent_kafka, psycopg, elasticsearch, kubernetes, pyspark) load inside
``execute``/``run``, so DAG files stay cheap to parse (tests/dags/test_parse.py asserts it).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """What an Airflow provider declares (for tools that list providers); nothing is imported here."""
    return {
        "package-name": "highway-airflow",
        "name": "highway",
        "description": "Deploy, reconcile and control highway's streaming apps.",
        "versions": [__version__],
        "connection-types": [],
        "hooks": [{"integration-name": "highway", "python-modules": ["highway_airflow.hooks.highway"]}],
        "operators": [{"integration-name": "highway", "python-modules": ["highway_airflow.operators.apps"]}],
        "sensors": [{"integration-name": "highway", "python-modules": ["highway_airflow.sensors.progress"]}],
        "triggers": [
            {"integration-name": "highway", "python-modules": ["highway_airflow.triggers.progress"]}
        ],
    }
