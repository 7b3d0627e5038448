"""The status bar's job indicator: what runs, a progress bar, the ETA and a Cancel button.

Why one widget for all jobs: the `JobRunner` runs one job at a time, so the user always sees the same
place for progress and the one way to stop it.

The text is elided to the room the status bar gives it (`ElidedLabel`, full text in the tooltip): a label
that asks for the width of its text would widen the main window as a job's messages grow.

The ETA: the bar keeps its own `core.jobs.EtaEstimator` over the reports it gets (the measured, smoothed
rate), shown only once it rests on a few reports and a couple of seconds of the current count (an estimate
from the first step or two swings wildly; a count that restarts hides it again), and re-read every second,
so it counts down between reports, or grows while a step takes longer than steps did.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QWidget

from app.views.elided_label import ElidedLabel
from app.worker import JobRunner
from core.jobs import EtaEstimator

ETA_MIN_UPDATES = 3  # advances of the current count before an ETA is shown ...
ETA_MIN_SECONDS = 2.0  # ... over at least this many seconds
ETA_REFRESH_MS = 1000


def format_eta(seconds: float) -> str:
    if seconds < 0:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"ETA {s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"ETA {m}:{s:02d}"
    h, m = divmod(m, 60)
    return f"ETA {h}:{m:02d}:{s:02d}"


class JobStatusWidget(QWidget):
    """Shown while a job runs; `statusMessage(text, ms)` reports how it ended."""

    statusMessage = Signal(str, int)

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.label = ElidedLabel()
        self.label.setMinimumWidth(120)
        self.label.hint_chars = 84
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.eta = QLabel()
        self.eta.setMinimumWidth(self.eta.fontMetrics().horizontalAdvance("ETA 00:00:00") + 4)
        self.eta.setToolTip("Estimated time left, from the measured rate of the job's steps")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job at its next step")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label, 1)
        for w in (self.bar, self.eta, self.cancel_button):
            lay.addWidget(w)
        # the status bar gives permanent widgets their size hint (the label's: its text, capped); the label
        # elides beyond it, so a long message never widens the window
        self.setMaximumWidth(960)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.estimator = EtaEstimator(min_steps=ETA_MIN_UPDATES, min_seconds=ETA_MIN_SECONDS)
        self._done_total = (0, 0)
        self._eta_timer = QTimer(self)
        self._eta_timer.setInterval(ETA_REFRESH_MS)
        self._eta_timer.timeout.connect(self._show_eta)
        self.cancel_button.clicked.connect(self._cancel)
        runner.jobStarted.connect(self._started)
        runner.jobProgress.connect(self._progress)
        runner.busyChanged.connect(self._busy)
        runner.jobSucceeded.connect(lambda name, s: self.statusMessage.emit(f"{name}: done in {s:.1f} s", 8000))
        runner.jobCancelled.connect(lambda name, how: self.statusMessage.emit(f"{name}: {how}", 8000))
        runner.jobFailed.connect(lambda name, msg, _d: self.statusMessage.emit(f"{name}: failed", 8000))
        self.setVisible(False)

    def _started(self, name: str) -> None:
        self.label.setText(name + "…")
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.eta.setText("")
        self.estimator.start()
        self._done_total = (0, 0)
        self._eta_timer.start()
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")

    def _progress(self, done: int, total: int, message: str, eta: float) -> None:
        """`eta` is the worker's estimate at this report; the bar shows its own (see the module doc)."""
        self.estimator.update(done, total)
        self._done_total = (done, total)
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        name = self.runner.current_name
        self.label.setText(f"{name}: {message}" if message and name else (message or name))
        self._show_eta()

    def _show_eta(self) -> None:
        done, total = self._done_total
        eta = self.estimator.eta()
        self.eta.setText(format_eta(eta) if eta >= 0 and 0 < total and done < total else "")

    def _cancel(self) -> None:
        self.runner.cancel()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")

    def _busy(self, busy: bool) -> None:
        self.setVisible(busy)
        if not busy:
            self._eta_timer.stop()
