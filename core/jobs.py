"""The contract every long job in `core` follows: a plain function taking `progress` and `cancel`.

Keeping jobs as plain functions lets the CLI, the tests and the GUI's single generic worker run the
same code; the GUI only adapts the callback to Qt signals and flips the token from its Cancel button.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Callable, Protocol, Sequence


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


class EtaEstimator:
    """Seconds left, from the *measured* rate of progress, smoothed; -1 while it is not known yet.

    Why not `elapsed / done * remaining`: a job's first steps are often the odd ones (loading, warm-up),
    so that formula swings wildly early on, and when a job's counter restarts (a new phase with its own
    `total`) it divides by a tiny `done` and shows hours. Here the rate is a ratio of exponentially
    weighted sums of work done and time spent (over `half_life` seconds, and at least `half_life_steps`
    advances when steps are slow), so one slow or fast step moves it a little; a restart (`done` going
    back, or a new `total`) starts a fresh estimate. An estimate is given only after `min_steps` advances
    and `min_seconds` of measuring; `done >= total` is always 0.

    Between reports `eta(now)` counts down while the step in progress takes no longer than steps have
    taken; once it is overdue, the time past that counts as time without work, so the estimate grows
    smoothly instead of sitting at a stale value (or at 0) while a slow step runs.
    """

    def __init__(self, *, half_life: float = 4.0, half_life_steps: float = 3.0, min_steps: int = 3,
                 min_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.half_life = float(half_life)
        self.half_life_steps = float(half_life_steps)
        self.min_steps = int(min_steps)
        self.min_seconds = float(min_seconds)
        self.clock = clock
        self.start()

    def start(self, now: float | None = None) -> None:
        """Begin measuring (a job starts); the first report sets the total without restarting."""
        self._begin(self.clock() if now is None else now, 0, None)

    def _begin(self, now: float, done: int, total: int | None) -> None:
        self.total = total
        self.t0 = self.last_t = now
        self.last_done = done
        self.steps = 0  # advances of `done` since the estimate (re)started
        self._work = 0.0  # exponentially weighted sums: units of `done` advanced ...
        self._time = 0.0  # ... seconds spent on them ...
        self._count = 0.0  # ... and advances (for the size of a typical advance)

    def _keep(self, dt: float) -> float:
        """How much of the past one advance after `dt` seconds keeps: half per `half_life` seconds, but
        never less than half per `half_life_steps` advances (slow steps still average over a few)."""
        halvings = dt / self.half_life if self.half_life > 0 else math.inf
        if self.half_life_steps > 0:
            halvings = min(halvings, 1.0 / self.half_life_steps)
        return 0.5 ** halvings

    @property
    def rate(self) -> float:
        """Smoothed units of `done` per second (0 before the first advance)."""
        return self._work / self._time if self._time > 0 else 0.0

    @property
    def ready(self) -> bool:
        """Enough measured for an estimate (`min_steps` advances over `min_seconds`)."""
        return self.steps >= self.min_steps and self.last_t - self.t0 >= self.min_seconds and self.rate > 0

    def update(self, done: int, total: int, now: float | None = None) -> float:
        """Record a progress report; returns `eta(now)`."""
        now = self.clock() if now is None else now
        if total <= 0:
            self._begin(now, 0, None)
            return -1.0
        if self.total is None and self.steps == 0 and done >= self.last_done:
            self.total = total  # the job's first report: keep measuring from its start
        elif total != self.total or done < self.last_done:
            self._begin(now, done, total)  # a new count: its rate is not the old one's
            return 0.0 if done >= total else -1.0
        if done > self.last_done:
            dt = max(now - self.last_t, 1e-6)
            keep = self._keep(dt)
            self._work = self._work * keep + (done - self.last_done)
            self._time = self._time * keep + dt
            self._count = self._count * keep + 1.0
            self.steps += 1
            self.last_t, self.last_done = now, done
        return self.eta(now)

    def eta(self, now: float | None = None) -> float:
        """Seconds left at `now` (-1: not known yet; 0 once done)."""
        now = self.clock() if now is None else now
        if self.total is None:
            return -1.0
        left = self.total - self.last_done
        if left <= 0:
            return 0.0
        if not self.ready:
            return -1.0
        rate = self.rate
        gap = max(now - self.last_t, 0.0)  # time spent on the step in progress
        step = self._work / self._count  # a typical advance
        if gap <= step / rate:
            return max(left / rate - gap, 0.0)  # counting down through the step in progress
        # overdue: the time past what a step takes counts as time without work (so the estimate grows
        # smoothly from where the countdown left it)
        slower = self._work / (self._time + gap - step / rate)
        return max(left - step, 0.0) / slower


class Phases:
    """One progress bar across the phases of a job, each labelled, so the bar never restarts.

    `Phases(progress, [("calibration set", 1), ("scoring", 4)])` splits a bar of `SCALE` steps by the
    weights (about the time each phase takes); `phases("scoring")` is the `Progress` of that phase: its
    `(done, total)` fills that phase's share, and its message reads "step 2 of 2: scoring — <message>".
    A phase's messages therefore say what they count ("image 3 of 16") without repeating the job's name.
    """

    SCALE = 1000

    def __init__(self, progress: Progress, phases: Sequence[tuple[str, float] | str]) -> None:
        named = [(p, 1.0) if isinstance(p, str) else (str(p[0]), float(p[1])) for p in phases]
        if not named:
            raise ValueError("Phases needs at least one phase")
        weight = sum(max(w, 0.0) for _, w in named) or float(len(named))
        self.progress = progress
        self.names = [n for n, _ in named]
        self._start: dict[str, float] = {}
        self._share: dict[str, float] = {}
        acc = 0.0
        for n, w in named:
            self._start[n] = acc
            self._share[n] = max(w, 0.0) / weight
            acc += self._share[n]
        self._last = 0

    def label(self, name: str, message: str = "") -> str:
        i = self.names.index(name) + 1
        head = f"step {i} of {len(self.names)}: {name}"
        return f"{head} — {message}" if message else head

    def __call__(self, name: str) -> Progress:
        if name not in self._start:
            raise KeyError(f"unknown phase {name!r}; expected one of {', '.join(self.names)}")

        def sub(done: int, total: int, message: str = "") -> None:
            frac = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
            value = int(round((self._start[name] + self._share[name] * frac) * self.SCALE))
            self._last = max(self._last, min(value, self.SCALE))  # never backwards
            self.progress(self._last, self.SCALE, self.label(name, message))

        return sub

    def done(self, message: str = "done") -> None:
        self._last = self.SCALE
        self.progress(self.SCALE, self.SCALE, message)


class ConsoleProgress:
    """A terminal progress bar with rate and ETA for the CLI (writes to stderr, one line)."""

    def __init__(self, label: str = "", stream=None, min_interval: float = 0.2) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        # a log file gets a full line every few seconds instead of a carriage-return animation
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval if self.tty else max(min_interval, 10.0)
        self.eta = EtaEstimator()
        self._last = 0.0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        eta = self.eta.update(done, total, now)
        final = total > 0 and done >= total
        if not final and now - self._last < self.min_interval:
            return
        self._last = now
        if total > 0:
            frac = min(max(done / total, 0.0), 1.0)
            bar = "#" * int(frac * 24)
            eta_s = f"ETA {eta:5.0f}s" if eta >= 0 else "ETA    ?s"
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
