"""``highway k8s ...``: deploy and operate catalog apps on Kubernetes through ``KubernetesRuntime``.

Thin: check the app is in the catalog, build the runtime, call it, print. The kubernetes client (and
``highway.runtime.kubernetes``) load inside the commands, so ``highway --help`` stays fast. Every error
is a ``HighwayError`` (``CatalogError`` for an unknown app, ``RuntimeTerminal``/``RuntimeTransient``
from the runtime), which ``highway.cli.main`` prints as one line (exit 2).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from highway.core.k8s.common import NAMESPACE
from highway.core.k8s.status import AppStatus
from highway.runtime.base import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from highway.runtime.kubernetes import KubernetesRuntime

k8s_app = typer.Typer(
    help="Deploy and operate catalog apps on Kubernetes (the driver StatefulSet per app).",
    no_args_is_help=True,
)

DEFAULT_TAIL = 200

AppArg = Annotated[str, typer.Argument(metavar="APP", help="Catalog app name, e.g. silver_shop_events.")]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        metavar="PATH",
        help="Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config; in a pod without either: "
        "the pod's service account).",
        show_default=False,
    ),
]
ContextOpt = Annotated[
    str | None, typer.Option("--context", help="Kubeconfig context (default: its current one).")
]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the apps.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the driver pod.", min=0)]


def _runtime(kubeconfig: Path | None, context: str | None, namespace: str) -> KubernetesRuntime:
    """From ``kubeconfig`` (or the default one); in a pod with no kubeconfig at all, in-cluster."""
    from highway.runtime.kubernetes import from_kubeconfig, in_cluster

    no_kubeconfig = (
        kubeconfig is None
        and context is None
        and not os.environ.get("KUBECONFIG")
        and not Path("~/.kube/config").expanduser().exists()
    )
    if no_kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster(namespace=namespace)
    return from_kubeconfig(kubeconfig, context=context, namespace=namespace)


def _catalog_apps() -> list[str]:
    from highway.catalog import catalog_dir

    return sorted(p.stem for p in catalog_dir().glob("*.yaml"))


def _known(app: str) -> str:
    """``app`` when the catalog has it; else the catalog's CatalogError naming the apps it has (checked
    before any connection is made)."""
    from highway.catalog import catalog_dir, get

    if not (catalog_dir() / f"{app}.yaml").is_file():
        get(app)  # raises CatalogError: "... allowed: an app in the catalog: <known apps>"
    return app


@k8s_app.command()
def deploy(
    app: AppArg,
    image: Annotated[str | None, typer.Option(help="Image to run (default: the catalog's).")] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
) -> None:
    """Create or update the app's driver StatefulSet, Service, config and NetworkPolicy (idempotent)."""
    from highway.catalog.store import get_with_text

    spec, text = get_with_text(app)  # refuses an unknown app, validates the entry
    status = _runtime(kubeconfig, context, namespace).deploy(spec, text, image)
    print(status.line())


@k8s_app.command()
def status(
    apps: Annotated[
        list[str] | None, typer.Argument(metavar="APP", help="Apps (default: every catalog app).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per app.")] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
) -> None:
    """What each app's driver is doing: absent, stopped, starting, running or failing."""
    names = [_known(a) for a in apps] if apps else _catalog_apps()
    runtime = _runtime(kubeconfig, context, namespace)
    statuses = [runtime.status(name) for name in names]
    if as_json:
        for one in statuses:
            print(json.dumps(asdict(one)))
    else:
        _print_table(statuses, namespace)


def _print_table(statuses: list[AppStatus], namespace: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    colors = {"running": "green", "starting": "yellow", "failing": "red", "stopped": "dim", "absent": "dim"}
    table = Table(title=f"{len(statuses)} app(s) in namespace {namespace}")
    table.add_column("app", no_wrap=True)
    for column in ("state", "ready", "restarts", "pod", "reason"):
        table.add_column(column, overflow="fold")
    for one in statuses:
        table.add_row(
            escape(one.app),
            f"[{colors.get(one.state, 'default')}]{one.state}[/]",
            "yes" if one.ready else "no",
            str(one.restarts),
            escape(one.pod or ""),
            escape(one.reason or ""),
        )
    Console().print(table)


@k8s_app.command()
def restart(
    app: AppArg,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
) -> None:
    """Replace the driver pod: the old one is gone before the new one starts."""
    _known(app)
    print(_runtime(kubeconfig, context, namespace).restart(app, timeout=timeout).line())


@k8s_app.command()
def stop(
    app: AppArg,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
) -> None:
    """Scale the driver to 0 (the batch in flight finishes) and wait until its pod is gone."""
    _known(app)
    print(_runtime(kubeconfig, context, namespace).stop(app, timeout=timeout).line())


@k8s_app.command()
def start(
    app: AppArg,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
) -> None:
    """Scale a stopped driver back to 1; returns without waiting for it to be ready."""
    _known(app)
    print(_runtime(kubeconfig, context, namespace).start(app).line())


@k8s_app.command()
def logs(
    app: AppArg,
    tail: Annotated[int, typer.Option("--tail", help="How many of the last lines.", min=1)] = DEFAULT_TAIL,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
) -> None:
    """The last lines of the driver's log."""
    _known(app)
    text = _runtime(kubeconfig, context, namespace).logs(app, tail=tail)
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
