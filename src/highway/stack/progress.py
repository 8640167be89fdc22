"""What the stack tells the person at the terminal while it downloads, starts and stops things.

Services start in parallel threads, so every method here may be called from any thread.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text


class Reporter:
    """Plain lines on stderr: what the Python API (test fixtures) uses, and the base of the live view."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._steps: dict[str, str] = {}

    def step(self, service: str, message: str) -> None:
        """A service begins a (possibly long) step: download, format, start, health wait."""
        with self._lock:
            self._started.setdefault(service, time.monotonic())
            self._steps[service] = message
        self._show_step(service, message)

    def done(self, service: str, message: str) -> None:
        """A service finished what was asked; printed with the time it took."""
        with self._lock:
            began = self._started.pop(service, None)
            self._steps.pop(service, None)
        took = f" [dim]({time.monotonic() - began:.1f} s)[/]" if began is not None else ""
        self.console.print(f"[green]✓[/] [cyan]{service}[/]: {message}{took}")

    def forget(self, service: str) -> None:
        """A service's steps ended without success (the error is reported elsewhere)."""
        with self._lock:
            self._started.pop(service, None)
            self._steps.pop(service, None)

    def note(self, message: str) -> None:
        self.console.print(message)

    def warn(self, service: str, message: str) -> None:
        self.console.print(f"[yellow]![/] [cyan]{service}[/]: {message}")

    def _show_step(self, service: str, message: str) -> None:
        self.console.print(f"  [cyan]{service}[/]: {message}", style="dim", highlight=False)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class LiveReporter(Reporter):
    """One spinner line per service at work, with its current step and elapsed time."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self._live: Live | None = None
        self._spinners: dict[str, Spinner] = {}

    def _show_step(self, service: str, message: str) -> None:
        if self._live is None:
            super()._show_step(service, message)

    def _render(self) -> RenderableType:
        with self._lock:
            steps = dict(self._steps)
            started = dict(self._started)
        grid = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for service, message in steps.items():
            spinner = self._spinners.setdefault(service, Spinner("dots", style="cyan"))
            elapsed = Text(f"{now - started.get(service, now):5.1f} s", style="dim")
            grid.add_row(spinner, Text(service, style="cyan"), Text(message), elapsed)
        return Group(grid)

    def __enter__(self) -> Reporter:
        if not self.console.is_terminal:
            return self  # logs and pipes get the plain lines
        self._live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=8, transient=True
        )
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
