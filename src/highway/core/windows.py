"""Event-time windows and the watermark of a windowing app (pure: datetimes in, datetimes out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def next_watermark(before: datetime | None, latest_micros: int | None, delay: timedelta) -> datetime | None:
    """The watermark after a batch: the latest event time seen minus ``delay``; it never moves back.

    ``latest_micros`` is the batch's greatest event time in microseconds since the epoch (None for a
    batch without events); ``before`` is None until the app has seen an event.
    """
    if latest_micros is None:
        return before
    candidate = datetime.fromtimestamp(latest_micros / 1_000_000, UTC) - delay
    return candidate if before is None or candidate > before else before


def is_late(event_time: datetime, watermark: datetime | None) -> bool:
    """Whether an event came after the watermark had passed its time (the gold app's split)."""
    return watermark is not None and event_time < watermark
