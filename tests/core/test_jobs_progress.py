"""Progress that tells the truth: messages count steps ("image 3 of 16", never an image id), one bar across
a job's phases (`Phases`: labelled, never going back), and ETAs from the measured, smoothed rate
(`EtaEstimator`: none before a few steps and seconds, no jump when a count restarts)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import torch

from core.data.grozi import open_dataset
from core.importance.calibration import build_calibration
from core.importance.stats import collect_statistics
from core.jobs import ConsoleProgress, EtaEstimator, Phases
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.units import find_units

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_os2d"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Recorder(list):
    def __call__(self, done: int, total: int, message: str = "") -> None:
        self.append((done, total, message))

    def messages(self) -> list[str]:
        return [m for _, _, m in self]


# -- what the messages count ----------------------------------------------------------------------------
def test_calibration_and_statistics_count_images_not_ids():
    ds = open_dataset(TINY, "train")
    ids = [im.imageid for im in ds.images if im.num_boxes > 0]
    n = min(3, len(ids))
    rec = Recorder()
    calib = build_calibration(ds, n, 160.0, progress=rec)
    loading = [m for m in rec.messages() if m.startswith("loading image")]
    assert loading == [f"loading image {k} of {n}" for k in range(1, n + 1)]
    assert rec[-1] == (n, n, f"{n} images loaded")

    torch.manual_seed(0)
    model = OS2DModel(ModelConfig("resnet18")).eval()
    rec = Recorder()
    collect_statistics(model, calib, find_units(model), progress=rec)
    stats = [m for m in rec.messages() if m.startswith("statistics, image")]
    assert stats == [f"statistics, image {k} of {n}" for k in range(1, n + 1)]
    assert [d for d, _, _ in rec] == sorted(d for d, _, _ in rec) and rec[-1][0] == rec[-1][1] == n
    for m in rec.messages():  # the sample's image id never reads as a count
        for number in map(int, re.findall(r"\d+", m)):
            assert number <= n


# -- one bar across phases ------------------------------------------------------------------------------
def test_phases_make_one_labelled_bar_that_never_restarts():
    rec = Recorder()
    phases = Phases(rec, [("load", 1.0), ("score", 3.0), ("write", 1.0)])
    for k in range(5):
        phases("load")(k, 4, f"image {k + 1} of 4")
    for k in range(11):
        phases("score")(k, 10)
    phases("write")(0, 1, "saving")
    phases.done()
    totals = {t for _, t, _ in rec}
    dones = [d for d, _, _ in rec]
    assert totals == {Phases.SCALE}, "one count for the whole job"
    assert dones == sorted(dones) and dones[-1] == Phases.SCALE
    assert dones[4] == pytest.approx(0.2 * Phases.SCALE, abs=1)  # "load" is 1/5 of the bar
    assert dones[15] == pytest.approx(0.8 * Phases.SCALE, abs=1)
    assert rec[1][2] == "step 1 of 3: load — image 2 of 4"
    assert rec[6][2] == "step 2 of 3: score"
    assert rec[-2][2] == "step 3 of 3: write — saving"
    # a phase reporting a restarted sub-count does not move the bar back
    phases("score")(0, 10, "again")
    assert rec[-1][0] == Phases.SCALE
    with pytest.raises(KeyError):
        phases("unknown")


# -- ETA -------------------------------------------------------------------------------------------------
def test_eta_waits_for_steps_and_seconds_then_is_measured():
    clock = Clock()
    est = EtaEstimator(min_steps=3, min_seconds=2.0, clock=clock)
    got = []
    for k in range(1, 11):  # one step per second over 100 steps
        clock.t += 1.0
        got.append(est.update(k, 100))
    assert got[:2] == [-1.0, -1.0], "no ETA before three steps and two seconds"
    assert all(e >= 0 for e in got[2:])
    assert got[-1] == pytest.approx(90.0, rel=0.02)  # 90 steps left at 1 step/s
    assert est.update(100, 100) == 0.0


def test_eta_is_smoothed_against_one_odd_step():
    clock = Clock()
    est = EtaEstimator(half_life=4.0, min_steps=3, min_seconds=2.0, clock=clock)
    for k in range(1, 21):
        clock.t += 1.0
        est.update(k, 200)
    before = est.eta()
    clock.t += 0.01  # one step that took a hundredth of the others
    after = est.update(21, 200)
    assert before == pytest.approx(180.0, rel=0.05)
    assert 0.6 * before < after < before, "one fast step moves the estimate a little, not 100x"


def test_eta_restarts_with_a_new_count_instead_of_jumping():
    clock = Clock()
    est = EtaEstimator(min_steps=3, min_seconds=2.0, clock=clock)
    for k in range(1, 11):
        clock.t += 0.5
        est.update(k, 10)
    assert est.eta() == 0.0
    clock.t += 0.5
    assert est.update(1, 500) == -1.0, "a new count: no estimate from the old one's rate"
    for k in range(2, 5):
        clock.t += 1.0
        eta = est.update(k, 500)
    assert eta == pytest.approx(496.0, rel=0.05)


def test_eta_counts_down_between_reports_and_grows_when_a_step_is_overdue():
    clock = Clock()
    est = EtaEstimator(min_steps=3, min_seconds=2.0, clock=clock)
    for k in range(1, 11):
        clock.t += 2.0
        est.update(k, 20)
    assert est.eta() == pytest.approx(20.0, rel=0.02)
    clock.t += 1.0
    assert est.eta() == pytest.approx(19.0, rel=0.02)  # counting down inside the step
    clock.t += 9.0  # the step has taken 10 s where steps took 2 s
    late = est.eta()
    assert 18.0 < late < 60.0, "an overdue step raises the estimate, without exploding"


def test_console_progress_prints_measured_eta(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("core.jobs.time.monotonic", clock)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    p = ConsoleProgress("job", stream=out, min_interval=0.0)
    p.eta = EtaEstimator(clock=clock)
    p(0, 100, "start")
    for k in range(1, 6):
        clock.t += 1.0
        p(k, 100, f"step {k} of 100")
    lines = [line.rstrip() for line in out.getvalue().split("\r") if line]
    assert "ETA    ?s" in lines[1]  # one step measured: no estimate yet
    assert re.search(r"ETA\s+95s step 5 of 100$", lines[-1])


def test_eta_follows_slow_uneven_steps_without_jumps():
    """Steps of 9-16 s (an importance pass at a large scale), read every 3 s as the status bar does."""
    import random

    rng = random.Random(1)
    clock = Clock()
    start = clock.t
    est = EtaEstimator(clock=clock)
    est.start()
    ends, acc = [], 0.0
    for _ in range(8):
        acc += rng.uniform(9.0, 16.0)
        ends.append(start + acc)
    shown, done, t = [], 0, start
    while t < ends[-1] - 3.0:
        t += 3.0
        while done < len(ends) and ends[done] <= t:
            clock.t = ends[done]
            done += 1
            est.update(done * 100, 800)
        clock.t = t
        eta = est.eta()
        if eta >= 0:
            shown.append((eta, ends[-1] - t))
    assert len(shown) > 15
    for eta, truth in shown:
        assert abs(eta - truth) <= 0.3 * truth + 6.0, (eta, truth)
    assert all(b[0] <= a[0] + 3.0 for a, b in zip(shown, shown[1:])), "no jumps up between readings"
