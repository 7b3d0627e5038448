"""The Metrics tab's "Study: mAP vs size": the bundled seed study (bench/seed_table.py's rows, drawn with the
bench's own plot function) with one curve per criterion, its title and legend inside the frame, and the
session's models placed on it."""

from __future__ import annotations

import json
import time

import pytest
from PySide6.QtWidgets import QApplication

from app.pruning_jobs import Evaluation, model_label
from app.views.study_plot import read_study, study_path
from core.errors import InputError

WIDTH, HEIGHT = 1280, 800


def show_study(qtbot, window):
    window.resize(WIDTH, HEIGHT)
    view = window.metrics_view
    window.tabs.setCurrentWidget(view)
    view.pages.setCurrentWidget(view.study)
    qtbot.waitUntil(lambda: view.study.plot.isVisible(), timeout=5000)
    qtbot.wait(50)
    QApplication.processEvents()
    return view.study


def test_the_bundled_study_has_the_committed_tables():
    studies = read_study(study_path())
    assert [(s["section"], s["finetune_iterations"]) for s in studies] == [("seed-table-v3", 100),
                                                                         ("seed-table-v3-long", 500)]
    for s in studies:
        assert len(s["model_sha256"]) == 64 and s["dataset"] and s["val_images"] == 30 and s["date"] and s["machine"]
    rows = {(r["ratio"], r["criterion"]): r for r in studies[0]["rows"]}
    assert rows[(0.5, "weight_l1")]["map_after"] == 0.910 and rows[(0.5, "weight_l1")]["size_mb"] == 5.84
    assert studies[1]["rows"][0]["map_after"] is None  # that run fine-tuned no control


def test_one_curve_per_criterion_of_each_study(qtbot, window):
    panel = show_study(qtbot, window)
    studies = json.loads(study_path().read_text(encoding="utf-8"))["studies"]
    assert panel.choice.count() == len(studies) and panel.choice.isVisible()
    for i, study in enumerate(studies):
        panel.choice.setCurrentIndex(i)
        criteria = {r["criterion"] for r in study["rows"]}
        assert set(panel.curves) == criteria
        for crit, items in panel.curves.items():
            after = sorted((r["size_mb"], r["map_after"]) for r in study["rows"]
                           if r["criterion"] == crit and r["map_after"] is not None)
            curve = [it for it in items if it.opts["pen"] is not None]  # the fine-tuned points are joined
            if after:
                [line] = curve
                assert sorted(zip(line.xData.tolist(), line.yData.tolist())) == after
            else:
                assert curve == []
        names = [label.text for _, label in panel.plot.plotItem.legend.items]
        assert "weight L1 (fine-tuned)" in names and "original" in names
    plotted = [it for items in panel.curves.values() for it in items]
    assert all(it in panel.plot.plotItem.items for it in plotted)  # the last choice's, not every study's
    assert len(plotted) == sum(1 for items in panel.curves.values() for _ in items)


def test_title_legend_and_axes_stay_inside_the_frame(qtbot, window):
    panel = show_study(qtbot, window)
    plot = panel.plot
    vp = plot.viewport().rect()
    item = plot.plotItem
    rect = plot.mapFromScene(item.sceneBoundingRect()).boundingRect()
    assert rect.width() <= vp.width() + 1 and rect.height() <= vp.height() + 1
    title = item.titleLabel
    assert title.isVisible() and "mAP@0.5 vs model size" in title.text
    assert title.itemRect().width() <= item.width() and title.itemRect().height() <= title.size().height() + 1
    box = item.vb.sceneBoundingRect()
    legend = item.legend.sceneBoundingRect()
    assert box.contains(legend), f"legend {legend} outside the data area {box}"
    for side in ("left", "bottom"):  # the axes' own rectangles (their bounding rects include the grid lines)
        ax = item.getAxis(side)
        axis = plot.mapFromScene(ax.mapRectToScene(ax.rect())).boundingRect()
        assert vp.adjusted(-1, -1, 1, 1).contains(axis), f"{side} axis {axis} outside {vp}"
    (x0, x1), (y0, y1) = item.vb.viewRange()
    sizes = [r["size_mb"] for r in panel.study()["rows"]]
    assert x0 < min(sizes) and x1 > max(sizes) and y0 <= 0.0 and y1 >= 1.0


def test_the_session_models_sit_on_the_study(qtbot, loaded):
    panel = show_study(qtbot, loaded)
    s = loaded.session
    info = s.model_info
    size = info.summary.parameters * 4 / 1e6
    line, point = panel.session_lines["original"], panel.session_points["original"]
    # not evaluated: a dashed line at its size, no point, nothing in the legend
    assert line.isVisible() and line.value() == pytest.approx(size) and len(point.data) == 0
    assert "this session: original" not in [label.text for _, label in panel.plot.plotItem.legend.items]
    assert not panel.session_lines["pruned"].isVisible()
    (x0, x1), _ = panel.plot.plotItem.vb.viewRange()
    assert x0 < size < x1
    assert "not the open original" in panel.note.text()  # the tiny random model is not the study's
    s.add_evaluations([Evaluation("original", "tiny18.pt", model_label(info.loaded), info.summary.parameters, 10**9,
                                  size, 50.0, 0.42, 2, "tiny", "val", 1.0, time.time())])
    assert not line.isVisible()
    assert point.data["x"].tolist() == pytest.approx([size]) and point.data["y"].tolist() == pytest.approx([0.42])
    assert "this session: original" in [label.text for _, label in panel.plot.plotItem.legend.items]
    assert "original 0.420 on 2 images of tiny (val)" in panel.note.text() and "retention" in panel.note.text()


def test_a_broken_study_file_is_named_with_its_problem(tmp_path, qtbot, monkeypatch):
    from app.state import Session
    from app.views import metrics_view, study_plot

    bad = tmp_path / "seed-table.json"
    bad.write_text('{"format": "os2d-studio-study", "version": 1, "studies": [{"rows": [{"criterion": 3}]}]}')
    with pytest.raises(InputError, match="study 1 has no rows"):
        read_study(bad)
    monkeypatch.setattr(study_plot, "study_path", lambda: bad)
    view = metrics_view.MetricsView(Session())
    qtbot.addWidget(view)
    assert str(bad) in view.study.note.text() and view.study.curves == {}


def test_the_bench_writes_what_the_app_reads(tmp_path):
    from bench.seed_table import write_study

    path = tmp_path / "study.json"
    entry = dict(read_study(study_path())[0], section="smoke", date="2030-01-01")
    write_study(str(path), entry)
    write_study(str(path), dict(entry, section="other"))
    write_study(str(path), dict(entry, date="2030-01-02"))  # the same section again: replaced in place
    studies = read_study(path)
    assert [(s["section"], s["date"]) for s in studies] == [("smoke", "2030-01-02"), ("other", "2030-01-01")]
