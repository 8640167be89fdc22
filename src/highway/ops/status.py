"""``highway status``: one row per catalog app, what reconcile would decide about it now (read-only)."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from highway.catalog import AppSpec
from highway.errors import HighwayError
from highway.ops.observe import HEALTH, AppView, Records, observe
from highway.ops.reconcile import Clock, decide

if TYPE_CHECKING:
    from highway.runtime.base import AppRuntime


@dataclass(frozen=True)
class StatusRow:
    app: str
    state: str
    detail: str  # the runtime's line (pid / pod, restarts, reason)
    last_batch_at: float | None
    heartbeat_age: float | None
    batch_id: int | None
    rate: float | None  # input rows per second of the last batch
    lag: int | None
    lag_trend: str
    restarts: int
    decision: str  # none | restart | wait | fail, or error
    reason: str
    failed: str | None
    checkpoint: str | None = None  # a checkpoint problem, or the last recovery reconcile made

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _utc(stamp: Any) -> float | None:
    """Spark's batch timestamp (``2026-11-26T12:00:05.123Z``, UTC) as epoch seconds."""
    if not isinstance(stamp, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def status_rows(
    runtime: AppRuntime, records: Records, specs: Iterable[AppSpec], clock: Clock = time.time
) -> list[StatusRow]:
    rows = []
    for spec in specs:
        try:
            view = observe(runtime, records, spec)
            now = clock()
            decision = decide(view, records, now)
        except HighwayError as exc:
            rows.append(
                StatusRow(
                    spec.name,
                    "unknown",
                    "",
                    None,
                    None,
                    None,
                    None,
                    None,
                    "unknown",
                    0,
                    "error",
                    str(exc),
                    None,
                )
            )
            continue
        hb = view.heartbeat or {}
        written = _number(hb.get("written_at"))
        batch_at = _utc(hb.get("batch_timestamp"))
        reason = "; ".join((decision.reason, *decision.notes, *view.problems))
        rows.append(
            StatusRow(
                app=spec.name,
                state=view.status.state,
                detail=view.status.line().partition(": ")[2],
                last_batch_at=batch_at,
                heartbeat_age=now - written if written is not None else None,
                batch_id=hb.get("batch_id") if isinstance(hb.get("batch_id"), int) else None,
                rate=_number(hb.get("input_rows_per_second")),
                lag=view.lag,
                lag_trend=decision.lag_trend,
                restarts=view.status.restarts,
                decision=decision.action,
                reason=reason,
                failed=decision.history.failed,
                checkpoint=_checkpoint_line(view, records),
            )
        )
    return rows


def _checkpoint_line(view: AppView, records: Records) -> str | None:
    """What the app's checkpoint needs or had: the driver's refusal, else reconcile's last action on it."""
    from highway.core.recovery import checkpoint_failure

    hb = view.heartbeat or {}
    if hb.get("state") == "failed":
        problem = checkpoint_failure(str(hb.get("error") or ""))
        if problem is not None:
            return f"refused: {problem}"
    record = (records.read(view.spec, HEALTH) or {}).get("checkpoint")
    return str(record.get("line")) if isinstance(record, dict) and record.get("line") else None
