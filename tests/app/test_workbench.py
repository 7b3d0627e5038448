"""The pruning workbench end to end with the default model (at a small eval scale) and a tiny dataset: compute importance,
plan with the sliders, prune, save, fine-tune (live loss, cancel + resume), evaluate, sensitivity,
save and reopen the project; and the GUI stays responsive while importance and pruning run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, QSettings, QTimer

from app.pruning_jobs import SensitivityResult
from core.model.checkpoint import file_sha256, load_model, save_model
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.plan import plan_counts

FAST_CRITERIA = ["combined", "weight_l1", "act_variance", "sparsity", "bn_gamma", "fg_bg_separation"]


def compute(window, wait_idle, criteria=FAST_CRITERIA, images=2):
    view = window.importance_view
    for name, box in view.criteria_boxes.items():
        box.setChecked(name in criteria)
    view.num_images.setValue(images)
    assert view.compute()
    wait_idle(window)
    return window.session.importance


def prune(window, wait_idle, ratio=0.3):
    window.pruning_view.ratio_panel.global_slider.setValue(ratio)
    window.pruning_view.prune_button.click()
    wait_idle(window)
    assert window.session.pruned is not None
    return window.session.pruned_info


def test_compute_importance_fills_the_heatmap(bench, wait_idle, message_boxes):
    s, view = bench.session, bench.importance_view
    imp = compute(bench, wait_idle)
    assert message_boxes.texts() == []
    assert imp is not None and sorted(imp.criteria) == sorted(FAST_CRITERIA)
    assert imp.units == tuple(u.name for u in s.model_info.units)
    assert len(imp.calibration.image_ids) == 2
    # the plan keeps ranking by weight L1, which recovers best with fine-tuning; the view shows combined
    assert s.plan.criterion == "weight_l1" and view.criterion.currentText() == "combined"
    # one row per unit, channels sorted (normalized, most important first), NaN beyond a unit's width
    image = view.heatmap.image.image
    assert image.shape == (len(imp.units), max(imp.channels))
    for row, c in enumerate(imp.channels):
        vals = image[row, :c]
        assert np.all(np.diff(vals) <= 1e-12) and vals[0] == pytest.approx(1.0)
        assert np.isnan(image[row, c:]).all()
    assert view.heatmap.plot.getAxis("left")._tickLevels[0][0][1] == "conv1"
    assert "statistics" in view.timings.text() and "gradient-free" in view.timings.text()
    # hover: unit, channel index, value
    text = view.describe_cell(0, 0)
    ch = int(imp.orders["combined"][imp.units[0]][0])
    assert text.startswith(f"conv1 · channel {ch} · rank 1/") and "combined" in text
    # the criterion combo switches the ordering
    view.criterion.setCurrentText("weight_l1")
    order = imp.orders["weight_l1"][imp.units[3]]
    np.testing.assert_allclose(view.heatmap.image.image[3, : len(order)],
                               imp.scores["weight_l1"][imp.units[3]][order] / imp.scores["weight_l1"][imp.units[3]].max())
    # clicking a row shows the unit's curve, histogram and scatter
    vb = view.heatmap.plot.getViewBox()
    view.heatmap.resize(800, 400)
    scene_pt = vb.mapViewToScene(QPointF(2.5, 3.5))
    assert view.heatmap.cell_at(scene_pt) == (3, 2)
    view.heatmap.sigRowClicked.emit(view.heatmap.cell_at(scene_pt)[0])
    assert view.selected == imp.units[3]
    c = imp.channels[3]
    assert len(view.curve.yData) == c and len(view.scatter.data) == c
    assert "Spearman" in view.scatter_plot.plotItem.titleLabel.text
    assert view.versus.currentText() != "weight_l1"  # never against itself
    assert view.scatter_plot.plotItem.getAxis("left").labelText == view.versus.currentText()


def test_sliders_drive_the_plan_predictions_and_cut_lines(bench, wait_idle):
    s = bench.session
    panel = bench.pruning_view.ratio_panel
    compute(bench, wait_idle)
    units = s.model_info.units
    base = s.model_info.cost.base
    assert panel.prediction.parameters == base.parameters
    assert bench.importance_view.heatmap.cuts.xData is None or len(bench.importance_view.heatmap.cuts.xData) == 0

    panel.global_slider.setValue(0.4)
    assert s.plan.ratio == pytest.approx(0.4)
    p1 = panel.prediction
    assert p1.parameters < base.parameters and p1.macs < base.macs and p1.size_mb < base.size_mb
    assert "−" in panel.pred_labels["Parameters"][2].text()
    counts = plan_counts(s.plan, units)
    # the heatmap's cut lines follow the plan: one segment per pruned unit, at its kept count
    xs = bench.importance_view.heatmap.cuts.xData
    assert sorted(set(xs.tolist())) == sorted({counts[u.name] for u in units if counts[u.name] < u.channels})

    # a unit slider overrides the global ratio and locks the row
    name = units[4].name
    panel.set_unit_ratio(name, 0.7)
    assert s.plan.unit_ratio_map == {name: 0.7} and panel.unit_locks[name].isChecked()
    assert panel.prediction.parameters < p1.parameters
    assert panel.table.item(panel.unit_rows[name], 4).text() == f"{counts_for(s.plan, units)[name]} / {units[4].channels}"
    # the global slider moves the others, not the locked unit
    panel.global_slider.setValue(0.2)
    assert panel.unit_sliders[name].value() == pytest.approx(0.7)
    assert panel.unit_sliders[units[5].name].value() == pytest.approx(0.2)
    # a group slider locks its group; reset follows the global again
    panel.group_sliders["layer2"].setValue(0.5)
    assert s.plan.group_ratio_map == {"layer2": 0.5} and panel.group_locks["layer2"].isChecked()
    assert panel.unit_sliders["net_feature_maps.layer2.0.conv1"].value() == pytest.approx(0.5)
    panel.group_resets["layer2"].click()
    assert s.plan.group_ratio_map == {}
    assert not panel.group_sliders["stem"].isEnabled()  # ResNet-18: the stem is coupled to layer1
    panel.unit_locks[name].setChecked(False)
    assert s.plan.unit_ratio_map == {} and panel.unit_sliders[name].value() == pytest.approx(0.2)
    panel.reset_all.click()
    assert s.plan.ratio == 0 and panel.prediction.parameters == base.parameters


def counts_for(plan, units):
    return plan_counts(plan, units)


def test_prune_and_save_never_over_the_original(bench, wait_idle, tmp_path, message_boxes, bench_model_path):
    s = bench.session
    compute(bench, wait_idle)
    info = prune(bench, wait_idle, 0.3)
    r = s.prune_result
    assert info.loaded.path == "" and info.summary.parameters == r.measured_parameters
    assert r.measured_parameters < s.model_info.summary.parameters
    assert r.predicted.parameters == r.measured_parameters == bench.pruning_view.ratio_panel.prediction.parameters
    assert "in memory" in bench.pruning_view.pruned_label.text()

    original_sha = file_sha256(bench_model_path)
    bench.dialogs.save_file = lambda *a, **k: str(bench_model_path)
    assert not bench.workbench.save_pruned()
    assert "input model" in message_boxes[-1]["text"] and file_sha256(bench_model_path) == original_sha

    out = tmp_path / "saved" / "pruned"
    out.parent.mkdir()
    bench.dialogs.save_file = lambda *a, **k: str(out)
    bench.pruning_view.save_button.click()
    wait_idle(bench)
    saved = out.with_suffix(".pt")
    assert saved.is_file() and s.pruned.path == str(saved.resolve())
    again = load_model(saved)
    assert again.model.num_parameters() == r.measured_parameters
    assert again.meta["pruning"]["parent"]["sha256"] == original_sha
    assert again.meta["pruning"]["criterion"] == "weight_l1" and again.meta["eval_scale"] == 256
    # over itself: refused; over any existing file: core refuses (models are never overwritten)
    bench.pruning_view.save_button.click()
    assert "input model" in message_boxes[-1]["text"]
    other = tmp_path / "saved" / "other.pt"
    other.write_bytes(b"not mine")
    bench.dialogs.save_file = lambda *a, **k: str(other)
    bench.pruning_view.save_button.click()
    wait_idle(bench)
    assert "refusing to overwrite" in message_boxes[-1]["text"] and other.read_bytes() == b"not mine"


def test_finetune_two_iterations_with_a_live_loss_curve(bench, wait_idle, tmp_path, message_boxes):
    s = bench.session
    prune(bench, wait_idle, 0.3)  # no importance: the data-free weight_l1 criterion
    assert s.prune_result.plan.criterion == "weight_l1"
    pruned_params = s.pruned_info.summary.parameters
    seen = []
    s.finetuneLogged.connect(lambda e: seen.append((e["iteration"], len(bench.metrics_view.loss_curve.xData))))
    view = bench.pruning_view
    view.ft_iterations.setValue(2)
    view.ft_eval_images.setValue(1)
    view.ft_lr.setValue(1e-4)
    assert view.run_finetune()
    wait_idle(bench)
    assert [it for it, _ in seen] == [1, 2]
    assert [n for _, n in seen] == [1, 2]  # the curve grew with each entry, while the job ran
    out = Path(s.finetune_summary["out"])  # a new file in the default models folder, never a temporary one
    assert out.name.endswith("-ft.pt") and out.parent == tmp_path / "documents" / "models" and out.is_file()
    if s.finetune_summary["map_after"] < s.finetune_summary["map_before"]:  # kept the better model, said so
        assert message_boxes[-1]["title"] == "Fine-tuning lowered mAP"
        bench.controller.open_model(out, "pruned")
        wait_idle(bench)
    else:
        assert message_boxes[-1]["title"] == "Fine-tuned model saved" and out.name in message_boxes[-1]["text"]
    assert s.pruned.path == str(out) and s.pruned_info.summary.parameters == pruned_params
    assert s.pruned.meta["teacher"] == s.model.path
    assert s.pruned.meta["training"]["config"]["lr"] == pytest.approx(1e-4)  # the panel's learning rate
    assert s.finetune_summary["iterations"] == 2 and s.finetune_summary["map_after"] is not None
    assert len(bench.metrics_view.loss_curve.xData) == 2


def test_cancel_finetune_midway_keeps_a_resumable_checkpoint(bench, wait_idle, tmp_path):
    s = bench.session
    prune(bench, wait_idle, 0.3)
    bench.workbench.checkpoint_every = 1
    s.finetuneLogged.connect(lambda e: bench.runner.cancel() if e["iteration"] == 1 else None)
    cancelled = []
    bench.runner.jobCancelled.connect(lambda name, _how: cancelled.append(name))
    assert bench.workbench.finetune(4, eval_images=1)
    wait_idle(bench)
    assert cancelled == ["Fine-tuning"] and not bench.runner.busy
    assert not bench.job_status.isVisible()
    work = tmp_path / "documents" / "models"
    source = s.pruned.path  # the in-memory model was saved into the work folder first
    assert source.startswith(str(work)) and s.pruned.meta.get("teacher") is None
    out = work / (source.rsplit("/", 1)[1].replace(".pt", "-ft.pt"))
    assert not out.exists()  # nothing half-written
    assert (out.with_suffix(".run") / "last.pt").is_file()
    assert [p for p in work.rglob("*") if p.name.startswith(".") or p.suffix in (".tmp", ".part")] == []
    # Fine-tune again resumes from the checkpoint: the log starts after iteration 1
    s.finetuneLogged.disconnect()
    assert bench.workbench.finetune(2, eval_images=1)
    wait_idle(bench)
    assert [e["iteration"] for e in s.finetune_log] == [2]
    assert out.is_file() and s.finetune_summary["out"] == str(out)


def test_finetune_that_lowers_map_keeps_the_model_it_started_from(bench, wait_idle, monkeypatch, message_boxes):
    import app.workbench as wb

    real = wb.finetune_job

    def worse(*args, **kwargs):
        outcome = real(*args, **kwargs)
        res = outcome.result
        return replace(outcome, result=replace(res, map_before=0.9, map_after=0.7))

    monkeypatch.setattr(wb, "finetune_job", worse)
    s = bench.session
    prune(bench, wait_idle, 0.3)
    assert bench.workbench.finetune(1, eval_images=1)
    wait_idle(bench)
    started_from = s.pruned.path  # saved into the models folder before fine-tuning
    out = Path(s.finetune_summary["out"])
    assert out.is_file() and str(out) != started_from and s.pruned.meta.get("teacher") is None
    box = message_boxes[-1]
    assert box["title"] == "Fine-tuning lowered mAP"
    assert "0.900 → 0.700" in box["text"] and out.name in box["text"]


def test_cancel_importance_leaves_the_session_as_it_was(bench, wait_idle):
    s = bench.session
    first = compute(bench, wait_idle)
    QTimer.singleShot(0, bench.job_status.cancel_button.click)
    assert bench.importance_view.compute()
    wait_idle(bench)
    assert s.importance is first and not bench.runner.busy


def test_evaluate_fills_the_metrics_table_and_pareto_plot(bench, wait_idle):
    s = bench.session
    mv = bench.metrics_view
    assert mv.summary.item(4, 0).text() == "–"  # not evaluated yet
    prune(bench, wait_idle, 0.5)
    bench.pruning_view.eval_images.setValue(2)
    assert bench.pruning_view.run_evaluate()
    wait_idle(bench)
    roles = [e.role for e in s.evaluations]
    assert roles == ["original", "pruned"]
    orig, pruned = s.evaluations
    assert pruned.parameters < orig.parameters and pruned.macs < orig.macs
    assert orig.images == 2 and orig.split == "val" and orig.latency_ms > 0
    assert 0.0 <= orig.map <= 1.0 and pruned.description.startswith("pruned 50 %")
    assert mv.summary.item(0, 0).text() == f"{orig.parameters:,}"
    assert mv.summary.item(4, 1).text() == f"{pruned.map:.4f}"
    assert mv.summary.item(0, 2).text().startswith("−")
    assert mv.history.rowCount() == 2
    assert len(mv.eval_points["original"].data) == 1 and len(mv.eval_points["pruned"].data) == 1
    assert len(mv.front.xData) >= 1


def test_sensitivity_curves_per_group(bench, wait_idle):
    s = bench.session
    view = bench.pruning_view
    view.sens_ratios.setText("0.2, 0.5")
    view.sens_images.setValue(1)
    points = []
    bench.session.metricsChanged.connect(lambda: points.append(len(s.sensitivity.points) if s.sensitivity else 0))
    assert view.run_sensitivity()
    wait_idle(bench)
    sens = s.sensitivity
    assert isinstance(sens, SensitivityResult) and sens.complete
    assert sens.groups == ("layer1", "layer2", "layer3", "transform")
    assert len(sens.points) == 1 + 4 * 2 and sens.baseline is not None
    assert max(points) == len(sens.points) and 2 in points  # points arrived one by one
    xs, ys = sens.curve("layer3")
    assert xs == [0.0, 0.2, 0.5] and len(ys) == 3
    curves = bench.metrics_view.sens_curves
    assert set(curves) == set(sens.groups) and list(curves["layer2"].xData) == [0.0, 0.2, 0.5]
    sizes = [p.size_mb for p in sens.points if p.group == "layer3"]
    assert sizes[1] < sizes[0] < sens.baseline.size_mb


def test_save_and_reopen_the_session(qtbot, bench, wait_idle, tmp_path, message_boxes, tiny_dataset):
    s = bench.session
    compute(bench, wait_idle)
    panel = bench.pruning_view.ratio_panel
    panel.global_slider.setValue(0.25)
    panel.set_unit_ratio("net_feature_maps.layer3.0.conv1", 0.6)
    panel.min_channels.setValue(4)
    bench.pruning_view.prune_button.click()
    wait_idle(bench)
    pruned_file = tmp_path / "p.pt"
    bench.dialogs.save_file = lambda *a, **k: str(pruned_file)
    assert bench.workbench.save_pruned()
    wait_idle(bench)
    bench.pruning_view.eval_images.setValue(1)
    bench.pruning_view.run_evaluate()
    wait_idle(bench)
    project = tmp_path / "proj" / "study.os2d.json"
    bench.dialogs.save_file = lambda *a, **k: str(project)
    assert bench.controller.save_project()
    assert not s.dirty
    assert (project.parent / "study.importance.json").is_file() and (project.parent / "study.importance.npz").is_file()
    data = json.loads(project.read_text())
    assert data["importance"]["file"] == "study.importance.json"
    assert data["plan"]["unit_ratios"] == {"net_feature_maps.layer3.0.conv1": 0.6}
    assert len(data["metrics"]["evaluations"]) == 2 and data["dataset"] == str(tiny_dataset.resolve())

    from app.main_window import MainWindow
    from app.state import Session

    w2 = MainWindow(Session(QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w2)
    assert w2.controller.open_project(project)
    wait_idle(w2)
    s2 = w2.session
    assert s2.model is not None and s2.pruned is not None and s2.pruned.path == str(pruned_file.resolve())
    assert s2.plan == s.plan and s2.plan.min_channels == 4
    assert s2.importance.criteria == s.importance.criteria
    for crit in s.importance.criteria:
        for unit in s.importance.units:
            np.testing.assert_array_equal(s2.importance.scores[crit][unit], s.importance.scores[crit][unit])
    assert s2.evaluations == s.evaluations and s2.dataset_path == s.dataset_path
    assert not s2.dirty, "a reopened project has no unsaved changes"
    assert w2.importance_view.heatmap.image.image.shape == bench.importance_view.heatmap.image.image.shape
    assert w2.pruning_view.ratio_panel.unit_sliders["net_feature_maps.layer3.0.conv1"].value() == pytest.approx(0.6)
    assert w2.metrics_view.history.rowCount() == 2
    assert message_boxes.texts() == []


@pytest.mark.slow
def test_gui_stays_responsive_during_importance_and_prune(bench, wait_idle, timer_gaps, tmp_path):
    """A 10 ms timer keeps firing while real importance and prune jobs run (TimerGaps: bounds relative
    to a job's duration)."""
    view = bench.importance_view
    for name, box in view.criteria_boxes.items():
        box.setChecked(name in FAST_CRITERIA + ["taylor"])
    view.num_images.setValue(4)
    timer_gaps(bench).run(view.compute).assert_responsive("importance")
    assert bench.session.importance is not None

    # a ResNet-50 OS2D: surgery on 50+ layers, and a long layer table to refresh with each result
    torch.manual_seed(0)
    big = save_model(OS2DModel(ModelConfig(backbone="resnet50")), tmp_path / "r50.pt", meta={"eval_scale": 256})
    assert bench.controller.open_model(big)
    wait_idle(bench)
    assert bench.session.importance is None  # the ResNet-18's importance does not fit: dropped
    panel = bench.pruning_view.ratio_panel
    panel.criterion.setCurrentText("weight_l1")  # data-free: ranks channels by their filters

    def prune_five_times() -> bool:  # each result also refreshes the model panel's layer table (GUI thread)
        for r in (0.3, 0.4, 0.5, 0.6, 0.7):
            panel.global_slider.setValue(r)
            assert bench.workbench.prune()
            wait_idle(bench)
        return True

    timer_gaps(bench).run(prune_five_times, jobs=5).assert_responsive("five prunes")
    assert bench.session.pruned is not None and bench.session.prune_result.plan.ratio == 0.7


def test_a_pruned_model_not_fine_tuned_is_announced_with_its_map_drop(bench, wait_idle):
    s = bench.session
    banners = (bench.detection_view.banner, bench.video_view.banner)
    assert all(b.isHidden() for b in banners)  # no pruned model
    bench.pruning_view.refit.setChecked(False)  # a bare cut
    prune(bench, wait_idle, 0.5)
    assert all(not b.isHidden() and "Fine-tune before comparing" in b.text() for b in banners)
    assert "dropped" not in banners[0].text()  # not evaluated yet
    bench.pruning_view.eval_images.setValue(2)
    assert bench.pruning_view.run_evaluate()
    wait_idle(bench)
    o, p = s.evaluations
    assert f"dropped {o.map:.2f} → {p.map:.2f} on 2 val images" in banners[0].text()
    # each side is shown at the score threshold its own evaluation found best
    if p.score_threshold is not None:
        assert s.detection_settings.pruned_score_threshold == pytest.approx(p.score_threshold)
    # a fine-tuned model (distilled from a teacher) needs no banner
    info = s.pruned_info
    tuned = replace(info, loaded=replace(info.loaded, meta={**info.loaded.meta, "training": {"iterations": 1},
                                                            "teacher": "t.pt"}))
    s.set_pruned(tuned)
    assert all(b.isHidden() for b in banners)
    # nor does a cut whose next layers were refit (it keeps most of its mAP)
    refit = replace(info, loaded=replace(info.loaded, meta={**info.loaded.meta,
                                                            "reconstruction": {"updated": 4, "images": 8}}))
    s.set_pruned(refit)
    assert all(b.isHidden() for b in banners)
    s.set_pruned(info)
    assert all(not b.isHidden() for b in banners)


def test_allocate_across_units_replaces_the_ratios_at_the_same_macs(bench, wait_idle, message_boxes):
    s, panel = bench.session, bench.pruning_view.ratio_panel
    assert not panel.allocate_button.isEnabled() and "removes nothing" in panel.allocate_button.toolTip()
    panel.global_slider.setValue(0.5)
    uniform = panel.prediction
    assert panel.allocate_button.isEnabled()
    panel.allocate_button.click()
    wait_idle(bench)
    assert message_boxes.texts() == []
    ratios = s.plan.unit_ratio_map
    assert set(ratios) == {u.name for u in s.model_info.units}  # every unit has its own ratio now
    assert len({round(r, 3) for r in ratios.values()}) > 1
    assert panel.prediction.macs <= uniform.macs and panel.prediction.macs > 0.95 * uniform.macs
    assert panel.allocate_note.text().startswith("Allocated by weight_l1: MACs")
    assert all(panel.unit_sliders[n].value() == pytest.approx(r, abs=0.01) for n, r in ratios.items())


def test_prune_refits_the_next_layers_on_calibration_images(bench, wait_idle, message_boxes):
    s, pv = bench.session, bench.pruning_view
    assert pv.refit.isChecked() and pv.refit_images.value() == 8  # on by default: the cut keeps far more mAP
    pv.refit_images.setValue(2)
    prune(bench, wait_idle, 0.5)
    assert message_boxes.texts() == []
    rec = s.pruned.meta["reconstruction"]
    assert rec["images"] == 2 and rec["updated"] > 0 and rec["error_after"] < rec["error_before"]
    assert "next layers refit on 2 images" in pv.pruned_label.text()
    pv.refit.setChecked(False)
    assert not pv.refit_images.isEnabled()
    prune(bench, wait_idle, 0.4)
    assert "reconstruction" not in s.pruned.meta and "refit" not in pv.pruned_label.text()
