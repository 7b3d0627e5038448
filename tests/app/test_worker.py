"""The generic worker: signal order, throttled progress with ETA, cancel, errors, and the runner's idle state."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QObject, Slot

from app.worker import MAX_PROGRESS_HZ, JobRunner, JobWorker
from core.data.grozi import DatasetError
from core.data.video import VideoError
from core.importance.result import ImportanceFileError
from core.model.checkpoint import CheckpointError
from core.prune.plan import PlanError


def sleepy_job(steps: int, delay: float = 0.01, *, progress, cancel) -> str:
    """A fake core job: small steps, a cancel check between them."""
    for i in range(steps):
        time.sleep(delay)
        cancel.raise_if_cancelled()
        progress(i + 1, steps, f"step {i + 1}")
    return f"{steps} steps"


def failing_job(exc: Exception, *, progress, cancel):
    progress(0, 1, "about to fail")
    raise exc


class Recorder(QObject):
    """Lives in the GUI thread, so its slots run there (queued), in the order the worker emitted."""

    def __init__(self, worker: JobWorker) -> None:
        super().__init__()
        self.events: list[tuple] = []
        self.threads: set[bool] = set()
        s = worker.signals
        s.started.connect(self.started)
        s.progress.connect(self.progress)
        s.result.connect(self.result)
        s.error.connect(self.error)
        s.cancelled.connect(self.cancelled)
        s.finished.connect(self.finished)

    def _add(self, *event) -> None:
        self.threads.add(threading.current_thread() is threading.main_thread())
        self.events.append(event)

    @Slot()
    def started(self):
        self._add("started")

    @Slot(int, int, str, float)
    def progress(self, done, total, message, eta):
        self._add("progress", done, total, message, eta)

    @Slot(object)
    def result(self, value):
        self._add("result", value)

    @Slot(str)
    def error(self, message):
        self._add("error", message)

    @Slot()
    def cancelled(self):
        self._add("cancelled")

    @Slot()
    def finished(self):
        self._add("finished")

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


def run_worker(qtbot, fn, *args, cancel_after_s: float | None = None, **kwargs) -> Recorder:
    worker = JobWorker(fn, *args, **kwargs)
    rec = Recorder(worker)
    with qtbot.waitSignal(worker.signals.finished, timeout=20_000):
        worker.start()
        if cancel_after_s is not None:
            qtbot.wait(int(cancel_after_s * 1000))
            worker.cancel()
    qtbot.waitUntil(lambda: rec.kinds()[-1:] == ["finished"], timeout=5000)
    return rec


def test_result_order_progress_and_eta(qtbot):
    rec = run_worker(qtbot, sleepy_job, 40)
    kinds = rec.kinds()
    assert kinds[0] == "started" and kinds[-2:] == ["result", "finished"]
    assert set(kinds[1:-2]) == {"progress"}
    assert rec.events[-2] == ("result", "40 steps")
    assert rec.threads == {True}, "slots must run in the GUI thread"
    progress = [e for e in rec.events if e[0] == "progress"]
    dones = [e[1] for e in progress]
    assert dones == sorted(dones) and dones[-1] == 40, "the last step always gets through the throttle"
    assert all(e[4] >= 0 for e in progress if e[1] >= 2)  # an ETA once two steps are done
    assert all(e[4] == -1.0 for e in progress if e[1] < 2)
    assert progress[-1][4] == pytest.approx(0.0)


def test_progress_is_throttled(qtbot):
    t0 = time.monotonic()
    rec = run_worker(qtbot, sleepy_job, 3000, 0.0002)
    elapsed = time.monotonic() - t0
    n = sum(1 for k in rec.kinds() if k == "progress")
    assert n <= elapsed * MAX_PROGRESS_HZ + 3, f"{n} progress signals in {elapsed:.2f} s"
    assert rec.events[-3][1:3] == (3000, 3000)


def test_cancel_order(qtbot):
    rec = run_worker(qtbot, sleepy_job, 1000, cancel_after_s=0.15)
    kinds = rec.kinds()
    assert kinds[0] == "started" and kinds[-2:] == ["cancelled", "finished"]
    assert "result" not in kinds and "error" not in kinds
    last_done = max(e[1] for e in rec.events if e[0] == "progress")
    assert 1 <= last_done < 1000  # stopped at a step boundary, well before the end


def test_user_error_keeps_core_message(qtbot):
    rec = run_worker(qtbot, failing_job, CheckpointError("/x/model.pt", "file is empty"))
    assert rec.kinds()[-2:] == ["error", "finished"]
    assert rec.events[-2][1] == "/x/model.pt: file is empty"


@pytest.mark.parametrize("exc, message", [
    (DatasetError("/x/ds/dataset.json", "missing 'csv' (path of the annotation CSV)"),
     "/x/ds/dataset.json: missing 'csv' (path of the annotation CSV)"),
    (VideoError("/x/clip.mp4", "not a video (it looks like a PNG image)"), "/x/clip.mp4: not a video (it looks like a PNG image)"),
    (ImportanceFileError("/x/r.npz", "the file is empty"), "/x/r.npz: the file is empty"),
    (PlanError("/x/plan.json", "file is empty"), "/x/plan.json: file is empty"),
    (PermissionError(13, "Permission denied", "/x/out.pt"), "/x/out.pt: Permission denied"),
])
def test_user_errors_show_their_message_without_details(qtbot, window, wait_idle, message_boxes, exc, message):
    """Any InputError (and an OSError about a file) is the user's: one line, no traceback in the details."""
    window.runner.start("Opening dataset", failing_job, exc)
    wait_idle(window, 10_000)
    assert [(b["title"], b["text"], b["details"]) for b in message_boxes] == [("Opening dataset failed", message, "")]


def test_a_bug_in_a_job_keeps_its_traceback_in_the_details(qtbot, window, wait_idle, message_boxes):
    window.runner.start("Scoring", failing_job, KeyError("units"))
    wait_idle(window, 10_000)
    (box,) = message_boxes
    assert box["text"] == "KeyError: 'units'" and "failing_job" in box["details"]


def test_bug_names_the_exception_and_keeps_traceback(qtbot):
    worker = JobWorker(failing_job, RuntimeError("boom"))
    rec = Recorder(worker)
    with qtbot.waitSignal(worker.signals.finished, timeout=10_000):
        worker.start()
    qtbot.waitUntil(lambda: "error" in rec.kinds(), timeout=5000)
    assert ("error", "RuntimeError: boom") in rec.events
    assert "failing_job" in worker.traceback_text and "boom" in worker.traceback_text


def test_runner_one_job_at_a_time_and_callbacks_may_chain(qtbot):
    runner = JobRunner()
    got, busy = [], []
    runner.busyChanged.connect(busy.append)

    def second(result):
        got.append(result)
        assert runner.start("second", sleepy_job, 2, on_result=got.append) is not None

    assert runner.start("first", sleepy_job, 5, on_result=second) is not None
    assert runner.busy and runner.current_name == "first"
    assert runner.start("refused", sleepy_job, 1) is None
    qtbot.waitUntil(lambda: len(got) == 2, timeout=10_000)
    assert got == ["5 steps", "2 steps"]
    assert busy == [True, False, True, False]
    assert runner.shutdown(5000)


def test_runner_cancel_reports_cancelled(qtbot):
    runner = JobRunner()
    outcomes = []
    runner.jobCancelled.connect(lambda name, how: outcomes.append((how, name)))
    runner.jobSucceeded.connect(lambda name, s: outcomes.append(("done", name)))
    runner.start("long", sleepy_job, 1000, on_cancelled=lambda: outcomes.append("callback"))
    qtbot.wait(100)
    runner.cancel()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert outcomes == [("cancelled", "long"), "callback"]
    assert runner.shutdown(5000)


def test_cancel_button_returns_the_app_to_idle(qtbot, window, wait_idle):
    status = window.job_status
    window.runner.start("Long job", sleepy_job, 2000)
    qtbot.waitUntil(lambda: status.isVisible() and status.bar.maximum() == 2000, timeout=5000)
    assert "Long job" in status.label.text()
    qtbot.waitUntil(lambda: status.eta.text().startswith("ETA"), timeout=5000)  # from the second step on
    status.cancel_button.click()
    assert status.cancel_button.text() == "Cancelling…"
    wait_idle(window, 5000)
    assert not status.isVisible()
    assert window.statusBar().currentMessage() == "Long job: cancelled"
    # idle again: the next job runs
    assert window.runner.start("Short job", sleepy_job, 2) is not None
    wait_idle(window, 5000)
    assert window.statusBar().currentMessage().startswith("Short job: done")
