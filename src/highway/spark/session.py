"""The one place that builds a SparkSession for highway.

It sets the connector jars (resolved from Maven into the cache), s3a to the stack's S3 server,
Delta's extensions, the RocksDB state store, UTC, and the environment pitfalls (the venv's python
for workers, the loopback address).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from highway.connection import Connection
from highway.settings import cache_dir, repo_root

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JAR_NAME = re.compile(r"^(?P<artifact>.+?)-\d[^/]*\.jar$")
LOG4J2_CONF = Path(__file__).with_name("log4j2.properties")
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def _artifact(jar_name: str) -> str:
    match = JAR_NAME.match(jar_name)
    return match.group("artifact") if match else jar_name


def connector_jars() -> list[str]:
    """Jars from tools/maven/spark that the pyspark wheel does not already ship (its own win).

    ``HIGHWAY_SPARK_JARS`` names a directory resolved beforehand (the apps image, read-only root)."""
    import pyspark

    bundled = {_artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    prepared = os.environ.get("HIGHWAY_SPARK_JARS")
    if prepared:
        return sorted(str(p) for p in Path(prepared).glob("*.jar") if _artifact(p.name) not in bundled)
    from highway.stack.install import resolve_pom

    def announce(text: str) -> None:
        print(f"spark: {text} (~780 MB, the AWS SDK bundle being most of it)", file=sys.stderr, flush=True)

    pom = repo_root() / "tools" / "maven" / "spark" / "pom.xml"
    resolved = resolve_pom(pom, cache_dir() / "spark-jars", announce)
    return sorted(str(p) for p in resolved.glob("*.jar") if _artifact(p.name) not in bundled)


def s3a_conf(conn: Connection) -> dict[str, str]:
    """Hadoop s3a settings for the stack's S3 server, with bounded retries (an outage fails fast)."""
    prefix = "spark.hadoop.fs.s3a."
    conf = {
        "endpoint": conn.s3_endpoint,
        "endpoint.region": "us-east-1",
        "path.style.access": "true",
        "connection.ssl.enabled": str(conn.s3_endpoint.startswith("https")).lower(),
        "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "attempts.maximum": "3",
        "retry.limit": "3",
        "retry.interval": "500ms",
        "retry.throttle.limit": "3",
        "connection.establish.timeout": "5s",
        "connection.timeout": "15s",
        "connection.acquisition.timeout": "15s",
        "fast.upload.buffer": "bytebuffer",
        "change.detection.mode": "none",
    }
    return {prefix + k: v for k, v in conf.items()}


def s3a_credentials(conn: Connection) -> dict[str, str]:
    """The S3 keys as Hadoop settings. Never Spark conf: pyspark passes every conf entry to spark-submit
    as ``--conf k=v``, on the JVM's command line for any local user to read; ``build_session`` sets them
    in the running JVM's Hadoop configuration instead (tasks get it serialised, not through argv)."""
    return {"fs.s3a.access.key": conn.s3_access_key, "fs.s3a.secret.key": conn.s3_secret_key}


def base_conf(conn: Connection, app_name: str, shuffle_partitions: int, driver_memory: str) -> dict[str, str]:
    conf = {
        "spark.app.name": app_name,
        "spark.master": os.environ.get("HIGHWAY_SPARK_MASTER", "local[*]"),
        "spark.driver.memory": driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": os.environ.get("HIGHWAY_SPARK_UI", "false"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.streaming.stateStore.providerClass": ROCKSDB_PROVIDER,
        "spark.sql.streaming.metricsEnabled": "true",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.databricks.delta.snapshotPartitions": "4",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.debug.maxToStringFields": "200",
        "spark.jars": ",".join(connector_jars()),
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J2_CONF}",
    }
    conf.update(s3a_conf(conn))
    extra = os.environ.get("HIGHWAY_SPARK_CONF")
    if extra:
        conf.update(conf_overrides(Path(extra).read_text(), dict(os.environ)))
    return conf


def conf_overrides(text: str, environ: dict[str, str]) -> dict[str, str]:
    """``key=value`` lines (``#`` comments) with ``${VAR}`` taken from ``environ``: the Spark conf a
    Kubernetes driver pod mounts (``HIGHWAY_SPARK_CONF``), applied over the base conf."""
    conf = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"spark conf line {number}: expected key=value, got {raw!r}")
        conf[key.strip()] = re.sub(
            r"\$\{(\w+)\}", lambda m: environ.get(m.group(1), m.group(0)), value.strip()
        )
    return conf


def prepare_environment() -> None:
    """Pitfalls: workers must use this venv's python; bind to loopback (no network guessing)."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def build_session(
    conn: Connection, app_name: str, shuffle_partitions: int = 4, driver_memory: str = "1g"
) -> SparkSession:
    """A SparkSession with Delta, Kafka, s3a and RocksDB configured for ``conn``."""
    from pyspark.sql import SparkSession

    prepare_environment()
    builder = SparkSession.builder
    for key, value in base_conf(conn, app_name, shuffle_partitions, driver_memory).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_credentials(conn).items():
        hadoop.set(key, value)  # before anything touches S3 (a FileSystem caches what it was made with)
    spark.sparkContext.setLogLevel("WARN")
    return spark
