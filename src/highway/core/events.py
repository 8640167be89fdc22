"""Synthetic shop events for ``highway produce`` (pure: no I/O, the clock is a parameter).

A seeded ``random.Random`` drives every choice, and no choice depends on the clock, so the same
seed gives the same ids, users, sessions, event types and bad records on every run; only
``event_time`` follows the clock.

A valid event is one UTF-8 JSON object holding every name in ``EVENT_FIELDS`` (optional ones may be
null; ``REQUIRED_FIELDS`` never are), ``event_time`` as ISO-8601 UTC with milliseconds and ``Z``.
A bad event carries the reason code the bronze app must give it in its DLQ (``BAD_REASONS``):

- ``invalid_json``:  not a JSON object (truncated JSON, plain text, or an array of scalars)
- ``wrong_type``:    ``price`` is a non-numeric string (Spark's JSON parser rejects it for a double)
- ``missing_field``: one required field removed or null (rotating over the five)
- ``oversize``:      a valid event padded to ``max_event_bytes + OVERSIZE_PADDING`` bytes

With ``dup_ratio`` the stream also re-sends earlier valid events unchanged (same key, bytes and
event id), as a producer retry or an at-least-once upstream would: downstream must deduplicate.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from highway.errors import TerminalError

Clock = Callable[[], datetime]
Event = dict[str, Any]

EVENT_TYPES = ("page_view", "add_to_cart", "remove_from_cart", "order_placed", "payment")
EVENT_TYPE_WEIGHTS = (60, 20, 5, 8, 7)
REQUIRED_FIELDS = ("event_id", "event_type", "event_time", "user_id", "session_id")
OPTIONAL_FIELDS = (
    "product_id",
    "order_id",
    "quantity",
    "price",
    "amount",
    "currency",
    "payment_method",
    "page",
)
EVENT_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

INVALID_JSON = "invalid_json"
WRONG_TYPE = "wrong_type"
MISSING_FIELD = "missing_field"
OVERSIZE = "oversize"
BAD_REASONS = (INVALID_JSON, WRONG_TYPE, MISSING_FIELD, OVERSIZE)
BAD_REASON_WEIGHTS = (30, 30, 30, 10)

ON_TIME_JITTER_MS = (0, 5_000)  # out of order: up to 5 s before the clock
LATENESS_MS = (5 * 60_000, 60 * 60_000)  # late: 5 to 60 minutes before the clock
NEW_SESSION_CHANCE = 0.03  # per event of a user: sessions of ~30 events
ACTIVE_USERS = 200  # users shopping at the same time; their events interleave
ARRIVAL_CHANCE = 0.05  # per event: an active user leaves and another arrives
OVERSIZE_PADDING = 64 * 1024
BROKER_MESSAGE_LIMIT = 4 * 1024 * 1024  # the producer's and the topic's message.max.bytes
MESSAGE_OVERHEAD = 4 * 1024  # key and record headers must fit under the broker limit too
MAX_CART_ITEMS = 20
MAX_OPEN_ORDERS = 5
DUPLICATE_POOL = 1_000  # a duplicate re-sends one of the last this-many valid events

CURRENCIES = ("EUR", "USD")
CURRENCY_WEIGHTS = (80, 20)
PAYMENT_METHODS = ("card", "paypal", "bank")
PAGES = ("/", "/search", "/category/shoes", "/category/books", "/category/garden", "/cart", "/checkout")
PRICE_WORDS = ("twelve", "free", "n/a", "9,99 EUR", "ten euros")


@dataclass(frozen=True)
class GeneratedEvent:
    """One Kafka record to send, and what the bronze app should make of it."""

    event_id: str  # the id in the JSON, or the intended id of a bad record that does not carry it
    key: bytes  # the user id: a user's events stay in order in one partition
    value: bytes
    reason: str | None  # None for a valid event, else one of BAD_REASONS
    late: bool  # the record carries an event_time LATENESS_MS before the clock
    duplicate: bool = False  # a re-send of an earlier valid event of the run (same key and bytes)

    @property
    def valid(self) -> bool:
        return self.reason is None


@dataclass
class _User:
    user_id: str
    session_id: str = ""
    cart: list[tuple[str, int, float]] = field(default_factory=list)
    open_orders: list[tuple[str, float, str]] = field(default_factory=list)


def format_event_time(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and 'Z', e.g. ``2026-11-26T03:40:00.123Z``."""
    if moment.tzinfo is None:
        raise TerminalError(f"event times must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps builds one per call


def encode(event: Event) -> bytes:
    """Compact JSON, ASCII-only (so any byte cut stays valid UTF-8)."""
    return _ENCODER.encode(event).encode("utf-8")


def _check_ratio(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise TerminalError(f"{name} must be between 0 and 1, got {value}")


class ShopEventGenerator:
    """An endless, reproducible stream of shop events from ``users`` users.

    Users have sessions and carts; page views dominate; add_to_cart and remove_from_cart carry a
    product, quantity and price; order_placed empties the cart into an order for the product of its
    first line; payment pays a user's open order. With ``dup_ratio`` an event is, with that
    probability, a byte-identical re-send of one of the last ``DUPLICATE_POOL`` valid events.
    """

    def __init__(
        self,
        seed: int,
        clock: Clock,
        *,
        bad_ratio: float = 0.0,
        late_ratio: float = 0.0,
        dup_ratio: float = 0.0,
        max_event_bytes: int = 1_048_576,
        users: int = 2_000,
        products: int = 500,
    ) -> None:
        _check_ratio("bad_ratio", bad_ratio)
        _check_ratio("late_ratio", late_ratio)
        _check_ratio("dup_ratio", dup_ratio)
        if users < 1 or products < 1:
            raise TerminalError(f"need at least one user and one product, got {users} and {products}")
        self.oversize_bytes = max_event_bytes + OVERSIZE_PADDING
        if self.oversize_bytes > BROKER_MESSAGE_LIMIT - MESSAGE_OVERHEAD:
            raise TerminalError(
                f"max_event_bytes {max_event_bytes} leaves no room for oversize events under the "
                f"{BROKER_MESSAGE_LIMIT}-byte message limit"
            )
        self.bad_ratio = bad_ratio
        self.late_ratio = late_ratio
        self.dup_ratio = dup_ratio
        self._clock = clock
        self._rng = random.Random(seed)
        self._users = [_User(f"u-{i:06d}") for i in range(users)]
        self._active = [self._rng.randrange(users) for _ in range(min(users, ACTIVE_USERS))]
        self._prices = [round(self._rng.uniform(2.0, 300.0), 2) for _ in range(products)]
        self._type_weights = list(accumulate(EVENT_TYPE_WEIGHTS))
        self._reason_weights = list(accumulate(BAD_REASON_WEIGHTS))
        self._missing_turn = 0
        self._recent: list[GeneratedEvent] = []  # ring buffer of recent valid events
        self._recent_next = 0

    def __iter__(self) -> Iterator[GeneratedEvent]:
        while True:
            yield self.next_event()

    def take(self, count: int) -> Iterator[GeneratedEvent]:
        for _ in range(count):
            yield self.next_event()

    def next_event(self) -> GeneratedEvent:
        # no draw at all when dup_ratio is 0: a seed gives the same stream as before duplicates existed
        if self.dup_ratio > 0 and self._rng.random() < self.dup_ratio and self._recent:
            original = self._recent[self._rng.randrange(len(self._recent))]
            return replace(original, duplicate=True)
        event = self._new_event()
        if event.valid:
            self._remember(event)
        return event

    def _remember(self, event: GeneratedEvent) -> None:
        if len(self._recent) < DUPLICATE_POOL:
            self._recent.append(event)
        else:
            self._recent[self._recent_next] = event
        self._recent_next = (self._recent_next + 1) % DUPLICATE_POOL

    def _new_event(self) -> GeneratedEvent:
        rng = self._rng
        reason = None
        if rng.random() < self.bad_ratio:
            reason = rng.choices(BAD_REASONS, cum_weights=self._reason_weights)[0]
        late = rng.random() < self.late_ratio
        user = self._next_user()
        event = self._valid_event(user, self._clock(), late)
        event_id, key = event["event_id"], user.user_id.encode("utf-8")
        if reason is None:
            return GeneratedEvent(event_id, key, encode(event), None, late)
        value, late = self._bad_value(event, reason, late)
        return GeneratedEvent(event_id, key, value, reason, late)

    # -- valid events -------------------------------------------------------------------------

    def _next_user(self) -> _User:
        rng = self._rng
        slot = rng.randrange(len(self._active))
        if rng.random() < ARRIVAL_CHANCE:
            self._active[slot] = rng.randrange(len(self._users))
        return self._users[self._active[slot]]

    def _valid_event(self, user: _User, now: datetime, late: bool) -> Event:
        rng = self._rng
        if not user.session_id or rng.random() < NEW_SESSION_CHANCE:
            user.session_id = f"s-{rng.getrandbits(64):016x}"
        event_type = rng.choices(EVENT_TYPES, cum_weights=self._type_weights)[0]
        delay_ms = rng.randint(*(LATENESS_MS if late else ON_TIME_JITTER_MS))
        event: Event = dict.fromkeys(EVENT_FIELDS)
        event["event_id"] = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        event["event_type"] = event_type
        event["event_time"] = format_event_time(now - timedelta(milliseconds=delay_ms))
        event["user_id"] = user.user_id
        event["session_id"] = user.session_id
        _DETAILS[event_type](self, user, event)
        return event

    def _product(self) -> tuple[str, float]:
        index = self._rng.randrange(len(self._prices))
        return f"p-{index:05d}", self._prices[index]

    def _page_view(self, user: _User, event: Event) -> None:
        if self._rng.random() < 0.4:
            product_id, _ = self._product()
            event.update(product_id=product_id, page=f"/product/{product_id}")
        else:
            event["page"] = self._rng.choice(PAGES)

    def _add_to_cart(self, user: _User, event: Event) -> None:
        product_id, price = self._product()
        quantity = self._rng.randint(1, 3)
        if len(user.cart) < MAX_CART_ITEMS:
            user.cart.append((product_id, quantity, price))
        event.update(product_id=product_id, quantity=quantity, price=price)

    def _remove_from_cart(self, user: _User, event: Event) -> None:
        if user.cart:
            product_id, quantity, price = user.cart.pop(self._rng.randrange(len(user.cart)))
        else:  # a cart from before this run
            (product_id, price), quantity = self._product(), 1
        event.update(product_id=product_id, quantity=quantity, price=price)

    def _order_placed(self, user: _User, event: Event) -> None:
        rng = self._rng
        order_id = f"o-{rng.getrandbits(64):016x}"
        if user.cart:  # the order is for the product of the first cart line
            product_id = user.cart[0][0]
            quantity = sum(line_quantity for _, line_quantity, _ in user.cart)
            amount = round(sum(line_quantity * price for _, line_quantity, price in user.cart), 2)
        else:  # a cart filled before this run: one product
            product_id, price = self._product()
            quantity = rng.randint(1, 3)
            amount = round(quantity * price, 2)
        currency = rng.choices(CURRENCIES, weights=CURRENCY_WEIGHTS)[0]
        user.cart.clear()
        if len(user.open_orders) < MAX_OPEN_ORDERS:
            user.open_orders.append((order_id, amount, currency))
        event.update(
            order_id=order_id, product_id=product_id, quantity=quantity, amount=amount, currency=currency
        )

    def _payment(self, user: _User, event: Event) -> None:
        rng = self._rng
        if user.open_orders:
            order_id, amount, currency = user.open_orders.pop(0)
        else:  # an order placed before this run
            order_id, amount, currency = (
                f"o-{rng.getrandbits(64):016x}",
                round(rng.uniform(5.0, 500.0), 2),
                "EUR",
            )
        method = rng.choice(PAYMENT_METHODS)
        event.update(order_id=order_id, amount=amount, currency=currency, payment_method=method)

    # -- bad events ---------------------------------------------------------------------------

    def _bad_value(self, event: Event, reason: str, late: bool) -> tuple[bytes, bool]:
        """The record's bytes for a bad event, and whether it still carries a late event_time."""
        rng = self._rng
        if reason == INVALID_JSON:
            return self._invalid_json(event), False
        if reason == WRONG_TYPE:
            event["price"] = rng.choice(PRICE_WORDS)
            return encode(event), late
        if reason == MISSING_FIELD:
            name = REQUIRED_FIELDS[self._missing_turn % len(REQUIRED_FIELDS)]
            self._missing_turn += 1
            if rng.random() < 0.5:
                del event[name]
            else:
                event[name] = None
            return encode(event), late and name != "event_time"
        return self._oversize(event), late

    def _invalid_json(self, event: Event) -> bytes:
        rng = self._rng
        kind = rng.randrange(3)
        if kind == 0:  # truncated: an object that never closes
            whole = encode(event)
            return whole[: rng.randint(1, len(whole) - 2)]
        if kind == 1:
            return f"{event['event_type']} user={event['user_id']} at {event['event_time']}".encode()
        # an array of scalars: JSON, but not an object
        return json.dumps([event["event_type"], event["user_id"], event["event_time"]]).encode("utf-8")

    def _oversize(self, event: Event) -> bytes:
        event["page"] = ""
        whole = encode(event)
        # splice the filler into the empty page value: JSON-encoding a 1 MiB string is slow
        at = whole.rindex(b'"page":""') + len(b'"page":"')
        return whole[:at] + b"x" * (self.oversize_bytes - len(whole)) + whole[at:]


_DETAILS: dict[str, Callable[[ShopEventGenerator, _User, Event], None]] = {
    "page_view": ShopEventGenerator._page_view,
    "add_to_cart": ShopEventGenerator._add_to_cart,
    "remove_from_cart": ShopEventGenerator._remove_from_cart,
    "order_placed": ShopEventGenerator._order_placed,
    "payment": ShopEventGenerator._payment,
}
