"""A short run of `make bench` against the shared test stack: the report and plot come out whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]
REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke_writes_report_with_ratio_and_freshness(tmp_path, stack) -> None:
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
