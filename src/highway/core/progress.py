"""Pure helpers over streaming progress: heartbeats and the Kafka offsets kept with each commit.

No I/O here: callers pass the progress as a plain dict (Spark's ``StreamingQueryProgress.json``)
and the clock's reading as ``now``.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PartitionRange:
    """Offsets of one Kafka partition seen in a batch: ``first`` to ``last`` inclusive."""

    topic: str
    partition: int
    first: int
    last: int
    rows: int


def batch_metadata(
    app: str, batch_id: int, table: str, ranges: Iterable[PartitionRange], **lineage: Any
) -> str:
    """The commit's ``userMetadata``: which Kafka offsets this batch carried, per partition.

    ``end`` is exclusive (the next offset to read), as Kafka and Spark's checkpoint count it, so the
    offsets to resume from can be rebuilt from the table's history alone. ``lineage`` adds the
    checkpoint's ``lineage`` and the batch's ``sources`` (Spark's end offsets, every partition).
    """
    sources: dict[str, dict[str, dict[str, int]]] = {}
    for r in sorted(ranges, key=lambda r: (r.topic, r.partition)):
        sources.setdefault(r.topic, {})[str(r.partition)] = {
            "start": r.first,
            "end": r.last + 1,
            "rows": r.rows,
        }
    doc = {"highway": 1, "app": app, "table": table, "batch_id": batch_id, "kafka": sources, **lineage}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def parse_batch_metadata(text: str | None) -> dict[str, dict[int, int]]:
    """Kafka end offsets (exclusive) per topic and partition from a ``userMetadata`` value."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(doc, dict) or doc.get("highway") != 1:
        return {}
    kafka = doc.get("kafka", {})
    return {topic: {int(p): int(v["end"]) for p, v in parts.items()} for topic, parts in kafka.items()}


def merge_end_offsets(*maps: Mapping[str, Mapping[int, int]]) -> dict[str, dict[int, int]]:
    """Highest end offset per topic/partition over several commits."""
    out: dict[str, dict[int, int]] = {}
    for m in maps:
        for topic, parts in m.items():
            t = out.setdefault(topic, {})
            for p, end in parts.items():
                t[p] = max(end, t.get(p, 0))
    return out


def _end_offset(source: Mapping[str, Any]) -> dict[str, Any] | None:
    """A source's ``endOffset`` as a dict (Spark gives it as JSON text or as a mapping), or None."""
    end = source.get("endOffset")
    if isinstance(end, str):
        try:
            end = json.loads(end)
        except ValueError:
            return None
    return end if isinstance(end, dict) else None


def _delta_versions(sources: list[Mapping[str, Any]]) -> dict[str, int]:
    """Table version each Delta source has read up to, keyed by the source's description."""
    versions: dict[str, int] = {}
    for source in sources:
        end = _end_offset(source)
        if end is not None and isinstance(end.get("reservoirVersion"), int):
            versions[str(source.get("description", "delta"))] = end["reservoirVersion"]
    return versions


def _end_offsets(sources: list[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    offsets: dict[str, dict[str, int]] = {}
    for source in sources:
        for topic, parts in (_end_offset(source) or {}).items():
            if isinstance(parts, dict):
                offsets.setdefault(topic, {}).update({str(p): int(o) for p, o in parts.items()})
    return offsets


def heartbeat(app: str, progress: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A compact heartbeat from one progress event: what an operator (and the health check) needs."""
    durations = progress.get("durationMs") or {}
    return {
        "app": app,
        "written_at": now,
        "query_id": progress.get("id"),
        "run_id": progress.get("runId"),
        "batch_id": progress.get("batchId"),
        "batch_timestamp": progress.get("timestamp"),
        "input_rows": int(progress.get("numInputRows") or 0),
        "input_rows_per_second": float(progress.get("inputRowsPerSecond") or 0.0),
        "processed_rows_per_second": float(progress.get("processedRowsPerSecond") or 0.0),
        "batch_duration_ms": int(durations.get("triggerExecution") or 0),
        "offsets": _end_offsets(list(progress.get("sources") or [])),
        "delta_versions": _delta_versions(list(progress.get("sources") or [])),
    }


@dataclass(frozen=True)
class CommitRanges:
    """Which commit made a Kafka offset visible, rebuilt from commit metadata (see ``batch_metadata``)."""

    by_partition: Mapping[int, tuple[tuple[int, int, float], ...]]  # (start, end, commit time) sorted

    def commit_time(self, partition: int, offset: int) -> float | None:
        ranges = self.by_partition.get(partition, ())
        i = bisect.bisect_right(ranges, (offset, float("inf"), float("inf"))) - 1
        if i >= 0 and ranges[i][0] <= offset < ranges[i][1]:
            return ranges[i][2]
        return None


def commit_ranges(commits: Iterable[tuple[float, str | None]]) -> CommitRanges:
    """From ``(commit time, userMetadata)`` pairs of one table, the offset ranges each commit holds."""
    parts: dict[int, list[tuple[int, int, float]]] = {}
    for committed_at, text in commits:
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("highway") != 1:
            continue
        for topic_parts in doc.get("kafka", {}).values():
            for p, r in topic_parts.items():
                parts.setdefault(int(p), []).append((int(r["start"]), int(r["end"]), committed_at))
    return CommitRanges({p: tuple(sorted(v)) for p, v in parts.items()})


def failure_summary(text: str) -> str:
    """One readable line from a query failure: Spark's error class and the root cause, no trace."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    head = lines[0][:160] if lines else "unknown error"
    causes = re.findall(r"Caused by: ([^\n]+)", text)
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    cause = (causes or errors or [""])[-1][:240]
    return f"{head} (root cause: {cause})" if cause else head


def records_behind(end_offsets: Mapping[int, int], heartbeat: Mapping[str, Any] | None, topic: str) -> int:
    """Kafka lag of an app: the topic's end offsets minus what its last heartbeat says it has read.

    A partition the app has not read yet counts in full (from offset 0: the oldest retained offset is
    not known here, so this is an upper bound until the first batch)."""
    seen = ((heartbeat or {}).get("offsets") or {}).get(topic) or {}
    return sum(max(0, end - int(seen.get(str(p), 0))) for p, end in end_offsets.items())
