"""The contract every long job in `core` follows: a plain function taking `progress` and `cancel`.

Keeping jobs as plain functions lets the CLI, the tests and the GUI's single generic worker run the
same code; the GUI only adapts the callback to Qt signals and flips the token from its Cancel button.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Protocol


class Cancelled(Exception):
    """Raised inside a job when its token was cancelled; the job leaves no half-written output."""


class Progress(Protocol):
    def __call__(self, done: int, total: int, message: str = "") -> None: ...


def no_progress(done: int, total: int, message: str = "") -> None:
    """Progress sink for callers that do not care."""


class CancelToken:
    """A thread-safe flag a job polls between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


class ConsoleProgress:
    """A terminal progress bar with rate and ETA for the CLI (writes to stderr, one line)."""

    def __init__(self, label: str = "", stream=None, min_interval: float = 0.2) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        # a log file gets a full line every few seconds instead of a carriage-return animation
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval if self.tty else max(min_interval, 10.0)
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        final = total > 0 and done >= total
        if not final and now - self._last < self.min_interval:
            return
        self._last = now
        elapsed = now - self._start
        if total > 0:
            frac = min(max(done / total, 0.0), 1.0)
            bar = "#" * int(frac * 24)
            eta = elapsed / done * (total - done) if done > 0 else float("nan")
            eta_s = f"ETA {eta:5.0f}s" if eta == eta else "ETA    ?s"
            line = f"\r{self.label} [{bar:<24}] {done}/{total} {eta_s} {message}"
        else:
            line = f"\r{self.label} {done} {message}"
        if self.tty:
            self.stream.write(line[:160].ljust(80))
            if final:
                self.stream.write("\n")
        else:
            self.stream.write(line.lstrip("\r")[:200] + "\n")
        self.stream.flush()
