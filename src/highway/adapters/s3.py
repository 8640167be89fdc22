"""Thin S3 wrapper (boto3) for highway's small objects: heartbeats and status documents."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from highway.connection import Connection
from highway.errors import TerminalError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def client(conn: Connection, timeout: float = 5.0, attempts: int = 2) -> S3Client:
    """An S3 client for the stack's server, with short timeouts so an outage fails fast."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=conn.s3_endpoint,
        aws_access_key_id=conn.s3_access_key,
        aws_secret_access_key=conn.s3_secret_key,
        region_name="us-east-1",
        config=config,
    )


def _wrap(exc: Exception, what: str) -> Exception:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "404", "403"}:
            return TerminalError(f"S3 {what}: {code}")
    return TransientError(f"S3 {what}: {exc}")


def put_json(s3: S3Client, bucket: str, key: str, doc: Any) -> None:
    body = json.dumps(doc, sort_keys=True, default=str).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except Exception as exc:
        raise _wrap(exc, f"put s3://{bucket}/{key}") from exc


def get_json(s3: S3Client, bucket: str, key: str) -> Any:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise _wrap(exc, f"get s3://{bucket}/{key}") from exc
    return json.loads(body)


def get_json_or_none(s3: S3Client, bucket: str, key: str) -> Any:
    """``get_json``, or None when the object does not exist yet (an app that never reported)."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in {"NoSuchKey", "404"}:
            return None
        raise _wrap(exc, f"get s3://{bucket}/{key}") from exc
    except Exception as exc:
        raise _wrap(exc, f"get s3://{bucket}/{key}") from exc
    return json.loads(body)
