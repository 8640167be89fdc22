"""The local runtime with real processes: a supervisor per app keeps its driver running, one per checkpoint.

The mechanics use a small Python driver written by the test (it notes start/stop/ticks in a file, and can
crash at once or ignore SIGTERM); one test runs the real bronze app on the real stack through a SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

import hwtest
from highway.catalog import AppSpec, load
from highway.core.supervise import lease_name
from highway.runtime import AppRuntime, RuntimeTerminal
from highway.runtime.local import LocalRuntime
from highway.stack.process import is_alive, wait_for

DRIVER = """
import os, signal, sys, time
events = sys.argv[1]
def note(what):
    with open(events, "a") as f:
        f.write(f"{what} {os.getpid()}\\n")
def term(*_):
    note("stop")
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("IGNORE_TERM") == "1" else term)
print(f"driver {os.getpid()} catalog {os.environ['HIGHWAY_CATALOG']}", flush=True)
if os.environ.get("CRASH") == "1":
    sys.exit(1)
note("start")
while True:
    note("tick")
    time.sleep(0.2)
"""

MakeRuntime = Callable[..., LocalRuntime]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_rt(tmp_path: Path, home: Path) -> Iterator[MakeRuntime]:
    """LocalRuntimes over one home running the test driver; every app is stopped afterwards."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    command = [sys.executable, str(script), str(tmp_path / "{app}.events")]

    def make(stop_grace: float = 5, **kwargs: Any) -> LocalRuntime:
        return LocalRuntime(home, command=command, stop_grace=stop_grace, poll=0.1, **kwargs)

    yield make
    cleanup = LocalRuntime(home, stop_grace=2)
    for folder in sorted((home / "apps").glob("*")):
        cleanup.stop(folder.name, timeout=60)


def variant(tmp_path: Path, suffix: str, checkpoint: str | None = None) -> tuple[AppSpec, str]:
    """A catalog entry of its own (optionally sharing ``checkpoint``) and its text."""
    spec = hwtest.bronze_variant(tmp_path / "catalog", suffix)
    path = tmp_path / "catalog" / f"{spec.name}.yaml"
    if checkpoint is not None:
        data = yaml.safe_load(path.read_text())
        data["checkpoint"] = checkpoint
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        spec = load(path)
    return spec, path.read_text()


def events(tmp_path: Path, app: str) -> list[str]:
    path = tmp_path / f"{app}.events"
    return (
        [line for line in path.read_text().splitlines() if not line.startswith("tick")]
        if path.exists()
        else []
    )


def until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    assert wait_for(condition, timeout, 0.1), f"timed out waiting for {what}"


def state(home: Path, app: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((home / "apps" / app / "state.json").read_text())
    return data


def supervisor_log(home: Path, app: str) -> str:
    return (home / "apps" / app / "supervisor.log").read_text()


def test_deploy_runs_a_supervised_driver_and_redeploys_only_a_changed_entry(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    rt = make_rt()
    assert isinstance(rt, AppRuntime)
    spec, text = variant(tmp_path, "dep")
    status = rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    assert (status.state, status.pod, status.ready, status.restarts) == ("running", f"pid {pid}", True, 0)
    assert status.image == spec.image and status.started_at is not None
    assert rt.spec_text(spec.name) == text
    until(lambda: f"start {pid}" in events(tmp_path, spec.name), "the driver to start")
    log = rt.logs(spec.name)
    assert "highway supervisor: driver start 1 (0 restarts)" in log
    assert f"driver {pid} catalog {home / 'apps' / spec.name / 'catalog'}" in log
    record = state(home, spec.name)
    assert (record["desired"], record["phase"], record["driver_pid"]) == ("running", "running", pid)
    supervisor = record["supervisor_pid"]
    assert os.getsid(supervisor) not in (os.getsid(0), os.getpid())  # detached: it outlives its caller

    again = rt.deploy(spec, text)  # the same entry: nothing restarts
    assert (again.state, again.pod) == ("running", f"pid {pid}")
    assert state(home, spec.name)["supervisor_pid"] == supervisor

    changed = rt.deploy(spec, text + "# changed\n")
    new = rt.driver_pid(spec.name)
    assert new not in (None, pid) and changed.pod == f"pid {new}"
    assert not is_alive(pid)
    until(lambda: f"start {new}" in events(tmp_path, spec.name), "the new driver to start")
    seen = events(tmp_path, spec.name)
    assert seen.index(f"stop {pid}") < seen.index(f"start {new}"), seen  # the old one ended first
    assert rt.spec_text(spec.name) == text + "# changed\n"

    reimaged = rt.deploy(spec, text + "# changed\n", image="highway-spark:9.9")  # a new image restarts too
    assert reimaged.image == "highway-spark:9.9" and reimaged.pod != f"pid {new}"


def test_a_killed_driver_is_restarted_by_its_supervisor(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    rt = make_rt()
    spec, text = variant(tmp_path, "kill")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    until(lambda: rt.driver_pid(spec.name) not in (None, pid), "the supervisor to start a new driver")
    status = rt.status(spec.name)
    assert (status.state, status.restarts) == ("running", 1), status
    assert f"driver pid {pid} ended (exit by signal SIGKILL)" in supervisor_log(home, spec.name)
    assert "1 crash in a row; restarting at once" in supervisor_log(home, spec.name)
    assert "driver start 2 (1 restarts)" in rt.logs(spec.name)


def test_a_crashing_driver_backs_off_longer_each_time_and_is_reported_failing(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    rt = make_rt(env={"CRASH": "1"})
    spec, text = variant(tmp_path, "crash")
    rt.deploy(spec, text)
    until(lambda: rt.status(spec.name).state == "failing", "the app to be reported failing")
    status = rt.status(spec.name)
    assert status.reason is not None and status.reason.startswith(
        "CrashLoop: last exit code 1, next start in"
    )
    assert status.restarts >= 3 and status.pod is None

    def delays() -> list[str]:
        lines = supervisor_log(home, spec.name).splitlines()
        return [line.split("; restarting ")[1] for line in lines if "; restarting " in line]

    until(lambda: len(delays()) >= 4, "four crashes")
    assert delays()[:4] == ["at once", "in 1 s", "in 2 s", "in 4 s"]
    assert rt.stop(spec.name, timeout=30).state == "stopped"  # a stop during the backoff


def test_one_driver_per_checkpoint(tmp_path: Path, home: Path, make_rt: MakeRuntime) -> None:
    rt = make_rt()
    spec, text = variant(tmp_path, "own")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    supervisor = state(home, spec.name)["supervisor_pid"]

    other, other_text = variant(tmp_path, "other", checkpoint=spec.checkpoint)
    with pytest.raises(RuntimeTerminal) as refused:
        rt.deploy(other, other_text)
    message = str(refused.value)
    assert "\n" not in message
    assert f"checkpoint {spec.checkpoint} is held by pid {supervisor}" in message
    assert f"supervisor of app {spec.name}" in message
    assert rt.status(other.name).state == "stopped" and rt.driver_pid(other.name) is None
    assert rt.driver_pid(spec.name) == pid

    # the same app's supervisor started a second time, by hand
    folder = home / "apps" / spec.name
    lease = home / "leases" / lease_name(spec.checkpoint)
    argv = ["--dir", str(folder), "--app", spec.name, "--checkpoint", spec.checkpoint, "--lease", str(lease)]
    second = subprocess.run(
        [sys.executable, "-m", "highway.runtime.supervisor", *argv, "--", "true"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert second.returncode == 3
    assert second.stderr.strip().splitlines() == [
        f"error: app {spec.name}: checkpoint {spec.checkpoint} is held by pid {supervisor} "
        f"(the supervisor of app {spec.name}); one driver per checkpoint: stop that one first"
    ]
    assert rt.status(spec.name).pod == f"pid {pid}"


def test_a_killed_supervisor_leaves_an_orphan_holding_the_lease_until_stop(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    rt = make_rt()
    spec, text = variant(tmp_path, "orphan")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    supervisor = state(home, spec.name)["supervisor_pid"]
    os.kill(supervisor, signal.SIGKILL)
    until(lambda: rt.status(spec.name).state == "failing", "the app to be reported failing")
    status = rt.status(spec.name)
    assert status.reason == f"supervisor not running (pid {supervisor} gone)"
    assert status.pod == f"pid {pid}" and rt.driver_pid(spec.name) == pid

    with pytest.raises(RuntimeTerminal) as refused:
        rt.start(spec.name)
    assert f"checkpoint {spec.checkpoint} is held by pid {pid}" in str(refused.value)
    assert rt.driver_pid(spec.name) == pid

    stopped = rt.stop(spec.name, timeout=30)
    assert (stopped.state, stopped.reason, stopped.pod) == ("stopped", None, None)
    assert not is_alive(pid) and f"stop {pid}" in events(tmp_path, spec.name)  # SIGTERM, graceful
    assert rt.start(spec.name).state == "running"  # the lease is free again
    assert rt.driver_pid(spec.name) not in (None, pid)


def test_a_driver_pid_reused_by_another_process_is_never_signalled(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    """What a reboot can leave: driver.pid naming a pid that now belongs to an unrelated session leader.
    `stop` (and so `stack down`) must leave that process alone."""
    rt = make_rt()
    spec, text = variant(tmp_path, "reused")
    rt.deploy(spec, text)
    pid_file = home / "apps" / spec.name / "driver.pid"
    pid, recorded = pid_file.read_text().splitlines()  # the supervisor's: the pid, boot id + start time
    assert rt.driver_pid(spec.name) == int(pid)
    assert recorded.split()[0] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    rt.stop(spec.name, timeout=30)
    stranger = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        pid_file.write_text(f"{stranger.pid}\n{recorded}\n")
        assert rt.driver_pid(spec.name) is None
        assert rt.stop(spec.name, timeout=30).state == "stopped"
        assert stranger.poll() is None and is_alive(stranger.pid)  # neither signalled nor killed
        pid_file.write_text(f"{stranger.pid}\n")  # a pid file without an identity: not ours either
        assert rt.stop(spec.name, timeout=30).state == "stopped" and stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_kills_a_driver_that_ignores_sigterm_after_the_grace(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    rt = make_rt(stop_grace=2, env={"IGNORE_TERM": "1"})
    spec, text = variant(tmp_path, "stubborn")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    status = rt.stop(spec.name, timeout=60)
    assert (status.state, status.pod) == ("stopped", None)
    assert not is_alive(pid) and f"stop {pid}" not in events(tmp_path, spec.name)
    log = supervisor_log(home, spec.name)
    assert "did not stop within 2 s: SIGKILL to its process group" in log
    assert f"driver pid {pid} ended (exit by signal SIGKILL)" in log
    assert state(home, spec.name)["phase"] == "stopped"


def test_stop_wakes_a_frozen_driver_so_it_stops_gracefully(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    """A SIGSTOPped driver (what reconcile restarts as stuck) gets SIGCONT after SIGTERM: it stops by its own
    handler well inside a grace long enough that a SIGKILL would show."""
    rt = make_rt(stop_grace=60)
    spec, text = variant(tmp_path, "frozen")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    until(lambda: f"start {pid}" in events(tmp_path, spec.name), "the driver to start")
    os.killpg(pid, signal.SIGSTOP)
    status = rt.stop(spec.name, timeout=60)
    assert (status.state, status.pod) == ("stopped", None)
    assert f"stop {pid}" in events(tmp_path, spec.name)  # its SIGTERM handler ran
    assert "SIGKILL to its process group" not in supervisor_log(home, spec.name)


def test_restart_stop_and_start_are_idempotent_and_ordered(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    rt = make_rt()
    spec, text = variant(tmp_path, "rst")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    assert rt.start(spec.name).pod == f"pid {pid}"  # already running: nothing happens

    restarted = rt.restart(spec.name, timeout=30)
    new = rt.driver_pid(spec.name)
    assert restarted.state == "running" and new not in (None, pid) and not is_alive(pid)
    until(lambda: f"start {new}" in events(tmp_path, spec.name), "the new driver to start")
    seen = events(tmp_path, spec.name)
    assert seen.index(f"stop {pid}") < seen.index(f"start {new}"), seen

    assert rt.stop(spec.name, timeout=30).state == "stopped"
    assert rt.stop(spec.name, timeout=30).state == "stopped"
    assert rt.driver_pid(spec.name) is None
    assert rt.restart(spec.name, timeout=30).state == "running"  # a stopped app restarts too
    assert rt.start(spec.name).state == "running"


def test_logs_tail_the_driver_log(tmp_path: Path, make_rt: MakeRuntime) -> None:
    rt = make_rt()
    spec, text = variant(tmp_path, "logs")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    until(lambda: f"driver {pid} catalog" in rt.logs(spec.name), "the driver's first line")
    last = rt.logs(spec.name, tail=1)
    assert last.startswith(f"driver {pid} catalog") and last.count("\n") == 1
    assert rt.logs(spec.name, tail=2).startswith("==== ")
    with pytest.raises(RuntimeTerminal, match="tail must be 1 or more lines, not 0"):
        rt.logs(spec.name, tail=0)


def test_unknown_and_invalid_apps(make_rt: MakeRuntime) -> None:
    rt = make_rt()
    assert rt.status("nope").state == "absent"
    assert rt.stop("nope").state == "absent"
    assert rt.driver_pid("nope") is None and rt.spec_text("nope") is None
    with pytest.raises(RuntimeTerminal) as refused:
        rt.start("nope")
    assert str(refused.value) == "start nope: app nope is not deployed on the local runtime (deploy it first)"
    for call in (lambda: rt.restart("nope"), lambda: rt.logs("nope")):
        with pytest.raises(RuntimeTerminal, match="app nope is not deployed on the local runtime"):
            call()
    with pytest.raises(RuntimeTerminal, match="key 'name' has value 'Bad-Name'; allowed: a catalog app name"):
        rt.status("Bad-Name")
    with pytest.raises(RuntimeTerminal, match=re.escape("key 'name' has value '../x'")):
        rt.stop("../x")


def test_deploy_refuses_a_catalog_text_that_is_not_the_apps_entry(
    tmp_path: Path, make_rt: MakeRuntime
) -> None:
    rt = make_rt()
    spec, text = variant(tmp_path, "mine")
    _other, other_text = variant(tmp_path, "theirs")
    with pytest.raises(RuntimeTerminal) as refused:
        rt.deploy(spec, other_text)
    assert str(refused.value) == (
        f"deploy {spec.name}: the catalog text is the entry of 'bronze_shop_events_theirs', "
        f"not of {spec.name!r}"
    )
    with pytest.raises(RuntimeTerminal, match=f"deploy {spec.name}: .*key 'kind'") as invalid:
        rt.deploy(spec, text.replace("kind: bronze", "kind: platinum"))
    assert "\n" not in str(invalid.value)
    with pytest.raises(RuntimeTerminal, match=f"deploy {spec.name}: "):
        rt.deploy(spec, "name: [unclosed")
    assert rt.spec_text(spec.name) is None and rt.status(spec.name).state == "absent"  # nothing written


def test_concurrent_starts_leave_one_supervisor(tmp_path: Path, home: Path, make_rt: MakeRuntime) -> None:
    rt = make_rt()
    spec, text = variant(tmp_path, "race")
    rt.deploy(spec, text)
    rt.stop(spec.name, timeout=30)
    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda _: rt.start(spec.name), range(3)))
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    assert {(s.state, s.pod) for s in statuses} == {("running", f"pid {pid}")}
    supervisors = [line for line in supervisor_log(home, spec.name).splitlines() if "holds the lease" in line]
    assert len(supervisors) == 2  # the deploy's and one of the three starts'


@pytest.mark.integration
@pytest.mark.spark
@pytest.mark.fault
def test_the_real_bronze_app_survives_a_sigkill_exactly_once(
    tmp_path: Path, stack_home: Path, stack: Any, conn: Any, spark: Any
) -> None:
    catalog = tmp_path / "catalog"
    spec = hwtest.bronze_variant(catalog, "local_rt", trigger_seconds=2, max_offsets_per_trigger=400)
    text = (catalog / f"{spec.name}.yaml").read_text()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    hwtest.produce(catalog, spec, 3000, first, "--bad-ratio", "0.02")
    rt = LocalRuntime(stack_home, env={"PYTHONUNBUFFERED": "1"})
    try:
        assert rt.deploy(spec, text).state == "running"
        bronze = conn.lake_path(spec.sink.table)
        assert hwtest.wait_for_rows(spark, bronze, 1, timeout=600) > 0, rt.logs(spec.name)
        pid = rt.driver_pid(spec.name)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # the driver and its JVM, mid-stream
        until(lambda: rt.driver_pid(spec.name) not in (None, pid), "the supervisor to restart the driver", 60)
        assert rt.status(spec.name).restarts == 1
        hwtest.produce(catalog, spec, 1000, second, "--bad-ratio", "0.02", "--seed", "11")
        records = hwtest.read_records(first, second)
        valid = sum(1 for r in records if r["valid"])
        rows = hwtest.wait_for_rows(spark, bronze, valid, timeout=600)
        assert rows >= valid, rt.logs(spec.name, 60)
    finally:
        stopped = rt.stop(spec.name, timeout=300)
    assert stopped.state == "stopped" and rt.driver_pid(spec.name) is None
    hwtest.audit(spark, conn, spec, records).assert_exactly_once()
    assert "stopped on request" in rt.logs(spec.name, 400)


def test_stack_down_stops_the_local_runtimes_apps_first(
    tmp_path: Path, home: Path, make_rt: MakeRuntime
) -> None:
    from highway.stack import Stack

    rt = make_rt()
    spec, text = variant(tmp_path, "downed")
    rt.deploy(spec, text)
    pid = rt.driver_pid(spec.name)
    assert pid is not None
    Stack(home, 29500).down()  # no service runs in this home: only the app is there to stop
    assert rt.status(spec.name).state == "stopped"
    assert not is_alive(pid) and f"stop {pid}" in events(tmp_path, spec.name)  # gracefully, by its handler
