"""Controls a user can work with in a 1280x800 window: ratio sliders with a usable track and a visible value,
disabled controls that say why, unit names that keep their start, combo boxes as wide as their items,
status text that elides instead of widening the window, a hover readout that clears, and plots whose
title, axes and points stay inside their frame."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox,
                               QLineEdit, QStyle, QStyleOptionComboBox, QWidget)

from app.pruning_jobs import SensitivityPoint, SensitivityResult
from app.views.plots import make_plot
from app.views.ratio_panel import MIN_TRACK_PX, short_unit_name
from core.prune.plan import GROUPS, MAX_RATIO

WIDTH, HEIGHT = 1280, 800


def show_tab(qtbot, window, view) -> None:
    window.resize(WIDTH, HEIGHT)
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.isVisible(), timeout=5000)
    QApplication.processEvents()


def fits_in_1280(window) -> None:
    assert window.minimumSizeHint().width() <= WIDTH, "the window cannot be 1280 px wide"
    assert window.width() == WIDTH


# -- sliders ---------------------------------------------------------------------------------------------
def test_ratio_sliders_have_a_usable_track_at_1280(qtbot, loaded):
    panel = loaded.pruning_view.ratio_panel
    show_tab(qtbot, loaded, loaded.pruning_view)
    fits_in_1280(loaded)
    sliders = [panel.global_slider] + [panel.group_sliders[g] for g in GROUPS] + list(panel.unit_sliders.values())
    assert len(panel.unit_sliders) > 5
    for s in sliders:
        assert s.track.width() >= MIN_TRACK_PX, f"a {s.track.width()} px slider track"
        assert s._label.isVisible() and s._label.width() > 20, "the value is shown beside the track"
    # a 7 px drag moves the global ratio by a few hundredths, not half the range
    track = panel.global_slider.track
    y = track.height() // 2
    x0 = track.style().sliderPositionFromValue(track.minimum(), track.maximum(), track.value(), track.width())
    QTest.mousePress(track, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x0 + 4, y))
    QTest.mouseMove(track, QPoint(x0 + 11, y))
    QTest.mouseRelease(track, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(x0 + 11, y))
    assert 0.0 <= loaded.session.plan.ratio <= 7 * MAX_RATIO / MIN_TRACK_PX + 0.011


@pytest.mark.slow
def test_ratio_panel_fits_beside_the_actions_with_a_large_model(qtbot, window, wait_idle, tmp_path):
    """ResNet-50's unit names and 2048-channel counts still leave the sliders their track at 1280 px."""
    import torch

    from core.model.checkpoint import save_model
    from core.model.os2d import ModelConfig, OS2DModel

    torch.manual_seed(0)
    path = save_model(OS2DModel(ModelConfig(backbone="resnet50")), tmp_path / "r50.pt", meta={"eval_scale": 256})
    assert window.controller.open_model(path)
    wait_idle(window)
    panel = window.pruning_view.ratio_panel
    show_tab(qtbot, window, window.pruning_view)
    fits_in_1280(window)
    assert all(s.track.width() >= MIN_TRACK_PX for s in panel.unit_sliders.values())
    assert panel.group_sliders["stem"].isEnabled()  # ResNet-50 has its own stem unit


# -- disabled controls say why ---------------------------------------------------------------------------
CONTROLS = (QAbstractButton, QAbstractSlider, QComboBox, QAbstractSpinBox, QLineEdit)


def unexplained_disabled(root: QWidget) -> list[str]:
    """Disabled controls (themselves, not through a disabled parent) on screen without a tooltip."""
    bad = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, CONTROLS) or w.isEnabled() or not w.isVisibleTo(root):
            continue
        parent = w.parentWidget()
        if parent is not None and not parent.isEnabled():
            continue  # disabled with its parent, which says why
        if not w.toolTip().strip():
            bad.append(f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}")
    return bad


def test_stem_slider_says_why_it_is_off(qtbot, loaded):
    panel = loaded.pruning_view.ratio_panel
    show_tab(qtbot, loaded, loaded.pruning_view)
    stem = panel.group_sliders["stem"]
    assert not stem.isEnabled()  # ResNet-18: the stem conv is coupled to layer 1
    assert "Unavailable" in stem.toolTip() and "layer 1" in stem.toolTip()
    assert stem.track.toolTip() == stem.toolTip(), "the tooltip shows wherever the mouse rests on the slider"
    note = panel.group_notes["stem"]
    assert note.isVisible() and note.text(), "a short visible reason beside the slider"
    assert not panel.group_locks["stem"].isVisible()
    for g in ("layer1", "layer2", "layer3"):
        assert panel.group_sliders[g].isEnabled() and not panel.group_notes[g].isVisible()

    panel.prune_head.setChecked(False)  # the transform group and its units switch off, saying why
    assert not panel.group_sliders["transform"].isEnabled()
    assert "Prune the transform net" in panel.group_sliders["transform"].toolTip()
    head = [n for n in panel.unit_sliders if "parameter_regressor" in n]
    assert head and all("Prune the transform net" in panel.unit_sliders[n].toolTip() for n in head)
    assert unexplained_disabled(loaded.pruning_view) == []


def test_every_disabled_control_has_a_reason(qtbot, window, wait_idle, tiny_model_path):
    for view in (window.pruning_view, window.importance_view):  # no model yet: most is off
        show_tab(qtbot, window, view)
        assert unexplained_disabled(view) == [], view
    assert "open a model" in window.pruning_view.prune_button.toolTip()

    assert window.controller.open_model(tiny_model_path)
    wait_idle(window)
    for view in (window.pruning_view, window.importance_view):
        show_tab(qtbot, window, view)
        assert unexplained_disabled(view) == [], view
    assert "prune first" in window.pruning_view.save_button.toolTip()

    release = []

    def waiting_job(*, progress, cancel):
        while not release and not cancel.cancelled:
            time.sleep(0.01)

    window.runner.start("Waiting job", waiting_job)
    try:
        assert not window.importance_view.compute_button.isEnabled()
        assert "Waiting job" in window.importance_view.compute_button.toolTip()
        assert unexplained_disabled(window.pruning_view) == []
    finally:
        release.append(True)
        wait_idle(window, 5000)


# -- names and combo boxes -------------------------------------------------------------------------------
def test_unit_names_keep_their_start_and_show_in_full(qtbot, loaded):
    panel = loaded.pruning_view.ratio_panel
    show_tab(qtbot, loaded, loaded.pruning_view)
    table = panel.table
    assert table.textElideMode() == Qt.TextElideMode.ElideMiddle
    fm = table.fontMetrics()
    for unit in loaded.session.model_info.units:
        item = table.item(panel.unit_rows[unit.name], 0)
        assert item.text() == short_unit_name(unit.name)
        assert unit.name in item.toolTip()
        assert fm.horizontalAdvance(item.text()) <= table.columnWidth(0), f"{item.text()} does not fit"


def edit_field_width(combo: QComboBox) -> int:
    opt = QStyleOptionComboBox()
    combo.initStyleOption(opt)
    rect = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                        QStyle.SubControl.SC_ComboBoxEditField, combo)
    return rect.width()


def test_combo_boxes_are_as_wide_as_their_items(qtbot, loaded):
    names = ["combined", "weight_l1", "act_variance", "fg_bg_separation"]
    panel = loaded.pruning_view.ratio_panel
    view = loaded.importance_view
    combos = [panel.criterion, view.criterion, view.versus]
    for combo in combos:
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        combo.setCurrentText("fg_bg_separation")
        combo.blockSignals(False)
    for tab in (loaded.pruning_view, loaded.importance_view):
        show_tab(qtbot, loaded, tab)
        for combo in combos:
            if combo.isVisible():
                fm = combo.fontMetrics()  # its own items: a tab may re-list them from the session when shown
                items = [combo.itemText(i) for i in range(combo.count())]
                need = max(fm.horizontalAdvance(n) for n in items)
                try:  # the layout settles in the event loop after a re-list; give it that time, not more
                    qtbot.waitUntil(lambda: edit_field_width(combo) >= need, timeout=2000)
                except Exception:
                    pass
                assert edit_field_width(combo) >= need, (items, combo.toolTip())
    fits_in_1280(loaded)


# -- status text -----------------------------------------------------------------------------------------
def test_long_status_text_elides_instead_of_widening_the_window(qtbot, window, wait_idle):
    show_tab(qtbot, window, window.detection_view)
    fits_in_1280(window)
    message = "step 2 of 3: scoring — " + "a very long message " * 30 + "image 3 of 16"

    def chatty(*, progress, cancel):
        while not cancel.cancelled:
            progress(1, 10, message)
            time.sleep(0.02)

    status = window.job_status
    window.runner.start("Computing importance", chatty)
    try:
        qtbot.waitUntil(lambda: message in status.label.text(), timeout=5000)
        QApplication.processEvents()
        assert window.width() == WIDTH and window.minimumSizeHint().width() <= WIDTH
        shown = status.label.shownText()
        assert "…" in shown and shown.startswith("Computing importance") and shown.endswith("of 16")
        assert status.label.toolTip() == status.label.text() == f"Computing importance: {message}"
        assert status.geometry().right() <= window.statusBar().width()
    finally:
        window.runner.cancel()
        wait_idle(window, 5000)


# -- hover readout ----------------------------------------------------------------------------------------
def test_hover_readout_clears_when_the_mouse_leaves(qtbot, window):
    view = window.importance_view
    view.heatmap.sigHover.emit("layer1.0.conv1 · channel 3 · rank 1/64")
    assert view.hover_label.text().startswith("layer1.0.conv1")
    QApplication.sendEvent(view.heatmap, QEvent(QEvent.Type.Leave))
    assert view.hover_label.text() == ""
    # a long readout elides in place, never widening the view
    before = view.minimumSizeHint().width()
    view.heatmap.sigHover.emit("x" * 500)
    assert view.minimumSizeHint().width() == before


# -- plots -----------------------------------------------------------------------------------------------
def inside(plot) -> None:
    vp = plot.viewport().rect()
    item = plot.plotItem
    rect = plot.mapFromScene(item.sceneBoundingRect()).boundingRect()
    assert rect.width() <= vp.width() + 1 and rect.height() <= vp.height() + 1, \
        f"{item.titleLabel.text!r}: {rect.width()}x{rect.height()} in a {vp.width()}x{vp.height()} frame"
    title = item.titleLabel
    if title.isVisible():
        assert title.itemRect().width() <= item.width() and title.itemRect().height() <= title.size().height() + 1


def test_plots_keep_title_axes_and_points_inside_their_frame(qtbot, window):
    ratios = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    groups = ("layer1", "layer2", "layer3", "transform")
    pts = [SensitivityPoint("", 0.0, 0.8, 1000, 4.0)]
    pts += [SensitivityPoint(g, r, 0.8 - r / 2, int(1000 * (1 - r / 3)), 4.0 * (1 - r / 3))
            for g in groups for r in ratios]
    window.session.set_sensitivity(SensitivityResult("combined", ratios, groups, 10, "synthetic benchmark",
                                                     tuple(pts), True))
    view = window.metrics_view
    show_tab(qtbot, window, view)
    qtbot.wait(50)
    for plot in (view.pareto_plot, view.sens_plot, view.loss_plot):
        inside(plot)
    (x0, x1), _ = view.sens_plot.plotItem.vb.viewRange()
    assert x0 <= 0.0 and x1 >= max(ratios), "the first and the last ratio are on the plot"
    assert "pruned at a time" in view.sens_plot.plotItem.titleLabel.text

    show_tab(qtbot, window, window.importance_view)
    for plot in (window.importance_view.curve_plot, window.importance_view.hist_plot,
                 window.importance_view.scatter_plot):
        inside(plot)


@pytest.mark.parametrize("width", [160, 240, 400])
def test_a_long_title_wraps_inside_a_narrow_plot(qtbot, width):
    plot = make_plot("sensitivity: one group pruned at a time<br><span style='font-size:8pt'>combined, "
                     "10 images of a synthetic benchmark (running or cancelled)</span>", "ratio removed", "mAP@0.5")
    qtbot.addWidget(plot)
    plot.resize(width, 240)
    plot.show()
    qtbot.waitExposed(plot)
    QApplication.processEvents()
    inside(plot)


def test_a_perfect_map_point_is_not_cut_by_the_frame(qtbot):
    from app.views.metrics_view import map_range

    plot = make_plot("size vs mAP", "size", "mAP@0.5")
    qtbot.addWidget(plot)
    map_range(plot, [0.7, 1.0])
    _, (y0, y1) = plot.plotItem.vb.viewRange()
    assert y0 <= 0.0 and y1 >= 1.03, "room above mAP 1.0 for the marker"
    map_range(plot, [0.4])
    assert plot.plotItem.vb.viewRange()[1][1] == pytest.approx(0.46, abs=0.02)
