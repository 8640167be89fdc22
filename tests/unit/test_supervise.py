"""The local supervisor's decisions (pure): restart backoff, lease names, and status from its record."""

from __future__ import annotations

from typing import Any

import pytest

from highway.core.k8s.status import STATES
from highway.core.supervise import (
    Exit,
    SupervisorState,
    backoff,
    consecutive,
    interpret,
    lease_name,
)

APP = "bronze_shop_events"
NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("crashes", "seconds"),
    [(0, 0), (1, 0), (2, 1), (3, 2), (4, 4), (5, 8), (7, 32), (8, 60), (9, 60), (10_000, 60)],
)
def test_backoff_restarts_at_once_then_doubles_up_to_a_minute(crashes: int, seconds: float) -> None:
    assert backoff(crashes) == seconds


@pytest.mark.parametrize(
    ("previous", "ran_for", "count"), [(0, 0.1, 1), (1, 0.1, 2), (5, 59.9, 6), (5, 60.0, 1), (9, 3600, 1)]
)
def test_a_driver_that_ran_a_minute_resets_the_crash_count(previous: int, ran_for: float, count: int) -> None:
    assert consecutive(previous, ran_for) == count


def test_lease_names_are_file_names_distinct_per_checkpoint() -> None:
    names = {lease_name(cp) for cp in ("t_a/_checkpoints/x", "t_a_/checkpoints/x", "t a/_checkpoints/x", "")}
    assert len(names) == 4
    for name in names:
        assert "/" not in name and name.endswith(".lock") and not name.startswith(".")
    assert lease_name("a/b") == lease_name("a/b")
    assert lease_name("bronze/_checkpoints/x").startswith("bronze__checkpoints_x-")


def test_exit_describes_code_or_signal() -> None:
    assert Exit.from_returncode(1, NOW).describe() == "exit code 1"
    assert Exit.from_returncode(-9, NOW).describe() == "exit by signal SIGKILL"
    assert Exit(NOW, signal=200).describe() == "exit by signal 200"


def test_state_record_round_trips_and_reads_leniently() -> None:
    state = SupervisorState(
        APP, "cp", restarts=2, crashes=1, last_exit=Exit(NOW, signal=9), supervisor_pid=10, driver_pid=11
    )
    data = state.to_dict()
    assert data["last_exit"] == {"at": NOW, "signal": 9}
    assert SupervisorState.from_dict(data) == state
    assert SupervisorState.from_dict(
        {"app": APP, "future_key": 1, "last_exit": {"code": 1}}
    ) == SupervisorState(APP)


def rec(**changes: Any) -> SupervisorState:
    base: dict[str, Any] = {
        "app": APP,
        "supervisor_pid": 100,
        "driver_pid": 200,
        "phase": "running",
        "restarts": 1,
        "started_at": NOW - 30,
        "image": "img:1",
    }
    return SupervisorState(**{**base, **changes})


CRASHED = Exit(NOW - 1, code=1)
# (id, record, supervisor alive, driver alive, expected fields)
CASES: list[tuple[str, SupervisorState | None, bool, bool, dict[str, Any]]] = [
    ("deployed, never started", None, False, False, {"state": "stopped", "pod": None}),
    (
        "running",
        rec(),
        True,
        True,
        {"state": "running", "ready": True, "pod": "pid 200", "restarts": 1, "started_at": NOW - 30},
    ),
    ("running, image reported", rec(), True, True, {"image": "img:1", "desired_replicas": 1}),
    (
        "stopped",
        rec(desired="stopped", phase="stopped", driver_pid=None),
        False,
        False,
        {"state": "stopped", "reason": None, "pod": None, "desired_replicas": 0},
    ),
    (
        "stopping",
        rec(desired="stopped"),
        True,
        True,
        {"state": "stopped", "reason": "Terminating", "pod": "pid 200"},
    ),
    (
        "supervisor killed, driver orphaned",
        rec(),
        False,
        True,
        {
            "state": "failing",
            "reason": "supervisor not running (pid 100 gone)",
            "message": "driver pid 200 still holds the lease",
            "pod": "pid 200",
            "supervised": False,
        },
    ),
    (
        "supervisor and driver gone",
        rec(),
        False,
        False,
        {
            "state": "failing",
            "reason": "supervisor not running (pid 100 gone)",
            "message": None,
            "pod": None,
            "supervised": False,
        },
    ),
    (
        "crash loop",
        rec(
            phase="backoff",
            crashes=4,
            restarts=4,
            last_exit=CRASHED,
            next_start_at=NOW + 7.2,
            driver_pid=None,
        ),
        True,
        False,
        {"state": "failing", "reason": "CrashLoop: last exit code 1, next start in 8 s", "restarts": 4},
    ),
    (
        "crash loop, start overdue",
        rec(phase="backoff", crashes=3, last_exit=CRASHED, next_start_at=NOW - 1),
        True,
        False,
        {"state": "failing", "reason": "CrashLoop: last exit code 1, next start in 0 s"},
    ),
    (
        "second crash: backing off, not failing yet",
        rec(phase="backoff", crashes=2, last_exit=Exit(NOW, signal=9), next_start_at=NOW + 1),
        True,
        False,
        {"state": "starting", "reason": "BackOff: last exit by signal SIGKILL, next start in 1 s"},
    ),
    (
        "supervisor up, driver not yet",
        rec(phase="starting", driver_pid=None),
        True,
        False,
        {"state": "starting", "reason": "driver not started yet", "ready": False, "pod": None},
    ),
    (
        "a stale driver pid is not a driver",
        rec(),
        True,
        False,
        {"state": "starting", "pod": None, "started_at": None},
    ),
]


@pytest.mark.parametrize(
    ("record", "supervisor", "driver", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_interpret(
    record: SupervisorState | None, supervisor: bool, driver: bool, expected: dict[str, Any]
) -> None:
    status = interpret(APP, record, supervisor, driver, NOW)
    assert status.app == APP
    assert status.state in STATES
    for key, value in expected.items():
        assert getattr(status, key) == value, f"{key}: {status}"
    assert "\n" not in status.line()
