"""Reconcile's own bookkeeping on the real stack (S3 holds the records) with the real local runtime running
a driver that only sleeps: one app's unreadable record never stops the cycle for the others, and a restart
that fails still counts for the backoff and the budget."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hwtest
from highway.catalog import AppSpec, load_with_text
from highway.ops.observe import HEALTH, HEARTBEAT, Records, observe
from highway.ops.reconcile import reconcile_all
from highway.runtime.local import LocalRuntime

pytestmark = [pytest.mark.integration]

HOUR = 3600.0
_ROUNDS = itertools.count()


def _later() -> float:
    """An hour on: an app with no heartbeat since its start is then past every start window (restart)."""
    return time.time() + HOUR


@pytest.fixture
def deployed(tmp_path: Path, stack: Any) -> Iterator[tuple[LocalRuntime, Records, list[AppSpec]]]:
    from highway import connection

    runtime = LocalRuntime(tmp_path / "home", command=[sys.executable, "-c", "import time; time.sleep(3600)"])
    specs = []
    round_ = next(_ROUNDS)
    for suffix in (f"rec{round_}_a", f"rec{round_}_b"):  # records of their own per test
        spec = hwtest.bronze_variant(tmp_path / "catalog", suffix)
        _, text = load_with_text(tmp_path / "catalog" / f"{spec.name}.yaml")
        runtime.deploy(spec, text)
        specs.append(spec)
    try:
        yield runtime, Records(connection.load()), specs
    finally:
        for spec in specs:
            runtime.stop(spec.name, timeout=60)


def test_an_unreadable_record_is_named_and_the_other_apps_still_get_their_turn(
    deployed: tuple[LocalRuntime, Records, list[AppSpec]],
) -> None:
    from highway.adapters import s3

    runtime, records, (first, second) = deployed
    for name in (HEARTBEAT, HEALTH):
        key = f"{first.status_prefix}/{name}"
        s3.put_text(records.client, records.conn.lake_bucket, key, '{"state": "runn')  # a torn write
    outcomes = {o.app: o for o in reconcile_all(runtime, records, [first, second], dry_run=True)}
    assert set(outcomes) == {first.name, second.name}
    assert outcomes[second.name].error is None and outcomes[second.name].state == "running"
    heartbeat = f"s3://{records.conn.lake_bucket}/{first.status_prefix}/{HEARTBEAT} is not readable JSON"
    assert outcomes[first.name].error is None and outcomes[first.name].state == "running"
    reconcile_all(runtime, records, [first], dry_run=False)
    assert records.read(first, HEALTH)["app"] == first.name  # the unreadable record is replaced
    assert any(heartbeat in p for p in observe(runtime, records, first).problems)


def test_a_restart_that_fails_still_counts_for_the_backoff_and_the_budget(
    deployed: tuple[LocalRuntime, Records, list[AppSpec]],
) -> None:
    runtime, records, (first, second) = deployed
    entry = runtime.home / "apps" / first.name / "catalog" / f"{first.name}.yaml"
    assert entry.exists()
    entry.write_text(entry.read_text().replace(f"name: {first.name}", "name: Not A Name"))
    outcomes = {o.app: o for o in reconcile_all(runtime, records, [first, second], False, _later)}
    failed = outcomes[first.name]
    assert failed.acted == "error" and "the deployed entry is not valid" in (failed.error or ""), failed
    assert outcomes[second.name].acted == "restarted", outcomes[second.name]
    health = records.read(first, HEALTH)
    assert health["acted"] == "restart attempted (not confirmed)"
    assert len(health["history"]["restarts"]) == 1  # the next cycle backs off from this attempt
    again = reconcile_all(runtime, records, [first], False, _later)[0]
    assert again.acted.startswith("waiting "), again.line()
