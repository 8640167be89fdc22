"""The local service stack: Kafka, S3 (s3proxy), PostgreSQL and Elasticsearch as real processes.

``Stack(home, port_base)`` is the Python API (test fixtures use it); ``highway stack ...`` the CLI.
Heavy clients (boto3, psycopg, confluent_kafka) are imported only inside the health checks.
"""

from highway.stack.control import ServiceStatus, Stack

__all__ = ["ServiceStatus", "Stack"]
