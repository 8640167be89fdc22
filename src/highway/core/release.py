"""The identity of a deployed spec: its catalog text and image, as a short digest.

A deploy records it, the runtime gives it to the driver (``HIGHWAY_SPEC_DIGEST``), the driver writes it in
every heartbeat, and a deploy counts progress only from heartbeats that carry it: an old driver finishing
its last batch (its grace period) never passes for the new spec.
"""

from __future__ import annotations

import hashlib

SPEC_DIGEST_ENV = "HIGHWAY_SPEC_DIGEST"
POD_UID_ENV = "HIGHWAY_POD_UID"


def spec_digest(catalog_text: str, image: str | None) -> str:
    """12 hex digits of SHA-256 over the entry's text and the image given to the deploy (None: none)."""
    return hashlib.sha256(f"{catalog_text}\n{image or ''}".encode()).hexdigest()[:12]


def driver_identity(environ: dict[str, str]) -> dict[str, str]:
    """What a driver stamps on its heartbeats: the spec digest and, on Kubernetes, its pod's uid."""
    keys = {"spec_digest": SPEC_DIGEST_ENV, "pod_uid": POD_UID_ENV}
    return {field: environ[name] for field, name in keys.items() if environ.get(name)}
