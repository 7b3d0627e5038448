"""The one generic worker: runs a `core` job `fn(..., progress, cancel) -> result` off the GUI thread.

Why our own small class and not `superqt.create_worker`: superqt's `FunctionWorker` has no progress
callback or cancel token to hand to a plain function, and its `GeneratorWorker` would force every core job
to become a generator. We keep superqt's shape (an auto-deleting `QRunnable` that owns a `QObject` of
signals; exceptions always emitted, never swallowed) and adapt the core contract:

* a fresh `CancelToken` per job; `cancel()` only flips it, the job stops at its next check (`Cancelled`);
* `progress(done, total, message)` becomes the `progress(done, total, message, eta_seconds)` signal,
  throttled to at most ~30 Hz (the last step always gets through, and a report held back by the throttle
  is sent when its interval ends: a slow step never leaves an older message up). The ETA comes from the measured,
  smoothed rate (`core.jobs.EtaEstimator`, fed every step, throttled or not): -1 until two steps are
  measured and again after the counter restarts (a new `total`); the status bar waits a little longer;
* exactly one of `result(object)`, `error(str)`, `cancelled()`, then `finished()`;
* optionally `report(object)`: intermediate results a job hands out while it runs (a fine-tuning loss
  entry, one point of a sensitivity curve). A job asks for it with a `report` keyword argument, which
  the runner passes only when the caller gives `on_report`.

`JobRunner` runs one job at a time for the UI (the status bar's progress bar, ETA and Cancel button).
There is no other threading code in `app`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from core.errors import USER_ERRORS, user_message
from core.jobs import CancelToken, Cancelled, EtaEstimator

log = logging.getLogger(__name__)

MAX_PROGRESS_HZ = 30.0
UNKNOWN_ETA = -1.0


def error_message(exc: BaseException) -> str:
    """Core's one line for a user's error (any `InputError`, an OSError about a file); the message alone
    for other ValueErrors, which the app raises for a missing step ("open a model first"); type + message
    for anything else, a bug."""
    if isinstance(exc, USER_ERRORS):
        return user_message(exc)
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class JobSignals(QObject):
    """Signals of one job; emitted from the worker thread, delivered queued (in order) to the GUI thread."""

    started = Signal()
    progress = Signal(int, int, str, float)  # done, total, message, eta seconds (-1: unknown)
    result = Signal(object)
    report = Signal(object)  # intermediate results (live curves), in the order the job reports them
    error = Signal(str)
    cancelled = Signal()
    finished = Signal()


class JobWorker(QRunnable):
    """Runs `fn(*args, progress=..., cancel=..., **kwargs)` once on a thread pool.

    Lifetimes (the part that crashes when wrong): the pool owns and deletes the runnable after `run()`
    (auto-delete), so nothing here outlives it on the C++ side; `signals` lives in the GUI thread and, when
    `parent` is given, is owned by it and deleted there (`deleteLater`) -- never from the pool thread.
    Connect to `worker.signals` with bound slots of QObjects living in the GUI thread (their slots run
    queued there); a plain lambda would run in the worker thread.
    """

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "", parent: QObject | None = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.name = name or getattr(fn, "__name__", "job")
        self.signals = JobSignals(parent)
        self.cancel_token = CancelToken()
        self.traceback_text = ""  # the full traceback of an unexpected error, for the dialog's details
        # the worker's estimate is available from the second step on; `JobStatusWidget` shows it only once
        # a few steps and a couple of seconds were measured
        self.eta = EtaEstimator(min_steps=2, min_seconds=0.0)
        self._last_emit = float("-inf")
        self._emit_lock = threading.Lock()  # the job's thread and the trailing-report timer both emit
        self._pending: tuple[int, int, str, float] | None = None  # held back by the throttle
        self._flush_timer: threading.Timer | None = None
        self._closed = False  # the outcome is on its way: no more progress

    # -- control ------------------------------------------------------------------------------------
    def start(self, pool: QThreadPool | None = None) -> None:
        (pool or QThreadPool.globalInstance()).start(self)

    def cancel(self) -> None:
        """Ask the job to stop at its next `raise_if_cancelled()`; never blocks."""
        self.cancel_token.cancel()

    def report(self, value: object) -> None:
        """Hand an intermediate result to the GUI thread (called by the job, from the worker thread)."""
        self.signals.report.emit(value)

    # -- worker thread ------------------------------------------------------------------------------
    def _progress(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        eta = self.eta.update(int(done), int(total), now)  # every step counts, emitted or not
        report = (int(done), int(total), str(message), float(eta if eta >= 0 else UNKNOWN_ETA))
        final = total > 0 and done >= total
        with self._emit_lock:
            if self._closed:
                return
            wait = self._last_emit + 1.0 / MAX_PROGRESS_HZ - now
            if final or wait <= 0:
                self._emit(report)
                return
            self._pending = report  # the newest held-back report goes out when the interval ends
            if self._flush_timer is None:
                self._flush_timer = threading.Timer(wait, self._flush)
                self._flush_timer.daemon = True
                self._flush_timer.start()

    def _emit(self, report: tuple[int, int, str, float]) -> None:
        """Send one report (the caller holds `_emit_lock`, so reports leave in order)."""
        self._last_emit = time.monotonic()
        self._pending = None
        self.signals.progress.emit(*report)

    def _flush(self) -> None:
        with self._emit_lock:
            self._flush_timer = None
            if self._pending is None or self._closed:
                return
            wait = self._last_emit + 1.0 / MAX_PROGRESS_HZ - time.monotonic()
            if wait > 0:  # a report went out since this timer was set: hold the newest until its interval ends
                self._flush_timer = threading.Timer(wait, self._flush)
                self._flush_timer.daemon = True
                self._flush_timer.start()
                return
            self._emit(self._pending)

    def _close_progress(self) -> None:
        """The job returned: a held-back report is dropped, so progress never follows the outcome."""
        with self._emit_lock:
            self._closed = True
            self._pending = None
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None

    def run(self) -> None:  # noqa: D401 - QRunnable API
        self.eta.start()
        sig = self.signals
        sig.started.emit()
        try:
            self.cancel_token.raise_if_cancelled()  # cancelled while still queued
            try:
                result = self.fn(*self.args, progress=self._progress, cancel=self.cancel_token, **self.kwargs)
            finally:
                self._close_progress()
        except Cancelled:
            sig.cancelled.emit()
        except Exception as exc:  # every failure reaches the UI as a message; a bug's traceback goes to the log
            if isinstance(exc, USER_ERRORS):  # the message says it all (the file and the problem): no traceback
                log.info("job %s: %s", self.name, exc)
            else:
                self.traceback_text = traceback.format_exc()
                log.error("job %s failed:\n%s", self.name, self.traceback_text)
            sig.error.emit(error_message(exc))
        else:
            sig.result.emit(result)
            del result  # the GUI thread holds it now
        finally:
            sig.finished.emit()


@dataclass
class _Job:
    worker: JobWorker
    callbacks: dict
    t0: float
    stopped_as: str = "cancelled"


class JobRunner(QObject):
    """Runs one job at a time for the UI and reports it: the status bar and the views listen here.

    A job is over for the UI when its outcome (result, error, cancelled) arrives; the per-call callbacks
    run after the runner is idle again, so a callback may start the next job (opening a project loads
    the model, then the pruned model).
    """

    busyChanged = Signal(bool)
    jobStarted = Signal(str)
    jobProgress = Signal(int, int, str, float)
    jobSucceeded = Signal(str, float)  # name, seconds
    jobFailed = Signal(str, str, str)  # name, message, traceback (empty for errors about a file)
    jobCancelled = Signal(str, str)  # name, what a user calls the stop ("cancelled"; "paused" for playback)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._current: JobWorker | None = None
        self._jobs: dict[JobSignals, _Job] = {}  # started and not yet finished; keyed by their signals

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current_name(self) -> str:
        return self._current.name if self._current is not None else ""

    def start(self, name: str, fn: Callable[..., Any], *args: Any,
              on_result: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None,
              on_cancelled: Callable[[], None] | None = None,
              on_report: Callable[[Any], None] | None = None,
              stopped_as: str = "cancelled",
              **kwargs: Any) -> JobWorker | None:
        """Start `fn` in the worker; returns None (and starts nothing) while another job runs.

        `stopped_as` is how the status bar names a stop on request: "paused" for playing a video, where
        stopping is the normal way to end it.
        With `on_report`, `fn` also gets `report=` (a callable): each value it reports reaches
        `on_report` in the GUI thread while the job runs (never after its outcome)."""
        if self._current is not None:
            log.info("refused job %s: %s is running", name, self._current.name)
            return None
        worker = JobWorker(fn, *args, name=name, parent=self, **kwargs)
        s = worker.signals
        if on_report is not None:
            worker.kwargs["report"] = worker.report
        self._jobs[s] = _Job(worker, {"result": on_result, "error": on_error, "cancelled": on_cancelled,
                                      "report": on_report}, time.monotonic(), stopped_as)
        s.progress.connect(self._on_progress)
        s.report.connect(self._on_report)
        s.result.connect(self._on_result)
        s.error.connect(self._on_error)
        s.cancelled.connect(self._on_cancelled)
        s.finished.connect(self._on_finished)
        self._current = worker
        self.busyChanged.emit(True)
        self.jobStarted.emit(name)
        worker.start(self._pool)
        return worker

    # -- slots: queued from the pool thread, run in the GUI thread --------------------------------------
    def _job(self) -> _Job | None:
        return self._jobs.get(self.sender())

    @Slot(int, int, str, float)
    def _on_progress(self, done: int, total: int, message: str, eta: float) -> None:
        job = self._job()
        if job is not None and job.worker is self._current:
            self.jobProgress.emit(done, total, message, eta)

    @Slot(object)
    def _on_report(self, value: object) -> None:
        job = self._job()
        if job is not None and job.worker is self._current and job.callbacks.get("report") is not None:
            job.callbacks["report"](value)

    @Slot(object)
    def _on_result(self, value: object) -> None:
        self._outcome(self._job(), "result", value)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        self._outcome(self._job(), "error", message)

    @Slot()
    def _on_cancelled(self) -> None:
        self._outcome(self._job(), "cancelled", None)

    @Slot()
    def _on_finished(self) -> None:
        signals = self.sender()
        if self._jobs.pop(signals, None) is not None:
            signals.deleteLater()  # owned by the runner, deleted in this (its) thread

    def _outcome(self, job: _Job | None, kind: str, payload: Any) -> None:
        if job is None or job.worker is not self._current:
            return
        worker = job.worker
        self._current = None
        self.busyChanged.emit(False)
        if kind == "result":
            self.jobSucceeded.emit(worker.name, time.monotonic() - job.t0)
        elif kind == "error":
            self.jobFailed.emit(worker.name, payload, worker.traceback_text)
        else:
            self.jobCancelled.emit(worker.name, job.stopped_as)
        callback = job.callbacks.get(kind)  # "result", "error" or "cancelled"
        if callback is not None:
            callback(*(() if kind == "cancelled" else (payload,)))

    def cancel(self) -> None:
        """Cancel the running job (the UI returns to idle when the job reaches its next check)."""
        if self._current is not None:
            self._current.cancel()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel and wait for the pool (closing the window); True when nothing is left running."""
        self.cancel()
        return self._pool.waitForDone(timeout_ms)
