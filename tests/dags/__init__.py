"""DAG tests: parse guard (no services) and the DAGs run by a real Airflow against the real stack."""
