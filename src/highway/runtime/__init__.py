"""Where catalog apps run: the ``AppRuntime`` port and its adapters (``highway.runtime.kubernetes``)."""

from highway.core.k8s.status import AppStatus
from highway.runtime.base import DEFAULT_TIMEOUT, AppRuntime, RuntimeTerminal, RuntimeTransient

__all__ = ["DEFAULT_TIMEOUT", "AppRuntime", "AppStatus", "RuntimeTerminal", "RuntimeTransient"]
