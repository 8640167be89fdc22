"""Turn the bench measurements into bench/report.md and PNG plots."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from bench.dags import dag_parse_section

GOAL_RATIO = 0.7
SMOKE_NOTE = " — SMOKE run, figures are not meaningful"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _plot(out: Path, throughput: list[Any], delays: list[float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ceiling, bronze = throughput[0], throughput[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [t.name.replace(" (", "\n(") for t in throughput]
    rates = [t.per_second for t in throughput]
    left.bar(names, rates, color=["#999999", "#bbbbbb", "#1f77b4"][: len(rates)])
    left.set_ylabel("events / s")
    left.set_title(f"throughput (bronze = {bronze.per_second / ceiling.per_second:.2f} x noop ceiling)")
    left.tick_params(axis="x", labelsize=8)
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


def _plot_sinks(out: Path, sinks: list[Any]) -> str:
    """One group of bars per sink (its own y axis: the sinks' rates differ by an order of magnitude)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sinks), figsize=(5 * len(sinks), 4.5), squeeze=False)
    for ax, s in zip(axes[0], sinks, strict=True):
        rates = [s.ours_per_second, s.raw_per_second]
        ax.bar([f"highway {s.ours}", f"raw {s.raw}"], rates, color=["#1f77b4", "#999999"])
        for i, r in enumerate(rates):
            ax.text(i, r, f"{r:,.0f}", ha="center", va="bottom")
        ax.set_ylabel("documents / s" if s.sink == "Elasticsearch" else "rows / s")
        ax.set_title(f"{s.sink}: ratio {s.ratio:.2f} (goal ≥ {s.goal})")
    fig.suptitle(f"sink cores vs the raw client, same {sinks[0].rows:,} events, same run")
    fig.tight_layout()
    name = "sinks.png"
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def _plot_sink_freshness(out: Path, fresh: Any) -> str:
    """CDF of the four per-event delays (bronze/Kafka -> Elasticsearch/PostgreSQL) on one axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    styles = {
        "bronze → Elasticsearch": ("#1f77b4", "-"),
        "bronze → PostgreSQL": ("#ff7f0e", "-"),
        "Kafka → Elasticsearch": ("#1f77b4", "--"),
        "Kafka → PostgreSQL": ("#ff7f0e", "--"),
    }
    for label, delays in fresh.series.items():
        ordered = sorted(delays)
        n = len(ordered)
        color, style = styles.get(label, (None, "-"))
        ax.step(
            ordered,
            [(i + 1) / n for i in range(n)],
            where="post",
            color=color,
            linestyle=style,
            label=f"{label}: p50 {percentile(delays, 50):.2f}s, p99 {percentile(delays, 99):.2f}s",
        )
    for q in (0.5, 0.99):
        ax.axhline(q, color="#999999", linewidth=0.6)
    ax.set_xlabel("seconds from bronze (ingested_at) / Kafka (timestamp) to the sink")
    ax.set_ylabel("fraction of events")
    ax.set_ylim(0, 1.01)
    ax.set_xlim(left=0)
    ax.set_title(f"freshness to the sinks at {fresh.rate:,} events/s ({fresh.expected:,} events)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    name = "freshness_sinks.png"
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


def sink_freshness_section(out: Path, fresh: Any) -> list[str]:
    """The "## Freshness to the sinks" section: p50/p99/max per series, and its plot."""
    if fresh is None:
        return []
    plot = _plot_sink_freshness(out, fresh)
    batches = fresh.silver_batches
    batch_note = (
        f" The silver app ran {len(batches):,} non-empty batches, median {statistics.median(batches):.1f} s "
        f"(max {max(batches):.1f} s) each."
        if batches
        else ""
    )

    def row(label: str) -> str:
        d = fresh.series[label]
        mean = statistics.fmean(d) if d else float("nan")
        return (
            f"| {label} | {len(d):,} | {percentile(d, 50):.2f} | {percentile(d, 99):.2f} | "
            f"{max(d) if d else float('nan'):.2f} | {mean:.2f} |"
        )

    return [
        "## Freshness to the sinks (bronze → Elasticsearch / PostgreSQL)",
        "",
        f"A bronze + silver pipeline (1 s triggers, the silver reading at most {fresh.max_files} files "
        f"per batch) ran as two `highway run` processes while `highway produce` sent {fresh.rate:,} valid "
        f"events/s for {fresh.seconds} s; once the warehouse table and the Elasticsearch alias held all "
        f"{fresh.expected:,} distinct valid ids ({fresh.drain_seconds:.0f} s after the producer ended) both "
        "apps were stopped and every event's times read back: bronze = the bronze row's `ingested_at` "
        "(its batch's time, just before the commit), Kafka = the record's timestamp; Elasticsearch = the "
        "document's `indexed_at` (when the silver sink sent its batch; searchable up to a refresh, 1 s, "
        "later); PostgreSQL = the row's `loaded_at` (the batch transaction's time; visible at its commit)."
        + batch_note,
        "",
        f"Counts: bronze {fresh.bronze_ids:,} distinct ids, Elasticsearch {fresh.es_docs:,} documents, "
        f"PostgreSQL {fresh.pg_rows:,} rows (the steady run's events plus one seed event sent first).",
        "",
        "| from → to | events | p50 s | p99 s | max s | mean s |",
        "|---|---:|---:|---:|---:|---:|",
        *(row(label) for label in fresh.series),
        "",
        *(
            f"- **{label}: p50 = {percentile(d, 50):.2f} s, p99 = {percentile(d, 99):.2f} s**"
            for label, d in fresh.series.items()
        ),
        "",
        f"![{plot}]({plot})",
        "",
    ]


def _verdict(sink: Any) -> str:
    return "met" if sink.met else "missed"


def sinks_section(out: Path, sinks: list[Any]) -> list[str]:
    """The "## Sinks" section: one row per sink core next to the raw client, and its plot."""
    if not sinks:
        return []
    plot = _plot_sinks(out, sinks)
    return [
        "## Sinks",
        "",
        "Each sink core next to the raw client writing the same N events, in this run, in four passes "
        "(ours, raw, raw, ours: a server still warming up favours neither side), each pass into a fresh "
        "target that is counted afterwards (= N); a side's rate is N over its mean pass time. "
        "Elasticsearch: `bulk_index` vs the client's `parallel_bulk` (same chunk size and threads, "
        "`index` op, same `_id`). PostgreSQL: `write_batch` (one batch: COPY into a staging table, "
        "then upsert through the primary key, plus the ledger row, in one transaction) "
        "vs a plain `COPY` into a keyless table with the same columns; the upsert writes every row twice "
        "and maintains the key's index, which the plain COPY does not, "
        "so that ratio measures the price of exactly-once, not client overhead.",
        "",
        "| sink | N | ours/s | raw/s | ratio | goal | met/missed |",
        "|---|---:|---:|---:|---:|---:|---|",
        *(
            f"| {s.sink} ({s.ours} vs {s.raw}) | {s.rows:,} | {s.ours_per_second:,.0f} | "
            f"{s.raw_per_second:,.0f} | {s.ratio:.2f} | ≥ {s.goal} | {_verdict(s)} |"
            for s in sinks
        ),
        "",
        *(
            f"- **{s.sink}: {s.ours} / {s.raw} = {s.ratio:.2f}** (goal ≥ {s.goal}: {_verdict(s)})"
            for s in sinks
        ),
        "",
        f"![{plot}]({plot})",
        "",
    ]


def write_report(
    out: Path,
    throughput: list[Any],
    delays: list[float],
    rate: int,
    smoke: bool,
    sinks: list[Any] | None = None,
    sink_freshness: Any = None,
    dag_parses: list[Any] | None = None,
) -> Path:
    """``throughput``: the noop ceiling first, bronze last, references between; ``sinks``: SinkComparison;
    ``sink_freshness``: bench.freshness.SinkFreshness."""
    out.mkdir(parents=True, exist_ok=True)
    plots = _plot(out, throughput, delays)
    ceiling, sink, bronze = throughput[0], throughput[1], throughput[-1]
    ratio = bronze.per_second / ceiling.per_second if ceiling.per_second else 0.0
    sink_ratio = bronze.per_second / sink.per_second if sink.per_second else 0.0
    verdict = "meets" if ratio >= GOAL_RATIO else "falls short of"
    lines = [
        "# highway bench report",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} cores){SMOKE_NOTE if smoke else ''}.",
        "Figures are ratios and percentiles measured in the same run; this machine is noisy, "
        "so compare runs, not absolute numbers.",
        "",
        "## Bronze throughput vs ceiling",
        "",
        "| query | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        *(f"| {t.name} | {t.rows:,} | {t.seconds:.1f} | {t.per_second:,.0f} |" for t in throughput),
        "",
        f"**bronze / noop ceiling = {ratio:.2f}** (goal ≥ {GOAL_RATIO}: {verdict} it).",
        f"bronze / raw Delta append = {sink_ratio:.2f}: how close bronze comes to the sink's own cost "
        "(Parquet encoding, S3 upload, Delta commit) while it also parses, classifies and writes two tables.",
        "",
        "## Freshness (event produced → visible in Delta)",
        "",
        f"At {rate} events/s with a 1 s trigger: {len(delays):,} events,",
        f"p50 = {percentile(delays, 50):.2f} s, p99 = {percentile(delays, 99):.2f} s, "
        f"mean = {statistics.fmean(delays) if delays else float('nan'):.2f} s.",
        "",
        *(f"![{p}]({p})" for p in plots),
        "",
        *sink_freshness_section(out, sink_freshness),
        *sinks_section(out, sinks or []),
        *dag_parse_section(out, dag_parses or []),
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
