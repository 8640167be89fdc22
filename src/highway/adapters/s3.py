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
    """``get_json``, or None when the object does not exist yet (an app that never reported). A file that
    is not JSON is a TerminalError naming it (a reader says which file and goes on)."""
    text = get_text(s3, bucket, key)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TerminalError(f"s3://{bucket}/{key} is not readable JSON ({exc})") from None


def list_sizes(s3: S3Client, bucket: str, prefix: str, start_after: str = "") -> dict[str, int]:
    """Every object under ``prefix`` (key -> size), all pages; ``start_after`` skips keys sorted before it."""
    found: dict[str, int] = {}
    token: str | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            elif start_after:
                kwargs["StartAfter"] = start_after
            page = s3.list_objects_v2(**kwargs)
            found.update({item["Key"]: int(item["Size"]) for item in page.get("Contents", [])})
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found
    except Exception as exc:
        raise _wrap(exc, f"list s3://{bucket}/{prefix}") from exc


def get_text(s3: S3Client, bucket: str, key: str) -> str | None:
    """An object's text (undecodable bytes replaced), or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code", "") in {"NoSuchKey", "404"}:
            return None
        raise _wrap(exc, f"get s3://{bucket}/{key}") from exc
    except Exception as exc:
        raise _wrap(exc, f"get s3://{bucket}/{key}") from exc
    return bytes(body).decode("utf-8", errors="replace")


def put_text(s3: S3Client, bucket: str, key: str, text: str) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    except Exception as exc:
        raise _wrap(exc, f"put s3://{bucket}/{key}") from exc


def delete_keys(s3: S3Client, bucket: str, keys: list[str]) -> None:
    """Delete ``keys`` (up to 1,000 per request); a missing key is not an error."""
    try:
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            if chunk:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
    except Exception as exc:
        raise _wrap(exc, f"delete {len(keys)} objects in s3://{bucket}") from exc


def copy_keys(s3: S3Client, bucket: str, keys: list[str], source_prefix: str, target_prefix: str) -> int:
    """Copy each key under ``source_prefix`` to the same relative key under ``target_prefix``."""
    try:
        for key in keys:
            relative = key[len(source_prefix) :]
            s3.copy_object(
                Bucket=bucket, Key=target_prefix + relative, CopySource={"Bucket": bucket, "Key": key}
            )
    except Exception as exc:
        raise _wrap(exc, f"copy s3://{bucket}/{source_prefix} to {target_prefix}") from exc
    return len(keys)
