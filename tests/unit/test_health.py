"""Health rules and the restart policy, over observations and a scripted clock (no services)."""

from __future__ import annotations

import pytest

from highway.core.health import Decision, HealthPolicy, History, Observation, evaluate, lag_trend

POLICY = HealthPolicy(trigger_seconds=5.0)  # stuck after max(12 x 5 s, 120 s) = 120 s without a batch
T0 = 1_000_000.0


def run(script: list[tuple[float, Observation]], policy: HealthPolicy = POLICY) -> list[Decision]:
    """Evaluate each (time offset, observation) in turn, carrying the history as reconcile would."""
    history, out = History(), []
    for offset, obs in script:
        decision = evaluate(obs, history, policy, T0 + offset)
        history = decision.history
        out.append(decision)
    return out


def running(progress_at: float, started: float = -600.0, lag: int | None = None) -> Observation:
    return Observation("running", started_at=T0 + started, last_progress_at=T0 + progress_at, lag=lag)


@pytest.mark.parametrize(
    ("obs", "action", "words"),
    [
        (Observation("absent"), "none", "absent"),
        (Observation("stopped"), "none", "stopped"),
        (Observation("starting", started_at=T0 - 30), "none", "starting"),
        (Observation("starting", started_at=T0 - 301), "restart", "still starting after 301 s"),
        (Observation("running", started_at=T0 - 60), "none", "first batch not finished"),
        (Observation("running", started_at=T0 - 400), "restart", "no batch finished in 400 s"),
        (running(progress_at=-10), "none", "healthy: last batch 10 s ago"),
        (running(progress_at=-119), "none", "healthy"),
        (running(progress_at=-121), "restart", "stuck: no batch for 121 s (limit 120 s)"),
        (Observation("failing", supervisor_restarts=2, reason="CrashLoopBackOff"), "none", "supervisor"),
    ],
)
def test_single_observation(obs: Observation, action: str, words: str) -> None:
    decision = evaluate(obs, History(), POLICY, T0)
    assert decision.action == action, decision
    assert words in decision.reason


def test_a_heartbeat_of_the_previous_driver_is_not_progress() -> None:
    obs = Observation("running", started_at=T0 - 500, last_progress_at=T0 - 501)
    assert evaluate(obs, History(), POLICY, T0).action == "restart"
    fresh = Observation("running", started_at=T0 - 100, last_progress_at=T0 - 501)
    assert evaluate(fresh, History(), POLICY, T0).action == "none"  # still in its start-up grace


def test_stall_limit_scales_with_the_trigger_interval() -> None:
    slow_trigger = HealthPolicy(trigger_seconds=60.0)  # 12 x 60 s = 720 s
    assert evaluate(running(progress_at=-600), History(), slow_trigger, T0).action == "none"
    assert evaluate(running(progress_at=-721), History(), slow_trigger, T0).action == "restart"


def test_slow_but_progressing_app_with_growing_lag_is_not_restarted() -> None:
    script = [(i * 60.0, running(progress_at=i * 60.0 - 50, lag=1000 * (i + 1))) for i in range(8)]
    decisions = run(script)
    assert [d.action for d in decisions] == ["none"] * 8
    assert decisions[-1].lag_trend == "growing"
    assert any("lag growing" in note for note in decisions[-1].notes)


def test_stuck_app_with_a_live_process_is_restarted_then_backs_off() -> None:
    stuck = [(i * 30.0, running(progress_at=-200)) for i in range(6)]  # never progresses again
    actions = [d.action for d in run(stuck)]
    # restart at 0 s; the next one waits for the 60 s backoff (30 s: wait), restarts at 60 s,
    # then waits 120 s (90, 120, 150: wait)
    assert actions == ["restart", "wait", "restart", "wait", "wait", "wait"]


def test_backoff_doubles_and_waits_say_how_long() -> None:
    history = History(restarts=(T0 - 10,))
    decision = evaluate(running(progress_at=-500), history, POLICY, T0)
    assert decision.action == "wait" and decision.retry_after == pytest.approx(50)
    assert "backoff 60 s" in decision.reason
    history = History(restarts=(T0 - 200, T0 - 100))
    decision = evaluate(running(progress_at=-500), history, POLICY, T0)
    assert decision.action == "wait" and "backoff 120 s" in decision.reason
    assert decision.retry_after == pytest.approx(20)


def test_budget_exhaustion_marks_failed_and_then_leaves_it_alone() -> None:
    history = History(restarts=(T0 - 1500, T0 - 1000, T0 - 500))  # 3 within the 30-minute window
    decision = evaluate(running(progress_at=-900), history, POLICY, T0)
    assert decision.action == "fail"
    assert "restart budget spent (3 restarts in 30 min)" in decision.reason
    assert decision.history.failed == decision.reason
    later = evaluate(running(progress_at=-5), decision.history, POLICY, T0 + 60)
    assert later.action == "none" and later.reason.startswith("failed earlier:")


def test_restarts_outside_the_window_do_not_count() -> None:
    history = History(restarts=(T0 - 4000, T0 - 3000, T0 - 2000))
    decision = evaluate(running(progress_at=-900), history, POLICY, T0)
    assert decision.action == "restart"
    assert decision.history.restarts == (T0,)


def test_flapping_app_spends_its_budget() -> None:
    """Stuck, restarted, makes a little progress, stuck again ... : restarts pile up in the window."""
    script: list[tuple[float, Observation]] = []
    for cycle in range(5):
        base = cycle * 400.0
        script.append((base, running(progress_at=base - 200, started=base - 600)))  # stuck
        script.append((base + 200, running(progress_at=base + 190, started=base + 1)))  # progressed once
    decisions = run(script)
    assert [d.action for d in decisions] == ["restart", "none"] * 3 + ["fail"] + ["none"] * 3
    assert decisions[-1].history.failed is not None
    assert all(d.reason.startswith("failed earlier: stuck") for d in decisions[7:])


def test_crash_loop_is_the_supervisors_until_it_outlasts_its_retries() -> None:
    crash = [
        (i * 60.0, Observation("failing", supervisor_restarts=i, reason="CrashLoopBackOff: Error (code 1)"))
        for i in range(7)
    ]
    decisions = run(crash)
    assert [d.action for d in decisions] == ["none"] * 5 + ["fail", "none"]
    assert (
        "crash loop: 5 supervisor restarts in 30 min (CrashLoopBackOff: Error (code 1))"
        in decisions[5].reason
    )


@pytest.mark.parametrize(
    ("lags", "trend"),
    [
        ([], "unknown"),
        ([1, 2, 3], "unknown"),
        ([1, 2, 3, 4], "growing"),
        ([5, 4, 3, 2], "shrinking"),
        ([1, 3, 2, 4], "steady"),
        ([9, 1, 2, 3, 4], "growing"),
    ],
)
def test_lag_trend(lags: list[int], trend: str) -> None:
    assert lag_trend(tuple((float(i), v) for i, v in enumerate(lags))) == trend


def test_an_unsupervised_crash_is_reconciles_to_restart_with_backoff() -> None:
    """A local supervisor that died leaves nobody to restart the driver: reconcile does, within its budget."""
    gone = Observation("failing", reason="supervisor not running (pid 9 gone)", supervised=False)
    decisions = run([(0.0, gone), (30.0, gone), (61.0, gone)])
    assert [d.action for d in decisions] == ["restart", "wait", "restart"]
    assert decisions[0].reason == "unsupervised (supervisor not running (pid 9 gone))"
