"""Progress as the status bar shows it: messages that count ("image 3 of 16") under one bar per job that
never restarts, no doubled prefixes, an ETA only once it is measured (and smoothed), and a report held
back by the worker's throttle still shown while a slow step runs."""

from __future__ import annotations

import re
import threading
import time

import pytest

from app.pruning_jobs import evaluate_job, importance_job
from app.views.job_status import ETA_MIN_SECONDS, ETA_MIN_UPDATES, format_eta
from app.worker import JobWorker
from core.jobs import Phases
from core.model.checkpoint import load_model


class Recorder(list):
    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.append((done, total, message))

    def messages(self) -> list[str]:
        return [m for _, _, m in self]


def doubled_prefix(text: str) -> str | None:
    """'importance: importance: x' or 'calibration: calibration set …': a word that starts two parts."""
    parts = [re.findall(r"\w+", p.lower()) for p in re.split(r"[:—]", text)]
    parts = [p for p in parts if p]
    for a, b in zip(parts, parts[1:]):
        if b[0] in (a[0], a[-1]):  # "calibration: calibration set", "Computing importance: importance"
            return b[0]
    return None


def one_bar(rec: Recorder) -> None:
    dones = [d for d, _, _ in rec]
    assert {t for _, t, _ in rec} == {Phases.SCALE}, "one count for the whole job"
    assert dones == sorted(dones), "the bar never goes back"
    assert dones[-1] == Phases.SCALE


def test_importance_job_counts_images_in_one_labelled_bar(tiny_model_path, tiny_dataset):
    rec = Recorder()
    result = importance_job(load_model(tiny_model_path), str(tiny_dataset), ["combined", "weight_l1"], 2,
                            progress=rec)
    assert set(result.criteria) == {"combined", "weight_l1"}
    one_bar(rec)
    msgs = rec.messages()
    assert "step 1 of 2: calibration set — loading image 1 of 2" in msgs
    assert "step 1 of 2: calibration set — loading image 2 of 2" in msgs
    assert "step 2 of 2: scoring — statistics, image 2 of 2" in msgs
    for m in msgs:
        assert doubled_prefix(f"Computing importance: {m}") is None, m
        assert not re.search(r"image \d+$", m), f"an image id where a count belongs: {m}"


def test_evaluate_job_is_one_bar_over_both_models(tiny_model_path, tiny_dataset):
    loaded = load_model(tiny_model_path)
    rec = Recorder()
    evals = evaluate_job({"original": loaded, "pruned": loaded}, str(tiny_dataset), max_images=1,
                         latency_repeats=1, progress=rec)
    assert [e.role for e in evals] == ["original", "pruned"]
    one_bar(rec)
    msgs = rec.messages()
    assert any(m.startswith("step 1 of 4: original mAP — image 1/") for m in msgs)
    assert "step 2 of 4: original latency — 1 timed runs" in msgs
    assert any(m.startswith("step 3 of 4: pruned mAP") for m in msgs)
    assert all(doubled_prefix(f"Evaluating: {m}") is None for m in msgs)


def test_doubled_prefix_detector():
    assert doubled_prefix("Computing importance: importance: statistics") == "importance"
    assert doubled_prefix("Computing importance: step 2 of 2: scoring — statistics, image 3 of 16") is None


# -- the status bar's ETA --------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_eta_is_shown_only_once_measured_and_then_smoothed(qtbot, window):
    status = window.job_status
    clock = Clock()
    status.estimator.clock = clock
    status._started("Computing importance")
    shown = []
    for k in range(1, 8):  # a step per second of 100
        clock.t += 1.0
        status._progress(k, 100, f"image {k} of 100", 5.0)  # the worker's own figure is not what is shown
        shown.append(status.eta.text())
    needed = max(ETA_MIN_UPDATES, int(ETA_MIN_SECONDS) + 1)
    assert shown[: needed - 1] == [""] * (needed - 1), "no ETA before a few steps and seconds"
    assert shown[needed - 1] == format_eta(100 - needed)
    assert shown[-1] == "ETA 1:33"
    # one odd fast step moves it a little, not to a fraction
    clock.t += 0.05
    status._progress(8, 100, "image 8 of 100", 0.1)
    seconds = [int(x) for x in re.findall(r"\d+", status.eta.text())]
    assert 60 <= seconds[0] * 60 + seconds[1] <= 93
    # a new count (another job phase without a shared bar) hides it until measured again
    clock.t += 1.0
    status._progress(1, 5000, "frame 1 of 5000", 3.0)
    assert status.eta.text() == ""
    # between reports it counts down (re-read every second)
    for k in range(2, 6):
        clock.t += 1.0
        status._progress(k, 5000, f"frame {k} of 5000", 3.0)
    before = status.eta.text()
    clock.t += 0.5
    status._show_eta()
    assert status.eta.text() != before and status.eta.text().startswith("ETA 1:")
    # at the end: no "ETA 0 s" left standing
    status._progress(5000, 5000, "done", 0.0)
    assert status.eta.text() == ""


def test_status_bar_eta_appears_for_a_real_job(qtbot, window, wait_idle):
    def steady(*, progress, cancel):
        for k in range(1, 400):
            cancel.raise_if_cancelled()
            time.sleep(0.01)
            progress(k, 400, f"step {k} of 400")

    status = window.job_status
    t0 = time.monotonic()
    window.runner.start("Steady job", steady)
    try:
        qtbot.waitUntil(lambda: status.eta.text().startswith("ETA"), timeout=10_000)
        assert time.monotonic() - t0 >= ETA_MIN_SECONDS * 0.9
    finally:
        window.runner.cancel()
        wait_idle(window, 5000)


# -- the worker's throttle never leaves an older message up ----------------------------------------------
def test_report_held_back_by_the_throttle_is_sent_while_a_slow_step_runs(qtbot):
    slow = threading.Event()

    def job(*, progress, cancel):
        progress(0, 10, "loading")
        progress(1, 10, "step 2 of 10: scoring")  # right after: held back by the ~30 Hz throttle
        slow.wait(5.0)  # a slow step: nothing else reported meanwhile
        return "ok"

    worker = JobWorker(job)
    got, finished = [], []
    worker.signals.progress.connect(lambda d, t, m, e: got.append(m))  # direct: runs in the emitting thread
    worker.signals.finished.connect(lambda: finished.append(True))
    worker.start()
    try:
        qtbot.waitUntil(lambda: "step 2 of 10: scoring" in got, timeout=2000)
        assert not finished, "sent while the slow step still runs"
    finally:
        slow.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=10_000)
    assert got == ["loading", "step 2 of 10: scoring"]


@pytest.mark.parametrize("seconds, text", [(-1, ""), (4.4, "ETA 4 s"), (784, "ETA 13:04"), (3725, "ETA 1:02:05")])
def test_format_eta(seconds, text):
    assert format_eta(seconds) == text
