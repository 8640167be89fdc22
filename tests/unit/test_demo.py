"""highway.demo's pure helpers: what the record files say was produced, and which counts differ."""

from __future__ import annotations

import json

from highway.demo import Produced, mismatches, summarize


def _line(event_id: str, valid: bool = True, reason: str | None = None, dup: bool = False) -> str:
    row = {"id": event_id, "valid": valid, "reason": reason, "late": False, "dup": dup}
    return json.dumps({**row, "partition": 0, "offset": 0})


def test_duplicates_count_in_bronze_but_once_in_silver() -> None:
    lines = [_line("a"), _line("b"), _line("a", dup=True), _line("x", False, "invalid_json"), ""]
    produced = summarize(lines)
    assert (produced.valid, produced.duplicates, produced.distinct_valid) == (3, 1, 2)
    assert produced.invalid == {"invalid_json": 1}


def test_runs_add_up_and_older_record_files_without_dup_are_read() -> None:
    produced = summarize([_line("a")])
    old_format = json.dumps({"id": "b", "valid": True, "reason": None, "late": True})
    summarize([old_format, _line("a", dup=True)], into=produced)
    assert (produced.valid, produced.duplicates, produced.distinct_valid) == (3, 1, 2)


def test_empty_summary() -> None:
    assert Produced().distinct_valid == 0
    assert summarize([]).valid == 0


def test_mismatches_name_each_differing_count_and_skip_shown_only_rows() -> None:
    checks = [
        ("silver Delta rows", 10, 10),
        ("Elasticsearch docs", 10, 9),
        ("warehouse rows", 10, None),
        ("silver DLQ rows", None, 3),
    ]
    assert mismatches(checks) == [
        "Elasticsearch docs: 9, expected 10 (off by -1)",
        "warehouse rows: not found (expected 10)",
    ]
    assert mismatches([("bronze", 1_000, 1_000)]) == []
