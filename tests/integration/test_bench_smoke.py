"""A short run of `make bench` against the shared test stack: the report and plots come out whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]
REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke_writes_report_with_ratios_freshness_and_sinks(tmp_path, stack) -> None:
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
    sinks = report.split("## Sinks")[1]
    assert "Elasticsearch: bulk_index / parallel_bulk = " in sinks
    assert "PostgreSQL: write_batch / COPY = " in sinks
    assert "nan" not in sinks
    assert (out / "sinks.png").stat().st_size > 10_000
