"""The shape every local service has: install, prepare, launch, recognise, check health."""

from __future__ import annotations

import os
import shutil
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from highway.stack.process import RunAs
from highway.stack.progress import Reporter
from highway.stack.state import Layout


@dataclass(frozen=True)
class ServiceContext:
    layout: Layout
    ports: Mapping[str, int]  # this service's ports by label
    credentials: Mapping[str, str]
    cache: Path
    reporter: Reporter
    port_base: int = 0  # of the whole stack (a service that talks to another one derives its port)


class Service(ABC):
    name: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM
    start_timeout: ClassVar[float] = 120.0

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @property
    def dir(self) -> Path:
        return self.ctx.layout.service_dir(self.name)

    @property
    def log_file(self) -> Path:
        return self.ctx.layout.log_file(self.name)

    @property
    def pid_file(self) -> Path:
        return self.ctx.layout.pid_file(self.name)

    @property
    def port(self) -> int:
        return self.ctx.ports[self.name]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def secret(self, key: str) -> str:
        """A generated credential ("" when the state dir has none yet, e.g. for ``status``)."""
        return self.ctx.credentials.get(key, "")

    def step(self, message: str) -> None:
        self.ctx.reporter.step(self.name, message)

    @abstractmethod
    def marker(self) -> str:
        """An argument only this instance's process has on its command line (a path in the state dir)."""

    @abstractmethod
    def install(self) -> None:
        """Get the software into the cache (fast when already there)."""

    @abstractmethod
    def prepare(self) -> None:
        """Write config files; initialise data once."""

    @abstractmethod
    def launch(self) -> int:
        """Start the process detached; the pid of the service's main process."""

    @abstractmethod
    def healthy(self) -> bool:
        """One quick check that the service answers a real request."""

    def ready(self) -> bool:
        """What ``up`` waits for before ``after_ready`` (default: healthy)."""
        return self.healthy()

    def after_ready(self) -> None:  # noqa: B027 - optional hook
        """One-time setup that needs the running service (bucket, role, database)."""

    def cleanup_after_stop(self) -> None:  # noqa: B027 - optional hook
        """Remove leftovers of a stopped process (lock or pid files the service keeps itself)."""

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return "(no log yet)"
        text = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def make_dir(path: Path, owner: RunAs | None, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if owner is not None:
        os.chown(path, owner.uid, owner.gid)
    return path


def write_file(path: Path, text: str, owner: RunAs | None, mode: int = 0o644) -> None:
    """``text`` into ``path``, created with its final mode and owner before it takes the name: a secret
    in it is never readable by anyone else, not even for a moment."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        if owner is not None:
            os.fchown(fd, owner.uid, owner.gid)
        with os.fdopen(fd, "w") as out:
            out.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def chown_tree(root: Path, owner: RunAs | None) -> None:
    """Give ``root`` and everything below it to ``owner`` (no-op when we run as ourselves)."""
    if owner is None:
        return
    os.chown(root, owner.uid, owner.gid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(Path(folder) / name, owner.uid, owner.gid, follow_symlinks=False)


def copy_tree_once(src: Path, dest: Path) -> None:
    if not dest.exists():
        shutil.copytree(src, dest)
