"""DAG parse cost: each file imported in a fresh interpreter (as Airflow's dag-processor does), timed
against the cost of importing Airflow's Task SDK alone in the same run."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TIMER = r"""
import json, runpy, sys, time
t0 = time.perf_counter()
from airflow.sdk import DAG
t1 = time.perf_counter()
before = set(sys.modules)
if sys.argv[1] != "-":
    runpy.run_path(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"sdk": t1 - t0, "file": t2 - t1, "modules": len(set(sys.modules) - before)}))
"""


@dataclass(frozen=True)
class DagParse:
    file: str
    median_ms: float  # the file's own import time (after airflow.sdk), median of the repeats
    sdk_ms: float  # importing airflow.sdk in the same interpreters, median
    modules: int  # modules the file added beyond airflow.sdk


def _once(path: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", TIMER, path], env=env, capture_output=True, text=True, timeout=180, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_dag_parse(repeats: int = 5) -> list[DagParse]:
    import os

    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="highway-bench-airflow-"),
        "PYTHONPATH": str(REPO / "plugins"),
    }
    out = []
    for path in sorted((REPO / "dags").glob("*.py")):
        runs = [_once(str(path), env) for _ in range(repeats)]
        out.append(
            DagParse(
                path.name,
                statistics.median(r["file"] for r in runs) * 1000,
                statistics.median(r["sdk"] for r in runs) * 1000,
                int(runs[-1]["modules"]),
            )
        )
    return out


def dag_parse_section(out: Path, parses: list[DagParse]) -> list[str]:
    if not parses:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh([p.file for p in parses], [p.median_ms for p in parses], color="#4c72b0")
    ax.set_xlabel("ms to import the DAG file (after airflow.sdk)")
    ax.set_title("DAG parse time per file (median)")
    fig.tight_layout()
    plot = "dag_parse.png"
    fig.savefig(out / plot, dpi=110)
    plt.close(fig)
    return [
        "## DAG parse time",
        "",
        "Each DAG file imported in a fresh interpreter, as Airflow's dag-processor does; the file's own "
        "time is measured after `airflow.sdk` is loaded, next to the cost of loading `airflow.sdk` itself.",
        "",
        "| file | median ms | ratio to airflow.sdk import | modules added |",
        "|---|---:|---:|---:|",
        *(
            f"| {p.file} | {p.median_ms:.0f} | {p.median_ms / p.sdk_ms:.2f} | {p.modules} |"
            for p in parses
            if p.sdk_ms
        ),
        "",
        f"![{plot}]({plot})",
        "",
    ]
