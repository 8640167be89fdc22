"""highway: a streaming data highway (Kafka -> Spark -> Delta / Elasticsearch / PostgreSQL)."""

__version__ = "0.1.0"
