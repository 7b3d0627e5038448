"""The importance view's reference: another ranking of the open model's channels (the staged ranking
`prune-stages` writes, or any importance result) joins the scatter's second axis; a unit it does not rank
shows n/a; a file of another model, or one that cannot be read, is told with its name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QApplication

from app.views.importance_view import spearman
from core.importance.result import ImportanceResult, data_free_importance
from core.model.os2d import ModelConfig, OS2DModel


def ranking_file(model, folder: Path, units: list, name: str = "lcp_staged") -> Path:
    """An importance result in the format prune-stages writes: one criterion ranking some units."""
    r = data_free_importance(model, ["weight_l2"], units=units)
    staged = ImportanceResult(units=r.units, channels=r.channels, scores={name: dict(r.scores["weight_l2"])},
                              orders={name: dict(r.orders["weight_l2"])}, calibration=r.calibration, model=r.model)
    folder.mkdir(parents=True, exist_ok=True)
    return staged.save(folder / name)[1]


@pytest.fixture
def view(loaded):
    s = loaded.session
    s.set_importance(data_free_importance(s.model.model, ["weight_l1", "bn_gamma"]), adopt_criterion=True)
    loaded.tabs.setCurrentWidget(loaded.importance_view)
    return loaded.importance_view


def test_a_reference_joins_the_scatter_and_shows_rho(view, loaded, wait_idle, message_boxes, tmp_path, monkeypatch):
    s = loaded.session
    units = list(s.model_info.units)
    ranked, unranked = units[3], units[4]
    path = ranking_file(s.model.model, tmp_path / "run.stages", units[:4])
    asked = []
    monkeypatch.setattr(loaded.workbench.dialogs, "open_file", lambda title, filt, folder="": asked.append(folder) or
                        str(path))
    assert view.reference_button.isEnabled()
    view.reference_button.click()
    wait_idle(loaded)
    assert message_boxes.texts() == []
    assert Path(asked[0]) == tmp_path / "documents"  # no project, no reference yet: Documents/os2d-studio
    items = [view.versus.itemText(i) for i in range(view.versus.count())]
    assert items == ["weight_l1", "bn_gamma", "lcp_staged (reference)"]
    assert s.reference is not None and s.reference_path == str(path)
    assert "reference: lcp_staged ranking 4 of" in view.timings.text()

    view.criterion.setCurrentText("weight_l1")
    view.versus.setCurrentText("lcp_staged (reference)")
    view.select_unit(ranked.name)
    xs, ys = view.scatter.getData()
    assert len(xs) == ranked.channels
    rho = spearman(s.importance.scores["weight_l1"][ranked.name], s.reference.scores["lcp_staged"][ranked.name])
    assert np.isfinite(rho)
    assert view.scatter_plot.plotItem.titleLabel.text == f"ρ = {rho:.2f} (Spearman)"
    assert view.scatter_plot.plotItem.getAxis("left").labelText == "lcp_staged (ref.)"
    np.testing.assert_array_equal(ys, s.reference.scores["lcp_staged"][ranked.name])
    # the wider bar (combo and button) may wrap the unit's title: at 1280x800 the plots shrink, never clip
    loaded.resize(1280, 800)
    for _ in range(5):
        QApplication.processEvents()
    for plot in (view.curve_plot, view.hist_plot, view.scatter_plot):
        assert plot.geometry().bottom() < plot.parentWidget().height(), "a plot is cut off below"
    # a unit the staged ranking did not rank: n/a, no points
    view.select_unit(unranked.name)
    assert len(view.scatter.getData()[0]) == 0
    assert "n/a" in view.scatter_plot.plotItem.titleLabel.text
    # the session's own criterion is still there, and the next dialog opens where the reference was
    view.versus.setCurrentText("bn_gamma")
    assert len(view.scatter.getData()[0]) == unranked.channels and "Spearman" in \
        view.scatter_plot.plotItem.titleLabel.text
    view.reference_button.click()
    wait_idle(loaded)
    assert Path(asked[1]) == path.parent


def test_a_reference_of_another_model_is_refused_naming_the_file(view, loaded, wait_idle, message_boxes, tmp_path):
    s = loaded.session
    torch.manual_seed(123)
    other = OS2DModel(ModelConfig(backbone="resnet18"))  # the same architecture, other weights
    path = ranking_file(other, tmp_path / "other.stages", list(s.model_info.units)[:3])
    assert view.load_reference(str(path))
    wait_idle(loaded)
    [box] = message_boxes
    assert box["title"] == "Cannot use this reference"
    assert str(path) in box["text"] and "other weights" in box["text"]
    assert s.reference is None
    assert not any("(reference)" in view.versus.itemText(i) for i in range(view.versus.count()))


def test_a_damaged_or_foreign_file_is_told_with_its_name(view, loaded, wait_idle, message_boxes, tmp_path):
    s = loaded.session
    path = ranking_file(s.model.model, tmp_path / "run.stages", list(s.model_info.units)[:2])
    npz = path.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:100])  # truncated arrays
    assert view.load_reference(str(path))
    wait_idle(loaded)
    not_json = tmp_path / "notes.json"
    not_json.write_text('{"hello": 1}')
    assert view.load_reference(str(not_json))
    wait_idle(loaded)
    first, second = message_boxes
    assert str(npz) in first["text"] and "truncated" in first["text"]
    assert str(not_json) in second["text"] and "not an os2d-studio importance result" in second["text"]
    assert s.reference is None


def test_opening_another_model_drops_a_reference_it_does_not_fit(view, loaded, wait_idle, message_boxes, tmp_path):
    from core.model.checkpoint import save_model

    s = loaded.session
    assert view.load_reference(str(ranking_file(s.model.model, tmp_path / "run.stages", list(s.model_info.units)[:2])))
    wait_idle(loaded)
    assert s.reference is not None
    torch.manual_seed(7)
    other = save_model(OS2DModel(ModelConfig(backbone="resnet18")), tmp_path / "other.pt")
    assert loaded.controller.open_model(other)
    wait_idle(loaded)
    assert s.reference is None and message_boxes.texts() == []
    assert not any("(reference)" in view.versus.itemText(i) for i in range(view.versus.count()))
