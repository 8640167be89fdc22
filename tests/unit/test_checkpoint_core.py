"""The checkpoint doctor's pure core: parsing real Spark checkpoint files, findings, plans, start options.

The fixtures under ``fixtures/checkpoint_bronze`` were copied from the checkpoint and the Delta log of a
real bronze run (Spark 4.2, s3a on s3proxy): batches 2 and 3 committed, lineage in ``metadata``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from highway.core import checkpoint as cp
from highway.core import recovery
from highway.core.checkpoint import SinkCommit

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoint_bronze"
LINEAGE = json.loads((FIXTURES / "metadata").read_text())["id"]
END = {"shop.events.dev1": {"0": 340, "1": 487, "2": 380, "3": 293}}
APP = "bronze_app"


def listing(**changes: str | None) -> tuple[dict[str, int], dict[str, str]]:
    """The fixture checkpoint as (keys with sizes, contents of the files ``files_to_read`` names), changed."""
    files = {
        str(p.relative_to(FIXTURES)): p.read_text(errors="replace")
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.name != "delta_commit.json"
    }
    files.update({"offsets/0": files["offsets/2"], "offsets/1": files["offsets/2"]})
    files.update({"commits/0": files["commits/2"], "commits/1": files["commits/2"]})
    for key, text in changes.items():
        key = key.replace("__", "/")
        if text is None:
            files.pop(key, None)
        else:
            files[key] = text
    keys = {k: len(v.encode()) for k, v in files.items()}
    return keys, {k: files[k] for k in cp.files_to_read(keys) if k in files}


def view(**changes: str | None) -> cp.CheckpointView:
    return cp.parse_checkpoint(*listing(**changes))


def sink(batch: int = 3, lineage: str | None = LINEAGE, sources: object = (END,)) -> SinkCommit:
    return SinkCommit("bronze", lineage, batch, tuple(sources) if sources else None, 1.0)  # type: ignore[arg-type]


def codes(findings: list[cp.Finding]) -> list[str]:
    return [f.code for f in findings]


def test_a_real_checkpoint_parses_and_agrees_with_its_sinks() -> None:
    v = view()
    assert v.exists and v.query_id == LINEAGE and v.has_metadata
    assert v.offset_ids == (0, 1, 2, 3) and v.commit_ids == (0, 1, 2, 3)
    assert v.last_commit == 3 and v.in_flight is None
    assert v.resumes_at is not None and v.resumes_at.sources == (END,)
    assert v.resumes_at.batch_timestamp_ms == 1796415224576
    assert recovery.inspect(APP, v, sink()) == []
    assert recovery.refusal_line(APP, []) is None


def test_files_to_read_names_metadata_marker_and_the_newest_batch_files_only() -> None:
    keys = {"metadata": 45, "highway.json": 9, **{f"offsets/{i}": 9 for i in range(12)}, "commits/11": 9}
    keys.update({f"commits/{i}": 9 for i in range(11)})
    assert cp.files_to_read(keys) == ["metadata", "highway.json", "offsets/10", "offsets/11", "commits/11"]


def test_delta_commit_info_reads_the_user_metadata_of_a_real_commit() -> None:
    at, meta = cp.delta_commit_info((FIXTURES / "delta_commit.json").read_text()) or (0.0, None)
    found = cp.sink_commit_from_metadata("bronze", meta, at)
    assert found is not None and found.batch_id == 3 and at == 1796415228.77
    assert found.sources == (END,) and found.lineage == LINEAGE
    assert cp.sink_commit_from_metadata("bronze", '{"other": 1}', 0) is None
    assert cp.sink_commit_from_metadata("bronze", "not json", 0) is None
    assert cp.delta_commit_keys(["t/_delta_log/00000000000000000001.json", "t/_delta_log/x.crc",
                                 "t/_delta_log/00000000000000000002.json"])[0].endswith("2.json")  # fmt: skip


def test_a_kill_during_the_first_batch_leaves_a_temp_file_the_next_driver_tidies_on_any_policy() -> None:
    temp = "offsets/.0.8f2b4d1e-7c5a-4e59-9a0e-3d2c1b0a9f8e.tmp"
    keys = {temp: 1066, "offsets/": 0, "": 0}
    v = cp.parse_checkpoint(keys, {})
    found = recovery.inspect(APP, v, None)
    assert codes(found) == [cp.ORPHAN_TEMP_FILE] and found[0].severity == "tidy"
    assert recovery.refusal_line(APP, found) is None  # not a reason to refuse: the start tidies it
    tidy = recovery.tidy_plan(APP, v)
    assert tidy is not None and tidy.mode == recovery.TIDY
    assert [(a.kind, a.path) for a in tidy.actions] == [("delete", temp)]
    assert recovery.tidy_plan(APP, cp.parse_checkpoint({"offsets/0": 10, "": 0}, {})) is None
    plan = recovery.plan_recovery(APP, "repair", v, None, found, "kill", 0.0, "new")
    assert plan.refused is None and [(a.kind, a.path) for a in plan.actions] == [("delete", temp)]


def test_a_temp_file_beside_a_real_fault_still_refuses_on_the_real_fault() -> None:
    keys = {"offsets/.1.x.tmp": 5, "offsets/0": 10, "commits/0": 5, "": 0}
    v = cp.parse_checkpoint(
        keys, {"offsets/0": (FIXTURES / "offsets" / "3").read_text(), "commits/0": cp.COMMIT_TEXT}
    )
    found = recovery.inspect(APP, v, None)
    assert {cp.ORPHAN_TEMP_FILE, cp.MISSING_METADATA} <= set(codes(found))
    line = recovery.refusal_line(APP, found)
    assert line is not None and "missing_metadata" in line and "orphan_temp_file" not in line


STARTS = {"shop.events.dev1": {"0": 300, "1": 450, "2": 350, "3": 260}}


def test_a_lost_checkpoint_is_refused_and_rebuilt_from_the_sinks_to_replay_their_newest_batch() -> None:
    v = cp.parse_checkpoint({}, {})
    found = recovery.inspect(APP, v, sink())
    assert codes(found) == [cp.CHECKPOINT_MISSING]
    assert "--mode rebuild-from-sink" in (recovery.refusal_line(APP, found) or "")
    assert recovery.plan_recovery(APP, "repair", v, sink(), found, "x", 0.0, "n").refused
    newest = SinkCommit("bronze", LINEAGE, 3, (END,), 1.0, (STARTS,))
    conf = recovery.checkpoint_conf(4, "RocksDB")
    plan = recovery.plan_recovery(APP, "rebuild-from-sink", v, newest, found, "lost", 5.0, "unused", conf)
    assert [(a.kind, a.path) for a in plan.actions] == [
        ("clear", ""),
        ("write", "metadata"),
        ("write", "offsets/2"),
        ("write", "commits/2"),
        ("write", "offsets/3"),
        ("write", cp.MARKER),
    ]
    files = {a.path: a.text or "" for a in plan.actions if a.kind == "write"}
    assert json.loads(files[cp.MARKER])["rebuilt_from"] == {
        "lineage": LINEAGE,
        "batch_id": 3,
        "sink": "bronze",
    }
    rebuilt = cp.parse_checkpoint({k: len(t) for k, t in files.items()}, files)
    # the sinks' lineage, batch 3 in flight over exactly its original range: sinks holding it skip it
    assert rebuilt.query_id == LINEAGE and rebuilt.last_commit == 2 and rebuilt.in_flight == 3
    assert rebuilt.offsets[2].sources == (STARTS,) and rebuilt.offsets[3].sources == (END,)
    assert files["offsets/3"].splitlines()[2] == json.dumps(END, separators=(",", ":"))
    # Spark reads the shuffle partitions of both offsets files back when it replays a batch
    assert json.loads(files["offsets/2"].splitlines()[1])["conf"]["spark.sql.shuffle.partitions"] == "4"
    assert codes(recovery.inspect(APP, rebuilt, newest)) == [cp.BATCH_IN_FLIGHT]
    legacy = SinkCommit("bronze", None, 3, None, 1.0)
    assert recovery.plan_recovery(APP, "rebuild-from-sink", v, legacy, found, "x", 0.0, "n").refused
    no_start = SinkCommit("bronze", LINEAGE, 3, (END,), 1.0, None)
    assert recovery.plan_recovery(APP, "rebuild-from-sink", v, no_start, found, "x", 0.0, "n").refused


def test_a_rebuild_of_batch_0_records_where_a_kafka_source_began() -> None:
    first = SinkCommit("bronze", LINEAGE, 0, (END,), 1.0, (STARTS,))
    plan = recovery.plan_recovery(
        APP, "rebuild-from-sink", cp.CheckpointView(False), first, [], "x", 0.0, "n"
    )
    files = {a.path: a.text or "" for a in plan.actions if a.kind == "write"}
    assert sorted(files) == [cp.MARKER, "metadata", "offsets/0", "sources/0/0"]
    real = (FIXTURES / "sources" / "0" / "0").read_text()
    assert cp.initial_offsets(real) == {"shop.events.dev1": {"0": 0, "1": 0, "2": 0, "3": 0}}
    assert cp.initial_offsets(files["sources/0/0"]) == STARTS
    assert cp.initial_offsets_text(cp.initial_offsets(real)) == real


def test_the_newest_commit_is_the_highest_batch_of_the_lineage_written_last() -> None:
    silver = SinkCommit("silver", "L2", 8, (END,), 20.0)
    warehouse = SinkCommit("warehouse", "L2", 7, (END,), 19.0)  # the kill came before its commit
    old = SinkCommit("dlq", "L1", 40, (END,), 10.0)
    assert cp.newest_commit([warehouse, None, old, silver]) == silver
    assert cp.newest_commit([old, None]) == old and cp.newest_commit([None]) is None


def test_another_checkpoint_in_place_of_the_sinks_one_is_a_lineage_mismatch() -> None:
    found = recovery.inspect(APP, view(), sink(lineage="someone-else"))
    assert codes(found) == [cp.LINEAGE_MISMATCH]
    assert "someone-else" in found[0].message and LINEAGE in found[0].message


def test_a_checkpoint_behind_or_ahead_of_the_sinks_is_refused() -> None:
    assert codes(recovery.inspect(APP, view(), sink(batch=5))) == [cp.BEHIND_SINKS]
    assert codes(recovery.inspect(APP, view(), sink(batch=1))) == [cp.AHEAD_OF_SINKS]
    assert codes(recovery.inspect(APP, view(), None)) == [cp.AHEAD_OF_SINKS]
    assert recovery.inspect(APP, view(), sink(lineage=None, batch=1)) == []  # commits from before lineage


def test_a_deleted_newest_commit_is_a_batch_in_flight_which_the_sinks_skip_on_replay() -> None:
    v = view(commits__3=None)
    assert v.in_flight == 3 and v.last_commit == 2
    found = recovery.inspect(APP, v, sink(batch=3))
    assert codes(found) == [cp.BATCH_IN_FLIGHT] and recovery.refusal_line(APP, found) is None
    assert recovery.inspect(APP, v, sink(batch=2)) == found  # crashed before the sinks committed: also fine


def test_a_deleted_metadata_is_restored_with_the_sinks_lineage_never_a_new_one() -> None:
    v = view(metadata=None)
    found = recovery.inspect(APP, v, sink())
    assert codes(found) == [cp.MISSING_METADATA]
    plan = recovery.plan_recovery(APP, "repair", v, sink(), found, "x", 0.0, "fresh-id")
    assert [(a.kind, a.path, a.text) for a in plan.actions] == [
        ("write", "metadata", f'{{"id":"{LINEAGE}"}}')
    ]
    alone = recovery.plan_recovery(APP, "repair", v, None, found, "x", 0.0, "fresh-id")
    assert alone.actions[-1].text == '{"id":"fresh-id"}'


def test_a_truncated_trailing_offsets_file_is_removed_only_when_no_sink_committed_it() -> None:
    truncated = (FIXTURES / "offsets" / "3").read_text()[:40]
    v = view(offsets__4=truncated)
    found = recovery.inspect(APP, v, sink())
    assert sorted(codes(found)) == [cp.BATCH_IN_FLIGHT, cp.UNPARSEABLE_FILE]
    plan = recovery.plan_recovery(APP, "repair", v, sink(), found, "x", 0.0, "n")
    assert [(a.kind, a.path) for a in plan.actions] == [("delete", "offsets/4")]
    committed = recovery.plan_recovery(APP, "repair", v, sink(batch=4), found, "x", 0.0, "n")
    assert committed.refused and "rebuild-from-sink" in committed.refused
    assert view(offsets__4="").bad_files[0].code == cp.EMPTY_FILE


def test_gaps_state_versions_and_expired_offsets_have_their_codes() -> None:
    assert cp.BATCH_GAP in codes(recovery.inspect(APP, view(offsets__1=None, commits__1=None), sink()))
    lost = [f for f in recovery.inspect(APP, view(offsets__2=None), sink()) if f.code == cp.MISSING_FILE]
    assert [(f.path, f.severity) for f in lost] == [("offsets/2", "blocking")]
    state = cp.parse_checkpoint({"metadata": 4, "offsets/0": 1, "commits/0": 1, "state/0/0/1.delta": 1,
                                 "state/0/1/0.delta": 1}, {"metadata": '{"id":"a"}'})  # fmt: skip
    found = recovery.inspect(APP, state, None)
    assert [f.path for f in found if f.code == cp.STATE_MISMATCH] == ["state/0/1"]
    expired = recovery.inspect(APP, view(), sink(), {"shop.events.dev1": {0: 300, 1: 600, 2: 0, 3: 0}})
    assert codes(expired) == [cp.DATA_EXPIRED]
    assert "113 records expired from Kafka before the app read them" in expired[0].message
    assert "shop.events.dev1[1] resumes at 487, earliest 600" in expired[0].message
    assert f"highway checkpoint recover {APP} --mode reset --to available" in expired[0].message


def test_rebuild_from_sink_is_refused_for_a_checkpoint_that_keeps_spark_state() -> None:
    """The shipped apps keep no Spark state (gold's windows live in the warehouse); a query that does
    would restart with empty state from a rebuilt checkpoint: refused, naming what to do instead."""
    stateful = cp.parse_checkpoint(
        {"metadata": 4, "offsets/0": 1, "commits/0": 1, "state/0/0/1.delta": 1, "state/0/1/1.delta": 1},
        {"metadata": '{"id":"a"}'},
    )
    plan = recovery.plan_recovery(APP, "rebuild-from-sink", stateful, sink(), [], "x", 0.0, "n")
    assert plan.refused and "keeps Spark state (2 state store partition(s)" in plan.refused
    assert "--mode rollback or restore a backup" in plan.refused and not plan.actions
    stateless = recovery.plan_recovery(APP, "rebuild-from-sink", view(), sink(), [], "x", 0.0, "n")
    assert "Spark state" not in (stateless.refused or "")


def test_modes_allowed_by_each_recovery_policy() -> None:
    assert recovery.modes_for("manual") == ()
    assert recovery.modes_for("repair") == ("repair",)
    assert recovery.modes_for("rebuild-from-sink") == ("repair", "rebuild-from-sink")
    assert recovery.plan_recovery(APP, "reset", view(), None, [], "x", 0, "n").refused  # no Kafka offsets
    assert recovery.plan_recovery(APP, "nonsense", view(), None, [], "x", 0, "n").refused


def test_reset_to_available_after_expiry_counts_every_skipped_offset_and_keeps_the_lineage() -> None:
    earliest = {"shop.events.dev1": {0: 300, 1: 600, 2: 0, 3: 0}}
    found = recovery.inspect(APP, view(), sink(), earliest)
    conf = recovery.checkpoint_conf(4, "RocksDB")
    plan = recovery.plan_recovery(
        APP, "reset", view(), sink(), found, "expired", 5.0, "n", conf, earliest, "available"
    )
    assert plan.refused is None
    assert [(a.kind, a.path) for a in plan.actions] == [
        ("clear", ""), ("write", "metadata"), ("write", "offsets/2"), ("write", "commits/2"),
        ("write", "offsets/3"), ("write", "commits/3"), ("write", cp.MARKER),
    ]  # fmt: skip
    # the app stood at the sinks' newest batch's end (END); partition 1 lost 600 - 487 to expiry
    skipped = {r["partition"]: (r["from"], r["to"], r["skipped"], r["reread"]) for r in plan.ranges}
    assert skipped == {0: (340, 340, 0, 0), 1: (487, 600, 113, 0), 2: (380, 380, 0, 0), 3: (293, 293, 0, 0)}
    assert "  shop.events.dev1[1]: skips 113 records (offsets 487..599)" in plan.lines()
    # to earliest: every partition from Kafka's earliest, what is read again counted
    again = recovery.plan_recovery(
        APP, "reset", view(), sink(), found, "x", 5.0, "n", conf, earliest, "earliest"
    )
    assert [(r["skipped"], r["reread"]) for r in again.ranges] == [(0, 40), (113, 0), (0, 380), (0, 293)]
    assert "  shop.events.dev1[2]: reads 380 records again (offsets 0..379)" in again.lines()
    files = {a.path: a.text or "" for a in plan.actions if a.kind == "write"}
    after = cp.parse_checkpoint({k: len(t) for k, t in files.items()}, files)
    assert after.query_id == LINEAGE and after.last_commit == 3 and after.in_flight is None
    assert recovery.inspect(APP, after, sink(), earliest) == []  # it starts, at the target
    assert after.resumes_at is not None and after.resumes_at.sources[0]["shop.events.dev1"]["1"] == 600


def test_reset_of_an_app_that_never_committed_starts_batch_0_at_the_target() -> None:
    plan = recovery.plan_recovery(APP, "reset", cp.parse_checkpoint({}, {}), None, [], "x", 0.0, "new-id",
                                  {}, {"t": {0: 7}}, "latest")  # fmt: skip
    files = {a.path: a.text or "" for a in plan.actions if a.kind == "write"}
    assert sorted(files) == [cp.MARKER, "metadata", "sources/0/0"]
    assert cp.initial_offsets(files["sources/0/0"]) == {"t": {"0": 7}} and "new-id" in files["metadata"]


def test_the_reset_target_is_earliest_latest_or_a_time_with_its_zone() -> None:
    assert recovery.parse_reset_target("earliest") == "earliest"
    assert recovery.parse_reset_target("1764842400000") == 1764842400000
    assert recovery.parse_reset_target("2026-12-04T10:00:00Z") == 1796378400000
    for bad in ("yesterday", "2026-12-04T10:00:00"):
        with pytest.raises(ValueError, match=r"allowed: available .*, earliest, latest, or a time"):
            recovery.parse_reset_target(bad)


def test_rollback_returns_to_the_newest_whole_batch_unless_a_sink_holds_a_later_one() -> None:
    damaged = view(commits__3=None, offsets__3=(FIXTURES / "offsets" / "3").read_text()[:30])
    plan = recovery.plan_recovery(APP, "rollback", damaged, sink(batch=2), [], "x", 0.0, "n")
    assert plan.refused is None and [(a.kind, a.path) for a in plan.actions] == [("delete", "offsets/3")]
    refused = recovery.plan_recovery(APP, "rollback", damaged, sink(batch=3), [], "x", 0.0, "n")
    assert refused.refused and "use --mode rebuild-from-sink" in refused.refused
    assert recovery.plan_recovery(APP, "rollback", view(), sink(), [], "x", 0.0, "n").lines() == [
        f"{APP}: rollback: nothing to do"
    ]


def test_a_drivers_failure_is_told_apart_as_a_checkpoint_problem_or_not() -> None:
    refusal = recovery.refusal_line(APP, recovery.inspect(APP, cp.parse_checkpoint({}, {}), sink()))
    assert recovery.checkpoint_failure(refusal) == cp.CHECKPOINT_MISSING
    spark = (
        "[STREAM_FAILED] ... [STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY] The checkpoint location ... batch 0"
    )
    assert recovery.checkpoint_failure(spark) == cp.ORPHAN_TEMP_FILE
    assert recovery.checkpoint_failure("PostgreSQL at 127.0.0.1:5432 is not reachable") is None
    assert recovery.checkpoint_failure(None) is None
