"""``highway stack ...``: start, inspect and stop the local service stack.

Kept light to import: the stack's clients (boto3, psycopg, confluent_kafka) load only when a
command checks health.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from highway import connection
from highway.settings import Ports, default_home
from highway.stack.control import Stack
from highway.stack.progress import LiveReporter
from highway.stack.state import GROUPS, SERVICES, parse_only

stack_app = typer.Typer(
    help="The local service stack: Kafka, S3 (s3proxy), PostgreSQL, Elasticsearch, Airflow as processes.",
    no_args_is_help=True,
)

SERVICE_HELP = f"One of: {', '.join(SERVICES)}."


@dataclass(frozen=True)
class StackOptions:
    home: Path
    port_base: int

    def stack(self) -> Stack:
        return Stack(self.home, self.port_base, reporter=LiveReporter(Console(stderr=True, soft_wrap=True)))


def resolve_options(home: Path | None, port_base: int | None) -> StackOptions:
    """--home / HIGHWAY_HOME / default; --port-base / HIGHWAY_PORT_BASE / the state dir's own / default."""
    home = (home or default_home()).absolute()
    if port_base is None:
        from_env = os.environ.get("HIGHWAY_PORT_BASE")
        port_base = int(from_env) if from_env else connection.port_base_of(home)
    return StackOptions(home, port_base)


@stack_app.callback()
def stack_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="State directory of this stack (default: HIGHWAY_HOME or the per-user default)."),
    ] = None,
    port_base: Annotated[
        int | None,
        typer.Option(
            help="Ports are base + offset (default: HIGHWAY_PORT_BASE, else the state dir's).", min=1024
        ),
    ] = None,
) -> None:
    """Run real Kafka, S3, PostgreSQL, Elasticsearch and Airflow processes for development and tests."""
    ctx.obj = resolve_options(home, port_base)


@contextmanager
def _reported(ctx: typer.Context, action: str) -> Iterator[Stack]:
    """The stack with a live progress display; says how long the action took."""
    options: StackOptions = ctx.obj
    stack = options.stack()
    began = time.monotonic()
    with stack.reporter:
        yield stack
    stack.reporter.note(f"[dim]{action} took {time.monotonic() - began:.1f} s[/]")


@stack_app.command()
def up(
    ctx: typer.Context,
    only: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated services to start. {SERVICE_HELP} Groups: {', '.join(GROUPS)}. "
            "What they need (Airflow: PostgreSQL) comes along."
        ),
    ] = None,
) -> None:
    """Install (first time) and start the services; returns when they are healthy."""
    with _reported(ctx, "up") as stack:
        stack.up(parse_only(only))


@stack_app.command()
def down(ctx: typer.Context) -> None:
    """Stop every service this stack started (data stays in the state dir)."""
    with _reported(ctx, "down") as stack:
        stack.down()


@stack_app.command()
def stop(ctx: typer.Context, name: Annotated[str, typer.Argument(help=SERVICE_HELP)]) -> None:
    """Stop one service (SIGKILL after a 10 s grace period)."""
    with _reported(ctx, f"stop {name}") as stack:
        stack.stop(name)


@stack_app.command()
def start(ctx: typer.Context, name: Annotated[str, typer.Argument(help=SERVICE_HELP)]) -> None:
    """Start one service again, on the same port and data."""
    with _reported(ctx, f"start {name}") as stack:
        stack.start(name)


@stack_app.command()
def status(ctx: typer.Context) -> None:
    """Each service's address, pid and health."""
    options: StackOptions = ctx.obj
    table = Table(title=f"highway stack in {options.home} (port base {options.port_base})")
    for column in ("service", "address", "pid", "health"):
        table.add_column(column)
    colours = {"healthy": "green", "unhealthy": "yellow", "stopped": "dim"}
    for row in options.stack().status():
        pid = str(row.pid) if row.pid is not None else "-"
        table.add_row(row.name, row.address, pid, f"[{colours[row.state]}]{row.state}[/]")
    Console().print(table)
    url, user, _ = airflow_login(options)
    typer.echo(f"Airflow UI: {url}  user {user}, password: HIGHWAY_AIRFLOW_PASSWORD in `highway stack env`")


@stack_app.command()
def env(ctx: typer.Context) -> None:
    """Print `export KEY=VALUE` lines for clients (eval "$(highway stack env)"); includes local secrets."""
    options: StackOptions = ctx.obj
    url, user, password = airflow_login(options)
    airflow = {"HIGHWAY_AIRFLOW_URL": url, "HIGHWAY_AIRFLOW_USER": user, "HIGHWAY_AIRFLOW_PASSWORD": password}
    for key, value in {**connection.load(options.home).public_env(), **airflow}.items():
        typer.echo(f"export {key}={shlex.quote(value)}")


def airflow_login(options: StackOptions) -> tuple[str, str, str]:
    """The Airflow UI's address and the admin's user name and generated password."""
    from highway.stack.airflow import admin_login

    user, password = admin_login(connection.read_credentials(options.home))
    return f"http://127.0.0.1:{Ports(options.port_base).of('airflow_api')}", user, password
