"""The workbench's small pieces: result records and their JSON, normalization, Pareto front, ratio parsing,
the worker's report channel."""

from __future__ import annotations

import numpy as np
import pytest

from app.pruning_jobs import Evaluation, SensitivityPoint, SensitivityResult, model_label
from app.views.importance_view import normalize_unit, spearman
from app.views.metrics_view import pareto_front
from app.views.pruning_view import parse_ratios
from app.views.ratio_panel import fmt_change, short_unit_name
from app.worker import JobRunner
from core.model.checkpoint import LoadedModel


def test_sensitivity_result_curves_and_json():
    r = SensitivityResult("combined", (0.2, 0.5), ("layer2", "layer3"), 4, "synth")
    assert r.baseline is None and r.curve("layer2") == ([], [])
    r = r.with_point(SensitivityPoint("", 0.0, 0.4, 100, 0.4))
    r = r.with_point(SensitivityPoint("layer2", 0.2, 0.35, 90, 0.36))
    r = r.with_point(SensitivityPoint("layer2", 0.5, 0.2, 70, 0.28))
    assert r.curve("layer2") == ([0.0, 0.2, 0.5], [0.4, 0.35, 0.2])
    assert r.curve("layer3") == ([0.0], [0.4])
    assert SensitivityResult.from_json(r.to_json()) == r


def test_evaluation_json_round_trip():
    e = Evaluation("pruned", "p.pt", "pruned 30 % (combined)", 10, 20, 0.04, None, 0.5, 3, "synth", "val", 1.5, 7.0)
    assert Evaluation.from_json(e.to_json()) == e


def test_model_label_from_meta():
    meta = {"pruning": {"criterion": "combined", "plan": {"ratio": 0.3, "group_ratios": {"layer3": 0.5}}},
            "training": {"iterations": 20}, "teacher": "orig.pt"}
    assert model_label(LoadedModel(None, "", "os2d-studio", meta)) == "pruned 30 % + 1 override (combined), fine-tuned 20 it."
    assert model_label(LoadedModel(None, "", "os2d-studio", {})) == ""


def test_normalize_unit():
    np.testing.assert_allclose(normalize_unit(np.array([1.0, 4.0, 2.0])), [0.25, 1.0, 0.5])
    np.testing.assert_allclose(normalize_unit(np.array([-1.0, 1.0, 0.0])), [0.0, 1.0, 0.5])  # min-max
    out = normalize_unit(np.array([0.0, np.nan, 0.0]))
    assert out[0] == 1.0 and np.isnan(out[1])
    assert spearman(np.array([1.0, 2, 3]), np.array([10.0, 20, 30])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1.0)


def test_pareto_front():
    pts = [(10.0, 0.5), (5.0, 0.3), (7.0, 0.2), (8.0, 0.45), (12.0, 0.45)]
    assert pareto_front(pts) == [(5.0, 0.3), (8.0, 0.45), (10.0, 0.5)]
    assert pareto_front([]) == []


def test_parse_ratios_and_names():
    assert parse_ratios("0.3, 0.1 0.3 50%") == (0.1, 0.3, 0.5)
    for bad, msg in (("", "at least one"), ("0.1 x", "'x' is not a ratio"), ("1.2", "outside")):
        with pytest.raises(ValueError, match=msg):
            parse_ratios(bad)
    assert short_unit_name("net_feature_maps.layer3.2.conv1") == "layer3.2.conv1"
    assert short_unit_name("os2d_head_creator.aligner.parameter_regressor.conv.0") == "transform.conv.0"
    assert fmt_change(60, 100) == "−40.0%" and fmt_change(100, 100) == "±0 %"


def _reporting_job(n: int, *, progress, cancel, report):
    for i in range(n):
        cancel.raise_if_cancelled()
        report({"i": i})
    return n


def test_runner_delivers_reports_before_the_result(qtbot):
    runner = JobRunner()
    events = []
    runner.start("reports", _reporting_job, 3, on_report=lambda v: events.append(v["i"]),
                 on_result=lambda r: events.append(f"result {r}"))
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert events == [0, 1, 2, "result 3"]
    # without on_report the job gets no `report` argument
    runner.start("no reports", lambda *, progress, cancel: "ok", on_result=events.append)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10_000)
    assert events[-1] == "ok"
    assert runner.shutdown(5000)
