"""Detection view: crop class images from the target, detect in the worker, re-filter without the network,
compare original and pruned side by side, and keep the GUI responsive while the network runs."""

from __future__ import annotations


import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from core.data.images import load_image
from core.model.checkpoint import save_model
from core.model.os2d import ModelConfig, OS2DModel


class FakeDrag:
    """The parts of pyqtgraph's MouseDragEvent that CropViewBox reads."""

    def __init__(self, view, start_xy, end_xy, finish: bool) -> None:
        self._down = view.mapFromView(QPointF(*start_xy))
        self._pos = view.mapFromView(QPointF(*end_xy))
        self._finish = finish
        self.accepted = False

    def button(self):
        return Qt.MouseButton.LeftButton

    def buttonDownPos(self, *_):  # noqa: N802
        return self._down

    def pos(self):
        return self._pos

    def isFinish(self):  # noqa: N802
        return self._finish

    def accept(self):
        self.accepted = True


@pytest.fixture
def ready(loaded, scene):
    """Model loaded, synthetic target chosen, one class image cropped from it."""
    target, boxes = scene
    view = loaded.detection_view
    view.set_target_file(str(target))
    assert view.crop_class_image(*boxes[0]) is not None
    return loaded


def detect(window, wait_idle):
    started = []
    window.runner.jobStarted.connect(started.append)
    assert window.detection_view.run_detection()
    wait_idle(window)
    assert started == ["Detecting"]
    return window.session.detections


def test_crop_api_adds_a_class_image(loaded, scene):
    target, boxes = scene
    view, session = loaded.detection_view, loaded.session
    view.set_target_file(str(target))
    assert view.panes["original"].image_item.image.shape == (480, 640, 3)
    spec = view.crop_class_image(*boxes[0])
    assert spec.crop == boxes[0] and spec.path == str(target.resolve()) and spec.name == "crop 1"
    crop = session.class_image_array(spec)
    x0, y0, x1, y1 = boxes[0]
    np.testing.assert_array_equal(crop, load_image(target)[y0:y1, x0:x1])
    assert view.class_list.count() == 1 and not view.class_list.item(0).icon().isNull()
    # crops are clipped to the image; tiny crops are refused with a message
    spec2 = view.crop_class_image(600, 440, 700, 500)
    assert spec2.crop == (600, 440, 640, 480)


def test_tiny_crop_is_refused_with_a_message(loaded, scene, message_boxes):
    loaded.detection_view.set_target_file(str(scene[0]))
    assert loaded.detection_view.crop_class_image(10, 10, 12, 40) is None
    assert "too small" in message_boxes.texts()[0]
    assert loaded.session.class_images == []


def test_dragging_in_crop_mode_crops(loaded, scene):
    target, boxes = scene
    view = loaded.detection_view
    view.set_target_file(str(target))
    view.crop_button.setChecked(True)
    vb = view.panes["original"].view
    assert vb.crop_enabled
    x0, y0, x1, y1 = boxes[2]
    vb.mouseDragEvent(FakeDrag(vb, (x0, y0), ((x0 + x1) / 2, y1), finish=False))
    assert vb._band.isVisible() and loaded.session.class_images == []
    drag = FakeDrag(vb, (x0, y0), (x1, y1), finish=True)
    vb.mouseDragEvent(drag)
    assert drag.accepted and not vb._band.isVisible()
    (spec,) = loaded.session.class_images
    assert np.allclose(spec.crop, boxes[2], atol=1)
    view.crop_button.setChecked(False)
    assert not vb.crop_enabled


def test_detect_draws_boxes_and_lists_them(ready, wait_idle):
    view = ready.detection_view
    run = detect(ready, wait_idle)
    assert set(run.detections) == {"original"} and run.class_names == ("crop 1",)
    dets = run.detections["original"]
    assert len(dets) > 0 and dets.image_size == (640, 480)
    shown = view.shown()["original"]
    ds = ready.session.detection_settings
    assert len(shown) == min(ds.max_shown, int((dets.scores >= ds.score_threshold).sum()))
    assert view.panes["original"].box_count == len(shown) == view.table.rowCount()
    if len(shown):
        assert view.table.item(0, 1).text() == "crop 1"
        assert float(view.table.item(0, 2).text()) == pytest.approx(float(shown.scores[0]), abs=1e-3)
    assert "shown of" in view.info_label.text()


def test_threshold_slider_refilters_without_the_network(ready, wait_idle):
    view = ready.detection_view
    view.max_shown.setValue(1000)
    view.score_slider.setValue(-1.0)
    run = detect(ready, wait_idle)
    scores = run.detections["original"].scores
    jobs = []
    ready.runner.jobStarted.connect(jobs.append)
    counts = {}
    for thr in (-1.0, float(np.median(scores)), float(scores.max()) + 0.01):
        view.score_slider.setValue(thr)
        thr_set = ready.session.detection_settings.score_threshold
        counts[thr] = view.panes["original"].box_count
        assert counts[thr] == int((scores >= thr_set).sum()) == view.table.rowCount()
    assert jobs == [] and ready.session.detections is run, "re-filtering must not run the network"
    assert list(counts.values())[0] == len(scores) > list(counts.values())[1] > list(counts.values())[2] == 0
    view.max_shown.setValue(3)
    view.score_slider.setValue(-1.0)
    assert view.panes["original"].box_count == 3 and jobs == []


def test_nms_change_asks_for_a_new_run(ready, wait_idle):
    view = ready.detection_view
    run = detect(ready, wait_idle)
    view.nms_slider.setValue(0.6)
    assert ready.session.detections is run and not ready.runner.busy
    assert "NMS IoU changed" in view.info_label.text()
    run2 = detect(ready, wait_idle)
    assert run2.nms_iou_threshold == pytest.approx(0.6)
    assert len(run2.detections["original"]) >= len(run.detections["original"])  # looser NMS keeps more
    assert "NMS IoU changed" not in view.info_label.text()


def test_selecting_a_row_highlights_its_box(ready, wait_idle):
    view = ready.detection_view
    view.score_slider.setValue(-1.0)
    detect(ready, wait_idle)
    view.table.selectRow(1)
    rect, _text = view.panes["original"]._items[1]
    assert rect.pen().width() == 4 and view.panes["original"]._items[0][0].pen().width() == 2


def test_original_and_pruned_side_by_side(ready, wait_idle, tiny_model_path, tmp_path):
    torch_model = OS2DModel(ModelConfig(backbone="resnet18"))  # another random model plays the pruned one
    pruned_path = save_model(torch_model, tmp_path / "pruned.pt", meta={"eval_scale": 480})
    view = ready.detection_view
    assert not view.compare.model().item(2).isEnabled()
    ready.controller.open_model(pruned_path, "pruned")
    wait_idle(ready)
    assert view.compare.model().item(2).isEnabled()
    assert view.compare.currentText() == "both"  # a pruned model opens beside the original
    # random weights score low: show every box on both sides (each side has its own threshold)
    ready.session.set_detection_settings(score_threshold=-1.0, pruned_score_threshold=-1.0)
    run = detect(ready, wait_idle)
    assert set(run.detections) == {"original", "pruned"}
    assert view.panes["original"].isVisible() and view.panes["pruned"].isVisible()
    assert view.panes["pruned"].box_count > 0
    variants = {view.table.item(r, 0).text() for r in range(view.table.rowCount())}
    assert variants == {"original", "pruned"}
    from PySide6.QtWidgets import QBoxLayout

    area = view.pane_area
    area.resize(area.narrow_px + 200, 600)  # left | right, whatever the image's shape
    area.arrange()
    assert area.box.direction() == QBoxLayout.Direction.LeftToRight
    area.resize(area.narrow_px - 100, 600)  # one above the other only when too narrow for two columns
    area.arrange()
    assert area.box.direction() == QBoxLayout.Direction.TopToBottom
    view.compare.setCurrentText("pruned")
    assert not view.panes["original"].isVisible() and view.panes["pruned"].isVisible()
    ready.controller.unload_pruned()
    assert view.compare.currentText() == "original" and ready.session.detections is None


def test_new_target_clears_detections_and_missing_inputs_are_explained(ready, wait_idle, tmp_path, message_boxes):
    view = ready.detection_view
    detect(ready, wait_idle)
    other = tmp_path / "other.png"
    from core.visualize import save_rgb

    save_rgb(other, np.full((120, 160, 3), 128, np.uint8))
    view.set_target_file(str(other))
    assert ready.session.detections is None and view.panes["original"].box_count == 0
    view.set_target_file(str(tmp_path / "missing.png"))
    assert message_boxes.texts()[-1] == f"{tmp_path / 'missing.png'}: file not found"
    ready.session.remove_class_image(0)
    assert not view.detect_button.isEnabled()
    assert view.run_detection() is False
    assert "class image" in message_boxes.texts()[-1]


def test_gui_stays_responsive_during_detection(window, wait_idle, timer_gaps, scene, tmp_path):
    """A 10 ms timer keeps firing while a real detection runs in the worker (TimerGaps)."""
    model = save_model(OS2DModel(ModelConfig(backbone="resnet18")), tmp_path / "m.pt", meta={"eval_scale": 960})
    window.controller.open_model(model)
    wait_idle(window)
    target, boxes = scene
    view = window.detection_view
    view.set_target_file(str(target))
    view.crop_class_image(*boxes[0])
    view.crop_class_image(*boxes[2])
    timer_gaps(window).run(view.run_detection).assert_responsive("detection")
    assert window.session.detections is not None


def test_a_result_for_a_replaced_target_is_dropped(ready, wait_idle, tmp_path):
    from core.visualize import save_rgb

    other = tmp_path / "other.png"
    save_rgb(other, np.full((120, 160, 3), 90, np.uint8))
    view = ready.detection_view
    assert view.run_detection()
    view.set_target_file(str(other))  # while the network runs
    wait_idle(ready)
    assert ready.session.detections is None and view.panes["original"].box_count == 0
