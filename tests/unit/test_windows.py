"""The gold app's watermark and its late/on-time split (pure datetimes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from highway.core.windows import is_late, next_watermark

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 11, 26, 3, 0, 0, tzinfo=UTC)
TEN_MIN = timedelta(minutes=10)
US = timedelta(microseconds=1)


def micros(when: datetime) -> int:
    return (when - EPOCH) // US


def test_micros_helper() -> None:
    assert micros(EPOCH + 5 * US) == 5


@pytest.mark.parametrize(
    ("before", "latest", "delay", "after"),
    [
        (None, None, TEN_MIN, None),  # no event seen yet, none in this batch
        (T0, None, TEN_MIN, T0),  # a batch without events keeps the watermark
        (None, T0, TEN_MIN, T0 - TEN_MIN),  # the first event sets it
        (None, T0, timedelta(0), T0),  # no delay
        (T0 - TEN_MIN, T0 + timedelta(minutes=5), TEN_MIN, T0 - timedelta(minutes=5)),  # moves on
        (T0, T0 + TEN_MIN, TEN_MIN, T0),  # candidate equal: unchanged
        (T0, T0 + TEN_MIN + US, TEN_MIN, T0 + US),  # one microsecond further
        (T0, T0 + TEN_MIN - US, TEN_MIN, T0),  # one microsecond back: never moves back
        (T0, T0 - timedelta(days=1), TEN_MIN, T0),  # an old batch: never moves back
        (T0, T0 + timedelta(hours=1), timedelta(hours=2), T0),  # a larger delay: still not back
    ],
)
def test_next_watermark(
    before: datetime | None, latest: datetime | None, delay: timedelta, after: datetime | None
) -> None:
    latest_micros = None if latest is None else micros(latest)
    assert next_watermark(before, latest_micros, delay) == after


def test_next_watermark_is_an_aware_utc_datetime_with_microsecond_precision() -> None:
    latest = datetime(2026, 11, 26, 3, 40, 0, 123457, tzinfo=UTC)
    got = next_watermark(None, micros(latest), TEN_MIN)
    assert got == datetime(2026, 11, 26, 3, 30, 0, 123457, tzinfo=UTC)
    assert got is not None
    assert got.tzinfo is not None
    assert got.utcoffset() == timedelta(0)
    assert got.microsecond == 123457


def test_next_watermark_over_a_run_of_batches_only_moves_forward() -> None:
    watermark = None
    seen = []
    for minute in (30, 50, None, 40, 55, 10, None, 70):
        latest = None if minute is None else micros(T0 + timedelta(minutes=minute))
        watermark = next_watermark(watermark, latest, TEN_MIN)
        seen.append(watermark)
    offsets = [None if w is None else (w - T0) // timedelta(minutes=1) for w in seen]
    assert offsets == [20, 40, 40, 40, 45, 45, 45, 60]


@pytest.mark.parametrize(
    ("event_time", "watermark", "late"),
    [
        (T0, None, False),  # no watermark yet: nothing is late
        (EPOCH, None, False),
        (T0 - US, T0, True),  # one microsecond before the watermark
        (T0 - timedelta(hours=1), T0, True),
        (T0, T0, False),  # equal to the watermark is NOT late
        (T0 + US, T0, False),
        (T0 + timedelta(days=1), T0, False),
    ],
)
def test_is_late(event_time: datetime, watermark: datetime | None, late: bool) -> None:
    assert is_late(event_time, watermark) is late


def test_an_event_at_the_latest_time_minus_the_delay_is_on_time() -> None:
    watermark = next_watermark(None, micros(T0), TEN_MIN)
    assert not is_late(T0 - TEN_MIN, watermark)
    assert is_late(T0 - TEN_MIN - US, watermark)
