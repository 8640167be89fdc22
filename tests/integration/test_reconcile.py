"""Reconcile's and deploy's bookkeeping on the real stack (S3 holds the records) with the real local runtime
running a driver that only sleeps: one app's unreadable record never stops the cycle for the others, a
restart that fails still counts for the backoff and the budget, and a deploy counts progress only from a
driver of its own spec."""

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


def test_a_deploy_counts_progress_only_from_a_driver_of_its_spec(
    deployed: tuple[LocalRuntime, Records, list[AppSpec]],
) -> None:
    """The old driver's last batches (its grace period on Kubernetes) must not pass for the new spec: the
    runtime gives the driver its spec's digest, which stamps every heartbeat; progress counts for it only."""
    from highway.core.release import SPEC_DIGEST_ENV, spec_digest
    from highway.ops.deploy import progress_since

    runtime, records, (first, _second) = deployed
    entry = runtime.home / "apps" / first.name / "catalog" / f"{first.name}.yaml"
    digest = spec_digest(entry.read_text(), None)
    supervisor = int((runtime.home / "apps" / first.name / "supervisor.pid").read_text().split()[0])
    environ = Path(f"/proc/{supervisor}/environ").read_bytes().split(b"\0")
    assert f"{SPEC_DIGEST_ENV}={digest}".encode() in environ  # what its drivers inherit
    since = time.time()
    old = {"app": first.name, "state": "running", "batch_id": 7, "written_at": since + 1}
    records.write(first, HEARTBEAT, {**old, "spec_digest": "0123456789ab"})  # the previous spec's driver
    assert progress_since(records, first.status_prefix, since, digest) is None
    records.write(first, HEARTBEAT, old)  # a driver that says nothing of its spec
    assert progress_since(records, first.status_prefix, since, digest) is None
    records.write(first, HEARTBEAT, {**old, "spec_digest": digest})
    assert progress_since(records, first.status_prefix, since, digest)["batch_id"] == 7
