"""``highway status``: a table (or JSON lines) of every catalog app, read-only."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from highway import catalog, connection
from highway.errors import ParamError
from highway.ops.connections import RUNTIME_KINDS
from highway.ops.observe import Records
from highway.ops.runtimes import runtime_from
from highway.ops.status import StatusRow, status_rows
from highway.settings import default_home


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago"


def _when(epoch: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch is not None else "-"


def table(rows: list[StatusRow]) -> Table:
    out = Table(title="highway apps", title_justify="left")
    for name in ("app", "state", "last batch", "heartbeat", "rate/s", "lag", "restarts", "decision"):
        out.add_column(name, overflow="fold")
    for r in rows:
        lag = (
            "-" if r.lag is None else f"{r.lag:,}" + ("" if r.lag_trend == "unknown" else f" ({r.lag_trend})")
        )
        decision = r.decision if not r.failed else "FAILED"
        out.add_row(
            r.app,
            r.state,
            _when(r.last_batch_at) + ("" if r.batch_id is None else f" (#{r.batch_id})"),
            _age(r.heartbeat_age),
            "-" if r.rate is None else f"{r.rate:,.0f}",
            lag,
            str(r.restarts),
            f"{decision}: {r.reason}" + (f"; checkpoint {r.checkpoint}" if r.checkpoint else ""),
        )
    return out


def status_command(
    as_json: bool, runtime: str, kubeconfig: Path | None, context: str | None, namespace: str
) -> None:
    if runtime not in RUNTIME_KINDS:
        raise ParamError("--runtime", runtime, ", ".join(RUNTIME_KINDS))
    home = default_home()
    settings: dict[str, object] = (
        {"kind": "local", "home": str(home)}
        if runtime == "local"
        else {"kind": "kubernetes", "kubeconfig": kubeconfig, "context": context, "namespace": namespace}
    )
    rows = status_rows(runtime_from(settings), Records(connection.load(home)), catalog.load_all().values())
    if as_json:
        for row in rows:
            print(json.dumps(row.as_dict(), sort_keys=True))
        return
    Console().print(table(rows))
