"""Health of one app and what the reconcile loop should do about it (pure: observations and a clock in,
a decision out).

One owner per kind of failure: a crashed driver is restarted at once by its supervisor (the kubelet, or
the local runtime's supervisor), so a crash alone is never acted on here. Reconcile acts on what a
supervisor cannot see: a driver that is alive but makes no progress (stuck), one that never gets past
starting, and a crash loop that outlasts the supervisor's own retries. Its restarts back off
exponentially and are limited by a budget per window; when the budget is spent the app is marked failed
and left alone, with the reason, until an operator acts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Literal

from highway.catalog.model import Health

Action = Literal["none", "restart", "wait", "fail"]


@dataclass(frozen=True)
class HealthPolicy:
    trigger_seconds: float  # the app's trigger interval
    stall_triggers: int = 12  # no batch for this many trigger intervals ...
    stall_floor_seconds: float = 120.0  # ... and at least this long: stuck
    startup_grace_seconds: float = 300.0  # after a (re)start nothing is expected for this long
    crash_restarts: int = 5  # supervisor restarts within the window that make a crash loop reconcile's
    restart_budget: int = 3  # restarts by reconcile within the window before the app is marked failed
    window_seconds: float = 1800.0
    backoff_base_seconds: float = 60.0  # wait after the n-th restart: base * 2**(n-1), capped
    backoff_max_seconds: float = 900.0

    @property
    def stall_seconds(self) -> float:
        return max(self.stall_triggers * self.trigger_seconds, self.stall_floor_seconds)


@dataclass(frozen=True)
class Observation:
    """What the runtime and the heartbeat say now (times are epoch seconds)."""

    state: str  # absent | stopped | starting | running | failing (the runtime's AppStatus.state)
    started_at: float | None = None  # when the current driver started
    last_progress_at: float | None = None  # the last heartbeat's time (a batch finished)
    supervisor_restarts: int = 0  # restarts the supervisor made (kubelet restart count), cumulative
    lag: int | None = None  # records behind the source's end
    reason: str | None = None  # the runtime's reason, e.g. CrashLoopBackOff: last exit Error (code 1)
    supervised: bool = True  # False: nothing restarts the driver by itself (a local supervisor that died)


@dataclass(frozen=True)
class History:
    """What reconcile remembers about an app between runs."""

    restarts: tuple[float, ...] = ()  # when reconcile restarted it
    supervisor: tuple[tuple[float, int], ...] = ()  # (time, supervisor restart count) samples
    lags: tuple[tuple[float, int], ...] = ()  # (time, lag) samples
    failed: str | None = None  # why it was marked failed (then reconcile leaves it alone)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    history: History  # the history to keep for the next run
    retry_after: float | None = None  # with "wait": seconds until a restart may happen
    lag_trend: str = "unknown"  # growing | steady | shrinking | unknown
    notes: tuple[str, ...] = field(default=())


def _recent(
    samples: tuple[tuple[float, int], ...], now: float, window: float
) -> tuple[tuple[float, int], ...]:
    return tuple((t, v) for t, v in samples if now - t <= window)


def lag_trend(lags: tuple[tuple[float, int], ...], points: int = 4) -> str:
    """Growing when each of the last ``points`` samples is above the one before; shrinking when below."""
    last = [v for _, v in lags[-points:]]
    if len(last) < points:
        return "unknown"
    steps = [b - a for a, b in pairwise(last)]
    if all(s > 0 for s in steps):
        return "growing"
    if all(s < 0 for s in steps):
        return "shrinking"
    return "steady"


def supervisor_restarts_in_window(history: History, obs: Observation, now: float, window: float) -> int:
    """Restarts the supervisor made within the window (its counter only grows for one driver)."""
    samples = _recent(history.supervisor, now, window)
    if not samples:
        return 0
    return max(0, obs.supervisor_restarts - min(v for _, v in samples))


def _restart(reason: str, history: History, policy: HealthPolicy, now: float, trend: str) -> Decision:
    """Restart, unless the backoff says wait or the budget is spent (then: failed)."""
    recent = tuple(t for t in history.restarts if now - t <= policy.window_seconds)
    if len(recent) >= policy.restart_budget:
        why = (
            f"{reason}; restart budget spent ({len(recent)} restarts in "
            f"{policy.window_seconds / 60:.0f} min): marked failed, an operator must act"
        )
        return Decision("fail", why, replace(history, restarts=recent, failed=why), lag_trend=trend)
    if recent:
        backoff = min(policy.backoff_base_seconds * 2 ** (len(recent) - 1), policy.backoff_max_seconds)
        wait = recent[-1] + backoff - now
        if wait > 0:
            why = f"{reason}; restart {len(recent) + 1} waits {wait:.0f} s more (backoff {backoff:.0f} s)"
            return Decision("wait", why, replace(history, restarts=recent), retry_after=wait, lag_trend=trend)
    return Decision("restart", reason, replace(history, restarts=(*recent, now)), lag_trend=trend)


def evaluate(obs: Observation, history: History, policy: HealthPolicy, now: float) -> Decision:
    """Decide for one app: none, restart, wait (backing off) or fail (budget spent)."""
    window = policy.window_seconds
    kept = replace(
        history,
        supervisor=(*_recent(history.supervisor, now, window), (now, obs.supervisor_restarts)),
        lags=_recent(history.lags, now, window) + (((now, obs.lag),) if obs.lag is not None else ()),
    )
    trend = lag_trend(kept.lags)
    if history.failed:
        return Decision("none", f"failed earlier: {history.failed}", kept, lag_trend=trend)
    if obs.state in ("absent", "stopped"):
        return Decision("none", f"{obs.state}: not reconcile's to start", kept, lag_trend=trend)
    if obs.state == "failing":
        return _failing(obs, kept, policy, now, trend)
    return _alive(obs, kept, policy, now, trend)


def _failing(obs: Observation, kept: History, policy: HealthPolicy, now: float, trend: str) -> Decision:
    """A crash is its supervisor's to restart; a crash loop past its retries is marked failed."""
    crashes = supervisor_restarts_in_window(kept, obs, now, policy.window_seconds)
    cause = obs.reason or "no reason given"
    if not obs.supervised:  # the owner of crashes is gone itself: reconcile is the only one left to act
        return _restart(f"unsupervised ({cause})", kept, policy, now, trend)
    if crashes < policy.crash_restarts:
        why = f"crashing ({cause}): its supervisor restarts it ({crashes} so far)"
        return Decision("none", why, kept, lag_trend=trend)
    why = f"crash loop: {crashes} supervisor restarts in {policy.window_seconds / 60:.0f} min ({cause})"
    return Decision("fail", why, replace(kept, failed=why), lag_trend=trend)


def _alive(obs: Observation, kept: History, policy: HealthPolicy, now: float, trend: str) -> Decision:
    """Starting or running: progress is what counts; a slow app that still finishes batches is left alone."""
    since_start = now - obs.started_at if obs.started_at is not None else None
    waiting = since_start is None or since_start < policy.startup_grace_seconds
    if obs.state == "starting":
        if waiting:
            return Decision("none", "starting", kept, lag_trend=trend)
        return _restart(f"still starting after {since_start:.0f} s", kept, policy, now, trend)
    last = obs.last_progress_at
    if last is not None and obs.started_at is not None and last < obs.started_at:
        last = None  # that heartbeat is from the previous driver
    if last is None:
        if waiting:
            return Decision("none", "running, first batch not finished yet", kept, lag_trend=trend)
        return _restart(f"no batch finished in {since_start:.0f} s since start", kept, policy, now, trend)
    idle = now - last
    if idle > policy.stall_seconds:
        why = f"stuck: no batch for {idle:.0f} s (limit {policy.stall_seconds:.0f} s)"
        return _restart(why, kept, policy, now, trend)
    notes = (LAG_NOTE,) if trend == "growing" else ()
    return Decision("none", f"healthy: last batch {idle:.0f} s ago", kept, lag_trend=trend, notes=notes)


LAG_NOTE = "lag growing: the app is slower than its input (more executors or partitions would help)"


def policy_for(trigger_seconds: float, health: Health) -> HealthPolicy:
    """The policy of one catalog app: its trigger interval and its ``health`` section."""
    return HealthPolicy(
        trigger_seconds=trigger_seconds,
        stall_triggers=health.stall_triggers,
        stall_floor_seconds=health.stall_floor_seconds,
        startup_grace_seconds=health.startup_grace_seconds,
        crash_restarts=health.crash_restarts,
        restart_budget=health.restart_budget,
        window_seconds=health.window_minutes * 60,
        backoff_base_seconds=health.backoff_base_seconds,
    )


def history_to_json(history: History) -> dict[str, Any]:
    return {
        "restarts": list(history.restarts),
        "supervisor": [list(s) for s in history.supervisor],
        "lags": [list(s) for s in history.lags],
        "failed": history.failed,
    }


def history_from_json(doc: Any) -> History:
    """A history read back; anything unreadable counts as no history (reconcile starts afresh)."""
    if not isinstance(doc, dict):
        return History()
    try:
        return History(
            restarts=tuple(float(t) for t in doc.get("restarts", ())),
            supervisor=tuple((float(t), int(v)) for t, v in doc.get("supervisor", ())),
            lags=tuple((float(t), int(v)) for t, v in doc.get("lags", ())),
            failed=str(doc["failed"]) if doc.get("failed") else None,
        )
    except (TypeError, ValueError):
        return History()
