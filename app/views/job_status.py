"""The status bar's job indicator: what runs, a progress bar, the ETA and a Cancel button.

Why one widget for all jobs: the `JobRunner` runs one job at a time, so the user always sees the same
place for progress and the one way to stop it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.worker import JobRunner


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
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(False)
        self.eta = QLabel()
        self.eta.setMinimumWidth(70)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job at its next step")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.label, self.bar, self.eta, self.cancel_button):
            lay.addWidget(w)
        self.cancel_button.clicked.connect(self._cancel)
        runner.jobStarted.connect(self._started)
        runner.jobProgress.connect(self._progress)
        runner.busyChanged.connect(self._busy)
        runner.jobSucceeded.connect(lambda name, s: self.statusMessage.emit(f"{name}: done in {s:.1f} s", 8000))
        runner.jobCancelled.connect(lambda name: self.statusMessage.emit(f"{name}: cancelled", 8000))
        runner.jobFailed.connect(lambda name, msg, _d: self.statusMessage.emit(f"{name}: failed", 8000))
        self.setVisible(False)

    def _started(self, name: str) -> None:
        self.label.setText(name + "…")
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.eta.setText("")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")

    def _progress(self, done: int, total: int, message: str, eta: float) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        self.label.setText(f"{self.runner.current_name}: {message}" if message else self.runner.current_name)
        self.eta.setText(format_eta(eta))

    def _cancel(self) -> None:
        self.runner.cancel()
        self.cancel_button.setEnabled(False)
        self.cancel_button.setText("Cancelling…")

    def _busy(self, busy: bool) -> None:
        self.setVisible(busy)
