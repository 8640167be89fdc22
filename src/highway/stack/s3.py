"""s3proxy on its filesystem backend: an S3 API (path-style, v2/v4 signatures) over a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from highway.connection import LAKE_BUCKET
from highway.stack.install import java_binary, maven_artifact
from highway.stack.process import start_detached
from highway.stack.render import HEAP, S3PROXY_VERSION, render_properties, s3proxy_properties
from highway.stack.service import Service, write_file

S3PROXY_ARTIFACT = f"org.gaul:s3proxy:{S3PROXY_VERSION}:jar:jar-with-dependencies"


class S3(Service):
    name = "s3"
    start_timeout = 60.0

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.ctx.layout.home / "s3proxy" / "s3proxy.conf"

    @property
    def data_dir(self) -> Path:
        return self.dir  # <home>/s3: one directory per bucket

    def marker(self) -> str:
        return str(self.config_file)

    def install(self) -> None:
        dest = self.ctx.cache / "s3proxy" / S3PROXY_VERSION
        dest.mkdir(parents=True, exist_ok=True)
        self.jar = maven_artifact(S3PROXY_ARTIFACT, dest, self.step)

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        props = s3proxy_properties(
            self.port, self.data_dir, self.secret("s3_access_key"), self.secret("s3_secret_key")
        )
        text = render_properties(props, "written by highway stack on every start")
        write_file(self.config_file, text, None, 0o600)  # holds the secret key

    def launch(self) -> int:
        argv = [java_binary(), f"-Xmx{HEAP}", "-jar", str(self.jar), "--properties", str(self.config_file)]
        return start_detached(argv, self.log_file, cwd=self.config_file.parent)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.address,
            aws_access_key_id=self.secret("s3_access_key"),
            aws_secret_access_key=self.secret("s3_secret_key"),
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                connect_timeout=2,
                read_timeout=5,
            ),
        )

    def healthy(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def after_ready(self) -> None:
        from botocore.exceptions import ClientError

        client = self.client()
        try:
            client.head_bucket(Bucket=LAKE_BUCKET)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            self.step(f"creating bucket {LAKE_BUCKET!r}")
            client.create_bucket(Bucket=LAKE_BUCKET)
