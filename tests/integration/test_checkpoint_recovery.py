"""Checkpoint faults on a real bronze app, made to happen deterministically, each named by `highway checkpoint
inspect`, refused by the app before it writes anything (or tidied by it), recovered, and ended by the
exactly-once audit.

One app and one topic go through the faults in order (each test adds events to the same stream):
a temp file a kill leaves in batch 0 (the next start removes it); the whole checkpoint deleted while new
events arrive; a deleted `metadata`, a deleted newest commit and a truncated trailing offsets file, with a
second driver refused while the first runs; the checkpoint path changed in the catalog, recovered by the
app itself; unread records deleted by Kafka's retention, reset with every skipped offset counted.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import hwtest
from highway.catalog import BronzeSpec, load

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.fault]

FIXTURE_OFFSETS = Path(__file__).parents[1] / "unit" / "fixtures" / "checkpoint_bronze" / "offsets" / "3"


@dataclass
class App:
    catalog: Path
    spec: BronzeSpec
    tmp: Path
    records: list[Path] = field(default_factory=list)

    def produce(self, count: int) -> None:
        record = self.tmp / f"produced-{len(self.records)}.jsonl"
        hwtest.produce(
            self.catalog, self.spec, count, record, "--bad-ratio", "0.02", "--seed", str(len(self.records))
        )
        self.records.append(record)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [hwtest.HIGHWAY, *args], env=hwtest.env_for(self.catalog), capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip

    def inspect(self) -> dict[str, Any]:
        done = self.cli("checkpoint", "inspect", self.spec.name, "--json")
        report: dict[str, Any] = json.loads(done.stdout)
        assert done.returncode == (0 if report["ok"] else 1), done.stderr
        return report

    def recover(self, mode: str, *extra: str) -> str:
        done = self.cli(
            "checkpoint", "recover", self.spec.name, "--mode", mode, "--reason", f"test {mode}", *extra
        )
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        return done.stdout

    def refused(self) -> str:
        """`highway run` refuses before Spark starts: exit 2, one line; the heartbeat says failed, why."""
        done = self.cli("run", self.spec.name, "--until-idle", "3")
        assert done.returncode == 2, f"{done.stdout}\n{done.stderr}"
        line = done.stderr.strip()
        assert len(line.splitlines()) == 1 and "checkpoint refused: " in line, line
        hb = hwtest.heartbeat(_conn(), self.spec)
        assert hb["state"] == "failed" and hb["error"] in line
        return line

    def run_to_idle(self) -> Path:
        log = self.tmp / f"run-{time.monotonic_ns()}.log"
        hwtest.run_to_idle(self.catalog, self.spec, log, idle=3)
        return log

    def s3(self) -> Any:
        from highway.adapters import s3

        return s3.client(_conn())

    def checkpoint_key(self, relative: str) -> str:
        return f"{self.spec.checkpoint}/{relative}"

    def audit(self, spark: Any) -> None:
        hwtest.audit(spark, _conn(), self.spec, hwtest.read_records(*self.records)).assert_exactly_once()


def _conn() -> Any:
    from highway import connection

    return connection.load()


def codes(report: dict[str, Any]) -> set[str]:
    return {f["code"] for f in report["findings"]}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, stack: Any) -> Iterator[App]:
    tmp = tmp_path_factory.mktemp("checkpoint")
    catalog = tmp / "catalog"
    spec = hwtest.bronze_variant(catalog, "ckpt", trigger_seconds=1, max_offsets_per_trigger=300)
    yield App(catalog, spec, tmp)


def test_a_kill_in_the_first_batch_leaves_a_temp_file_the_next_start_removes(app: App, spark: Any) -> None:
    """Issue 11's stranded app: a temp file in batch 0's offsets made every start fail. Inspect names it;
    the next driver removes it under its lease on any recovery policy (Spark never reads it), says so,
    and records it in the checkpoint audit."""
    from highway.adapters import s3

    app.produce(500)
    # what a SIGKILL between s3a's copy and delete leaves: batch 0's offsets under a temp name, nothing else
    orphan = f"offsets/.0.{uuid.uuid4()}.tmp"
    s3.put_text(app.s3(), _conn().lake_bucket, app.checkpoint_key(orphan), FIXTURE_OFFSETS.read_text())
    report = app.inspect()
    assert codes(report) == {"orphan_temp_file"} and report["temp_files"] == [orphan] and report["ok"]
    assert app.spec.recovery.policy == "manual"
    log = app.run_to_idle().read_text()
    assert f"{app.spec.name}: tidy:\n  delete {orphan}: a temp file a killed write left" in log
    assert s3.get_text(app.s3(), _conn().lake_bucket, app.checkpoint_key(orphan)) is None
    entries = audit_entries(app)
    assert [(e["mode"], e["backup"], [a["path"] for a in e["actions"]]) for e in entries] == [
        ("tidy", None, [orphan])
    ]
    assert entries[0]["who"].startswith(f"app {app.spec.name} (pid ")
    app.audit(spark)


def audit_entries(app: App) -> list[dict[str, Any]]:
    """The app's rows in the checkpoint audit table, oldest first, each with its whole entry parsed."""
    from highway.ops.checkpoints import audit_entries as rows

    return [{**row, **json.loads(row["entry"]), "at": row["at"]} for row in rows(_conn(), app.spec.name)]


def test_a_lost_checkpoint_with_new_events_is_refused_then_rebuilt_from_the_sinks(
    app: App, spark: Any
) -> None:
    from highway.adapters import s3

    client, bucket = app.s3(), _conn().lake_bucket
    before = app.inspect()
    s3.delete_keys(client, bucket, sorted(s3.list_sizes(client, bucket, app.checkpoint_key(""))))
    app.produce(400)  # new events arrive while the checkpoint is gone (the case that lost data silently)
    report = app.inspect()
    assert codes(report) == {"checkpoint_missing"} and not report["exists"]
    assert report["sinks"]["lineage"] == before["lineage"]
    assert "--mode rebuild-from-sink" in app.refused()
    assert "dry run: nothing changed" in app.recover("rebuild-from-sink", "--dry-run")
    assert not app.inspect()["exists"]
    out = app.recover("rebuild-from-sink")
    assert f"write offsets/{report['sinks']['batch_id']}" in out
    rebuilt = app.inspect()
    assert rebuilt["ok"] and rebuilt["lineage"] == before["lineage"]  # the sinks' lineage continues
    assert rebuilt["offsets"] == report["sinks"]["sources"]  # it resumes exactly where the sinks stopped
    entries = audit_entries(app)
    assert len(entries) == 2  # the tidy above, this rebuild
    entry = entries[-1]
    assert entry["mode"] == "rebuild-from-sink" and entry["why"] == "test rebuild-from-sink"
    assert entry["backup"] in app.cli("checkpoint", "backups", app.spec.name).stdout.split()
    # restore round trip: back to the backup the rebuild took (no checkpoint), then to the rebuilt one
    restored = app.cli("checkpoint", "restore", app.spec.name, "--backup", entry["backup"])
    assert restored.returncode == 0, restored.stderr
    assert codes(app.inspect()) == {"checkpoint_missing"}
    newest = app.cli("checkpoint", "backups", app.spec.name).stdout.split()[-1]  # restore backs up first
    assert app.cli("checkpoint", "restore", app.spec.name, "--backup", newest).returncode == 0
    assert app.inspect() == rebuilt
    unknown = app.cli("checkpoint", "restore", app.spec.name, "--backup", "19990101T000000000Z")
    assert (
        unknown.returncode == 2 and "no checkpoint backup '19990101T000000000Z'; allowed: " in unknown.stderr
    )
    app.run_to_idle()
    app.audit(spark)


def test_damaged_files_are_named_and_repaired_and_a_second_driver_is_refused(app: App, spark: Any) -> None:
    from highway.adapters import s3

    client, bucket = app.s3(), _conn().lake_bucket
    state = app.inspect()
    last = state["last_committed_batch"]
    newest = s3.get_text(client, bucket, app.checkpoint_key(f"offsets/{last}")) or ""
    s3.delete_keys(client, bucket, [app.checkpoint_key("metadata"), app.checkpoint_key(f"commits/{last}")])
    s3.put_text(client, bucket, app.checkpoint_key(f"offsets/{last + 1}"), newest[:40])  # a truncated write
    app.produce(300)
    report = app.inspect()
    assert codes(report) == {"missing_metadata", "unparseable_file", "batch_in_flight"}, report["findings"]
    line = app.refused()
    assert "unparseable_file: offsets/" in line and "(+1 more: highway checkpoint inspect" in line
    out = app.recover("repair")
    assert f"delete offsets/{last + 1}" in out and "write metadata" in out
    repaired = app.inspect()
    assert repaired["lineage"] == state["lineage"] and repaired["batch_in_flight"] == last
    assert codes(repaired) == {"batch_in_flight"}  # batch `last` is replayed; its sinks skip it

    log = app.tmp / "first.log"
    first = hwtest.start_app(app.catalog, app.spec, log, "--until-idle", "3")
    try:
        _wait_for_lease(app, first.pid)
        second = app.cli("run", app.spec.name)
        assert second.returncode == 2, second.stderr
        assert f"is held by pid {first.pid} (`highway run {app.spec.name}`)" in second.stderr
        assert (
            app.cli("checkpoint", "recover", app.spec.name, "--mode", "repair", "--reason", "x").returncode
            == 2
        )
        assert hwtest.wait_exit(first, timeout=600) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        hwtest.kill_group(first)
    app.audit(spark)


def _wait_for_lease(app: App, pid: int, timeout: float = 60) -> None:
    from highway.core.supervise import lease_name
    from highway.settings import default_home

    lock = default_home() / "leases" / lease_name(app.spec.checkpoint)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text() or "{}").get("driver") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)  # the poll interval of a wait with a deadline, not a pause
    raise AssertionError(f"`highway run` (pid {pid}) did not take the lease {lock} within {timeout} s")


def test_a_changed_checkpoint_path_is_recovered_by_the_app_under_its_recovery_policy(
    app: App, spark: Any
) -> None:
    path = app.catalog / f"{app.spec.name}.yaml"
    entry = yaml.safe_load(path.read_text())
    entry["checkpoint"] = f"{app.spec.checkpoint}_moved"
    entry["recovery"] = {"policy": "rebuild-from-sink", "keep_backups": 2}
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    app.spec = load(path)  # type: ignore[assignment]
    app.produce(300)
    assert codes(app.inspect()) == {"checkpoint_missing"}
    started = time.monotonic()
    log = app.run_to_idle()
    text = log.read_text(errors="replace")
    assert "checkpoint recovered by rebuild-from-sink" in text, text[-3000:]
    progressed = hwtest.heartbeat(_conn(), app.spec)
    assert progressed["batch_id"] is not None
    took = time.monotonic() - started
    hwtest.measured(
        f"checkpoint path moved, automatic rebuild-from-sink: start -> last batch done: {took:.0f} s"
    )
    app.audit(spark)


def _expire(topic: str, bootstrap: str, before: dict[int, int]) -> None:
    """What Kafka's retention does to a topic, made deterministic: the log start offset of each partition
    moves to ``before[p]`` (DeleteRecords); the records before it are gone."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, p, o) for p, o in before.items()])
    for future in futures.values():
        future.result(timeout=60)


def test_data_expired_unread_is_refused_even_under_a_policy_then_reset_counts_every_skipped_offset(
    app: App, spark: Any
) -> None:
    """Retention deletes records the app has not read: inspect says how many (data_expired); the app
    refuses (no policy skips data by itself); the operator's reset --to available continues at Kafka's
    earliest where the app's position expired, and its audit entry counts exactly the offsets skipped.
    The exactly-once audit then holds for every record that still existed."""
    from highway.adapters import kafka

    conn, topic = _conn(), app.spec.source.topic
    stood = {int(p): o for p, o in app.inspect()["offsets"][0][topic].items()}
    app.produce(300)
    ends = kafka.end_offsets(conn.kafka_bootstrap, topic)
    cut = {p: stood[p] + (ends[p] - stood[p]) // 2 for p in ends if ends[p] - stood[p] >= 2}
    _expire(topic, conn.kafka_bootstrap, cut)
    gone = {
        (r["partition"], r["offset"]) for r in hwtest.read_records(*app.records)
        if r["partition"] in cut and stood[r["partition"]] <= r["offset"] < cut[r["partition"]]
    }  # fmt: skip
    assert len(gone) == sum(cut[p] - stood[p] for p in cut) > 0  # the record files agree with Kafka

    report = app.inspect()
    assert codes(report) == {"data_expired"}, report["findings"]
    assert (
        f"{len(gone):,} records expired from Kafka before the app read them"
        in report["findings"][0]["message"]
    )
    before = len(audit_entries(app))
    line = app.refused()
    assert "data_expired" in line and f"recover {app.spec.name} --mode reset --to available" in line
    assert app.spec.recovery.policy == "rebuild-from-sink" and len(audit_entries(app)) == before

    bad = app.cli("checkpoint", "recover", app.spec.name, "--mode", "reset", "--reason", "x", "--to", "soon")
    assert bad.returncode == 2 and "parameter '--to' has value 'soon'; allowed: available" in bad.stderr
    out = app.recover("reset", "--to", "available")
    for p in sorted(cut):
        assert f"{topic}[{p}]: skips {cut[p] - stood[p]:,} records (offsets {stood[p]}..{cut[p] - 1})" in out
    entry = audit_entries(app)[-1]
    assert entry["mode"] == "reset" and entry["skipped"] == len(gone) and entry["reread"] == 0
    assert {(r["partition"], r["from"], r["to"]) for r in entry["ranges"] if r["skipped"]} == {
        (p, stood[p], cut[p]) for p in cut
    }
    assert app.inspect()["ok"]
    query = (
        "SELECT mode, skipped, reread, lineage_before = lineage_after AS same_lineage FROM checkpoint_audit "
        f"WHERE app = '{app.spec.name}' ORDER BY at DESC LIMIT 1"
    )
    sql = app.cli("sql", query, "--json")
    assert sql.returncode == 0, sql.stderr
    assert json.loads(sql.stdout) == {
        "mode": "reset",
        "skipped": len(gone),
        "reread": 0,
        "same_lineage": True,
    }
    app.run_to_idle()
    kept = [r for r in hwtest.read_records(*app.records) if (r["partition"], r["offset"]) not in gone]
    hwtest.audit(spark, conn, app.spec, kept).assert_exactly_once()
