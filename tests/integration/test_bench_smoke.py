"""A short run of `make bench` against the shared test stack: the report and plots come out whole.

Only correctness is asserted (numbers present, counts equal, files written), never a speed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]
REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[\d.]+"
SINK_SERIES = ("bronze → Elasticsearch", "bronze → PostgreSQL", "Kafka → Elasticsearch", "Kafka → PostgreSQL")


def test_bench_smoke_writes_report_with_ratios_freshness_and_sinks(tmp_path, stack, es_url, pg) -> None:
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
        cwd=REPO, env={**os.environ}, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert "bronze / noop ceiling = " in report
    assert "bronze / raw Delta append = " in report
    assert "p50 = " in report and "p99 = " in report
    assert "nan" not in report.split("## Freshness")[1]
    assert (out / "bronze.png").stat().st_size > 10_000

    to_sinks = report.split("## Freshness to the sinks")[1].split("## Sinks")[0]
    assert "nan" not in to_sinks
    counts = re.search(r"Counts: bronze ([\d,]+) distinct ids, Elasticsearch ([\d,]+) documents, "
                       r"PostgreSQL ([\d,]+) rows", to_sinks)  # fmt: skip
    assert counts, to_sinks
    bronze, es_docs, pg_rows = (int(c.replace(",", "")) for c in counts.groups())
    assert bronze == es_docs == pg_rows == 200 * 10 + 1  # the smoke's 200 events/s for 10 s, plus the seed
    for series in SINK_SERIES:
        row = re.search(rf"\| {series} \| ([\d,]+) \| ({NUMBER}) \| ({NUMBER}) \| ({NUMBER}) \|", to_sinks)
        assert row, f"no row for {series}:\n{to_sinks}"
        assert int(row.group(1).replace(",", "")) == 200 * 10  # every steady event has a delay
        p50, p99, top = (float(v) for v in row.groups()[1:])
        assert p50 <= p99 <= top
        assert f"**{series}: p50 = " in to_sinks
    assert (out / "freshness_sinks.png").stat().st_size > 10_000

    sinks = report.split("## Sinks")[1]
    assert "Elasticsearch: bulk_index / parallel_bulk = " in sinks
    assert "PostgreSQL: write_batch / COPY = " in sinks
    assert "nan" not in sinks
    assert (out / "sinks.png").stat().st_size > 10_000

    parse = report.split("## DAG parse time")[1]
    for dag in (
        "highway_app_control.py",
        "highway_checkpoint.py",
        "highway_checkpoint_backups.py",
        "highway_deploy.py",
        "highway_reconcile.py",
    ):
        row = re.search(rf"\| {dag} \| (\d+) \| ({NUMBER}) \| (\d+) \|", parse)
        assert row, f"no parse time for {dag}:\n{parse}"
        assert float(row.group(2)) > 0
    assert (out / "dag_parse.png").stat().st_size > 5_000
