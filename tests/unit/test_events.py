"""The synthetic shop events: reproducible, honest about their ratios, and bad in exactly the
way their reason code says. ``classify`` below is an independent oracle written from the catalog
schema and the DLQ rules, not from the generator."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest

from highway import catalog
from highway.catalog import AppSpec
from highway.core.events import (
    BAD_REASONS,
    DUPLICATE_POOL,
    EVENT_FIELDS,
    EVENT_TYPES,
    REQUIRED_FIELDS,
    GeneratedEvent,
    ShopEventGenerator,
)
from highway.errors import TerminalError

NOW = datetime(2026, 11, 26, 3, 40, 0, 123000, tzinfo=UTC)
MIB = 1024 * 1024
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "long": (int,),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (str,),
}


def fixed_clock() -> datetime:
    return NOW


@cache
def bronze() -> AppSpec:
    return catalog.get("bronze_shop_events")


def generate(count: int, seed: int = 7, **options: float) -> list[GeneratedEvent]:
    return list(ShopEventGenerator(seed, fixed_clock, **options).take(count))  # type: ignore[arg-type]


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def wrong_type(name: str, value: object, type_name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool) and type_name != "boolean":
        return True
    if not isinstance(value, JSON_TYPES[type_name]):
        return True
    return type_name == "timestamp" and not TIME_RE.match(str(value))


def classify(value: bytes, max_event_bytes: int) -> str | None:
    """The DLQ reason the bronze app must give these bytes (its rules, in its order), or None."""
    if len(value) > max_event_bytes:
        return "oversize"
    try:
        event = json.loads(value)
    except ValueError:
        return "invalid_json"
    if not isinstance(event, dict):
        return "invalid_json"
    if any(wrong_type(f.name, event.get(f.name), f.type) for f in bronze().schema):
        return "wrong_type"
    if any(event.get(name) is None for name in bronze().required_fields):
        return "missing_field"
    return None


def test_same_seed_gives_the_same_events() -> None:
    first = generate(2000, seed=3, bad_ratio=0.1, late_ratio=0.1)
    again = generate(2000, seed=3, bad_ratio=0.1, late_ratio=0.1)
    other = generate(2000, seed=4, bad_ratio=0.1, late_ratio=0.1)
    assert first == again
    assert {e.event_id for e in first}.isdisjoint(e.event_id for e in other)


def test_only_event_time_follows_the_clock() -> None:
    ticks = iter(NOW + timedelta(seconds=i) for i in range(1000))
    moving = list(ShopEventGenerator(3, lambda: next(ticks), bad_ratio=0.1).take(1000))
    fixed = generate(1000, seed=3, bad_ratio=0.1)
    assert [(e.event_id, e.key, e.reason) for e in moving] == [(e.event_id, e.key, e.reason) for e in fixed]


def test_ratios_are_roughly_honoured_over_10k_events() -> None:
    events = generate(10_000, seed=11, bad_ratio=0.1, late_ratio=0.2)
    bad = [e for e in events if not e.valid]
    valid = [e for e in events if e.valid]
    assert abs(len(bad) / len(events) - 0.1) < 0.015
    assert abs(sum(e.late for e in valid) / len(valid) - 0.2) < 0.02
    kinds = Counter(e.reason for e in bad)
    for reason, share in zip(BAD_REASONS, (0.3, 0.3, 0.3, 0.1), strict=True):
        assert abs(kinds[reason] / len(bad) - share) < 0.06, kinds
    types = Counter(json.loads(e.value)["event_type"] for e in valid)
    for event_type, share in zip(EVENT_TYPES, (0.6, 0.2, 0.05, 0.08, 0.07), strict=True):
        assert abs(types[event_type] / len(valid) - share) < 0.02, types


def test_no_bad_and_no_late_events_when_the_ratios_are_zero() -> None:
    events = generate(3000, bad_ratio=0.0, late_ratio=0.0)
    assert all(e.valid and not e.late for e in events)


def test_every_bad_kind_is_produced_and_classified_as_labelled() -> None:
    limit = bronze().source.max_event_bytes
    events = generate(600, seed=5, bad_ratio=1.0, late_ratio=0.3, max_event_bytes=limit)
    assert Counter(e.reason for e in events).keys() == set(BAD_REASONS)
    for event in events:
        assert classify(event.value, limit) == event.reason, event.value[:300]


def test_valid_events_are_classified_valid() -> None:
    limit = bronze().source.max_event_bytes
    assert all(classify(e.value, limit) is None for e in generate(3000, late_ratio=0.1))


def test_invalid_json_comes_in_three_shapes() -> None:
    values = [e.value for e in generate(400, seed=2, bad_ratio=1.0) if e.reason == "invalid_json"]
    truncated = [v for v in values if v.startswith(b"{")]
    arrays = [v for v in values if v.startswith(b"[")]
    text = [v for v in values if not v.startswith((b"{", b"["))]
    assert truncated and arrays and text
    assert all(isinstance(json.loads(v), list) for v in arrays)


def test_missing_field_rotates_over_every_required_field_removed_or_null() -> None:
    events = [e for e in generate(600, seed=8, bad_ratio=1.0) if e.reason == "missing_field"]
    removed, nulled = Counter[str](), Counter[str]()
    for event in events:
        data = json.loads(event.value)
        removed.update(name for name in REQUIRED_FIELDS if name not in data)
        nulled.update(name for name in REQUIRED_FIELDS if name in data and data[name] is None)
        assert sum(name not in data or data[name] is None for name in REQUIRED_FIELDS) == 1
    assert set(removed) == set(nulled) == set(REQUIRED_FIELDS)


def test_wrong_type_sets_a_non_numeric_price_even_where_there_is_none() -> None:
    events = [e for e in generate(600, seed=9, bad_ratio=1.0) if e.reason == "wrong_type"]
    prices = [json.loads(e.value)["price"] for e in events]
    assert all(isinstance(p, str) for p in prices)
    for price in prices:
        with pytest.raises(ValueError):
            float(price)
    assert any(json.loads(e.value)["event_type"] == "page_view" for e in events)


def test_oversize_is_over_the_app_limit_and_under_the_broker_limit() -> None:
    limit = bronze().source.max_event_bytes
    events = [
        e for e in generate(300, seed=4, bad_ratio=1.0, max_event_bytes=limit) if e.reason == "oversize"
    ]
    assert events
    for event in events:
        assert limit < len(event.value) < 4 * MIB
        assert classify(event.value, 4 * MIB) is None  # valid apart from its size
        assert json.loads(event.value)["event_id"] == event.event_id


def test_a_limit_too_close_to_the_broker_limit_is_refused() -> None:
    with pytest.raises(TerminalError, match="max_event_bytes"):
        ShopEventGenerator(1, fixed_clock, max_event_bytes=4 * MIB - 1024)


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_ratios_outside_zero_to_one_are_refused(ratio: float) -> None:
    with pytest.raises(TerminalError, match="bad_ratio"):
        ShopEventGenerator(1, fixed_clock, bad_ratio=ratio)


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(TerminalError, match="timezone-aware"):
        ShopEventGenerator(1, lambda: datetime(2026, 11, 26)).next_event()


def test_late_events_are_5_to_60_minutes_old_and_others_at_most_5_seconds() -> None:
    events = [e for e in generate(5000, seed=6, bad_ratio=0.0, late_ratio=0.3)]
    ages = [(e.late, NOW - parse_time(json.loads(e.value)["event_time"])) for e in events]
    late = [age for is_late, age in ages if is_late]
    on_time = [age for is_late, age in ages if not is_late]
    assert late and on_time
    assert all(timedelta(minutes=5) <= age <= timedelta(minutes=60) for age in late)
    assert all(timedelta(0) <= age <= timedelta(seconds=5) for age in on_time)


def test_late_flag_only_when_the_record_carries_a_late_event_time() -> None:
    for event in generate(2000, seed=12, bad_ratio=0.5, late_ratio=0.5):
        if not event.late:
            continue
        data = json.loads(event.value)  # a late record is JSON with an event_time
        assert NOW - parse_time(data["event_time"]) >= timedelta(minutes=5)


def test_valid_events_carry_every_field_with_its_json_type() -> None:
    schema = {f.name: f.type for f in bronze().schema}
    assert set(EVENT_FIELDS) == set(schema)
    for event in generate(3000, seed=10):
        data = json.loads(event.value.decode("utf-8"))
        assert set(data) == set(EVENT_FIELDS)
        assert all(data[name] is not None for name in REQUIRED_FIELDS)
        assert not any(wrong_type(name, data[name], schema[name]) for name in data), data
        assert data["event_id"] == event.event_id
        assert event.key == data["user_id"].encode()
        assert re.fullmatch(r"[0-9a-f]{32}", data["event_id"])
        assert re.fullmatch(r"u-\d{6}", data["user_id"]) and data["session_id"].startswith("s-")


def test_each_event_type_carries_its_details() -> None:
    expected = {
        "add_to_cart": ("product_id", "quantity", "price"),
        "remove_from_cart": ("product_id", "quantity", "price"),
        "order_placed": ("order_id", "product_id", "quantity", "amount", "currency"),
        "payment": ("order_id", "amount", "payment_method"),
        "page_view": ("page",),
    }
    for event in generate(3000, seed=13):
        data = json.loads(event.value)
        assert all(data[name] is not None for name in expected[data["event_type"]]), data
        assert data["currency"] in (None, "EUR", "USD")
        assert data["payment_method"] in (None, "card", "paypal", "bank")


def test_payments_pay_orders_placed_earlier() -> None:
    orders: dict[str, float] = {}
    payments = paid = 0
    for event in generate(5000, seed=14):
        data = json.loads(event.value)
        if data["event_type"] == "order_placed":
            orders[data["order_id"]] = data["amount"]
        elif data["event_type"] == "payment":
            payments += 1
            if data["order_id"] in orders:
                assert orders.pop(data["order_id"]) == data["amount"]
                paid += 1
    assert paid > payments / 4  # the others pay orders from before the stream began


def test_users_repeat_so_keys_share_partitions() -> None:
    events = generate(10_000, seed=15)
    users = Counter(e.key for e in events)
    assert 200 < len(users) <= 2000
    assert users.most_common(1)[0][1] > 20


def test_orders_are_for_a_product_and_a_quantity() -> None:
    orders = 0
    for event in generate(5000, seed=16):
        data = json.loads(event.value)
        if data["event_type"] != "order_placed":
            continue
        orders += 1
        assert re.fullmatch(r"p-\d{5}", data["product_id"]), data
        assert isinstance(data["quantity"], int) and data["quantity"] >= 1, data
        assert data["price"] is None
        assert data["amount"] > 0
    assert orders > 300


def test_an_order_is_for_the_first_cart_line_with_the_whole_cart() -> None:
    generator = ShopEventGenerator(17, fixed_clock)
    cart: dict[str, list[tuple[str, int, float]]] = {}
    checked = 0
    for event in generator.take(20_000):
        data = json.loads(event.value)
        lines = cart.setdefault(data["user_id"], [])
        if data["event_type"] == "add_to_cart" and len(lines) < 20:
            lines.append((data["product_id"], data["quantity"], data["price"]))
        elif data["event_type"] == "remove_from_cart" and lines:
            lines.remove(next(ln for ln in lines if ln[0] == data["product_id"] and ln[2] == data["price"]))
        elif data["event_type"] == "order_placed":
            if lines:
                assert data["product_id"] == lines[0][0]
                assert data["quantity"] == sum(q for _, q, _ in lines)
                assert data["amount"] == round(sum(q * p for _, q, p in lines), 2)
                checked += 1
            else:
                assert 1 <= data["quantity"] <= 3
                assert data["amount"] == round(
                    data["quantity"] * generator._prices[int(data["product_id"][2:])], 2
                )
            lines.clear()
    assert checked > 50


def test_duplicates_are_honoured_over_20k_events() -> None:
    events = generate(20_000, seed=18, bad_ratio=0.05, late_ratio=0.1, dup_ratio=0.1)
    duplicates = [e for e in events if e.duplicate]
    assert abs(len(duplicates) / len(events) - 0.1) < 0.01
    assert all(e.valid for e in duplicates)
    # the non-duplicates still carry the requested bad share
    originals = [e for e in events if not e.duplicate]
    assert abs(sum(not e.valid for e in originals) / len(originals) - 0.05) < 0.01


def test_a_duplicate_is_byte_identical_to_an_earlier_valid_event() -> None:
    events = generate(5000, seed=19, bad_ratio=0.2, late_ratio=0.3, dup_ratio=0.2)
    seen: dict[str, GeneratedEvent] = {}
    late_duplicates = 0
    for position, event in enumerate(events):
        if not event.duplicate:
            assert event.event_id not in seen or not event.valid
            if event.valid:
                seen[event.event_id] = event
            continue
        original = seen[event.event_id]  # sent earlier in the run, and valid
        assert (event.key, event.value, event.reason, event.late) == (
            original.key,
            original.value,
            None,
            original.late,
        )
        assert position > 0
        late_duplicates += event.late
    assert late_duplicates > 0


def test_the_first_event_is_new_and_duplicates_come_from_the_last_1000_valid_events() -> None:
    events = generate(20_000, seed=20, bad_ratio=0.1, dup_ratio=0.5)
    assert not events[0].duplicate
    rank: dict[str, int] = {}  # event id -> how many valid events came before it
    distances = []
    for event in events:
        if event.duplicate:
            distances.append(len(rank) - rank[event.event_id])
        elif event.valid:
            rank[event.event_id] = len(rank)
    assert distances and max(distances) <= DUPLICATE_POOL
    assert max(distances) > DUPLICATE_POOL * 0.9  # the whole pool is used, not only the newest


def test_no_duplicates_when_the_ratio_is_zero_and_the_stream_is_unchanged() -> None:
    plain = generate(2000, seed=3, bad_ratio=0.1, late_ratio=0.1)
    zero = generate(2000, seed=3, bad_ratio=0.1, late_ratio=0.1, dup_ratio=0.0)
    assert plain == zero
    assert not any(e.duplicate for e in plain)


def test_same_seed_gives_the_same_events_with_duplicates() -> None:
    first = generate(3000, seed=21, bad_ratio=0.1, late_ratio=0.1, dup_ratio=0.2)
    again = generate(3000, seed=21, bad_ratio=0.1, late_ratio=0.1, dup_ratio=0.2)
    assert first == again
    ticks = iter(NOW + timedelta(seconds=i) for i in range(3000))
    moving = ShopEventGenerator(21, lambda: next(ticks), bad_ratio=0.1, late_ratio=0.1, dup_ratio=0.2)
    assert [(e.event_id, e.duplicate) for e in moving.take(3000)] == [
        (e.event_id, e.duplicate) for e in first
    ]


@pytest.mark.parametrize("ratio", [-0.01, 1.01])
def test_a_dup_ratio_outside_zero_to_one_is_refused(ratio: float) -> None:
    with pytest.raises(TerminalError, match=r"dup_ratio must be between 0 and 1"):
        ShopEventGenerator(1, fixed_clock, dup_ratio=ratio)
