"""The reconcile loop for every app in the catalog: observe, decide (``core.health``), act, remember.

One owner per kind of failure: a crashed driver is restarted at once by its supervisor (the kubelet,
or the local runtime's supervisor); reconcile never restarts a crash the supervisor is handling. It acts
on what a supervisor cannot see: a driver alive but stuck (no heartbeat, not even an idle tick, for the
app's stall window), one that never finishes starting, and a crash loop past the supervisor's retries
(then it marks the app failed). Its own restarts back off exponentially and are limited by a budget;
after the budget the app is marked failed, left alone, and says why in ``highway status``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from highway.catalog import AppSpec
from highway.core import recovery
from highway.core.health import Decision, evaluate, history_from_json, history_to_json, policy_for
from highway.errors import HighwayError, TerminalError
from highway.ops.observe import HEALTH, AppView, Records, observe

if TYPE_CHECKING:
    from highway.runtime.base import AppRuntime

Clock = Callable[[], float]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    app: str
    state: str
    decision: Decision | None
    acted: str  # what was done: none, restarted, marked failed, would ..., or the error
    heartbeat_age: float | None
    lag: int | None
    seconds: float  # time spent on this app
    error: str | None = None

    def line(self) -> str:
        age = f"{self.heartbeat_age:.0f} s" if self.heartbeat_age is not None else "-"
        lag = str(self.lag) if self.lag is not None else "-"
        why = self.error or (self.decision.reason if self.decision else "")
        trend = (
            f", lag {self.decision.lag_trend}"
            if self.decision and self.decision.lag_trend != "unknown"
            else ""
        )
        return (
            f"{self.app}: {self.state}, heartbeat {age} ago, lag {lag}{trend} -> {self.acted} ({why}) "
            f"[{self.seconds:.1f} s]"
        )


def decide(view: AppView, records: Records, now: float) -> Decision:
    """The decision for one observed app, from the history in its health record (an unreadable record
    counts as none: it is rewritten this cycle)."""
    doc = _health(records, view.spec)
    history = history_from_json(doc.get("history"))
    policy = policy_for(view.spec.trigger.interval_seconds, view.spec.health)
    return evaluate(view.observation, history, policy, now)


def health_record(view: AppView, decision: Decision, acted: str, now: float) -> dict[str, Any]:
    return {
        "app": view.spec.name,
        "at": now,
        "state": view.status.state,
        "action": decision.action,
        "acted": acted,
        "reason": decision.reason,
        "lag": view.lag,
        "lag_trend": decision.lag_trend,
        "notes": list(decision.notes),
        "failed": decision.history.failed,
        "history": history_to_json(decision.history),
    }


def checkpoint_problem(view: AppView) -> str | None:
    """The checkpoint problem the app's driver last failed on (its heartbeat's error), while it is being
    restarted (a driver alive now may be the next attempt, still checking its checkpoint), if any."""
    hb = view.heartbeat or {}
    status = view.status
    restarting = status.state in ("starting", "failing") or (
        status.state == "running" and status.restarts > 0
    )
    if not restarting or hb.get("state") != "failed":
        return None
    return recovery.checkpoint_failure(str(hb.get("error") or ""))


def handle_checkpoint(
    runtime: AppRuntime, records: Records, view: AppView, problem: str, dry_run: bool, now: float
) -> tuple[str, dict[str, Any]]:
    """Inspect the checkpoint; recover it when the catalog's ``recovery.policy`` allows (the app stopped
    and its lease held meanwhile, then started again), else leave it to an operator with the plan."""
    from highway.ops import checkpoints

    spec, view_state = view.spec, view.status.state
    exam = checkpoints.examine(records.conn, spec)
    policy = spec.recovery.policy
    reason = f"reconcile: the app fails to start on its checkpoint ({problem})"
    # every mode but reset, which needs a target and skips or re-reads records: a person's decision
    plans = [checkpoints.plan(spec, exam, mode, reason, now) for mode in recovery.MODES if mode != "reset"]
    allowed = () if recovery.needs_operator(exam.findings) else recovery.modes_for(policy)
    usable = next((p for p in plans if not p.refused and p.actions and p.mode in allowed), None)
    record: dict[str, Any] = {
        "at": now, "problem": problem, "policy": policy,
        "findings": [f.to_dict() for f in exam.findings], "plans": [p.lines() for p in plans],
    }  # fmt: skip
    if usable is not None and view_state == "running":
        acted = (
            f"waiting: the driver now running checks its checkpoint ({problem}) itself under policy {policy}"
        )
        record["line"] = acted
        return acted, record
    if usable is None or dry_run:
        if usable is not None:
            acted = f"would recover the checkpoint by {usable.mode} (dry run)"
        else:
            offered = next((p.mode for p in plans if not p.refused and p.actions), None)
            if recovery.needs_operator(exam.findings):
                offered = "reset --to available"  # skips what expired: a person decides, the audit counts it
            hint = (
                f"highway checkpoint recover {spec.name} --mode {offered}" if offered else "no plan applies"
            )
            acted = f"needs an operator: checkpoint {problem} (recovery policy {policy}; {hint})"
        record["line"] = acted
        return acted, record
    home = getattr(runtime, "home", None)
    result, after = checkpoints.while_stopped(
        runtime,
        spec,
        home,
        lambda: checkpoints.recover(records.conn, spec, usable.mode, reason, who="reconcile"),
    )
    acted = f"recovered the checkpoint ({problem}) by {usable.mode}, backup {result.backup_id}; restarted"
    if result.plan.refused:
        acted = f"needs an operator: {result.plan.lines()[0]}"
    record.update(line=acted, backup=result.backup_id, after=after.line() if after is not None else None)
    return acted, record


def driver_recovery(records: Records, spec: AppSpec, previous: Any) -> dict[str, Any] | None:
    """A recovery the app's driver made by itself since reconcile last said one; the policy is the one the
    driver ran with (a deploy may override the catalog's)."""
    from highway.ops.observe import CHECKPOINT

    done = records.read(spec, CHECKPOINT)
    if not isinstance(done, dict) or not isinstance(done.get("at"), int | float):
        return None
    seen = previous.get("at") if isinstance(previous, dict) else None
    if isinstance(seen, int | float) and seen >= done["at"]:
        return None
    policy = done.get("policy") or spec.recovery.policy
    line = (
        f"the driver (pid {done.get('pid')}) recovered its checkpoint by {done.get('mode')} at start "
        f"(policy {policy}; backup {done.get('backup')}): {done.get('why')}"
    )
    return {"at": done["at"], "by": "driver", "mode": done.get("mode"), "backup": done.get("backup"),
            "line": line}  # fmt: skip


def _health(records: Records, spec: AppSpec) -> dict[str, Any]:
    try:
        doc = records.read(spec, HEALTH)
    except TerminalError as exc:
        log.warning("%s: health record ignored: %s", spec.name, exc)
        return {}
    return doc if isinstance(doc, dict) else {}


def _previous_checkpoint(records: Records, spec: AppSpec) -> Any:
    return _health(records, spec).get("checkpoint")


def reconcile_app(
    runtime: AppRuntime, records: Records, spec: AppSpec, dry_run: bool, clock: Clock = time.time
) -> Outcome:
    started = time.monotonic()
    view = observe(runtime, records, spec)
    now = clock()
    decision = decide(view, records, now)
    acted = "none"
    problem = checkpoint_problem(view)
    checkpoint: dict[str, Any] | None = None
    if problem is not None:  # a restart cannot help: the checkpoint is mended first, or left to a person
        acted, checkpoint = handle_checkpoint(runtime, records, view, problem, dry_run, now)
    elif decision.action == "restart":
        if dry_run:
            acted = "would restart (dry run)"
        else:
            # the attempt is recorded first: a restart that raises or times out still counts for the
            # backoff and the budget next cycle
            attempt = health_record(view, decision, "restart attempted (not confirmed)", now)
            attempt["checkpoint"] = _previous_checkpoint(records, spec)
            records.write(spec, HEALTH, attempt)
            runtime.restart(spec.name)
            acted = "restarted"
    elif decision.action == "fail":
        acted = "would mark failed (dry run)" if dry_run else "marked failed"
    elif decision.action == "wait":
        acted = f"waiting {decision.retry_after or 0:.0f} s (backoff)"
    previous = _previous_checkpoint(records, spec)
    noted = driver_recovery(records, spec, previous) if checkpoint is None else None
    if noted is not None:
        checkpoint = noted
        acted = noted["line"] if acted == "none" else f"{acted}; {noted['line']}"
    if not dry_run:
        doc = health_record(view, decision, acted, now)
        doc["checkpoint"] = checkpoint or previous  # the last checkpoint action stays visible
        records.write(spec, HEALTH, doc)
    written = (view.heartbeat or {}).get("written_at")
    age = now - float(written) if isinstance(written, int | float) else None
    return Outcome(spec.name, view.status.state, decision, acted, age, view.lag, time.monotonic() - started)


def reconcile_all(
    runtime: AppRuntime, records: Records, specs: Iterable[AppSpec], dry_run: bool, clock: Clock = time.time
) -> list[Outcome]:
    """Every app, in order; one app's error (a service, a runtime that times out, a record that is not
    JSON) is recorded and the others still get their turn."""
    outcomes = []
    for spec in specs:
        started = time.monotonic()
        try:
            outcomes.append(reconcile_app(runtime, records, spec, dry_run, clock))
        except (HighwayError, OSError, ValueError) as exc:
            outcomes.append(
                Outcome(spec.name, "unknown", None, "error", None, None, time.monotonic() - started, str(exc))
            )
    return outcomes


def clear_failed(records: Records, spec: AppSpec, by: str, clock: Clock = time.time) -> bool:
    """An operator acted (start/restart/deploy): forget the failed mark and the restart history."""
    doc = records.read(spec, HEALTH)
    if not isinstance(doc, dict) or not (doc.get("failed") or (doc.get("history") or {}).get("restarts")):
        return False
    doc.update(failed=None, history={}, acted=f"cleared by {by}", at=clock())
    records.write(spec, HEALTH, doc)
    return True
