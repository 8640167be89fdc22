"""Apache Kafka 4.x, KRaft, one node that is broker and controller, from its Maven Central jars."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from highway.settings import repo_root
from highway.stack.install import java_binary, resolve_pom
from highway.stack.process import run_once, start_detached
from highway.stack.render import (
    HEAP,
    kafka_cluster_id,
    kafka_log4j2,
    kafka_server_properties,
    render_properties,
)
from highway.stack.service import Service

KAFKA_POM = Path("tools") / "maven" / "kafka" / "pom.xml"


class Kafka(Service):
    name = "kafka"
    start_timeout = 90.0

    @property
    def config_file(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.dir / "log4j2.properties"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def marker(self) -> str:
        return str(self.config_file)

    def install(self) -> None:
        self.jars = resolve_pom(repo_root() / KAFKA_POM, self.ctx.cache / "kafka", self.step)

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            java_binary(),
            f"-Xmx{HEAP}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            # let the broker log its own shutdown (log4j's hook would close the file first)
            "-Dlog4j2.shutdownHookEnabled=false",
            "-cp",
            f"{self.jars}/*",
            main,
            *args,
        ]

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        ports = self.ctx.ports
        props = kafka_server_properties(self.data_dir, ports["kafka"], ports["kafka_controller"])
        self.config_file.write_text(render_properties(props, "written by highway stack on every start"))
        self.log4j_file.write_text(render_properties(kafka_log4j2(self.log_file)))
        if not (self.data_dir / "meta.properties").exists():
            self.step("formatting the KRaft storage (once per state dir)")
            cluster_id = kafka_cluster_id(os.urandom(16))
            run_once(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    "--config",
                    str(self.config_file),
                    "--cluster-id",
                    cluster_id,
                    "--standalone",
                ),
                "formatting Kafka storage",
            )

    def launch(self) -> int:
        return start_detached(self._java("kafka.Kafka", str(self.config_file)), self.log_file, cwd=self.dir)

    def healthy(self) -> bool:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        quiet = logging.getLogger("highway.stack.kafka.probe")
        quiet.setLevel(logging.CRITICAL)
        conf: dict[str, Any] = {"bootstrap.servers": self.address, "logger": quiet, "socket.timeout.ms": 2000}
        admin = AdminClient(conf)
        try:
            metadata = admin.list_topics(timeout=1.5)
        except KafkaException:
            return False
        return bool(metadata.brokers)
