"""One home for highway's error classes.

Callers and tests assert on the class; the message is for the person at the terminal.
Retries happen only on ``TransientError``.
"""

from __future__ import annotations


class HighwayError(Exception):
    """Base class: anything highway reports to a user without a stack trace."""


class TerminalError(HighwayError):
    """Retrying will not help (bad input, missing permission, unknown name)."""


class TransientError(HighwayError):
    """Retrying later may help (service down, timeout, throttled)."""


class CatalogError(TerminalError):
    """A catalog entry is invalid. The message names file, key, value and what is allowed."""

    def __init__(self, source: str, key: str, value: object, allowed: str) -> None:
        self.source = source
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{source}: key '{key}' has value {value!r}; allowed: {allowed}")


class StackError(TerminalError):
    """The local stack cannot do what was asked (port taken, install failed, not running)."""


class ServiceUnavailable(TransientError):
    """A service did not answer in time."""


class ConfigError(TerminalError):
    """A setting, connection or parameter is missing or not allowed; the message names it."""


class ParamError(TerminalError):
    """A DAG or CLI parameter is not allowed; the message names the parameter, its value, what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"parameter '{key}' has value {value!r}; allowed: {allowed}")


class CheckpointRefused(TerminalError):
    """An app will not start on its checkpoint: it disagrees with the sinks or is damaged. The message
    is one line naming the problem (a stable code from ``highway.core.checkpoint``) and the fixing command."""


class LeaseRefused(TerminalError):
    """Another driver holds the checkpoint's lease (one driver per checkpoint); the message names it."""
