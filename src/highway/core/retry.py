"""Retry a sink write through a service outage, with exponential backoff and a deadline (pure).

Only ``TransientError`` is retried (service down, throttled, connection lost); a ``TerminalError``
goes straight up. When the deadline passes, the last ``TransientError`` goes up and the stream
fails the batch (it is replayed from the checkpoint on restart). The clock and sleep are injected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from highway.errors import TransientError

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], None]
Notify = Callable[[str], None]


def backoff_delays(initial: float, ceiling: float) -> Callable[[int], float]:
    """Delay before attempt ``n`` (1-based retries): initial, 2x, 4x ... capped at ``ceiling``."""

    def delay(retry: int) -> float:
        return float(min(ceiling, initial * 2 ** (retry - 1)))

    return delay


def retry_transient(
    action: Callable[[], T],
    what: str,
    deadline_seconds: float,
    clock: Clock,
    sleep: Sleep,
    notify: Notify = lambda _: None,
    initial: float = 1.0,
    ceiling: float = 15.0,
) -> tuple[T, int]:
    """``action()``'s result and how many retries it took; retries ``TransientError`` until the deadline."""
    delay = backoff_delays(initial, ceiling)
    started = clock()
    retries = 0
    while True:
        try:
            return action(), retries
        except TransientError as exc:
            retries += 1
            waited = clock() - started
            pause = min(delay(retries), max(0.0, deadline_seconds - waited))
            if waited >= deadline_seconds or pause <= 0:
                raise TransientError(
                    f"{what}: still failing after {waited:.0f} s and {retries} attempt(s): {exc}"
                ) from None
            budget = f"{waited:.0f} s of {deadline_seconds:.0f} s"
            notify(f"{what}: {exc}; retry {retries} in {pause:.1f} s ({budget})")
            sleep(pause)
