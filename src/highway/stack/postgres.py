"""PostgreSQL from Debian, a cluster of its own in the state dir, run as the ``postgres`` OS user."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from highway.errors import StackError
from highway.stack.install import postgres_bin_dir
from highway.stack.process import (
    PidState,
    RunAs,
    classify_pid,
    cmdline,
    is_alive,
    read_pid,
    require_reachable,
    run_as,
    run_once,
    start_detached,
)
from highway.stack.service import Service, make_dir, write_file

OS_USER = "postgres"
APP_ROLE = "highway"
APP_DATABASE = "highway"
# unix socket paths are limited to 107 bytes; past that we listen on TCP only
MAX_SOCKET_DIR = 80


class Postgres(Service):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave
    start_timeout = 60.0

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.dir / "run"

    @property
    def user(self) -> RunAs | None:
        return run_as(OS_USER)

    def marker(self) -> str:
        return str(self.data_dir)

    def install(self) -> None:
        self.bin = postgres_bin_dir(lambda message: self.ctx.reporter.warn(self.name, message))

    def prepare(self) -> None:
        user = self.user
        make_dir(self.dir, user, 0o700)
        make_dir(self.socket_dir, user)
        require_reachable(self.dir, user, self.name)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
        self._clear_stale_postmaster_pid()

    def _initdb(self, user: RunAs | None) -> None:
        self.step(f"initdb {self.data_dir} (once per state dir)")
        pwfile = self.dir / "superuser.pw"
        write_file(pwfile, self.secret("pg_superuser_password") + "\n", user, 0o600)
        try:
            run_once(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=scram-sha-256",
                    "--username=postgres",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                "initdb",
                user=user,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _clear_stale_postmaster_pid(self) -> None:
        """After a crash or reboot, postmaster.pid may name a pid that is gone or now someone else's."""
        lock = self.data_dir / "postmaster.pid"
        pid = read_pid(lock)
        if pid is None:
            return
        alive = is_alive(pid)
        state = classify_pid(pid, alive, cmdline(pid) if alive else [], self.marker())
        if state is PidState.RUNNING:
            raise StackError(
                f"postgres: a server (pid {pid}) already runs on {self.data_dir} but the stack has no record "
                f"of it; stop it (kill -INT {pid}) and run up again"
            )
        self.ctx.reporter.warn(self.name, f"removed stale {lock.name} (pid {pid}: {state.value})")
        lock.unlink()

    def _socket_option(self) -> str:
        return str(self.socket_dir) if len(str(self.socket_dir)) <= MAX_SOCKET_DIR else ""

    def launch(self) -> int:
        argv = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            self._socket_option(),
            "-c",
            "listen_addresses=127.0.0.1",
        ]
        return start_detached(argv, self.log_file, cwd=self.dir, user=self.user)

    def _connect(self, user: str, password: str, dbname: str) -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            dbname=dbname,
            connect_timeout=3,
            autocommit=True,
        )

    def _answers(self, user: str, password: str, dbname: str) -> bool:
        import psycopg

        try:
            with self._connect(user, password, dbname) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def ready(self) -> bool:
        return self._answers("postgres", self.secret("pg_superuser_password"), "postgres")

    def healthy(self) -> bool:
        return self._answers(APP_ROLE, self.secret("pg_password"), APP_DATABASE)

    def after_ready(self) -> None:
        """Role and database ``highway`` (created on first start, password kept in sync)."""
        from psycopg import sql

        password = self.secret("pg_password")
        with self._connect("postgres", self.secret("pg_superuser_password"), "postgres") as conn:
            role_exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone()
            verb = "ALTER" if role_exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_ROLE), sql.Literal(password)
                )
            )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [APP_DATABASE]).fetchone():
                self.step(f"creating role and database {APP_DATABASE!r}")
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE)
                    )
                )
