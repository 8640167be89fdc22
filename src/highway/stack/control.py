"""The local stack as a whole: bring services up in order, report on them, take them down."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from highway import connection
from highway.errors import StackError
from highway.settings import cache_dir
from highway.stack.airflow import AirflowApi, AirflowDagProcessor, AirflowScheduler, AirflowTriggerer
from highway.stack.elasticsearch import Elasticsearch
from highway.stack.kafka import Kafka
from highway.stack.postgres import Postgres
from highway.stack.process import PidState, inspect_pid, is_alive, port_in_use, terminate, write_pid
from highway.stack.progress import Reporter
from highway.stack.s3 import S3
from highway.stack.service import Service, ServiceContext
from highway.stack.state import NEEDS, SERVICES, Layout, select_services, service_name, service_ports

SERVICE_CLASSES: dict[str, type[Service]] = {
    "kafka": Kafka,
    "s3": S3,
    "postgres": Postgres,
    "elasticsearch": Elasticsearch,
    AirflowApi.name: AirflowApi,
    AirflowScheduler.name: AirflowScheduler,
    AirflowDagProcessor.name: AirflowDagProcessor,
    AirflowTriggerer.name: AirflowTriggerer,
}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    pid: int | None
    healthy: bool
    state: str  # "healthy", "unhealthy" (running, not answering) or "stopped"


class Stack:
    """One stack instance: a state directory and a port base."""

    SERVICES: tuple[str, ...] = SERVICES

    def __init__(self, home: Path, port_base: int, reporter: Reporter | None = None) -> None:
        self.home = Path(home).absolute()
        self.port_base = port_base
        self.layout = Layout(self.home)
        self.reporter = reporter or Reporter()
        self._install_lock = threading.Lock()

    # --- public API -------------------------------------------------------------------------

    def up(self, only: Sequence[str] | None = None) -> None:
        """Start the services (all, or ``only``) that are not running; return when all are healthy."""
        names = select_services(only)
        self.layout.create()
        self.layout.write_stack_json(self.port_base)
        services = self._services(self.layout.ensure_credentials())
        to_start = [name for name in names if not self._running(services[name], clear_stale=True)]
        self._check_ports([services[name] for name in to_start])
        for name in names:
            if name not in to_start:
                self._confirm_running(services[name])
        self._start_all([services[name] for name in to_start])
        self.layout.tighten()  # what the services' folders hold is theirs (and ours) alone
        if not to_start:
            self.reporter.note(f"[bold]already running[/]: {', '.join(names)} in {self.home}")

    def down(self) -> None:
        """Stop the apps the local runtime runs here (while their stores still answer), then every service
        this stack started, newest first; leaves nothing running."""
        apps = self._stop_apps()
        stopped = [name for name in reversed(SERVICES) if self._stop(name, quiet_if_stopped=True)]
        if not stopped and not apps:
            self.reporter.note(f"nothing was running in {self.home}")

    def stop(self, name: str) -> None:
        self._stop(service_name(name), quiet_if_stopped=False)

    def _stop_apps(self) -> list[str]:
        """Stop every app of the local runtime in this state dir (supervisor and driver: the batch in flight
        finishes); the names stopped."""
        apps_dir = self.home / "apps"
        if not apps_dir.is_dir():
            return []
        from highway.runtime.local import LocalRuntime

        runtime = LocalRuntime(self.home)
        stopped = []
        for app_dir in sorted(p for p in apps_dir.iterdir() if p.is_dir()):
            if runtime.status(app_dir.name).state in ("absent", "stopped"):
                continue
            self.reporter.step(app_dir.name, "stopping (local runtime: the batch in flight finishes)")
            runtime.stop(app_dir.name)
            self.reporter.done(app_dir.name, "stopped")
            stopped.append(app_dir.name)
        return stopped

    def start(self, name: str) -> None:
        """Start one service (and what it needs, if that is not running)."""
        self.up([service_name(name)])

    def status(self) -> list[ServiceStatus]:
        services = self._services(connection.read_credentials(self.home))
        return [self._status_of(services[name]) for name in SERVICES]

    def connection(self) -> connection.Connection:
        return connection.load(self.home)

    # --- internals --------------------------------------------------------------------------

    def _services(self, credentials: dict[str, str]) -> dict[str, Service]:
        ports = service_ports(self.port_base)
        return {
            name: cls(
                ServiceContext(
                    self.layout, ports[name], credentials, cache_dir(), self.reporter, self.port_base
                )
            )
            for name, cls in SERVICE_CLASSES.items()
        }

    def _running(self, service: Service, clear_stale: bool) -> bool:
        state, pid = inspect_pid(service.pid_file, service.marker())
        if state in (PidState.GONE, PidState.FOREIGN) and clear_stale:
            self.reporter.warn(service.name, f"removed stale pid file (pid {pid}: {state.value})")
            service.pid_file.unlink(missing_ok=True)
            service.cleanup_after_stop()
        return state is PidState.RUNNING

    def _confirm_running(self, service: Service) -> None:
        _, pid = inspect_pid(service.pid_file, service.marker())
        if not service.healthy():
            self.reporter.step(service.name, f"running (pid {pid}) but not healthy yet; waiting")
            self._wait_healthy(service, pid, announce=False)
        self.reporter.done(service.name, f"already running on {service.address} (pid {pid})")

    def _check_ports(self, services: Sequence[Service]) -> None:
        for service in services:
            for label, port in service.ctx.ports.items():
                if port_in_use(port):
                    raise StackError(
                        f"{service.name}: port {port} ({label}) on 127.0.0.1 is already in use by another "
                        f"process. Use another port base (--port-base / HIGHWAY_PORT_BASE, now "
                        f"{self.port_base}) or stop the process holding port {port} (e.g. `ss -ltnp`)."
                    )

    def _start_all(self, services: Sequence[Service]) -> None:
        """Start services side by side (Elasticsearch alone takes longer than the others together).

        A service that needs another one being started here (Airflow needs PostgreSQL) waits for it.
        """
        failures: dict[str, BaseException] = {}
        started = {service.name: threading.Event() for service in services}

        def start(service: Service) -> None:
            try:
                for need in NEEDS.get(service.name, ()):
                    if need in started:
                        started[need].wait()
                        if need in failures:
                            raise StackError(f"{service.name}: not started because {need} did not come up")
                self._start(service)
            except BaseException as exc:  # re-raised below, in the caller's thread
                failures[service.name] = exc
                self.reporter.forget(service.name)
            finally:
                started[service.name].set()

        # daemon threads: Ctrl-C returns at once; whatever was launched has a pid file for `down`
        threads = [
            threading.Thread(target=start, args=(svc,), name=svc.name, daemon=True) for svc in services
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not failures:
            return
        unexpected = [exc for exc in failures.values() if not isinstance(exc, StackError)]
        if unexpected:
            raise unexpected[0]
        raise StackError("\n".join(str(exc) for exc in failures.values()))

    def _start(self, service: Service) -> None:
        self._check_ports([service])
        with self._install_lock:  # one Maven / apt run at a time
            service.install()
        service.prepare()
        service.step("starting")
        pid = service.launch()
        write_pid(service.pid_file, pid)
        try:
            self._wait_healthy(service, pid)
            service.after_ready()
            self._wait_healthy(service, pid, announce=False)
        except BaseException:
            self.reporter.warn(service.name, f"did not come up; stopping pid {pid}")
            if is_alive(pid):
                terminate(pid, service.stop_signal)
            service.pid_file.unlink(missing_ok=True)
            service.cleanup_after_stop()
            raise
        self.reporter.done(service.name, f"healthy on {service.address} (pid {pid})")

    def _wait_healthy(self, service: Service, pid: int | None, announce: bool = True) -> None:
        if announce:
            service.step(f"waiting until it answers on {service.address}")
        deadline = time.monotonic() + service.start_timeout
        while time.monotonic() < deadline:
            # the pid we launched: right after the fork its command line may not show the marker yet
            # (exec still in progress), so only a dead process counts as "exited" here
            if pid is not None and not is_alive(pid):
                raise StackError(
                    f"{service.name}: the process (pid {pid}) exited during start; see {service.log_file}\n"
                    f"{service.log_tail()}"
                )
            if service.ready():
                return
            time.sleep(0.5)
        raise StackError(
            f"{service.name}: not healthy after {service.start_timeout:.0f} s on {service.address}; "
            f"see {service.log_file}\n{service.log_tail()}"
        )

    def _stop(self, name: str, quiet_if_stopped: bool) -> bool:
        """Stop one service if it runs; whether it did."""
        service = self._services({})[name]
        state, pid = inspect_pid(service.pid_file, service.marker())
        if state is not PidState.RUNNING or pid is None:
            self._running(service, clear_stale=True)
            if not quiet_if_stopped:
                self.reporter.note(f"{name}: not running")
            return False
        self.reporter.step(name, f"stopping pid {pid}")
        killed = terminate(pid, service.stop_signal)
        service.pid_file.unlink(missing_ok=True)
        service.cleanup_after_stop()
        self.reporter.done(name, "stopped" + (" (killed after the grace period)" if killed else ""))
        return True

    def _status_of(self, service: Service) -> ServiceStatus:
        state, pid = inspect_pid(service.pid_file, service.marker())
        if state is not PidState.RUNNING:
            return ServiceStatus(service.name, service.address, None, False, "stopped")
        healthy = service.healthy()
        label = "healthy" if healthy else "unhealthy"
        return ServiceStatus(service.name, service.address, pid, healthy, label)
