"""One driver per checkpoint on Kubernetes: decisions over a ``coordination.k8s.io`` Lease (pure).

The driver holds a Lease named after its checkpoint, renews it well inside its duration, and trusts it
only until ``renewed + duration - margin``: a driver that could not renew in time stops before its next
commit, and another driver may take the Lease only after it expired.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

LEASE_SECONDS = 30
RENEW_EVERY = 10.0
MARGIN = 5.0  # a holder stops trusting its lease this long before others may take it

Step = Literal["create", "take", "renew", "refuse"]


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease as the API server has it (``renewed`` in epoch seconds; None fields when never held)."""

    holder: str | None
    renewed: float | None
    duration: int | None


def lease_object_name(checkpoint: str) -> str:
    """A DNS-1123 name for a checkpoint path: readable and distinct for distinct paths."""
    readable = re.sub(r"[^a-z0-9-]+", "-", checkpoint.lower()).strip("-")[:40].strip("-") or "checkpoint"
    return f"highway-ckpt-{readable}-{hashlib.sha256(checkpoint.encode()).hexdigest()[:10]}"


def next_step(current: LeaseRecord | None, me: str, now: float) -> Step:
    """What ``me`` may do with the Lease now: create it, take it (expired or free), renew it, or refuse."""
    if current is None:
        return "create"
    if current.holder == me:
        return "renew"
    if not current.holder or current.renewed is None:
        return "take"
    expires = current.renewed + (current.duration or LEASE_SECONDS)
    return "take" if now >= expires else "refuse"


def trusted_until(renewed: float, duration: int = LEASE_SECONDS) -> float:
    """Until when the holder may commit on the strength of a renewal at ``renewed``."""
    return renewed + duration - MARGIN
