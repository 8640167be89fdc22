"""Read a checkpoint and the sinks' commit records from S3 (boto3), without Spark.

Thin: it lists and fetches; ``highway.core.checkpoint`` parses and ``highway.core.recovery`` decides.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from highway.adapters import s3
from highway.core import checkpoint as cp
from highway.core.checkpoint import CheckpointView, SinkCommit

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DELTA_COMMITS_SCANNED = 50  # newest commits searched for highway's metadata (compactions have none)


def prefix_of(relative: str) -> str:
    return relative.strip("/") + "/"


def listing(client: S3Client, bucket: str, checkpoint: str) -> dict[str, int]:
    """Relative key -> size of everything under the checkpoint directory."""
    prefix = prefix_of(checkpoint)
    return {k[len(prefix) :]: size for k, size in s3.list_sizes(client, bucket, prefix).items()}


def read_view(client: S3Client, bucket: str, checkpoint: str) -> CheckpointView:
    keys = listing(client, bucket, checkpoint)
    prefix = prefix_of(checkpoint)
    contents = {}
    for key in cp.files_to_read(keys):
        text = s3.get_text(client, bucket, prefix + key)
        if text is not None:
            contents[key] = text
    return cp.parse_checkpoint(keys, contents)


def _offsets(client: S3Client, bucket: str, checkpoint: str, batch_id: int) -> tuple[Any, ...] | None:
    text = s3.get_text(client, bucket, f"{prefix_of(checkpoint)}offsets/{batch_id}")
    try:
        return None if text is None else cp.parse_offsets(batch_id, text).sources
    except ValueError:
        return None


def _initial(client: S3Client, bucket: str, checkpoint: str, count: int) -> tuple[Any, ...] | None:
    """Each source's recorded start (``sources/<n>/0``: Kafka writes one, Delta none); None if none has."""
    found = []
    for n in range(count):
        text = s3.get_text(client, bucket, f"{prefix_of(checkpoint)}sources/{n}/0")
        try:
            found.append(None if text is None else cp.initial_offsets(text))
        except ValueError:
            found.append(None)
    return tuple(found) if any(f is not None for f in found) else None


def batch_position(client: S3Client, bucket: str, checkpoint: str, batch_id: int) -> dict[str, Any] | None:
    """Spark's offsets of ``batch_id``: its end per source (``offsets/<batch_id>``) and its start (the
    previous batch's end, or the sources' initial offsets for batch 0); None if the end is unreadable."""
    ends = _offsets(client, bucket, checkpoint, batch_id)
    if ends is None:
        return None
    if batch_id > 0:
        starts = _offsets(client, bucket, checkpoint, batch_id - 1)
    else:
        starts = _initial(client, bucket, checkpoint, len(ends))
    return cp.batch_position(ends, starts)


def delta_sink_commit(client: S3Client, bucket: str, table: str, sink: str) -> SinkCommit | None:
    """The newest commit of a Delta table that carries highway's metadata (None: none, or no table)."""
    log = f"{prefix_of(table)}_delta_log/"
    start_after = ""
    pointer = s3.get_text(client, bucket, log + "_last_checkpoint")
    if pointer:
        try:
            version = int(json.loads(pointer)["version"])
            start_after = f"{log}{max(0, version - DELTA_COMMITS_SCANNED):020d}"
        except (ValueError, KeyError, TypeError):
            start_after = ""
    keys = cp.delta_commit_keys(s3.list_sizes(client, bucket, log, start_after=start_after))
    for key in keys[:DELTA_COMMITS_SCANNED]:
        text = s3.get_text(client, bucket, key)
        info = cp.delta_commit_info(text or "")
        if info is None:
            continue
        found = cp.sink_commit_from_metadata(sink, info[1], info[0])
        if found is not None:
            return found
    return None
