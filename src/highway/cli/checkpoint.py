"""``highway checkpoint inspect|backup|backups|restore|recover APP``: the checkpoint doctor from the shell.

Everything reads and writes S3 directly (no Spark). ``restore`` and ``recover`` need the app stopped:
they take its checkpoint lease (the one its driver holds) and refuse, naming the holder, when it runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from highway.catalog import AppSpec
from highway.core.recovery import MODES, RESET_TARGETS
from highway.errors import ParamError

checkpoint_app = typer.Typer(
    help="Inspect, back up, restore and recover an app's streaming checkpoint.", no_args_is_help=True
)
AppArg = Annotated[str, typer.Argument(metavar="APP", help="Catalog app name, e.g. bronze_shop_events.")]


@contextmanager
def app_lease(app: str) -> Iterator[AppSpec]:
    """The app's spec, its checkpoint lease held for the duration (no driver runs or starts meanwhile)."""
    from highway import catalog
    from highway.ops.checkpoints import app_lease as hold
    from highway.settings import default_home

    spec = catalog.get(app)
    with hold(default_home(), spec):
        yield spec


def _finding_lines(findings: list[dict[str, str]]) -> list[str]:
    return [f"  {f['severity']:<10} {f['code']:<18} {f['message']}" for f in findings] or ["  no findings"]


@checkpoint_app.command("inspect")
def inspect_command(
    app: AppArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """The checkpoint next to what the sinks committed and what Kafka holds; each problem under its code.

    Exit status 0 when the app may start on it, 1 when a finding blocks it."""
    from highway import catalog, connection
    from highway.ops import checkpoints

    spec = catalog.get(app)
    report = checkpoints.examine(connection.load(), spec).to_dict()
    if as_json:
        print(json.dumps(report, sort_keys=True))
    else:
        sinks = report["sinks"] or {}
        print(f"{app}: checkpoint {report['checkpoint']} ({'present' if report['exists'] else 'absent'})")
        print(f"  lineage {report['lineage']}, last committed batch {report['last_committed_batch']}, "
              f"in flight {report['batch_in_flight']}")  # fmt: skip
        print(f"  resumes at {json.dumps(report['offsets'])}")
        print(f"  sinks: batch {sinks.get('batch_id')} of lineage {sinks.get('lineage')} "
              f"in {sinks.get('sink')}, "
              f"ending at {json.dumps(sinks.get('sources'))}")  # fmt: skip
        print(f"  kafka earliest: {json.dumps(report['kafka_earliest'])}")
        for line in _finding_lines(report["findings"]):
            print(line)
    raise typer.Exit(0 if report["ok"] else 1)


@checkpoint_app.command("backup")
def backup_command(app: AppArg) -> None:
    """Copy the checkpoint to _backups/checkpoints/APP/ID (keeps the catalog's recovery.keep_backups)."""
    from highway import catalog, connection
    from highway.ops import checkpoints

    spec = catalog.get(app)
    ident, files = checkpoints.backup(connection.load(), spec)
    print(f"{app}: backup {ident} ({files} files)")


@checkpoint_app.command("backups")
def backups_command(app: AppArg) -> None:
    """List the app's checkpoint backups, oldest first."""
    from highway import catalog, connection
    from highway.ops import checkpoints

    for ident in checkpoints.backups(connection.load(), catalog.get(app)):
        print(ident)


@checkpoint_app.command("restore")
def restore_command(
    app: AppArg,
    backup: Annotated[str, typer.Option("--backup", help="Backup id (highway checkpoint backups).")],
) -> None:
    """Replace the checkpoint with a backup (the current one is backed up first); the app must be stopped."""
    from highway import connection
    from highway.ops import checkpoints

    with app_lease(app) as spec:
        files = checkpoints.restore(connection.load(), spec, backup)
    print(f"{app}: checkpoint restored from backup {backup} ({files} files)")


@checkpoint_app.command("recover")
def recover_command(
    app: AppArg,
    mode: Annotated[str, typer.Option(help=f"One of: {', '.join(MODES)}.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit entry).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
    to: Annotated[str | None, typer.Option("--to", help=f"reset: where to start; {RESET_TARGETS}.")] = None,
) -> None:
    """Print the plan, back up, mend the checkpoint, and record an audit entry; the app must be stopped.

    repair: temp files, a damaged trailing file, a lost `metadata`. rollback: back to the newest whole
    batch. rebuild-from-sink: a checkpoint that continues exactly where the sinks stopped. reset --to:
    start elsewhere in Kafka; every offset skipped or read again is counted in the audit entry."""
    from highway import connection
    from highway.ops import checkpoints

    if mode not in MODES:
        raise ParamError("--mode", mode, ", ".join(MODES))
    if not reason.strip():
        raise ParamError("--reason", reason, "a non-empty text saying why")
    checkpoints.check_reset_target(mode, to, "--to")
    who = os.environ.get("USER") or f"uid {os.getuid()}"
    with app_lease(app) as spec:
        done = checkpoints.recover(connection.load(), spec, mode, reason, dry_run=dry_run, who=who, to=to)
    for line in done.plan.lines():
        print(line)
    if done.plan.refused:
        raise typer.Exit(1)
    if dry_run:
        print(f"{app}: dry run: nothing changed")
        return
    if done.after is not None:
        print(f"{app}: backup {done.backup_id}; after:")
        for line in _finding_lines([f.to_dict() for f in done.after.findings]):
            print(line)
