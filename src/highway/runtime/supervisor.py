"""The local runtime's supervisor: one process per app that keeps its driver running, as a kubelet would.

``python -m highway.runtime.supervisor --dir APP_DIR --app APP --checkpoint CP --lease LOCK -- COMMAND...``

- Lease: before the first driver start it takes an exclusive ``flock`` on ``LOCK`` (one per checkpoint) and
  passes the locked descriptor to each driver, so an orphaned driver keeps the lease even if this process
  is SIGKILLed. A held lease makes it exit 3 with one line naming the checkpoint and the holder's pid.
- Restarts: a driver that dies without a stop request is restarted at once, then after a growing backoff
  (``highway.core.supervise``); every start appends a header line to ``driver.log``.
- SIGTERM: SIGTERM to the driver (not its group: its JVM must outlive it while the batch in flight
  finishes), SIGKILL to its process group after ``--stop-grace`` s (and to what is left in the group once
  it ended), release the lease, record ``stopped`` and exit 0.

Everything it does goes to ``state.json`` (atomically replaced) and one line per event to its stdout
(``supervisor.log`` when started by ``LocalRuntime``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from highway.core.supervise import Exit, SupervisorState, backoff, consecutive
from highway.stack.process import is_alive, process_identity, spawn, write_pid

REFUSED = 3  # exit status when the lease is held by someone else
POLL = 0.1


def stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a reader sees the old or the new file, never half)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_state(path: Path) -> SupervisorState | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return SupervisorState.from_dict(data) if isinstance(data, dict) else None


def write_state(path: Path, state: SupervisorState) -> None:
    atomic_write(path, json.dumps(state.to_dict(), indent=1) + "\n")


class LeaseHeld(Exception):
    """Another supervisor (or its orphaned driver) holds the checkpoint's lease."""


def lease_holder(lock: Path) -> str:
    """Who holds a lease, from what its holder wrote into the lock file."""
    try:
        data: dict[str, Any] = json.loads(lock.read_text() or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    app, supervisor, driver = data.get("app", "?"), data.get("supervisor"), data.get("driver")
    if isinstance(supervisor, int) and is_alive(supervisor):
        return f"pid {supervisor} (the supervisor of app {app})"
    if isinstance(driver, int) and is_alive(driver):
        if supervisor is None:
            return f"pid {driver} (`highway run {app}`)"
        return f"pid {driver} (a driver of app {app} whose supervisor is gone)"
    return f"pid {supervisor} (app {app})"


def take_lease(lock: Path, app: str, checkpoint: str) -> int:
    """The locked descriptor of ``lock``; ``LeaseHeld`` naming the holder when another process has it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LeaseHeld(
            f"app {app}: checkpoint {checkpoint} is held by {lease_holder(lock)}; "
            "one driver per checkpoint: stop that one first"
        ) from None
    return fd


def note_holder(fd: int, app: str, supervisor: int | None, driver: int | None) -> None:
    text = json.dumps({"app": app, "supervisor": supervisor, "driver": driver}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, text, 0)


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Supervisor:
    def __init__(
        self,
        app: str,
        app_dir: Path,
        checkpoint: str,
        lease: Path,
        command: Sequence[str],
        stop_grace: float,
        image: str | None,
    ) -> None:
        self.app_dir = app_dir
        self.lease = lease
        self.command = list(command)
        self.stop_grace = stop_grace
        self.stopping = False
        self.state = SupervisorState(app, checkpoint, image=image, supervisor_pid=os.getpid())

    def log(self, message: str) -> None:
        print(f"{stamp()} supervisor of {self.state.app} (pid {os.getpid()}): {message}", flush=True)

    def save(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        write_state(self.app_dir / "state.json", self.state)

    def _request_stop(self, *_: object) -> None:
        self.stopping = True  # only a flag: a handler must not take locks the main thread may hold

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        try:
            fd = take_lease(self.lease, self.state.app, self.state.checkpoint)
        except LeaseHeld as held:
            print(f"error: {held}", file=sys.stderr, flush=True)
            return REFUSED
        proc: subprocess.Popen[bytes] | None = None
        try:
            note_holder(fd, self.state.app, os.getpid(), None)
            write_pid(self.app_dir / "supervisor.pid", os.getpid())
            self.save()
            self.log(f"holds the lease on {self.state.checkpoint}")
            while not self.stopping:
                proc = self.start_driver(fd)
                if proc is None or self.wait_driver(proc):
                    self.pause()
        finally:
            self.save(desired="stopped")
            if proc is not None:
                self.stop_driver(proc)
            os.close(fd)  # the lease is free once the driver (the other holder) is gone too
            self.save(phase="stopped", driver_pid=None, next_start_at=None)
            with contextlib.suppress(FileNotFoundError):
                (self.app_dir / "supervisor.pid").unlink()
            self.log("stopped; lease released")
        return 0

    def start_driver(self, fd: int) -> subprocess.Popen[bytes] | None:
        """Start the driver in its own process group, the lease passed on; None when it cannot start."""
        attempt = self.state.attempts + 1
        log_file = self.app_dir / "driver.log"
        with log_file.open("a") as out:
            restarts = self.state.restarts
            out.write(f"==== {stamp()} highway supervisor: driver start {attempt} ({restarts} restarts)\n")
        # the driver holds the lease through this descriptor (highway.spark.guard does not take it again)
        env = {**os.environ, "HIGHWAY_CATALOG": str(self.app_dir / "catalog"), "HIGHWAY_LEASE_FD": str(fd)}
        try:
            proc = spawn(self.command, log_file, env=env, pass_fds=(fd,))
        except OSError as error:
            self.log(f"cannot start the driver {self.command[0]}: {error.strerror or error}")
            self.save(attempts=attempt)
            self.crashed(None, 127)
            return None
        now = time.time()
        write_pid(self.app_dir / "driver.pid", proc.pid, process_identity(proc.pid))
        note_holder(fd, self.state.app, os.getpid(), proc.pid)
        self.save(attempts=attempt, phase="running", started_at=now, driver_pid=proc.pid, next_start_at=None)
        self.log(f"driver started (pid {proc.pid}, attempt {attempt})")
        return proc

    def wait_driver(self, proc: subprocess.Popen[bytes]) -> bool:
        """Wait until the driver dies (True: it crashed) or a stop is requested (False)."""
        while proc.poll() is None:
            if self.stopping:
                return False
            time.sleep(POLL)
        kill_group(proc.pid, signal.SIGKILL)  # what it left in its group (a JVM) goes with it
        self.crashed(proc.pid, proc.returncode)
        return True

    def crashed(self, pid: int | None, returncode: int) -> None:
        now = time.time()
        ran_for = now - (self.state.started_at or now) if pid is not None else 0.0
        crashes = consecutive(self.state.crashes, ran_for)
        delay = backoff(crashes)
        last = Exit.from_returncode(returncode, now)
        self.save(
            phase="backoff" if delay > 0 else "starting",
            restarts=self.state.restarts + 1,
            crashes=crashes,
            last_exit=last,
            next_start_at=now + delay if delay > 0 else None,
            backoff_seconds=delay,
            driver_pid=None,
        )
        when = "at once" if delay == 0 else f"in {delay:g} s"
        self.log(
            f"driver pid {pid} ended ({last.describe()}) after {ran_for:.1f} s, "
            f"{crashes} crash{'es' if crashes > 1 else ''} in a row; restarting {when}"
        )

    def pause(self) -> None:
        """The backoff: wait until the next start is due or a stop is requested."""
        due = self.state.next_start_at or 0.0
        while not self.stopping and time.time() < due:
            time.sleep(POLL)

    def stop_driver(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            # SIGTERM to the driver alone, as the kubelet signals a container's PID 1: its JVM (same
            # group) must live on while the driver lets the batch in flight finish
            self.log(f"stopping the driver (pid {proc.pid}): SIGTERM")
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            kill_group(proc.pid, signal.SIGCONT)  # a frozen (SIGSTOPped) driver must run to act on it
            try:
                proc.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                self.log(
                    f"the driver did not stop within {self.stop_grace:g} s: SIGKILL to its process group"
                )
                kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
            self.log(f"driver pid {proc.pid} ended ({Exit.from_returncode(proc.returncode, 0).describe()})")
        kill_group(proc.pid, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m highway.runtime.supervisor", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="the app's dir (state.json, logs, catalog/)")
    parser.add_argument("--app", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--lease", required=True, type=Path, help="the checkpoint's lock file")
    parser.add_argument("--stop-grace", type=float, default=150.0)
    parser.add_argument("--image", default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the driver command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no driver command given (after --)")
    supervisor = Supervisor(
        args.app, args.dir, args.checkpoint, args.lease, command, args.stop_grace, args.image
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
