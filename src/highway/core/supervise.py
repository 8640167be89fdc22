"""Decisions of the local runtime's supervisor (pure): when to restart a crashed driver, what its state means.

The supervisor (``highway.runtime.supervisor``) does what the kubelet does for a pod: it restarts a driver
that died without being asked to, at once the first time, then after 1 s, 2 s, 4 s ... at most 60 s; a
driver that ran 60 s resets the count. It records what it does in a ``SupervisorState`` (``state.json``);
``interpret`` turns that record and two liveness checks into the same ``AppStatus`` Kubernetes gives.
"""

from __future__ import annotations

import hashlib
import math
import re
import signal
from dataclasses import asdict, dataclass
from typing import Any, Literal

from highway.core.k8s.status import AppStatus

BACKOFF_FIRST = 1.0  # seconds before the second restart in a row
BACKOFF_CAP = 60.0
STABLE_AFTER = 60.0  # a driver that ran this long was healthy: its crash starts a new count
FAILING_AFTER = 3  # consecutive crashes after which the app is reported failing (CrashLoop)

Desired = Literal["running", "stopped"]
Phase = Literal["starting", "running", "backoff", "stopped"]


def backoff(crashes: int) -> float:
    """Seconds to wait before restarting after the ``crashes``-th consecutive crash (0 = at once)."""
    if crashes <= 1:
        return 0.0
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** min(crashes - 2, 32))


def consecutive(previous: int, ran_for: float) -> int:
    """The consecutive-crash count after a driver that ran ``ran_for`` seconds died."""
    return 1 if ran_for >= STABLE_AFTER else previous + 1


def lease_name(checkpoint: str) -> str:
    """The lock file name for a checkpoint path: readable, and distinct for distinct paths."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", checkpoint).strip("._")[:80] or "checkpoint"
    digest = hashlib.sha256(checkpoint.encode()).hexdigest()[:10]
    return f"{readable}-{digest}.lock"


@dataclass(frozen=True)
class Exit:
    """How a driver ended: an exit ``code`` or the ``signal`` that killed it, at epoch ``at``."""

    at: float
    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_returncode(cls, returncode: int, at: float) -> Exit:
        """From ``Popen.returncode`` (negative: killed by that signal)."""
        return cls(at, signal=-returncode) if returncode < 0 else cls(at, code=returncode)

    def describe(self) -> str:
        """``exit code 1`` or ``exit by signal SIGKILL``."""
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"exit by signal {name}"
        return f"exit code {self.code}"


@dataclass(frozen=True)
class SupervisorState:
    """What ``state.json`` holds (epoch seconds; pids of the supervisor and its current driver)."""

    app: str
    checkpoint: str = ""
    desired: Desired = "running"
    phase: Phase = "starting"
    restarts: int = 0  # crashed drivers restarted, over this supervisor's life
    crashes: int = 0  # consecutive crashes (for the backoff)
    attempts: int = 0  # drivers started by this supervisor
    started_at: float | None = None  # of the current driver
    last_exit: Exit | None = None
    next_start_at: float | None = None  # while in backoff
    backoff_seconds: float = 0.0
    supervisor_pid: int | None = None
    driver_pid: int | None = None
    image: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.last_exit is not None:
            data["last_exit"] = {k: v for k, v in asdict(self.last_exit).items() if v is not None}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupervisorState:
        """Read a record leniently: unknown keys are ignored, a missing key takes its default."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        last = values.get("last_exit")
        values["last_exit"] = (
            Exit(float(last["at"]), last.get("code"), last.get("signal"))
            if isinstance(last, dict) and "at" in last
            else None
        )
        return cls(**values)


def interpret(
    app: str, record: SupervisorState | None, supervisor_alive: bool, driver_alive: bool, now: float
) -> AppStatus:
    """The app's status from its supervisor's record and whether its supervisor and driver live.

    ``record`` None means deployed but never started (the caller answers ``absent`` when not deployed).
    """
    if record is None:
        return AppStatus(app, "stopped")
    common: dict[str, Any] = {
        "app": app,
        "restarts": record.restarts,
        "image": record.image,
        "desired_replicas": 1 if record.desired == "running" else 0,
    }
    if driver_alive and record.driver_pid is not None:
        common.update(pod=f"pid {record.driver_pid}", started_at=record.started_at)
    if record.desired == "stopped":
        stopping = supervisor_alive or driver_alive
        return AppStatus(state="stopped", reason="Terminating" if stopping else None, **common)
    if not supervisor_alive:
        orphan = f"driver {common['pod']} still holds the lease" if "pod" in common else None
        reason = f"supervisor not running (pid {record.supervisor_pid} gone)"
        return AppStatus(state="failing", reason=reason, message=orphan, supervised=False, **common)
    if driver_alive:
        return AppStatus(state="running", ready=True, phase="Running", **common)
    if record.phase == "backoff" and record.last_exit is not None:
        wait = max(0, math.ceil((record.next_start_at or now) - now))
        reason = f"last {record.last_exit.describe()}, next start in {wait} s"
        if record.crashes >= FAILING_AFTER:
            return AppStatus(state="failing", reason=f"CrashLoop: {reason}", **common)
        return AppStatus(state="starting", reason=f"BackOff: {reason}", **common)
    return AppStatus(state="starting", reason="driver not started yet", **common)
