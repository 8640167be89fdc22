"""The checkpoint doctor (pure): findings about a checkpoint, whether an app may start on it, and recovery
plans. Inputs are plain values (``highway.core.checkpoint``); the adapters read them and act on the plan.

A sink commit records the checkpoint lineage (Spark's query id) and the batch id, so a checkpoint that
was lost, replaced or moved shows as a lineage or batch disagreement here, before anything is written:
never as batches a sink skips as "replays".
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from highway.core import checkpoint as cp
from highway.core.checkpoint import CheckpointView, Finding, SinkCommit

MODES = ("repair", "rollback", "rebuild-from-sink", "reset")
Mode = Literal["repair", "rollback", "rebuild-from-sink", "reset"]
RESET_TARGETS = (
    "available (where the app stood, or Kafka's earliest where that expired), earliest, latest, "
    "or a time (2026-12-04T10:00:00Z, or epoch milliseconds)"
)


def _f(code: str, severity: cp.Severity, message: str, path: str | None = None) -> Finding:
    return Finding(code, severity, message, path)


def _file_findings(view: CheckpointView) -> list[Finding]:
    found = [
        _f(
            cp.ORPHAN_TEMP_FILE,
            "tidy",
            f"{key}: a write that never finished its rename (the next driver start removes it)",
            key,
        )
        for key in view.temp_files
    ]
    for bad in view.bad_files:
        found.append(_f(bad.code, "repairable", f"{bad.path}: {bad.detail}", bad.path))
    if view.exists and not view.has_metadata and (view.offset_ids or view.commit_ids):
        found.append(
            _f(
                cp.MISSING_METADATA,
                "repairable",
                "metadata is missing: Spark would start a new query id (a new lineage) on old offsets",
                "metadata",
            )
        )
    return found


def _gaps(ids: Sequence[int]) -> list[int]:
    return [b for a, b in itertools.pairwise(ids) if b != a + 1]


def _batch_findings(view: CheckpointView) -> list[Finding]:
    found = []
    for kind, ids in (("offsets", view.offset_ids), ("commits", view.commit_ids)):
        for batch in _gaps(ids):
            found.append(
                _f(cp.BATCH_GAP, "blocking", f"{kind}/: batch ids jump to {batch}", f"{kind}/{batch}")
            )
    orphans = sorted(set(view.commit_ids) - set(view.offset_ids))
    if orphans and view.offset_ids and orphans[-1] > view.offset_ids[0]:
        found.append(_f(cp.MISSING_FILE, "blocking", f"offsets/{orphans[-1]} is missing (its commit exists)",
                        f"offsets/{orphans[-1]}"))  # fmt: skip
    if view.in_flight is not None:
        found.append(
            _f(
                cp.BATCH_IN_FLIGHT,
                "info",
                f"batch {view.in_flight} has offsets but no commit: it is replayed on start (normal)",
                f"offsets/{view.in_flight}",
            )
        )
    done = view.last_commit
    for (op, part), version in sorted(view.state_versions.items()):
        if done is not None and version < done + 1:
            found.append(
                _f(
                    cp.STATE_MISMATCH,
                    "blocking",
                    f"state/{op}/{part} has version {version}, the commits need {done + 1}",
                    f"state/{op}/{part}",
                )
            )
    return found


FIX = "highway checkpoint recover {app} --mode rebuild-from-sink --reason '...'"


def _sink_findings(app: str, view: CheckpointView, sink: SinkCommit | None) -> list[Finding]:
    started = bool(view.offset_ids or view.commit_ids)
    if sink is None:
        if view.commit_ids:
            return [
                _f(
                    cp.AHEAD_OF_SINKS,
                    "blocking",
                    f"the checkpoint committed batches up to {view.last_commit} but no sink holds any batch "
                    "(a sink table deleted or restored?)",
                )
            ]
        return []
    if not started:
        return [
            _f(
                cp.CHECKPOINT_MISSING,
                "blocking",
                f"the checkpoint is {'empty' if view.exists else 'absent'} but the sinks hold batches up to "
                f"{sink.batch_id} (lineage {sink.lineage}): starting afresh would skip or re-read data; "
                f"fix: {FIX.format(app=app)}",
            )
        ]
    if sink.lineage is None:
        return []  # commits from before lineage was recorded: nothing to compare
    lineage = view.query_id
    if lineage is not None and lineage != sink.lineage:
        return [
            _f(cp.LINEAGE_MISMATCH, "blocking",
               f"the checkpoint is lineage {lineage}, the sinks' newest batch ({sink.batch_id}) is lineage "
               f"{sink.lineage}: this checkpoint is not the one the sinks continue; "
               f"fix: {FIX.format(app=app)}")
        ]  # fmt: skip
    done = view.last_commit if view.last_commit is not None else -1
    reach = max(done, view.in_flight if view.in_flight is not None else done)
    if sink.batch_id > reach:
        return [
            _f(cp.BEHIND_SINKS, "blocking",
               f"the sinks committed batch {sink.batch_id} but the checkpoint only reaches batch {reach}: "
               "an older checkpoint would re-plan batches the sinks already hold; "
               f"fix: {FIX.format(app=app)}")
        ]  # fmt: skip
    if sink.batch_id < done:
        return [
            _f(
                cp.AHEAD_OF_SINKS,
                "blocking",
                f"the checkpoint committed batch {done} but the sinks' newest is batch {sink.batch_id} "
                "(a sink table restored to an older version?)",
            )
        ]
    return []


def kafka_start(view: CheckpointView, sink: SinkCommit | None) -> dict[str, dict[str, int]] | None:
    """Where a Kafka source resumes: the newest offsets file, else the rebuilt marker's start."""
    resume = view.resumes_at
    if resume is not None and resume.sources and isinstance(resume.sources[0], dict):
        return resume.sources[0]
    start = (view.marker or {}).get("start")
    if isinstance(start, list) and start and isinstance(start[0], dict):
        return start[0]
    return None


def _expired(
    app: str, view: CheckpointView, sink: SinkCommit | None, earliest: Mapping[str, Mapping[int, int]]
) -> list[Finding]:
    start = kafka_start(view, sink) or {}
    gone = []
    for topic, parts in start.items():
        if not isinstance(parts, dict):
            continue
        for part, offset in sorted(parts.items(), key=lambda kv: int(kv[0])):
            first = earliest.get(topic, {}).get(int(part))
            if first is not None and int(offset) < first:
                gone.append((f"{topic}[{part}]", int(offset), first))
    if not gone:
        return []
    total = sum(first - offset for _, offset, first in gone)
    where = ", ".join(f"{name} resumes at {offset}, earliest {first}" for name, offset, first in gone)
    return [
        _f(cp.DATA_EXPIRED, "blocking",
           f"{total:,} records expired from Kafka before the app read them ({where}); fix: highway "
           f"checkpoint recover {app} --mode reset --to available --reason '...' (the audit entry counts "
           "what it skips)")
    ]  # fmt: skip


def inspect(
    app: str,
    view: CheckpointView,
    sink: SinkCommit | None,
    kafka_earliest: Mapping[str, Mapping[int, int]] | None = None,
) -> list[Finding]:
    """Every problem with the checkpoint, under stable codes (``highway.core.checkpoint.CODES``)."""
    found = _file_findings(view) + _batch_findings(view) + _sink_findings(app, view, sink)
    if kafka_earliest:
        found += _expired(app, view, sink, kafka_earliest)
    return found


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    """What stops an app from starting: everything but the informational findings and the temp files a
    driver tidies by itself."""
    return [f for f in findings if f.severity not in ("info", "tidy")]


def refusal_line(app: str, findings: Sequence[Finding]) -> str | None:
    """The one line an app prints when it refuses its checkpoint (None: it may start)."""
    bad = blocking(findings)
    if not bad:
        return None
    first = bad[0]
    fix = (
        ""
        if "fix:" in first.message
        else f"; fix: highway checkpoint recover {app} --mode repair --reason '...'"
    )
    more = f" (+{len(bad) - 1} more: highway checkpoint inspect {app})" if len(bad) > 1 else ""
    return f"app {app}: checkpoint refused: {first.code}: {first.message}{fix}{more}"


# ---- recovery plans --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    kind: Literal["delete", "write", "clear"]
    path: str  # relative to the checkpoint ("" for the whole checkpoint)
    why: str
    text: str | None = None


@dataclass(frozen=True)
class RecoveryPlan:
    app: str
    mode: str
    actions: tuple[Action, ...] = ()
    refused: str | None = None
    marker: Mapping[str, Any] | None = field(default=None)
    ranges: tuple[Mapping[str, Any], ...] = ()  # reset: per partition, the offsets skipped or read again

    def lines(self) -> list[str]:
        if self.refused:
            return [f"{self.app}: {self.mode} refused: {self.refused}"]
        if not self.actions:
            return [f"{self.app}: {self.mode}: nothing to do"]
        return (
            [f"{self.app}: {self.mode}:"]
            + [f"  {a.kind} {a.path or '(checkpoint)'}: {a.why}" for a in self.actions]
            + [f"  {range_line(r)}" for r in self.ranges]
        )


TIDY = "tidy"  # what a driver does by itself on any policy: remove the temp files a killed write left


def tidy_plan(app: str, view: CheckpointView) -> RecoveryPlan | None:
    """The temp files a killed driver left (s3a's rename is copy + delete), removed by the next driver under
    its lease whatever the policy: Spark never reads them, and the write they belonged to either finished
    its copy (the real file exists) or never happened (the batch is planned again). None: nothing to tidy."""
    if not view.temp_files:
        return None
    return RecoveryPlan(
        app, TIDY, tuple(Action("delete", key, "a temp file a killed write left") for key in view.temp_files)
    )


def _repair(
    app: str, view: CheckpointView, sink: SinkCommit | None, findings: Sequence[Finding], new_id: str
) -> RecoveryPlan:
    actions = [Action("delete", key, "orphan temp file") for key in view.temp_files]
    for bad in view.bad_files:
        if bad.path.startswith("commits/"):
            actions.append(
                Action("delete", bad.path, "damaged commit: the batch is replayed, its sinks skip it")
            )
        elif bad.path.startswith("offsets/") and int(bad.path.split("/")[1]) == view.last_offsets:
            batch = int(bad.path.split("/")[1])
            if sink is not None and sink.lineage in (None, view.query_id) and sink.batch_id >= batch:
                return RecoveryPlan(app, "repair", refused=(
                    f"{bad.path} is damaged but the sinks committed batch {batch}: re-planning it could skip "
                    "records; use --mode rebuild-from-sink"))  # fmt: skip
            actions.append(Action("delete", bad.path, "damaged offsets of a batch no sink committed"))
            if batch in view.commit_ids:
                actions.append(Action("delete", f"commits/{batch}", "the commit of the damaged batch"))
        else:
            return RecoveryPlan(
                app, "repair", refused=f"{bad.path} ({bad.code}) is not a file repair can mend"
            )
    if any(f.code == cp.MISSING_METADATA for f in findings):
        lineage = sink.lineage if sink is not None and sink.lineage else new_id
        actions.append(Action("write", "metadata", f"restore the lineage {lineage}", f'{{"id":"{lineage}"}}'))
    other = [f for f in blocking(findings) if f.code not in (
        cp.ORPHAN_TEMP_FILE, cp.EMPTY_FILE, cp.UNPARSEABLE_FILE, cp.MISSING_METADATA)]  # fmt: skip
    if other:
        return RecoveryPlan(app, "repair", refused=f"{other[0].code}: {other[0].message}")
    return RecoveryPlan(app, "repair", tuple(actions))


def _rebuild(
    app: str, sink: SinkCommit | None, reason: str, now: float, conf: Mapping[str, str]
) -> RecoveryPlan:
    """A checkpoint rebuilt from the sinks' records, in their lineage: batch B-1 committed (offsets = where
    batch B began) and batch B in flight (offsets = where it ended), B being the newest batch any sink
    holds. Spark replays B over exactly its original range; a sink that holds B skips it (same lineage and
    batch id), a sink the crash left without it writes it. Nothing is skipped or read twice."""
    name = "rebuild-from-sink"
    if sink is None:
        return RecoveryPlan(app, name, refused="the sinks hold no batch: nothing to rebuild from")
    batch = sink.batch_id
    if not sink.sources or not sink.lineage:
        return RecoveryPlan(app, name, refused=(
            f"the sinks' newest batch ({batch}) does not record its lineage and offsets "
            "(written before highway recorded them)"))  # fmt: skip
    if batch > 0 and not sink.starts:
        return RecoveryPlan(app, name, refused=f"the sinks' newest batch ({batch}) does not record its start")
    stamp = int(now * 1000)
    marker = {"mode": name, "rebuilt_from": {"lineage": sink.lineage, "batch_id": batch, "sink": sink.sink},
              "reason": reason, "at": now}  # fmt: skip
    actions = [
        Action("clear", "", "a new checkpoint (the old one is backed up first)"),
        Action("write", "metadata", f"the sinks' lineage {sink.lineage}", cp.metadata_text(sink.lineage)),
    ]
    if batch > 0:
        actions += [
            Action("write", f"offsets/{batch - 1}", f"where batch {batch} began",
                   cp.offsets_text(sink.starts or (), stamp, conf)),
            Action("write", f"commits/{batch - 1}", f"batch {batch - 1} is done", cp.COMMIT_TEXT),
        ]  # fmt: skip
    else:
        for n, start in enumerate(sink.starts or ()):
            if start is not None:
                actions.append(
                    Action("write", f"sources/{n}/0", "where batch 0 began", cp.initial_offsets_text(start))
                )
    actions += [
        Action("write", f"offsets/{batch}", f"replay batch {batch} (a sink holding it skips it)",
               cp.offsets_text(sink.sources, stamp, conf)),
        Action("write", cp.MARKER, "a record of this rebuild", json_text(marker)),
    ]  # fmt: skip
    return RecoveryPlan(app, name, tuple(actions), marker=marker)


def range_line(r: Mapping[str, Any]) -> str:
    where = f"{r['topic']}[{r['partition']}]"
    if r["skipped"]:
        return f"{where}: skips {r['skipped']:,} records (offsets {r['from']}..{r['to'] - 1})"
    if r["reread"]:
        return f"{where}: reads {r['reread']:,} records again (offsets {r['to']}..{r['from'] - 1})"
    return f"{where}: continues at offset {r['to']} (nothing skipped or read again)"


def parse_reset_target(text: str) -> str | int:
    """``--to``: "available", "earliest", "latest", or a time as epoch milliseconds (ISO 8601 with a zone, or
    digits)."""
    from datetime import datetime

    value = text.strip()
    if value in ("available", "earliest", "latest"):
        return value
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--to {text!r}: allowed: {RESET_TARGETS}") from None
    if when.tzinfo is None:
        raise ValueError(f"--to {text!r}: a time needs its zone (Z or +hh:mm); allowed: {RESET_TARGETS}")
    return int(when.timestamp() * 1000)


def _kafka_position(sources: Sequence[Any] | None) -> dict[str, dict[str, int]] | None:
    if sources and isinstance(sources[0], dict):
        return {t: {str(p): int(o) for p, o in parts.items()} for t, parts in sources[0].items()
                if isinstance(parts, dict)}  # fmt: skip
    return None


def _reset(
    app: str, view: CheckpointView, sink: SinkCommit | None, target: Mapping[str, Mapping[int, int]] | None,
    label: str, reason: str, now: float, new_id: str, conf: Mapping[str, str],
) -> RecoveryPlan:  # fmt: skip
    """A checkpoint in the same lineage whose newest batch is done and ends at ``target`` (Kafka offsets
    per partition): the next batch reads from there. Every offset between where the app stood (the sinks'
    newest batch's end, else the checkpoint's) and the target is counted as skipped or read again."""
    if not target:
        return RecoveryPlan(
            app, "reset", refused="reset applies to apps reading Kafka (no Kafka offsets given)"
        )
    stood = (_kafka_position(sink.sources) if sink is not None else None) or kafka_start(view, sink) or {}
    lineage = (sink.lineage if sink is not None else None) or view.query_id or new_id
    done = [b for b in (sink.batch_id if sink is not None else None, view.last_commit) if b is not None]
    batch = max(done) if done else None
    start = {topic: {str(p): int(o) for p, o in sorted(parts.items())} for topic, parts in target.items()}
    if label == "available":  # Kafka's earliest only where the app's own position expired
        start = {topic: {p: max(o, int(stood.get(topic, {}).get(p, o))) for p, o in parts.items()}
                 for topic, parts in start.items()}  # fmt: skip
    ranges = []
    for topic, parts in sorted(start.items()):
        for part, to in parts.items():
            was = stood.get(topic, {}).get(part)
            frm = to if was is None else int(was)
            ranges.append({"topic": topic, "partition": int(part), "from": frm, "to": to,
                           "skipped": max(0, to - frm), "reread": max(0, frm - to)})  # fmt: skip
    marker = {"mode": "reset", "to": label, "start": [start], "ranges": ranges, "reason": reason, "at": now,
              "lineage": lineage, "after_batch": batch}  # fmt: skip
    actions = [
        Action("clear", "", "a new checkpoint (the old one is backed up first)"),
        Action("write", "metadata", f"the lineage {lineage} continues", cp.metadata_text(lineage)),
    ]
    if batch is None:
        actions.append(
            Action("write", "sources/0/0", f"batch 0 starts at {label}", cp.initial_offsets_text(start))
        )
    else:
        if batch > 0:  # Spark reads the batch before the newest when it resumes
            actions += [
                Action("write", f"offsets/{batch - 1}", "Spark reads it on resume: it ends there too",
                       cp.offsets_text([start], int(now * 1000), conf)),
                Action("write", f"commits/{batch - 1}", f"batch {batch - 1} is done", cp.COMMIT_TEXT),
            ]  # fmt: skip
        actions += [
            Action("write", f"offsets/{batch}", f"batch {batch} ends at {label}",
                   cp.offsets_text([start], int(now * 1000), conf)),
            Action("write", f"commits/{batch}", f"batch {batch} is done: the next one reads from {label}",
                   cp.COMMIT_TEXT),
        ]  # fmt: skip
    actions.append(Action("write", cp.MARKER, "a record of this reset", json_text(marker)))
    return RecoveryPlan(app, "reset", tuple(actions), marker=marker, ranges=tuple(ranges))


def _rollback(app: str, view: CheckpointView, sink: SinkCommit | None) -> RecoveryPlan:
    """Back to the newest batch whose offsets file reads, whose commit exists, and whose state versions
    agree; later offsets and commits are removed. Refused when a sink holds a later batch of this lineage
    (re-planning it could skip records: rebuild-from-sink keeps its range)."""
    bad = {f.path for f in view.bad_files}
    good = [b for b in view.commit_ids
            if b in view.offset_ids and not {f"offsets/{b}", f"commits/{b}"} & bad]  # fmt: skip
    states = list(view.state_versions.values())
    good = [b for b in good if all(v >= b + 1 for v in states)]
    if not good:
        return RecoveryPlan(
            app, "rollback", refused="no batch has a readable offsets file, a commit and its state"
        )
    target = max(good)
    if sink is not None and sink.lineage in (None, view.query_id) and sink.batch_id > target:
        return RecoveryPlan(app, "rollback", refused=(
            f"the sinks hold batch {sink.batch_id}, later than batch {target} rollback would return to; "
            "use --mode rebuild-from-sink"))  # fmt: skip
    later = sorted({b for b in (*view.offset_ids, *view.commit_ids) if b > target})
    actions = [Action("delete", key, "a temp file a killed write left") for key in view.temp_files]
    for b in later:
        for kind in ("offsets", "commits"):
            ids = view.offset_ids if kind == "offsets" else view.commit_ids
            if b in ids:
                why = "damaged" if f"{kind}/{b}" in bad else f"after batch {target}"
                actions.append(Action("delete", f"{kind}/{b}", f"{why}: back to batch {target}"))
    return RecoveryPlan(app, "rollback", tuple(actions))


def checkpoint_conf(shuffle_partitions: int, state_store_provider: str) -> dict[str, str]:
    """The settings a rebuilt offsets file pins, as the app's own session sets them."""
    return {
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.streaming.stateStore.providerClass": state_store_provider,
    }


def json_text(doc: Any) -> str:
    import json

    return json.dumps(doc, sort_keys=True)


def plan_recovery(
    app: str,
    mode: str,
    view: CheckpointView,
    sink: SinkCommit | None,
    findings: Sequence[Finding],
    reason: str,
    now: float,
    new_id: str,
    conf: Mapping[str, str] | None = None,
    target: Mapping[str, Mapping[int, int]] | None = None,
    label: str = "",
) -> RecoveryPlan:
    """What ``highway checkpoint recover`` does, decided from plain values; ``new_id`` is a fresh query id
    (only used when metadata is missing and no sink knows the lineage); ``conf``: the Spark settings a
    rebuilt offsets file pins (``checkpoint_conf``); reset: ``target``, the Kafka offsets per partition
    to start from (resolved from ``label``: earliest, latest or a time)."""
    if mode == TIDY:
        return tidy_plan(app, view) or RecoveryPlan(app, TIDY)
    if mode == "repair":
        return _repair(app, view, sink, findings, new_id)
    if mode == "rebuild-from-sink":
        if view.state_versions:  # a stateful query: a rebuilt checkpoint would start its state empty
            parts = len(view.state_versions)
            return RecoveryPlan(app, "rebuild-from-sink", refused=(
                f"the checkpoint keeps Spark state ({parts} state store partition(s) under state/): a "
                "rebuilt checkpoint would start it empty and the app's results would go wrong silently; "
                "use --mode rollback or restore a backup (highway checkpoint backups APP)"))  # fmt: skip
        return _rebuild(app, sink, reason, now, conf or {})
    if mode == "rollback":
        return _rollback(app, view, sink)
    if mode == "reset":
        return _reset(app, view, sink, target, label, reason, now, new_id, conf or {})
    return RecoveryPlan(app, mode, refused=f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")


# ---- what an app does on start ---------------------------------------------------------------------


# Spark's own errors about a checkpoint it cannot use (when the app's check before the start missed it)
SPARK_CHECKPOINT_ERRORS = {
    "STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY": cp.ORPHAN_TEMP_FILE,
    "MISSING_METADATA_FILE": cp.MISSING_METADATA,
    "CONCURRENT_QUERY": "concurrent_query",
}
REFUSED = "checkpoint refused: "


def checkpoint_failure(error: str | None) -> str | None:
    """The checkpoint problem a driver failed on (its heartbeat's ``error``): the app's own refusal (its
    code) or one of Spark's checkpoint errors; None for any other failure."""
    if not error:
        return None
    if REFUSED in error:
        return error.split(REFUSED, 1)[1].split(":", 1)[0].strip() or "checkpoint"
    return next((code for name, code in SPARK_CHECKPOINT_ERRORS.items() if name in error), None)


def needs_operator(findings: Sequence[Finding]) -> bool:
    """Problems no policy mends by itself: expired Kafka data (a reset skips records; a person decides)."""
    return any(f.code == cp.DATA_EXPIRED for f in blocking(findings))


def modes_for(policy: str) -> tuple[str, ...]:
    """The recoveries an app may try by itself under its catalog ``recovery.policy``, in order."""
    return {"manual": (), "repair": ("repair",), "rebuild-from-sink": ("repair", "rebuild-from-sink")}.get(
        policy, ()
    )
