"""Deploy one catalog app: validate -> render -> apply; wait for its first heartbeat; roll back if none.

``deployments.json`` in the app's status area keeps the spec now deployed (``current``) and the last
one that made progress (``good``): a deploy that never reports progress within its timeout is rolled
back to ``good`` (or, when no spec ever made progress, the app is stopped), so the app never stays on
a spec that cannot run.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from highway import catalog
from highway.catalog import AppSpec
from highway.core.k8s.common import IMAGE_HELP, is_image
from highway.core.release import spec_digest
from highway.errors import ParamError
from highway.ops.observe import DEPLOYMENTS, HEARTBEAT, Records

if TYPE_CHECKING:
    from highway.core.k8s.status import AppStatus
    from highway.runtime.base import AppRuntime

PROGRESS_STATES = ("running", "idle")  # a heartbeat in either says the driver's query loop turns
FIXED_KEYS = ("name", "kind", "status_prefix")  # an override may not move the app's identity or records


@dataclass(frozen=True)
class Release:
    """A validated spec ready to apply: the catalog entry's text (with overrides) and the image."""

    spec: AppSpec
    text: str
    image: str | None

    @property
    def digest(self) -> str:
        return spec_digest(self.text, self.image)

    def record(self, at: float) -> dict[str, Any]:
        return {"text": self.text, "image": self.image, "digest": self.digest, "at": at}


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def release(app: str, image: str | None = None, overrides: Mapping[str, Any] | None = None) -> Release:
    """The app's catalog entry, with ``overrides`` merged in (e.g. ``{"trigger": {"interval_seconds": 10}}``)
    and re-validated, and the image; every bad value is refused naming its key before anything runs."""
    spec, text = catalog.get_with_text(app)
    if overrides:
        if not isinstance(overrides, Mapping):
            raise ParamError("overrides", overrides, "a JSON object of catalog keys")
        for key in FIXED_KEYS:
            if key in overrides and overrides[key] != getattr(spec, key):
                raise ParamError(f"overrides.{key}", overrides[key], f"the catalog's {getattr(spec, key)!r}")
        data = _merge(yaml.safe_load(text), overrides)
        spec = catalog.parse(data, f"{app}.yaml with overrides")
        text = yaml.safe_dump(data, sort_keys=False)
    if image is not None and image != "" and not is_image(image):
        raise ParamError("image", image, IMAGE_HELP)
    return Release(spec, text, image or None)


def apply(runtime: AppRuntime, records: Records, rel: Release, now: float) -> AppStatus:
    """Record the release as current (the good one stays) and hand it to the runtime."""
    doc = records.read(rel.spec, DEPLOYMENTS) or {}
    doc.update(app=rel.spec.name, current=rel.record(now))
    records.write(rel.spec, DEPLOYMENTS, doc)
    return runtime.deploy(rel.spec, rel.text, rel.image)


def progress_since(
    records: Records, status_prefix: str, since: float, digest: str | None = None
) -> dict[str, Any] | None:
    """The app's heartbeat if it was written after ``since`` by a driver whose query loop turns and, given
    ``digest``, that runs that spec (an old driver's last batches in its grace period do not count)."""
    hb = records.read(status_prefix, HEARTBEAT)
    if not isinstance(hb, dict):
        return None
    written = hb.get("written_at")
    if not isinstance(written, int | float) or written < since or hb.get("state") not in PROGRESS_STATES:
        return None
    if digest is not None and hb.get("spec_digest") != digest:
        return None
    return hb


def mark_good(records: Records, spec: AppSpec) -> dict[str, Any]:
    """The current release made progress: it is the one to roll back to from now on."""
    doc = records.read(spec, DEPLOYMENTS) or {}
    if not doc.get("current"):
        raise ParamError("app", spec.name, "an app deployed by highway_deploy (no deployment recorded)")
    doc["good"] = doc["current"]
    records.write(spec, DEPLOYMENTS, doc)
    good: dict[str, Any] = doc["good"]
    return good


def rollback(runtime: AppRuntime, records: Records, app: str, why: str) -> str:
    """Back to the last release that made progress; with none, stop the app. Returns what was done."""
    spec = catalog.get(app)
    doc = records.read(spec, DEPLOYMENTS) or {}
    good = doc.get("good")
    failed = doc.get("current") or {}
    if not good:
        runtime.stop(app)
        doc.update(current=None, rolled_back={"from": failed.get("digest"), "to": None, "why": why})
        records.write(spec, DEPLOYMENTS, doc)
        return f"{app}: {why}; no earlier spec of {app} made progress, so the app was stopped"
    good_spec = catalog.parse(yaml.safe_load(good["text"]), f"{app} (last good spec {good['digest']})")
    runtime.deploy(good_spec, good["text"], good.get("image"))
    doc.update(current=good, rolled_back={"from": failed.get("digest"), "to": good["digest"], "why": why})
    records.write(spec, DEPLOYMENTS, doc)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(good["at"])))
    return f"{app}: {why}; rolled back to spec {good['digest']} (deployed {when}, made progress)"
