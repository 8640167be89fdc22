"""A streaming checkpoint read as plain data, and what is wrong with it (pure: no I/O).

Spark keeps a query's progress under its checkpoint directory:
``metadata`` (``{"id": <query id>}``: the checkpoint's *lineage*; a new one means a new query),
``offsets/<batch>`` (``v1``, the batch's metadata line, then one end-offset line per source: written
before the batch runs), ``commits/<batch>`` (written after every sink committed), ``sources/<n>/0``
(a source's start), ``state/<op>/<partition>/<version>.*`` (stateful operators). On S3 a file is
written to ``.<name>.<uuid>.tmp`` and then copied to its name, so a kill in between leaves a temp file.

``highway.json`` beside them is highway's own: written by a recovery that rebuilt or reset the
checkpoint, it says where the new lineage starts and which sink lineage it continues.

The adapter lists the directory and reads the few files ``files_to_read`` names; ``parse_checkpoint``
turns that into a ``CheckpointView``; ``inspect`` compares it with what the sinks committed and Kafka
still holds, and returns ``Finding``s under stable codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MARKER = "highway.json"
Severity = Literal["info", "tidy", "repairable", "blocking"]

# stable finding codes (tests, the DAG and operators match on these)
ORPHAN_TEMP_FILE = "orphan_temp_file"
BATCH_IN_FLIGHT = "batch_in_flight"
MISSING_FILE = "missing_file"
EMPTY_FILE = "empty_file"
UNPARSEABLE_FILE = "unparseable_file"
MISSING_METADATA = "missing_metadata"
BATCH_GAP = "batch_gap"
STATE_MISMATCH = "state_mismatch"
BEHIND_SINKS = "behind_sinks"
AHEAD_OF_SINKS = "ahead_of_sinks"
LINEAGE_MISMATCH = "lineage_mismatch"
CHECKPOINT_MISSING = "checkpoint_missing"
DATA_EXPIRED = "data_expired"
CODES = (
    ORPHAN_TEMP_FILE, BATCH_IN_FLIGHT, MISSING_FILE, EMPTY_FILE, UNPARSEABLE_FILE, MISSING_METADATA,
    BATCH_GAP, STATE_MISMATCH, BEHIND_SINKS, AHEAD_OF_SINKS, LINEAGE_MISMATCH, CHECKPOINT_MISSING,
    DATA_EXPIRED,
)  # fmt: skip

_BATCH_FILE = re.compile(r"^(offsets|commits)/(\d+)$")
_STATE_FILE = re.compile(r"^state/(\d+)/(\d+)/(?:[^/]+/)?(\d+)\.(?:delta|snapshot|zip|changelog)$")


def is_temp_file(key: str) -> bool:
    """A file left by a write that never finished its rename (``offsets/.0.<uuid>.tmp``)."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith(".") and ".tmp" in name


@dataclass(frozen=True)
class Finding:
    """One problem (or note) about a checkpoint: a stable ``code``, how bad, one line, the file."""

    code: str
    severity: Severity
    message: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "path": self.path}


@dataclass(frozen=True)
class OffsetFile:
    """``offsets/<batch>``: the batch's end offset per source (None for a source Spark wrote ``-`` for)."""

    batch_id: int
    sources: tuple[Any, ...]
    batch_timestamp_ms: int | None = None


@dataclass(frozen=True)
class BadFile:
    path: str
    code: str  # EMPTY_FILE or UNPARSEABLE_FILE
    detail: str


@dataclass(frozen=True)
class CheckpointView:
    """What a checkpoint directory holds, parsed. ``exists`` is False for an absent or empty directory."""

    exists: bool
    query_id: str | None = None
    offset_ids: tuple[int, ...] = ()
    commit_ids: tuple[int, ...] = ()
    offsets: Mapping[int, OffsetFile] = field(default_factory=dict)
    temp_files: tuple[str, ...] = ()
    bad_files: tuple[BadFile, ...] = ()
    state_versions: Mapping[tuple[int, int], int] = field(default_factory=dict)  # (op, part) -> newest
    marker: Mapping[str, Any] | None = None
    has_metadata: bool = False

    @property
    def last_commit(self) -> int | None:
        return self.commit_ids[-1] if self.commit_ids else None

    @property
    def last_offsets(self) -> int | None:
        return self.offset_ids[-1] if self.offset_ids else None

    @property
    def in_flight(self) -> int | None:
        """The batch whose offsets are written but not its commit (Spark replays it on start)."""
        last, done = self.last_offsets, self.last_commit
        if last is not None and (done is None or last > done):
            return last
        return None

    @property
    def resumes_at(self) -> OffsetFile | None:
        """The newest readable offsets file: where the next start continues from."""
        for batch in reversed(self.offset_ids):
            if batch in self.offsets:
                return self.offsets[batch]
        return None

    @property
    def lineage(self) -> str | None:
        return self.query_id


def files_to_read(keys: Iterable[str], newest: int = 2) -> list[str]:
    """Which files (relative to the checkpoint) the adapter should read: metadata, the marker, and the
    ``newest`` offsets and commit files (the rest are only listed)."""
    offsets: list[int] = []
    commits: list[int] = []
    wanted: list[str] = []
    for key in keys:
        if key in ("metadata", MARKER):
            wanted.append(key)
        match = _BATCH_FILE.match(key)
        if match:
            (offsets if match.group(1) == "offsets" else commits).append(int(match.group(2)))
    wanted += [f"offsets/{b}" for b in sorted(offsets)[-newest:]]
    wanted += [f"commits/{b}" for b in sorted(commits)[-1:]]
    return wanted


COMMIT_TEXT = 'v1\n{"nextBatchWatermarkMs":0}'


def metadata_text(query_id: str) -> str:
    return json.dumps({"id": query_id}, separators=(",", ":"))


def offsets_text(sources: Iterable[Any], batch_timestamp_ms: int, conf: Mapping[str, str]) -> str:
    """An ``offsets/<batch>`` file in Spark's format (``v1``, metadata, one line per source). ``conf``: the
    settings Spark pins per checkpoint (it reads ``spark.sql.shuffle.partitions`` back when it replays a
    batch; for the others it keeps the session's values or its defaults, with a warning)."""
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": batch_timestamp_ms, "conf": dict(conf)}
    lines = ["v1", json.dumps(meta, separators=(",", ":"))]
    lines += ["-" if s is None else json.dumps(s, separators=(",", ":")) for s in sources]
    return "\n".join(lines)


def _json_line(line: str) -> Any:
    return None if line.strip() == "-" else json.loads(line)


def parse_offsets(batch_id: int, text: str) -> OffsetFile:
    """Parse ``offsets/<batch>``; ValueError with the reason when it is not Spark's format."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not re.fullmatch(r"v\d+", lines[0].strip()):
        raise ValueError("expected a version line ('v1') and a metadata line")
    meta = json.loads(lines[1])
    if not isinstance(meta, dict):
        raise ValueError("the metadata line is not a JSON object")
    sources = tuple(_json_line(line) for line in lines[2:])
    if not sources:
        raise ValueError("no source offsets")
    stamp = meta.get("batchTimestampMs")
    return OffsetFile(batch_id, sources, int(stamp) if isinstance(stamp, int) else None)


def _parse_commit(text: str) -> None:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not re.fullmatch(r"v\d+", lines[0].strip()):
        raise ValueError("expected a version line ('v1')")
    for line in lines[1:]:
        json.loads(line)


def _parse_metadata(text: str) -> str:
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        raise ValueError('expected {"id": "<query id>"}')
    return str(doc["id"])


def _classify_keys(keys: Iterable[str]) -> tuple[list[int], list[int], list[str], dict[tuple[int, int], int]]:
    offset_ids: list[int] = []
    commit_ids: list[int] = []
    temps: list[str] = []
    state: dict[tuple[int, int], int] = {}
    for key in keys:
        if is_temp_file(key):
            temps.append(key)
            continue
        match = _BATCH_FILE.match(key)
        if match:
            (offset_ids if match.group(1) == "offsets" else commit_ids).append(int(match.group(2)))
        found = _STATE_FILE.match(key)
        if found:
            part = (int(found.group(1)), int(found.group(2)))
            state[part] = max(state.get(part, 0), int(found.group(3)))
    return offset_ids, commit_ids, temps, state


@dataclass
class _Read:
    query_id: str | None = None
    marker: Any = None
    offsets: dict[int, OffsetFile] = field(default_factory=dict)
    bad: list[BadFile] = field(default_factory=list)


def _read_file(read: _Read, key: str, text: str) -> None:
    if key == "metadata":
        read.query_id = _parse_metadata(text)
    elif key == MARKER:
        read.marker = json.loads(text)
    elif key.startswith("offsets/"):
        batch = int(key.split("/")[1])
        read.offsets[batch] = parse_offsets(batch, text)
    elif key.startswith("commits/"):
        _parse_commit(text)


def parse_checkpoint(keys: Mapping[str, int], contents: Mapping[str, str]) -> CheckpointView:
    """A ``CheckpointView`` from the listing (relative key -> size) and the files read (key -> text)."""
    if not keys:
        return CheckpointView(exists=False)
    offset_ids, commit_ids, temps, state = _classify_keys(keys)
    read = _Read()
    for key, text in contents.items():
        if keys.get(key) == 0 or not text.strip():
            read.bad.append(BadFile(key, EMPTY_FILE, "0 bytes"))
            continue
        try:
            _read_file(read, key, text)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            read.bad.append(BadFile(key, UNPARSEABLE_FILE, str(exc).splitlines()[0][:160]))
    return CheckpointView(
        exists=True,
        query_id=read.query_id,
        offset_ids=tuple(sorted(offset_ids)),
        commit_ids=tuple(sorted(commit_ids)),
        offsets=read.offsets,
        temp_files=tuple(sorted(temps)),
        bad_files=tuple(read.bad),
        state_versions=state,
        marker=read.marker if isinstance(read.marker, dict) else None,
        has_metadata="metadata" in keys,
    )


# ---- what the sinks committed ----------------------------------------------------------------------


@dataclass(frozen=True)
class SinkCommit:
    """The newest batch a sink committed: its lineage (checkpoint query id; None for commits written
    before highway recorded lineage), batch id, and Spark's offsets of that batch per source: where it
    ended (``sources``) and where it began (``starts``: the previous batch's end; None for batch 0 of a
    source that has no recorded start)."""

    sink: str
    lineage: str | None
    batch_id: int
    sources: tuple[Any, ...] | None
    committed_at: float = 0.0
    starts: tuple[Any, ...] | None = None


def newest_commit(commits: Iterable[SinkCommit | None]) -> SinkCommit | None:
    """Where the app as a whole stopped: of the lineage written last, the highest batch any sink holds
    (a batch in flight may be in some sinks and not yet in others: it is the one to replay)."""
    present = [c for c in commits if c is not None]
    if not present:
        return None
    last = max(present, key=lambda c: (c.committed_at, c.batch_id))
    return max((c for c in present if c.lineage == last.lineage), key=lambda c: (c.batch_id, c.committed_at))


def batch_position(sources: Iterable[Any], starts: Iterable[Any] | None) -> dict[str, Any]:
    """A batch's offsets as every sink commit records them: ``sources`` (its end), ``starts``."""
    return {"sources": list(sources), "starts": None if starts is None else list(starts)}


def commit_metadata(
    app: str, lineage: str, batch_id: int, table: str, position: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """What every sink commit records (Delta ``userMetadata``, the warehouse ledger): enough to rebuild a
    checkpoint from the sinks alone."""
    return {"highway": 1, "app": app, "table": table, "batch_id": batch_id, "lineage": lineage,
            **position, **extra}  # fmt: skip


def _tuple(value: Any) -> tuple[Any, ...] | None:
    return tuple(value) if isinstance(value, list) else None


def sink_commit_from_metadata(sink: str, text: str | None, committed_at: float) -> SinkCommit | None:
    """A ``SinkCommit`` from a commit's metadata text; None when it is not highway's."""
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("highway") != 1 or not isinstance(doc.get("batch_id"), int):
        return None
    lineage = doc.get("lineage")
    return SinkCommit(
        sink,
        lineage if isinstance(lineage, str) else None,
        int(doc["batch_id"]),
        _tuple(doc.get("sources")),
        committed_at,
        _tuple(doc.get("starts")),
    )


def initial_offsets(text: str) -> Any:
    """A Kafka source's ``sources/<n>/0`` (a NUL byte, ``v1``, the start offsets JSON); ValueError if not."""
    lines = [line for line in text.lstrip("\x00").splitlines() if line.strip()]
    if len(lines) != 2 or not re.fullmatch(r"v\d+", lines[0].strip()):
        raise ValueError("expected a version line and one JSON line")
    return json.loads(lines[1])


def initial_offsets_text(offsets: Any) -> str:
    return "\x00v1\n" + json.dumps(offsets, separators=(",", ":"))


def delta_commit_info(text: str) -> tuple[float, str | None] | None:
    """(commit time in epoch seconds, ``userMetadata``) of one Delta commit file (``_delta_log/N.json``)."""
    for line in text.splitlines():
        try:
            action = json.loads(line)
        except ValueError:
            continue
        info = action.get("commitInfo") if isinstance(action, dict) else None
        if isinstance(info, dict):
            meta = info.get("userMetadata")
            return float(info.get("timestamp") or 0) / 1000.0, meta if isinstance(meta, str) else None
    return None


def delta_commit_keys(keys: Iterable[str]) -> list[str]:
    """The commit files (``…/_delta_log/<20 digits>.json``) among ``keys``, newest first."""
    commits = [k for k in keys if re.search(r"/_delta_log/\d{20}\.json$", k)]
    return sorted(commits, reverse=True)
