"""Checkpoint inspect, backup, restore and recover for one catalog app (observe -> decide -> act).

Observe: the checkpoint (``adapters.checkpoint``), the sinks' newest commit (Delta commit metadata, the
warehouse ledger) and Kafka's earliest offsets. Decide: ``highway.core.recovery``. Act: S3 copies,
deletes and writes under the checkpoint, always after a backup. No Spark is needed for any of it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from highway.adapters import checkpoint as store
from highway.adapters import s3
from highway.catalog import AppSpec, BronzeSpec, GoldSpec, SilverSpec
from highway.connection import Connection
from highway.core import recovery
from highway.core.checkpoint import CheckpointView, Finding, SinkCommit, newest_commit
from highway.errors import LeaseRefused, TerminalError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from highway.core.k8s.status import AppStatus
    from highway.runtime.base import AppRuntime

BACKUPS = "_backups/checkpoints"
AUDIT_RETRY_SECONDS = 60.0  # the checkpoint is already mended: its audit row is worth waiting for


@dataclass(frozen=True)
class Examination:
    app: str
    checkpoint: str
    view: CheckpointView
    sink: SinkCommit | None
    findings: tuple[Finding, ...]
    kafka_earliest: dict[str, dict[int, int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        view, sink = self.view, self.sink
        resume = view.resumes_at
        return {
            "app": self.app,
            "checkpoint": self.checkpoint,
            "exists": view.exists,
            "lineage": view.query_id,
            "last_committed_batch": view.last_commit,
            "batch_in_flight": view.in_flight,
            "offsets": list(resume.sources) if resume else None,
            "state_versions": {f"{op}/{part}": v for (op, part), v in sorted(view.state_versions.items())},
            "temp_files": list(view.temp_files),
            "marker": dict(view.marker) if view.marker else None,
            "sinks": None if sink is None else {
                "sink": sink.sink, "lineage": sink.lineage, "batch_id": sink.batch_id,
                "sources": list(sink.sources) if sink.sources else None, "committed_at": sink.committed_at,
            },
            "kafka_earliest": self.kafka_earliest,
            "findings": [f.to_dict() for f in self.findings],
            "ok": not recovery.blocking(self.findings),
        }  # fmt: skip


def sink_position(conn: Connection, spec: AppSpec, client: S3Client) -> SinkCommit | None:
    """Where the app's sinks stopped: the newest commit of any of them that records its batch.

    Silver writes its Delta table before the warehouse, so the ledger never leads it, and its sinks are
    idempotent by key: with PostgreSQL out of reach, silver is checked against its Delta tables alone
    (the warehouse sink then rides the outage out as usual). Gold has only the ledger: an outage is
    raised (``TransientError``; the driver waits for it at start)."""
    bucket = conn.lake_bucket
    found: list[SinkCommit | None] = []
    if isinstance(spec, BronzeSpec | SilverSpec):
        found.append(store.delta_sink_commit(client, bucket, spec.sink.table, spec.sink.table))
        found.append(store.delta_sink_commit(client, bucket, spec.dlq.table, spec.dlq.table))
    if isinstance(spec, SilverSpec | GoldSpec):
        try:
            found.append(_ledger_commit(conn, spec))
        except TransientError:
            if isinstance(spec, GoldSpec):
                raise
    return newest_commit(found)


def _ledger_commit(conn: Connection, spec: SilverSpec | GoldSpec) -> SinkCommit | None:
    import json

    from highway.adapters import postgres

    with postgres.connect(conn) as pg:
        postgres.migrate(pg)
        row = postgres.newest_ledger_row(pg, spec.name)
    if row is None:
        return None
    lineage, batch_id, position, at = row
    found = json.loads(position) if position else {}
    ends, starts = found.get("sources"), found.get("starts")
    return SinkCommit(spec.warehouse.table, lineage or None, batch_id,
                      tuple(ends) if isinstance(ends, list) else None, at,
                      tuple(starts) if isinstance(starts, list) else None)  # fmt: skip


def kafka_earliest(conn: Connection, spec: AppSpec) -> dict[str, dict[int, int]] | None:
    if not isinstance(spec, BronzeSpec):
        return None
    from highway.adapters import kafka

    return {spec.source.topic: kafka.start_offsets(conn.kafka_bootstrap, spec.source.topic)}


def examine(
    conn: Connection, spec: AppSpec, client: S3Client | None = None, kafka: bool = True
) -> Examination:
    client = client or s3.client(conn)
    view = store.read_view(client, conn.lake_bucket, spec.checkpoint)
    sink = sink_position(conn, spec, client)
    earliest = kafka_earliest(conn, spec) if kafka else None
    findings = recovery.inspect(spec.name, view, sink, earliest)
    return Examination(spec.name, spec.checkpoint, view, sink, tuple(findings), earliest)


# ---- backups ---------------------------------------------------------------------------------------


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S") + f"{int(now * 1000) % 1000:03d}Z"


def backups(conn: Connection, spec: AppSpec, client: S3Client | None = None) -> list[str]:
    """The app's checkpoint backup ids, oldest first."""
    client = client or s3.client(conn)
    prefix = f"{BACKUPS}/{spec.name}/"
    keys = s3.list_sizes(client, conn.lake_bucket, prefix)
    return sorted({k[len(prefix) :].split("/", 1)[0] for k in keys})


def backup(
    conn: Connection, spec: AppSpec, client: S3Client | None = None, now: float | None = None
) -> tuple[str, int]:
    """Copy the checkpoint to ``_backups/checkpoints/<app>/<id>/``; keep the newest ``keep_backups``.

    Returns (backup id, files copied)."""
    client = client or s3.client(conn)
    bucket, source = conn.lake_bucket, store.prefix_of(spec.checkpoint)
    ident = _stamp(time.time() if now is None else now)
    keys = sorted(s3.list_sizes(client, bucket, source))
    copied = s3.copy_keys(client, bucket, keys, source, f"{BACKUPS}/{spec.name}/{ident}/")
    if not keys:  # an empty checkpoint still gets a backup entry, so the id exists
        s3.put_text(client, bucket, f"{BACKUPS}/{spec.name}/{ident}/.empty", "")
    for old in backups(conn, spec, client)[: -spec.recovery.keep_backups]:
        prefix = f"{BACKUPS}/{spec.name}/{old}/"
        s3.delete_keys(client, bucket, sorted(s3.list_sizes(client, bucket, prefix)))
    return ident, copied


def restore(conn: Connection, spec: AppSpec, ident: str, client: S3Client | None = None) -> int:
    """Replace the checkpoint with backup ``ident`` (the current one is backed up first)."""
    client = client or s3.client(conn)
    bucket = conn.lake_bucket
    known = backups(conn, spec, client)
    if ident not in known:
        raise TerminalError(
            f"app {spec.name}: no checkpoint backup {ident!r}; allowed: {', '.join(known) or '(none yet)'}"
        )
    source = f"{BACKUPS}/{spec.name}/{ident}/"
    keys = [k for k in sorted(s3.list_sizes(client, bucket, source)) if not k.endswith("/.empty")]
    backup(conn, spec, client)
    _clear(client, bucket, spec.checkpoint)
    return s3.copy_keys(client, bucket, keys, source, store.prefix_of(spec.checkpoint))


def _clear(client: S3Client, bucket: str, checkpoint: str) -> int:
    keys = sorted(s3.list_sizes(client, bucket, store.prefix_of(checkpoint)))
    s3.delete_keys(client, bucket, keys)
    return len(keys)


# ---- recover ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovered:
    plan: recovery.RecoveryPlan
    backup_id: str | None
    before: Examination
    after: Examination | None


def plan(
    spec: AppSpec, exam: Examination, mode: str, reason: str, now: float,
    target: dict[str, dict[int, int]] | None = None, label: str = "",
) -> recovery.RecoveryPlan:  # fmt: skip
    from highway.spark.session import ROCKSDB_PROVIDER

    conf = recovery.checkpoint_conf(spec.resources.shuffle_partitions, ROCKSDB_PROVIDER)
    args = (exam.view, exam.sink, exam.findings, reason, now, str(uuid.uuid4()), conf, target, label)
    return recovery.plan_recovery(exam.app, mode, *args)


def check_reset_target(mode: str, to: str | None, key: str) -> None:
    """``ParamError`` unless reset has a target it understands and the other modes have none."""
    from highway.errors import ParamError

    if mode != "reset":
        if to:
            raise ParamError(key, to, "nothing unless the mode is reset")
        return
    try:
        recovery.parse_reset_target(to or "")
    except ValueError:
        raise ParamError(key, to or "", recovery.RESET_TARGETS) from None


def reset_target(conn: Connection, spec: AppSpec, to: str) -> dict[str, dict[int, int]] | None:
    """The Kafka offsets ``--to`` names for the app's topic (None: the app does not read Kafka)."""
    if not isinstance(spec, BronzeSpec):
        return None
    from highway.adapters import kafka

    where = recovery.parse_reset_target(to)
    topic, bootstrap = spec.source.topic, conn.kafka_bootstrap
    if where in ("available", "earliest"):
        return {topic: kafka.start_offsets(bootstrap, topic)}
    if where == "latest":
        return {topic: kafka.end_offsets(bootstrap, topic)}
    return {topic: kafka.offsets_at(bootstrap, topic, int(where))}


def recover(
    conn: Connection, spec: AppSpec, mode: str, reason: str, dry_run: bool = False, who: str = "highway",
    to: str | None = None,
) -> Recovered:  # fmt: skip
    """Back up, then carry out the plan; the caller holds the app's lease (the app is stopped). ``to``:
    reset's target (``recovery.parse_reset_target``)."""
    client = s3.client(conn)
    before = examine(conn, spec, client)
    now = time.time()
    target = reset_target(conn, spec, to or "") if mode == "reset" else None
    chosen = plan(spec, before, mode, reason, now, target, (to or "").strip())
    if dry_run or chosen.refused or not chosen.actions:
        return Recovered(chosen, None, before, None)
    # temp files hold nothing to restore: a tidy takes no backup (frequent kills must not rotate out the
    # operator's backups)
    ident = "" if mode == recovery.TIDY else backup(conn, spec, client, now)[0]
    bucket, prefix = conn.lake_bucket, store.prefix_of(spec.checkpoint)
    for action in chosen.actions:
        if action.kind == "clear":
            _clear(client, bucket, spec.checkpoint)
        elif action.kind == "delete":
            s3.delete_keys(client, bucket, [prefix + action.path])
        elif action.kind == "write":
            s3.put_text(client, bucket, prefix + action.path, action.text or "")
    after = examine(conn, spec, client)
    _audit(conn, spec, chosen, ident, before, after, reason, who, now)
    return Recovered(chosen, ident, before, after)


def _audit(
    conn: Connection, spec: AppSpec, chosen: recovery.RecoveryPlan, ident: str, before: Examination,
    after: Examination, reason: str, who: str, now: float,
) -> None:  # fmt: skip
    """One row in the checkpoint audit table (``highway sql``: ``SELECT * FROM checkpoint_audit``)."""
    import json

    from highway.adapters import maintenance

    ranges = [dict(r) for r in chosen.ranges]
    entry = {
        "app": spec.name, "at": now, "who": who, "why": reason, "mode": chosen.mode, "backup": ident or None,
        "actions": [{"kind": a.kind, "path": a.path, "why": a.why} for a in chosen.actions],
        "ranges": ranges, "before": before.to_dict(), "after": after.to_dict(),
    }  # fmt: skip
    row = {
        "app": spec.name, "at": datetime.fromtimestamp(now, UTC), "who": who, "why": reason,
        "mode": chosen.mode, "backup": ident or None, "actions": len(chosen.actions),
        "skipped": sum(int(r["skipped"]) for r in ranges), "reread": sum(int(r["reread"]) for r in ranges),
        "lineage_before": before.view.query_id, "lineage_after": after.view.query_id,
        "batch_before": before.view.last_commit, "batch_after": after.view.last_commit,
        "findings_before": ",".join(f.code for f in before.findings),
        "findings_after": ",".join(f.code for f in after.findings),
        "ranges": json.dumps(ranges), "entry": json.dumps(entry, default=str),
    }  # fmt: skip
    from highway.core.retry import retry_transient

    table, schema = maintenance.CHECKPOINT_AUDIT, maintenance.CHECKPOINT_AUDIT_SCHEMA
    retry_transient(
        lambda: maintenance.append(conn, table, schema, [row]),
        f"app {spec.name}: write the checkpoint audit row", AUDIT_RETRY_SECONDS, time.monotonic, time.sleep,
    )  # fmt: skip


def audit_entries(conn: Connection, app: str | None = None) -> list[dict[str, Any]]:
    """The checkpoint audit's rows (of ``app``, or all), oldest first."""
    from highway.adapters import maintenance

    rows = maintenance.read(conn, maintenance.CHECKPOINT_AUDIT)
    return sorted((r for r in rows if app is None or r["app"] == app), key=lambda r: r["at"])


# ---- the app stopped, its lease held ---------------------------------------------------------------


@contextmanager
def app_lease(home: Path, spec: AppSpec) -> Iterator[None]:
    """Hold the checkpoint's lease (``<home>/leases``, the lock a local driver holds) for the duration."""
    from highway.core.supervise import lease_name
    from highway.runtime.supervisor import LeaseHeld, note_holder, take_lease

    try:
        fd = take_lease(home / "leases" / lease_name(spec.checkpoint), spec.name, spec.checkpoint)
    except LeaseHeld as held:
        raise LeaseRefused(f"{held} (a checkpoint is changed only while its app is stopped)") from None
    try:
        note_holder(fd, spec.name, None, os.getpid())
        yield
    finally:
        os.close(fd)


def while_stopped(
    runtime: AppRuntime, spec: AppSpec, home: Path | None, act: Callable[[], Any], timeout: float = 300.0
) -> tuple[Any, AppStatus | None]:
    """Stop the app if it runs, ``act`` under its lease (local runtime: ``home``; on Kubernetes the stopped
    StatefulSet fences it), then start it again if it was running. Returns (what ``act`` returned, the
    status after the restart, or None when it was not running)."""
    from contextlib import nullcontext

    was_running = runtime.status(spec.name).state in ("running", "starting", "failing")
    if was_running:
        runtime.stop(spec.name, timeout)
    try:
        with app_lease(home, spec) if home is not None else nullcontext():
            result = act()
    finally:
        after = runtime.start(spec.name) if was_running else None
    return result, after
