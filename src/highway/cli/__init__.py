"""The ``highway`` command. Thin: parse arguments, call the library, print results.

Heavy modules (pyspark, confluent_kafka, boto3) are imported inside the commands that need them,
so ``highway --help`` and ``highway stack status`` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from highway.cli.checkpoint import checkpoint_app
from highway.errors import HighwayError
from highway.k8s_cli import k8s_app
from highway.stack.commands import stack_app

app = typer.Typer(
    name="highway",
    help="A streaming data highway: Kafka -> Spark -> Delta lake, Elasticsearch, PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(stack_app, name="stack")
app.add_typer(k8s_app, name="k8s")
app.add_typer(checkpoint_app, name="checkpoint")
manifests_app = typer.Typer(
    help="Kubernetes manifests rendered from the catalog (k8s/).", no_args_is_help=True
)
app.add_typer(manifests_app, name="manifests")
console = Console(stderr=True)


@app.command()
def produce(
    count: Annotated[int, typer.Option(help="How many events to send.", min=1)] = 1000,
    rate: Annotated[float, typer.Option(help="Events per second; 0 = as fast as possible.", min=0)] = 0,
    bad_ratio: Annotated[float, typer.Option(help="Fraction of malformed events.", min=0, max=1)] = 0.01,
    late_ratio: Annotated[float, typer.Option(help="Fraction of late events.", min=0, max=1)] = 0.05,
    dup_ratio: Annotated[
        float,
        typer.Option(help="Fraction of re-sent earlier valid events (producer retries).", min=0, max=1),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same events).")] = 7,
    app_name: Annotated[
        str, typer.Option("--app", help="Catalog app whose topic to feed.")
    ] = "bronze_shop_events",
    topic: Annotated[str | None, typer.Option(help="Topic (default: the app's source topic).")] = None,
    record: Annotated[Path | None, typer.Option(help="Write one JSON line per produced event here.")] = None,
) -> None:
    """Send synthetic shop events (page views, carts, orders, payments) to Kafka."""
    from highway.produce import run_produce

    run_produce(
        count=count,
        rate=rate,
        bad_ratio=bad_ratio,
        late_ratio=late_ratio,
        dup_ratio=dup_ratio,
        seed=seed,
        app_name=app_name,
        topic=topic,
        record=record,
    )


@app.command()
def run(
    app_name: Annotated[
        str, typer.Argument(metavar="APP", help="Catalog app name, e.g. bronze_shop_events.")
    ],
    until_idle: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds with no new input (batch-like runs, demo, tests)."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Prometheus port (default from the stack).")
    ] = None,
) -> None:
    """Run a streaming app from the catalog until stopped (SIGTERM stops after the current batch)."""
    from highway.spark.apps import run_app

    run_app(app_name, until_idle=until_idle, metrics_port=metrics_port)


@app.command()
def demo(
    count: Annotated[int, typer.Option(help="How many events to produce.", min=1)] = 20_000,
) -> None:
    """Start the local stack, produce events, run bronze, silver and gold, and check every store."""
    from highway.demo import run_demo
    from highway.settings import default_home, default_port_base

    run_demo(default_home(), default_port_base(), count)


@app.command()
def search(
    query: Annotated[
        str | None, typer.Argument(help="Query string, e.g. 'event_type:payment AND currency:EUR'.")
    ] = None,
    index: Annotated[str, typer.Option(help="Elasticsearch index or alias.")] = "shop-events",
    field: Annotated[
        list[str] | None, typer.Option(help="Exact match name=value (repeatable), e.g. user_id=u-00042.")
    ] = None,
    time_from: Annotated[str | None, typer.Option("--from", help="Events at or after (ISO-8601).")] = None,
    time_to: Annotated[str | None, typer.Option("--to", help="Events at or before (ISO-8601).")] = None,
    size: Annotated[int, typer.Option(help="How many events at most (1-10000).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line.")] = False,
) -> None:
    """Search events in Elasticsearch; newest first, as a table or JSON lines."""
    from highway.search_cli import search_command

    search_command(query, index, field or (), time_from, time_to, size, as_json)


@app.command()
def sql(
    query: Annotated[
        str | None,
        typer.Argument(help="One read-only statement, e.g. 'SELECT count(*) FROM bronze_shop_events'."),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many rows to print at most (1-10000).")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per row.")] = False,
    tables: Annotated[
        bool, typer.Option("--tables", help="List the registered views and their paths.")
    ] = False,
) -> None:
    """Query the lake's Delta tables with Spark SQL (read-only); each table is a view named after its path."""
    from highway.sql_cli import sql_command

    sql_command(query, limit, as_json, tables)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per app.")] = False,
    runtime: Annotated[
        str, typer.Option(help="Where the apps run: local (this stack's supervisor) or kubernetes.")
    ] = "local",
    kubeconfig: Annotated[
        Path | None, typer.Option(help="Kubeconfig for --runtime kubernetes (default: $KUBECONFIG).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context.")] = None,
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the apps.")] = "highway",
) -> None:
    """Every catalog app: runtime state, last batch, rate, lag, restarts and the health decision."""
    from highway.status_cli import status_command

    status_command(as_json, runtime, kubeconfig, context, namespace)


@manifests_app.command("render")
def manifests_render(
    check: Annotated[
        bool,
        typer.Option("--check", help="Change nothing; fail if k8s/ differs from what the catalog gives."),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Output directory (default: the checkout's k8s/).")] = None,
) -> None:
    """Write k8s/base, k8s/apps/<app>, k8s/overlays/{kind,minikube} and k8s/jobs from the catalog."""
    from highway import manifests
    from highway.settings import repo_root

    target = out or repo_root() / "k8s"
    files = manifests.render()
    if check:
        manifests.check_or_fail(target, files)
        print(f"{target}: {len(files)} files match the catalog")
        return
    done = manifests.write(target, files)
    changed = len(done.missing) + len(done.changed)
    print(f"{target}: {len(files)} files; {changed} written, {len(done.extra)} removed")


def main() -> None:
    try:
        app()
    except HighwayError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
