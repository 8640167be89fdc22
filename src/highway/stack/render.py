"""Configuration files of the services, built from plain values (pure: no I/O, no clock)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path

import yaml

# The broker accepts records up to 4 MiB: apps reject events above 1 MiB themselves (to the DLQ)
# and must still be able to read the bigger ones a producer managed to send.
KAFKA_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
S3PROXY_VERSION = "4.0.0"
ES_VERSION = "9.2.0"
ES_MIN_JAVA = 21
HEAP = "512m"


def _escape(text: str, is_key: bool) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if is_key:
        for char in (" ", ":", "=", "#", "!"):
            out = out.replace(char, "\\" + char)
    elif out.startswith(" "):
        out = "\\" + out
    return out


def render_properties(values: Mapping[str, object], header: str = "") -> str:
    """A Java ``.properties`` file, keys in the given order."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"{_escape(key, True)}={_escape(text, False)}")
    return "\n".join(lines) + "\n"


def kafka_cluster_id(raw: bytes) -> str:
    """A KRaft cluster id from 16 random bytes: base64url without padding, as Kafka's ``Uuid`` prints it."""
    if len(raw) != 16:
        raise ValueError("a cluster id needs 16 bytes")
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    # Kafka never hands out ids starting with '-' (they read as options on a command line)
    return "A" + text[1:] if text.startswith("-") else text


def kafka_server_properties(data_dir: Path, port: int, controller_port: int) -> dict[str, object]:
    """Single-node KRaft broker+controller on loopback that keeps every record."""
    listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
    return {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": listeners,
        "advertised.listeners": listeners,
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": 4,
        "default.replication.factor": 1,
        "auto.create.topics.enable": False,
        "message.max.bytes": KAFKA_MAX_MESSAGE_BYTES,
        "replica.fetch.max.bytes": KAFKA_MAX_MESSAGE_BYTES,
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "min.insync.replicas": 1,
        "group.initial.rebalance.delay.ms": 0,
        # keep everything: tests audit whole topics (ms wins over hours, so set both)
        "log.retention.hours": -1,
        "log.retention.ms": -1,
    }


def kafka_log4j2(log_file: Path) -> dict[str, object]:
    """log4j2 properties sending every broker log line to one file."""
    return {
        "status": "warn",
        "name": "highway-kafka",
        "appender.file.type": "File",
        "appender.file.name": "file",
        "appender.file.fileName": str(log_file),
        "appender.file.append": True,
        "appender.file.layout.type": "PatternLayout",
        "appender.file.layout.pattern": "[%d] %p %m (%c)%n",
        "rootLogger.level": "INFO",
        "rootLogger.appenderRef.file.ref": "file",
    }


def s3proxy_properties(port: int, basedir: Path, identity: str, credential: str) -> dict[str, object]:
    return {
        "s3proxy.endpoint": f"http://127.0.0.1:{port}",
        "s3proxy.authorization": "aws-v2-or-v4",
        "s3proxy.identity": identity,
        "s3proxy.credential": credential,
        "jclouds.provider": "filesystem-nio2",
        "jclouds.filesystem.basedir": str(basedir),
    }


def elasticsearch_yml(es_dir: Path, http_port: int, transport_port: int) -> str:
    settings: dict[str, object] = {
        "cluster.name": "highway",
        "node.name": "highway-1",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": http_port,
        "transport.port": transport_port,
        "path.data": str(es_dir / "data"),
        "path.logs": str(es_dir / "logs"),
        "xpack.security.enabled": False,
        "cluster.routing.allocation.disk.threshold_enabled": False,
        "action.destructive_requires_name": False,
    }
    return "# written by highway stack on every start\n" + yaml.safe_dump(settings, sort_keys=False)


def elasticsearch_jvm_options() -> str:
    return f"# written by highway stack\n-Xms{HEAP}\n-Xmx{HEAP}\n"
