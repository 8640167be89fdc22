"""retry_transient: exponential backoff through an outage, on a fake clock with recorded sleeps."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from highway.core.retry import backoff_delays, retry_transient
from highway.errors import ServiceUnavailable, TerminalError, TransientError


class FakeTime:
    """A clock that only moves when slept on (or when an attempt takes ``attempt_seconds``)."""

    def __init__(self, attempt_seconds: float = 0.0) -> None:
        self.now = 0.0
        self.attempt_seconds = attempt_seconds
        self.sleeps: list[float] = []
        self.notes: list[str] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def notify(self, message: str) -> None:
        self.notes.append(message)


class Flaky:
    """Fails with ``errors`` in order, then returns ``result``; counts its calls."""

    def __init__(self, time: FakeTime, errors: list[Exception], result: str = "done") -> None:
        self.time = time
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        self.time.now += self.time.attempt_seconds
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def run(
    time: FakeTime, action: Callable[[], str], deadline: float = 1000.0, **kwargs: float
) -> tuple[str, int]:
    return retry_transient(action, "pg write", deadline, time.clock, time.sleep, time.notify, **kwargs)


def test_a_first_success_takes_no_retry_and_no_sleep() -> None:
    time = FakeTime()
    action = Flaky(time, [])
    assert run(time, action) == ("done", 0)
    assert action.calls == 1
    assert time.sleeps == []
    assert time.notes == []


@pytest.mark.parametrize(
    ("failures", "sleeps"),
    [
        (1, [1.0]),
        (3, [1.0, 2.0, 4.0]),
        (4, [1.0, 2.0, 4.0, 8.0]),
        (7, [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]),
    ],
)
def test_success_after_transient_errors_with_backoff_capped_at_the_ceiling(
    failures: int, sleeps: list[float]
) -> None:
    time = FakeTime()
    action = Flaky(time, [TransientError("down")] * failures)
    assert run(time, action) == ("done", failures)
    assert action.calls == failures + 1
    assert time.sleeps == sleeps
    assert len(time.notes) == failures


def test_subclasses_of_transient_error_are_retried() -> None:
    time = FakeTime()
    action = Flaky(time, [ServiceUnavailable("no answer"), TransientError("throttled")])
    assert run(time, action) == ("done", 2)
    assert time.sleeps == [1.0, 2.0]


def test_initial_and_ceiling_are_configurable() -> None:
    time = FakeTime()
    action = Flaky(time, [TransientError("down")] * 5)
    assert run(time, action, initial=0.5, ceiling=3.0) == ("done", 5)
    assert time.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("initial", "ceiling", "delays"),
    [
        (1.0, 15.0, [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]),
        (0.25, 1.0, [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]),
        (2.0, 2.0, [2.0] * 6),
    ],
)
def test_backoff_delays(initial: float, ceiling: float, delays: list[float]) -> None:
    delay = backoff_delays(initial, ceiling)
    assert [delay(n) for n in range(1, 7)] == delays


@pytest.mark.parametrize("error", [TerminalError("bad mapping"), ValueError("bug")])
def test_other_errors_are_not_retried(error: Exception) -> None:
    time = FakeTime()
    action = Flaky(time, [error])
    with pytest.raises(type(error)) as raised:
        run(time, action)
    assert raised.value is error
    assert action.calls == 1
    assert time.sleeps == []
    assert time.notes == []


def test_a_terminal_error_after_transient_ones_goes_straight_up() -> None:
    time = FakeTime()
    terminal = TerminalError("refused")
    action = Flaky(time, [TransientError("down"), TransientError("down"), terminal, TransientError("x")])
    with pytest.raises(TerminalError) as raised:
        run(time, action)
    assert raised.value is terminal
    assert action.calls == 3
    assert time.sleeps == [1.0, 2.0]


def test_the_deadline_raises_a_transient_error_naming_what_and_the_attempts() -> None:
    time = FakeTime()
    action = Flaky(time, [TransientError("connection refused")] * 100)
    with pytest.raises(TransientError) as raised:
        run(time, action, deadline=10.0)
    assert str(raised.value) == "pg write: still failing after 10 s and 5 attempt(s): connection refused"
    assert action.calls == 5
    assert time.sleeps == [1.0, 2.0, 4.0, 3.0]  # the last pause is cut to what is left of 10 s
    assert sum(time.sleeps) == 10.0


def test_the_last_pause_is_shortened_to_the_remaining_budget_when_attempts_take_time() -> None:
    time = FakeTime(attempt_seconds=2.0)
    action = Flaky(time, [TransientError("timeout")] * 100)
    with pytest.raises(
        TransientError, match=r"^pg write: still failing after 12 s and 4 attempt\(s\): timeout$"
    ):
        run(time, action, deadline=10.0)
    # failures at t=2, 5, 9: pauses 1, 2, then min(4, 10 - 9) = 1; the 4th attempt fails at t=12
    assert time.sleeps == [1.0, 2.0, 1.0]
    assert action.calls == 4


def test_a_zero_deadline_gives_up_after_the_first_attempt() -> None:
    time = FakeTime()
    action = Flaky(time, [TransientError("down")] * 3)
    with pytest.raises(TransientError, match=r"after 0 s and 1 attempt\(s\): down"):
        run(time, action, deadline=0.0)
    assert action.calls == 1
    assert time.sleeps == []
    assert time.notes == []


def test_a_success_just_before_the_deadline_is_returned() -> None:
    time = FakeTime()
    action = Flaky(time, [TransientError("down")] * 4)
    assert run(time, action, deadline=10.0) == ("done", 4)
    assert time.sleeps == [1.0, 2.0, 4.0, 3.0]


def test_notify_says_what_failed_the_next_pause_and_the_budget_used() -> None:
    time = FakeTime()
    action = Flaky(time, [TransientError("down")] * 100)
    with pytest.raises(TransientError):
        run(time, action, deadline=10.0)
    assert time.notes == [
        "pg write: down; retry 1 in 1.0 s (0 s of 10 s)",
        "pg write: down; retry 2 in 2.0 s (1 s of 10 s)",
        "pg write: down; retry 3 in 4.0 s (3 s of 10 s)",
        "pg write: down; retry 4 in 3.0 s (7 s of 10 s)",
    ]


def test_the_clock_starts_at_the_first_call_not_at_zero() -> None:
    time = FakeTime()
    time.now = 5_000.0
    action = Flaky(time, [TransientError("down")] * 100)
    with pytest.raises(TransientError, match=r"after 10 s and 5 attempt\(s\)"):
        run(time, action, deadline=10.0)
    assert time.sleeps == [1.0, 2.0, 4.0, 3.0]
