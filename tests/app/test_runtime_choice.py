"""Each side's runtime (PyTorch, ONNX Runtime, OpenVINO): offered as availability allows, saved with the
project, used by the Detection and Video jobs and named in the pane titles; Export / Quantize in the
Pruning tab."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.project import RUNTIMES


@pytest.fixture(autouse=True)
def _deploy_cache(tmp_path_factory, monkeypatch):
    """Exports go to one cache shared by this module's tests (a tiny model exports once), never the user's."""
    from core.deploy.artefacts import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.getbasetemp() / "deploy-cache"))


@pytest.fixture
def both(loaded, wait_idle, tiny_model_path):
    """The tiny model as original and as "pruned" (same weights: any difference is the runtime's)."""
    assert loaded.controller.open_model(tiny_model_path, "pruned")
    wait_idle(loaded)
    assert loaded.session.pruned is not None
    return loaded


def test_combos_list_what_availability_says(loaded):
    from core.deploy.runtime import availability

    avail = availability()
    box = loaded.detection_view.settings
    for role, combo in box.runtime_combos.items():
        assert [combo.itemData(i) for i in range(combo.count())] == list(RUNTIMES)
        assert combo.currentData() == "torch:fp32" and combo.currentText() == "PyTorch fp32"
        for i in range(combo.count()):
            b, p = combo.itemData(i).split(":")
            item = combo.model().item(i)
            if avail[(b, p)]:
                assert not item.isEnabled() and item.toolTip() == avail[(b, p)]
            elif (b, p) == ("openvino", "int8") and role == "original":  # nothing quantized yet
                assert not item.isEnabled() and "Quantize" in item.toolTip()
            else:
                assert item.isEnabled() and item.toolTip() == ""
    assert loaded.detection_view.settings.runtime_combos["pruned"].model().item(1).isEnabled()  # ORT fp32


def test_runtime_choice_is_shared_and_saved_with_the_project(qtbot, loaded, wait_idle, tmp_path, message_boxes):
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow
    from app.state import Session

    det_box, vid_box = loaded.detection_view.settings, loaded.video_view.settings
    det_box.runtime_combos["pruned"].setCurrentIndex(RUNTIMES.index("onnxruntime:fp32"))
    assert loaded.session.detection_settings.pruned_runtime == "onnxruntime:fp32"
    assert vid_box.runtime_combos["pruned"].currentData() == "onnxruntime:fp32"  # the other tab shows it too
    assert loaded.detection_view.panes["pruned"].title.text() == "Pruned · ONNX Runtime fp32"

    path = tmp_path / "p.os2d.json"
    loaded.dialogs.save_file = lambda *a, **k: str(path)
    assert loaded.controller.save_project()
    data = json.loads(path.read_text())
    assert data["detection"]["pruned_runtime"] == "onnxruntime:fp32"
    assert data["detection"]["original_runtime"] == "torch:fp32"

    w2 = MainWindow(Session(QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w2)
    assert w2.controller.open_project(path)
    wait_idle(w2)
    assert w2.session.detection_settings.pruned_runtime == "onnxruntime:fp32"
    assert w2.video_view.settings.runtime_combos["pruned"].currentText() == "ONNX Runtime fp32"

    # a project from before runtimes existed opens on PyTorch fp32
    del data["detection"]["pruned_runtime"], data["detection"]["original_runtime"]
    data.pop("content_sha256")  # written before runtimes existed, it had no checksum either
    old = tmp_path / "old.os2d.json"
    old.write_text(json.dumps(data))
    assert w2.controller.open_project(old)
    wait_idle(w2)
    ds = w2.session.detection_settings
    assert (ds.original_runtime, ds.pruned_runtime) == ("torch:fp32", "torch:fp32")
    w2.runner.shutdown(10_000)


def test_pruned_side_on_onnxruntime_matches_torch(both, wait_idle, scene):
    target, boxes = scene
    view = both.detection_view
    view.set_target_file(str(target))
    assert view.crop_class_image(*boxes[0]) is not None
    both.session.set_detection_settings(pruned_runtime="onnxruntime:fp32", score_threshold=-1.0,
                                        pruned_score_threshold=-1.0)
    messages = []
    both.runner.jobProgress.connect(lambda *a: messages.append(a[2]))
    assert view.run_detection()
    wait_idle(both)
    run = both.session.detections
    assert run is not None and run.runtimes == {"original": "torch:fp32", "pruned": "onnxruntime:fp32"}
    assert any("exporting" in str(m) for m in messages)
    ref, got = run.detections["original"], run.detections["pruned"]
    assert len(got) > 0 and abs(len(got) - len(ref)) <= 2
    for box, score, label in zip(got.boxes[:10], got.scores[:10], got.labels[:10]):
        same = ref.labels == label
        dist = np.abs(ref.boxes[same] - box).max(axis=1)
        k = int(np.argmin(dist))
        assert dist[k] <= 0.5
        assert abs(ref.scores[same][k] - score) < 1e-3
    assert view.panes["pruned"].title.text() == "Pruned · ONNX Runtime fp32"
    assert view.panes["original"].title.text() == "Original · PyTorch fp32"


def test_int8_without_a_quantized_model_is_refused_with_what_to_do(both, wait_idle, scene, message_boxes):
    target, boxes = scene
    view = both.detection_view
    view.set_target_file(str(target))
    view.crop_class_image(*boxes[0])
    both.session.set_detection_settings(pruned_runtime="openvino:int8")
    assert view.run_detection()
    wait_idle(both)
    assert both.session.detections is None
    text = " ".join(message_boxes.texts())
    assert "No int8 model of the pruned model yet" in text and "Quantize" in text


def test_video_frame_with_one_side_on_openvino(qtbot, both, wait_idle, message_boxes):
    from core.resources import samples_dir

    if not (samples_dir() / "demo.mp4").is_file():
        pytest.skip("needs the sample demo video")
    view = both.video_view
    view.target_size.setValue(160)
    both.session.set_detection_settings(pruned_runtime="openvino:fp32")
    both.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None and not both.runner.busy, timeout=120_000)
    assert view.step()
    wait_idle(both)
    assert message_boxes.texts() == []
    assert view.frame is not None and view.frame.compared and view.frame.panes[1] is not None
    assert view.panes["pruned"].title.text().startswith("Pruned · OpenVINO fp32 · ")
    assert view.panes["original"].title.text().startswith("Original · PyTorch fp32 · ")
    # a narrow pane elides its title at the right: side and runtime stay readable, the whole is the tooltip
    title = view.panes["pruned"].title
    title.resize(title.fontMetrics().horizontalAdvance("Pruned · OpenVINO fp32 · ab"), title.height())
    assert title.shownText().startswith("Pruned · OpenVINO fp32") and title.shownText().endswith("…")
    assert title.toolTip() == title.text()
    runtimes = {(k[2], k[3]) for k in view.features._entries}
    assert ("openvino", "fp32") in runtimes and ("torch", "fp32") in runtimes


def test_export_writes_a_new_folder_and_never_overwrites(loaded, wait_idle, message_boxes):
    from app.folders import save_folder

    wb = loaded.workbench
    results = []
    wb.deployed.connect(results.append)
    assert loaded.pruning_view.export_button.isEnabled()
    loaded.pruning_view.export_button.click()
    wait_idle(loaded)
    assert message_boxes.texts() == []
    first = results[-1].folder
    assert first == save_folder("models") / "tiny18-onnx"
    assert {p.name for p in first.iterdir()} >= {"target.onnx", "class.onnx", "export.json"}
    assert str(first) in loaded.pruning_view.deploy_label.text()
    before = {p: p.stat().st_mtime_ns for p in first.iterdir()}

    assert wb.export_deploy()  # again: a new folder beside the first
    wait_idle(loaded)
    assert results[-1].folder == save_folder("models") / "tiny18-onnx-2"

    assert wb.export_deploy(first)  # into a folder that holds an export: refused, nothing replaced
    wait_idle(loaded)
    assert len(results) == 2
    assert "refusing to overwrite" in " ".join(message_boxes.texts())
    assert {p: p.stat().st_mtime_ns for p in first.iterdir()} == before


def test_quantize_makes_int8_available_to_the_detection_tab(loaded, wait_idle, tiny_dataset, scene, message_boxes):
    loaded.session.set_dataset(str(tiny_dataset))
    box = loaded.detection_view.settings
    int8 = box.runtime_combos["original"].model().item(RUNTIMES.index("openvino:int8"))
    if "OpenVINO sees" in int8.toolTip() or "not installed" in int8.toolTip():
        pytest.skip("no OpenVINO CPU device here")
    assert not int8.isEnabled()
    assert loaded.workbench.quantize_deploy(num_images=2)
    wait_idle(loaded, 300_000)
    assert message_boxes.texts() == []
    assert (loaded.pruning_view.deploy_label.text()).startswith("int8 model: ")
    box.refresh_runtimes()  # what opening the list does
    assert int8.isEnabled() and int8.toolTip() == ""

    target, boxes = scene
    view = loaded.detection_view
    view.set_target_file(str(target))
    view.crop_class_image(*boxes[0])
    loaded.session.set_detection_settings(original_runtime="openvino:int8")
    assert view.run_detection()
    wait_idle(loaded)
    assert message_boxes.texts() == []
    assert loaded.session.detections.runtimes == {"original": "openvino:int8"}
    assert view.panes["original"].title.text() == "Original · OpenVINO int8"


def test_metrics_tab_times_each_model_on_every_runtime(both, wait_idle, tiny_dataset, message_boxes):
    from app.views.metrics_view import RUNTIME_COLUMNS

    metrics = both.metrics_view
    table = metrics.runtimes
    rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert rows == ["PyTorch fp32", "ONNX Runtime fp32", "OpenVINO fp32", "OpenVINO bf16", "OpenVINO int8"]
    assert "Not timed yet" in metrics.runtimes_note.text()
    both.workbench.latency_repeats = 1
    metrics.time_button.click()
    wait_idle(both, 300_000)
    assert message_boxes.texts() == []
    cell = lambda r, c: table.item(r, c).text()  # noqa: E731
    for r in range(3):  # torch, ONNX Runtime and OpenVINO fp32 run everywhere the tests run
        assert cell(r, 0).endswith(" ms") and cell(r, 1).endswith(" ms"), rows[r]
        assert cell(r, 2).endswith("×")
    assert table.horizontalHeaderItem(2).text() == RUNTIME_COLUMNS[2]
    int8 = rows.index("OpenVINO int8")
    if cell(int8, 1) == "–":  # no int8 model of this model in the test cache (yet): the reason is shown
        assert "quantize" in table.item(int8, 1).toolTip() and "OpenVINO int8: " in metrics.runtimes_note.text()
    # a new pruned model is not described by the old timing
    assert both.controller.open_model(both.session.pruned.path, "pruned")
    wait_idle(both)
    assert cell(0, 1) == "–" and cell(0, 0).endswith(" ms")
