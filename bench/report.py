"""Turn the bench measurements into bench/report.md and PNG plots."""

from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Any

GOAL_RATIO = 0.7
SMOKE_NOTE = " — SMOKE run, figures are not meaningful"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _plot(out: Path, ceiling: Any, bronze: Any, delays: list[float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [ceiling.name, bronze.name]
    rates = [ceiling.per_second, bronze.per_second]
    left.bar(names, rates, color=["#999999", "#1f77b4"])
    left.set_ylabel("events / s")
    left.set_title(f"throughput (bronze = {bronze.per_second / ceiling.per_second:.2f} x ceiling)")
    for i, r in enumerate(rates):
        left.text(i, r, f"{r:,.0f}", ha="center", va="bottom")
    if delays:
        right.hist(delays, bins=40, color="#2ca02c")
        for q, style in ((50, "--"), (99, ":")):
            v = percentile(delays, q)
            right.axvline(v, color="black", linestyle=style, label=f"p{q} = {v:.2f}s")
        right.legend()
    right.set_xlabel("seconds from produce to visible in Delta")
    right.set_ylabel("events")
    right.set_title("freshness at a steady rate")
    fig.tight_layout()
    name = "bronze.png"
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return [name]


def write_report(out: Path, ceiling: Any, bronze: Any, delays: list[float], rate: int, smoke: bool) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    plots = _plot(out, ceiling, bronze, delays)
    ratio = bronze.per_second / ceiling.per_second if ceiling.per_second else 0.0
    verdict = "meets" if ratio >= GOAL_RATIO else "falls short of"
    lines = [
        "# highway bench report",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({platform.processor() or platform.machine()}){SMOKE_NOTE if smoke else ''}.",
        "Figures are ratios and percentiles measured in the same run; this machine is noisy, "
        "so compare runs, not absolute numbers.",
        "",
        "## Bronze throughput vs ceiling",
        "",
        "| query | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        *(f"| {t.name} | {t.rows:,} | {t.seconds:.1f} | {t.per_second:,.0f} |" for t in (ceiling, bronze)),
        "",
        f"**bronze / ceiling = {ratio:.2f}** (goal ≥ {GOAL_RATIO}: {verdict} it).",
        "",
        "## Freshness (event produced → visible in Delta)",
        "",
        f"At {rate} events/s with a 1 s trigger: {len(delays):,} events,",
        f"p50 = {percentile(delays, 50):.2f} s, p99 = {percentile(delays, 99):.2f} s, "
        f"mean = {statistics.fmean(delays) if delays else float('nan'):.2f} s.",
        "",
        *(f"![{p}]({p})" for p in plots),
        "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
