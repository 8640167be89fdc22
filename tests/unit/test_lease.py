"""The checkpoint Lease's decisions (pure): who may create, take or renew it; how long a holder trusts it."""

from __future__ import annotations

from highway.core.lease import LEASE_SECONDS, MARGIN, LeaseRecord, lease_object_name, next_step, trusted_until


def test_a_free_or_expired_lease_is_taken_a_valid_one_of_another_driver_is_refused() -> None:
    assert next_step(None, "pod-a", 100.0) == "create"
    held = LeaseRecord("pod-a", 100.0, 30)
    assert next_step(held, "pod-a", 125.0) == "renew"
    assert next_step(held, "pod-b", 129.9) == "refuse"
    assert next_step(held, "pod-b", 130.0) == "take"  # not renewed for its whole duration
    assert next_step(LeaseRecord(None, 100.0, 30), "pod-b", 101.0) == "take"  # released
    assert next_step(LeaseRecord("pod-a", None, None), "pod-b", 0.0) == "take"


def test_a_holder_stops_trusting_its_lease_before_anyone_else_may_take_it() -> None:
    until = trusted_until(100.0)
    assert until == 100.0 + LEASE_SECONDS - MARGIN
    assert next_step(LeaseRecord("pod-a", 100.0, LEASE_SECONDS), "pod-b", until) == "refuse"


def test_lease_names_are_dns_labels_distinct_per_checkpoint() -> None:
    a = lease_object_name("_checkpoints/bronze_shop_events")
    b = lease_object_name("_checkpoints/bronze_shop_events_moved")
    assert a != b
    assert a.startswith("highway-ckpt-checkpoints-bronze-shop-events-")
    assert len(a) <= 63 and all(c.isalnum() or c == "-" for c in a) and a == a.lower()
