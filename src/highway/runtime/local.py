"""The local adapter of the AppRuntime port: each app's driver is a process kept alive by a supervisor.

Per app it owns ``HOME/apps/<app>/``: ``catalog/<app>.yaml`` (the deployed entry; the driver runs with
``HIGHWAY_CATALOG`` pointing there), ``image`` (recorded, meaningless locally), ``supervisor.pid``,
``driver.pid``, ``state.json`` (written by the supervisor), ``driver.log``, ``supervisor.log`` and
``start.lock`` (serialises starts). Leases (one driver per checkpoint) are lock files under
``HOME/leases/``.

- deploy: writes the entry; an unchanged entry on a running app changes nothing, a changed one restarts it,
  a stopped app is started.
- start: spawns the supervisor detached (it outlives the caller, e.g. an Airflow task) and waits until it
  holds the lease and has started the driver.
- stop: SIGTERM to the supervisor, which stops the driver (the batch in flight finishes, SIGKILL after
  ``stop_grace``) and releases the lease; an orphaned driver (its supervisor killed) is stopped directly.
- status: ``highway.core.supervise.interpret`` over ``state.json`` and the two pids' liveness.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import yaml

from highway.catalog import load, parse
from highway.catalog.model import AppSpec
from highway.core.k8s.common import DRIVER_STOP_WAIT_SECONDS
from highway.core.k8s.status import AppStatus
from highway.core.release import SPEC_DIGEST_ENV, spec_digest
from highway.core.supervise import interpret, lease_name
from highway.errors import HighwayError
from highway.runtime.base import DEFAULT_TIMEOUT, RuntimeTerminal, RuntimeTransient
from highway.runtime.supervisor import atomic_write, kill_group, read_state, write_state
from highway.stack.process import (
    PidState,
    inspect_pid,
    is_alive,
    parse_stat,
    process_identity,
    read_pid,
    recorded_identity,
    start_detached,
)

APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
MAX_APP_NAME = 45  # the Kubernetes runtime's limit, so an app deploys the same way on both
START_TIMEOUT = 30.0  # seconds for a new supervisor to take the lease and start the driver


class LocalRuntime:
    """Runs catalog apps as supervised local processes under ``home`` (the stack's state dir).

    ``command`` replaces the driver command (``{app}`` in it becomes the app name); ``env`` is added to
    the supervisor's and the driver's environment; ``clock``/``sleep`` pace the waits.
    """

    def __init__(
        self,
        home: Path,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        stop_grace: float = DRIVER_STOP_WAIT_SECONDS + 30,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = 0.2,
    ) -> None:
        self.home = Path(home)
        self.command = list(command) if command is not None else None
        self.env = dict(env or {})
        self.stop_grace = stop_grace
        self.clock = clock
        self.sleep = sleep
        self.poll = poll

    # ---- the port -----------------------------------------------------------------------------------------
    def deploy(self, spec: AppSpec, catalog_text: str, image: str | None = None) -> AppStatus:
        action = f"deploy {spec.name}"
        self._check_app(action, spec.name)
        _check_text(action, spec, catalog_text)
        entry = self._entry(spec.name)
        old_text = self.spec_text(spec.name)
        old_state = read_state(self._dir(spec.name) / "state.json")
        old_digest = self._read_digest(spec.name)
        digest = spec_digest(catalog_text, image)  # the deploy's identity: the driver stamps its heartbeats
        image = image or spec.image
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            (self.home / "apps").chmod(0o700)  # logs and entries: ours alone (the stack dir's rule)
            atomic_write(entry, catalog_text)
            self._write_image(spec.name, image)
            atomic_write(self._dir(spec.name) / "spec_digest", digest + "\n")
        except OSError as error:
            raise RuntimeTerminal(f"{action}: cannot write {entry}: {error.strerror or error}") from None
        if self._supervisor(spec.name) is None:
            return self.start(spec.name)
        unchanged = (
            old_text == catalog_text
            and old_state is not None
            and old_state.image == image
            and old_digest == digest
        )
        return self.status(spec.name) if unchanged else self.restart(spec.name)

    def status(self, app: str) -> AppStatus:
        self._check_app(f"status {app}", app)
        folder = self._dir(app)
        if not self._entry(app).exists():
            return AppStatus(app, "absent")
        record = read_state(folder / "state.json")
        alive = self._supervisor(app) is not None
        driver = self._driver(app) is not None
        return interpret(app, record, alive, driver, self.clock())

    def restart(self, app: str, timeout: float = DEFAULT_TIMEOUT) -> AppStatus:
        self._require(f"restart {app}", app)
        self.stop(app, timeout)
        return self.start(app)

    def stop(self, app: str, timeout: float = DEFAULT_TIMEOUT) -> AppStatus:
        action = f"stop {app}"
        self._check_app(action, app)
        deadline = self.clock() + timeout
        supervisor = self._supervisor(app)
        if supervisor is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(supervisor, signal.SIGTERM)
            self._wait(
                action,
                deadline,
                timeout,
                f"the supervisor (pid {supervisor}) to stop the driver and exit",
                lambda: self._supervisor(app) is None,
            )
        driver = self._driver(app)
        if driver is not None:  # an orphan: its supervisor was killed
            self._stop_orphan(action, app, driver, deadline, timeout)
        record = read_state(self._dir(app) / "state.json")
        if record is not None and (record.desired, record.phase) != ("stopped", "stopped"):
            write_state(
                self._dir(app) / "state.json",
                replace(record, desired="stopped", phase="stopped", driver_pid=None),
            )
        return self.status(app)

    def start(self, app: str) -> AppStatus:
        action = f"start {app}"
        spec = self._require(action, app)
        with _locked(self._dir(app) / "start.lock"):  # concurrent starts: one spawns, the others see it
            if self._supervisor(app) is not None:
                return self.status(app)
            return self._spawn(action, app, spec)

    def _spawn(self, action: str, app: str, spec: AppSpec) -> AppStatus:
        folder = self._dir(app)
        image = self._read_image(app) or spec.image
        command = [part.replace("{app}", app) for part in self.command or self._default_command(app)]
        argv = [
            sys.executable, "-m", "highway.runtime.supervisor",
            "--dir", str(folder), "--app", app, "--checkpoint", spec.checkpoint,
            "--lease", str(self.home / "leases" / lease_name(spec.checkpoint)),
            "--stop-grace", f"{self.stop_grace:g}", "--image", image, "--", *command,
        ]  # fmt: skip
        try:
            env = {**os.environ, **self.env}
            digest = self._read_digest(app)
            if digest:  # the supervisor passes it on to every driver it starts
                env[SPEC_DIGEST_ENV] = digest
            pid = start_detached(argv, folder / "supervisor.log", env=env)
        except HighwayError as error:
            raise RuntimeTerminal(f"{action}: {error}") from None
        return self._await_supervisor(action, app, pid)

    def _await_supervisor(self, action: str, app: str, pid: int) -> AppStatus:
        """Wait until the new supervisor holds the lease and started the driver, or exited."""
        folder = self._dir(app)
        deadline = self.clock() + START_TIMEOUT
        while True:
            record = read_state(folder / "state.json")
            if record is not None and record.supervisor_pid == pid and record.attempts > 0:
                return self.status(app)
            if not is_alive(pid):
                raise RuntimeTerminal(
                    f"{action}: the supervisor exited: {self._last_line(folder / 'supervisor.log')}"
                )
            if self.clock() >= deadline:
                raise RuntimeTransient(
                    f"{action}: timed out after {START_TIMEOUT:g} s waiting for the supervisor (pid {pid}) "
                    f"to take the lease and start the driver; see {folder / 'supervisor.log'}"
                )
            self.sleep(self.poll)

    def logs(self, app: str, tail: int = 200) -> str:
        action = f"logs of {app}"
        if tail < 1:
            raise RuntimeTerminal(f"{action}: tail must be 1 or more lines, not {tail}")
        self._require(action, app)
        return _tail(self._dir(app) / "driver.log", tail)

    # ---- for tests and fault injection --------------------------------------------------------------------
    def driver_pid(self, app: str) -> int | None:
        """The pid of the app's live driver (the leader of its process group), else None."""
        self._check_app(f"driver of {app}", app)
        return self._driver(app)

    def spec_text(self, app: str) -> str | None:
        """The deployed catalog entry's text, None when not deployed."""
        self._check_app(f"catalog entry of {app}", app)
        try:
            return self._entry(app).read_text()
        except FileNotFoundError:
            return None

    # ---- files and processes ------------------------------------------------------------------------------
    def _dir(self, app: str) -> Path:
        return self.home / "apps" / app

    def _entry(self, app: str) -> Path:
        return self._dir(app) / "catalog" / f"{app}.yaml"

    def _write_image(self, app: str, image: str) -> None:
        atomic_write(self._dir(app) / "image", image + "\n")

    def _read_digest(self, app: str) -> str | None:
        try:
            return (self._dir(app) / "spec_digest").read_text().strip() or None
        except FileNotFoundError:
            return None

    def _read_image(self, app: str) -> str | None:
        try:
            return (self._dir(app) / "image").read_text().strip() or None
        except FileNotFoundError:
            return None

    @staticmethod
    def _default_command(app: str) -> list[str]:
        return [sys.executable, "-m", "highway.cli", "run", app]

    def _check_app(self, action: str, app: str) -> None:
        if not APP_NAME.match(app) or len(app) > MAX_APP_NAME:
            raise RuntimeTerminal(
                f"{action}: key 'name' has value {app!r}; allowed: a catalog app name "
                f"(lower-case letters, digits and '_'), at most {MAX_APP_NAME} characters"
            )

    def _require(self, action: str, app: str) -> AppSpec:
        """The deployed entry of ``app``, or one line saying it is not deployed."""
        self._check_app(action, app)
        entry = self._entry(app)
        if not entry.exists():
            raise RuntimeTerminal(
                f"{action}: app {app} is not deployed on the local runtime (deploy it first)"
            )
        try:
            return load(entry)
        except HighwayError as error:
            raise RuntimeTerminal(f"{action}: the deployed entry is not valid: {error}") from None

    def _supervisor(self, app: str) -> int | None:
        """The pid of the app's live supervisor (its command line names the app's dir), else None."""
        state, pid = inspect_pid(self._dir(app) / "supervisor.pid", str(self._dir(app)))
        return pid if state is PidState.RUNNING else None

    def _driver(self, app: str) -> int | None:
        """The live driver's pid: alive, the leader of its own session, and the very process the
        supervisor started (boot id and start time as recorded): a pid reused after a reboot or by an
        unrelated process is never signalled."""
        pid_file = self._dir(app) / "driver.pid"
        pid = read_pid(pid_file)
        if pid is None or not is_alive(pid):
            return None
        try:
            _state, session = parse_stat(Path(f"/proc/{pid}/stat").read_text())
        except (OSError, ValueError):
            return None
        ours = recorded_identity(pid_file)
        return pid if session == pid and ours is not None and ours == process_identity(pid) else None

    def _stop_orphan(self, action: str, app: str, pid: int, deadline: float, timeout: float) -> None:
        """SIGTERM the orphaned driver, SIGKILL its group after the grace, and wait until it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        kill_group(pid, signal.SIGCONT)  # a frozen driver must run to act on SIGTERM
        grace = min(deadline, self.clock() + self.stop_grace)
        while self._driver(app) == pid and self.clock() < grace:
            self.sleep(self.poll)
        kill_group(pid, signal.SIGKILL)
        self._wait(
            action,
            deadline,
            timeout,
            f"the orphaned driver (pid {pid}) to exit",
            lambda: self._driver(app) != pid,
        )

    def _wait(
        self, action: str, deadline: float, timeout: float, what: str, done: Callable[[], bool]
    ) -> None:
        while not done():
            if self.clock() >= deadline:
                raise RuntimeTransient(f"{action}: timed out after {timeout:g} s waiting for {what}")
            self.sleep(self.poll)

    @staticmethod
    def _last_line(path: Path) -> str:
        lines = _tail(path, 1).strip()
        return lines.removeprefix("error: ") or f"no output (see {path})"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (waiting for it) for the ``with`` block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _check_text(action: str, spec: AppSpec, text: str) -> None:
    """The catalog text must be a valid entry of the same app (the driver reads it, not ``spec``)."""
    try:
        entry = parse(yaml.safe_load(text), f"the catalog text of {spec.name}")
    except (yaml.YAMLError, HighwayError) as error:
        raise RuntimeTerminal(f"{action}: {' '.join(str(error).split())}") from None
    if entry.name != spec.name:
        raise RuntimeTerminal(
            f"{action}: the catalog text is the entry of {entry.name!r}, not of {spec.name!r}"
        )


def _tail(path: Path, lines: int, block: int = 65536) -> str:
    """The last ``lines`` lines of a file, reading it from the end."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            data = b""
            while end > 0 and data.count(b"\n") <= lines:
                start = max(0, end - block)
                f.seek(start)
                data = f.read(end - start) + data
                end = start
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:]) + ("\n" if data else "")
