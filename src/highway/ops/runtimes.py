"""Build the runtime a ``highway_runtime`` connection (or the CLI) names."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from highway.errors import ConfigError
from highway.ops.connections import RUNTIME_KINDS
from highway.runtime.base import AppRuntime


def runtime_from(settings: Mapping[str, Any]) -> AppRuntime:
    """``{"kind": "local", "home": ...}`` or ``{"kind": "kubernetes", "namespace": ..., "kubeconfig": ...,
    "context": ..., "in_cluster": bool}``."""
    kind = settings.get("kind")
    if kind == "local":
        from highway.runtime.local import LocalRuntime

        home = str(settings.get("home") or "")
        if not home:
            raise ConfigError("runtime local: home (the stack's state dir) is not set")
        return LocalRuntime(Path(home), env={"HIGHWAY_HOME": home})
    if kind == "kubernetes":
        from highway.core.k8s.common import NAMESPACE
        from highway.runtime.kubernetes import from_kubeconfig, in_cluster

        namespace = str(settings.get("namespace") or NAMESPACE)
        if settings.get("in_cluster"):
            return in_cluster(namespace)
        return from_kubeconfig(settings.get("kubeconfig"), settings.get("context"), namespace)
    raise ConfigError(f"runtime kind {kind!r} is not one of {', '.join(RUNTIME_KINDS)}")
