"""Processes of the stack: start detached, record by pid, recognise after a reboot, stop for good.

A service is *ours* when its pid is alive and its ``/proc/<pid>/cmdline`` carries the service's
marker (a path inside the state dir, e.g. its config file), or, for a process that rewrites its
title (Airflow's api-server), its working directory is the marker (seen as ``cwd=<dir>``). Anything
else behind a pid file is stale: the process is gone, or the pid now belongs to another program.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from highway.errors import StackError


class PidState(Enum):
    RUNNING = "running"
    NO_PID_FILE = "no pid file"
    GONE = "process is gone"
    FOREIGN = "pid belongs to another program"


@dataclass(frozen=True)
class RunAs:
    """The OS user a service runs as (only set when we are root and must drop privileges)."""

    name: str
    uid: int
    gid: int


def run_as(user: str) -> RunAs | None:
    """``user`` when running as root, else None (run as the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError as exc:
        raise StackError(f"OS user {user!r} does not exist; create it or install its package") from exc
    return RunAs(user, entry.pw_uid, entry.pw_gid)


# --- pure decisions -------------------------------------------------------------------------


def belongs(cmdline: Sequence[str], marker: str) -> bool:
    """Whether a command line is a stack process: one argument is the marker, or ends with ``=marker``."""
    return any(arg == marker or arg.endswith("=" + marker) for arg in cmdline)


def classify_pid(pid: int | None, alive: bool, cmdline: Sequence[str], marker: str) -> PidState:
    if pid is None:
        return PidState.NO_PID_FILE
    if not alive:
        return PidState.GONE
    return PidState.RUNNING if belongs(cmdline, marker) else PidState.FOREIGN


def parse_stat(text: str) -> tuple[str, int]:
    """(state letter, session id) from the text of ``/proc/<pid>/stat``."""
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[3])


def parse_start_time(text: str) -> int:
    """The process's start time (clock ticks after boot) from the text of ``/proc/<pid>/stat``."""
    return int(text[text.rindex(")") + 2 :].split()[19])


def identity(boot_id: str, stat_text: str) -> str:
    """What tells one process from a later one that reuses its pid, even across a reboot."""
    return f"{boot_id.strip()} {parse_start_time(stat_text)}"


def parse_pid(text: str) -> int | None:
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    return int(first) if first.isdigit() and int(first) > 0 else None


# --- observing ------------------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    try:
        return parse_pid(path.read_text())
    except FileNotFoundError:
        return None


def write_pid(path: Path, pid: int, who: str | None = None) -> None:
    """The pid, and on its second line the process's identity when given (see ``process_identity``)."""
    path.write_text(f"{pid}\n" if who is None else f"{pid}\n{who}\n")


def process_identity(pid: int) -> str | None:
    """This boot's id and the process's start time; None when the process is gone."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text()
        return identity(boot, Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def recorded_identity(path: Path) -> str | None:
    """The identity ``write_pid`` recorded beside the pid, if any."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    return lines[1].strip() if len(lines) > 1 and lines[1].strip() else None


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """Alive and not a zombie (a dead child we have not reaped yet counts as gone)."""
    _reap(pid)
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def working_dir(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def inspect_pid(pid_file: Path, marker: str) -> tuple[PidState, int | None]:
    pid = read_pid(pid_file)
    alive = pid is not None and is_alive(pid)
    args = [*cmdline(pid), f"cwd={working_dir(pid)}"] if pid is not None and alive else []
    return classify_pid(pid, alive, args, marker), pid


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on (or holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # like the Java servers we start: a TIME_WAIT left by a stopped service must not count
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


# --- acting ---------------------------------------------------------------------------------


def _demote(user: RunAs | None) -> dict[str, object]:
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def spawn(
    argv: Sequence[str],
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: RunAs | None = None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start a child in its own session, output appended to ``log_file`` (the caller waits for it)."""
    with log_file.open("ab") as log:
        return subprocess.Popen(  # type: ignore[call-overload]
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(pass_fds),
            **_demote(user),
        )


# Forks once and exits: the service is re-parented to init, so neither the CLI nor a test process
# holds it as a child (no zombies, no "still running" Popen objects). The child drops to the
# service's user itself, so that user need not be able to run this Python.
_LAUNCHER = """
import os, sys
fd, uid, gid = (int(arg) for arg in sys.argv[1:4])
pid = os.fork()
if pid:
    os.write(fd, str(pid).encode())
    os._exit(0)
os.close(fd)
if uid >= 0:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
os.execvp(sys.argv[4], sys.argv[4:])
"""


def start_detached(
    argv: Sequence[str],
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: RunAs | None = None,
) -> int:
    """Start a long-running service in its own session, not as our child; its pid."""
    read_end, write_end = os.pipe()
    ids = [str(user.uid), str(user.gid)] if user is not None else ["-1", "-1"]
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_end), *ids, *argv]
    try:
        forker = spawn(launcher, log_file, env, cwd, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as report:
        reported = report.read()
    forker.wait()
    pid = parse_pid(reported)
    if forker.returncode != 0 or pid is None:
        raise StackError(f"could not start {argv[0]} (launcher exit {forker.returncode}); see {log_file}")
    return pid


def run_once(
    argv: Sequence[str],
    what: str,
    user: RunAs | None = None,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a short command to completion; its output, or a StackError naming ``what`` failed."""
    try:
        done = subprocess.run(  # type: ignore[call-overload]
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            **_demote(user),
        )
    except FileNotFoundError as exc:
        raise StackError(f"{what}: command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: no result after {timeout:.0f} s: {' '.join(argv)}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise StackError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{tail}")
    return str(done.stdout)


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def session_members(sid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == sid and stat[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def terminate(pid: int, sig: int = signal.SIGTERM, grace: float = 10.0) -> bool:
    """Stop ``pid`` (``sig``, then SIGKILL after ``grace`` s) and whatever is left in its session.

    Returns whether SIGKILL was needed.
    """
    stat = _stat(pid)
    sid = stat[1] if stat is not None else None
    _signal(pid, sig)
    killed = False
    if not wait_for(lambda: not is_alive(pid), grace, 0.1):
        killed = True
        _signal(pid, signal.SIGKILL)
        wait_for(lambda: not is_alive(pid), 10, 0.1)
    if sid is not None and sid > 1 and sid != os.getsid(0):
        _stop_session(sid)
    return killed


def _stop_session(sid: int) -> None:
    """Stop whatever a service left behind in its session (children of a killed parent)."""
    leftovers = session_members(sid)
    for member in leftovers:
        _signal(member, signal.SIGTERM)
    if not wait_for(lambda: not session_members(sid), 5, 0.1):
        for member in session_members(sid):
            _signal(member, signal.SIGKILL)
        wait_for(lambda: not session_members(sid), 5, 0.1)


def can_traverse(mode: int, owner_uid: int, owner_gid: int, uid: int, gids: Sequence[int]) -> bool:
    """Whether a user may enter a directory with these permission bits (pure)."""
    if uid == 0:
        return True
    if uid == owner_uid:
        return bool(mode & 0o100)
    if owner_gid in gids:
        return bool(mode & 0o010)
    return bool(mode & 0o001)


def blocking_dir(path: Path, user: RunAs | None) -> Path | None:
    """The first directory on the way to ``path`` that ``user`` may not enter, if any."""
    if user is None:
        return None
    gids = os.getgrouplist(user.name, user.gid)
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            break
        info = folder.stat()
        if not can_traverse(info.st_mode, info.st_uid, info.st_gid, user.uid, gids):
            return folder
    return None


def require_reachable(path: Path, user: RunAs | None, service: str) -> None:
    blocked = blocking_dir(path, user)
    if blocked is not None and user is not None:
        raise StackError(
            f"{service} runs as OS user {user.name!r}, which cannot enter {blocked} "
            f"(mode {blocked.stat().st_mode & 0o777:o}): use a --home / HIGHWAY_CACHE it can reach "
            f"(e.g. under /var/lib or /var/cache), or chmod o+x {blocked}"
        )
