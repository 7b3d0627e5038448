"""Data in the box: the bundled benchmark is the default dataset, data-free criteria need none, and
"New sample benchmark…" makes a bigger one in the worker (cancel leaves nothing)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer

from core.data.grozi import open_dataset
from core.data.synth import SynthConfig
from core.resources import benchmark_dir

TINY = SynthConfig(num_train_classes=2, num_val_classes=2, num_train_images=2, num_val_images=2,
                   image_size=(160, 120), eval_scale=120, demo_video=False)


def test_the_bundled_benchmark_is_the_default_dataset_with_held_out_val_classes(window, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # never the working folder's data/
    assert window.session.dataset_path is None
    assert window.workbench.dataset() == str(benchmark_dir().resolve())
    picker = window.importance_view.dataset
    assert picker.edit.text() == "" and picker.edit.placeholderText() == "bundled sample benchmark"
    assert str(benchmark_dir().resolve()) in picker.edit.toolTip()
    train, val = open_dataset(str(benchmark_dir()), "train"), open_dataset(str(benchmark_dir()), "val")
    assert len(train.images) == 16 and len(val.images) == 16
    train_classes = {int(c) for im in train.images for c in im.class_ids}
    val_classes = {int(c) for im in val.images for c in im.class_ids}
    assert not train_classes & val_classes and val_classes <= set(range(80, 100))  # the default model's held-out
    size = sum(p.stat().st_size for p in benchmark_dir().rglob("*") if p.is_file())
    assert size < 8e6  # a few MB in the box
    # choosing a folder shows it; the menu's "Bundled sample benchmark" goes back
    window.session.set_dataset(str(tmp_path))
    assert picker.edit.text() == str(tmp_path.resolve()) and picker.note.isHidden()
    window.session.set_dataset(None)
    assert picker.edit.text() == "" and not picker.note.isHidden()


def test_data_free_criteria_need_no_dataset(loaded, wait_idle, message_boxes, monkeypatch):
    import app.workbench as wb

    monkeypatch.setattr(wb, "default_dataset", lambda: None)  # as if nothing were bundled
    view = loaded.importance_view
    for name, box in view.criteria_boxes.items():
        box.setChecked(name in ("weight_l1", "bn_gamma"))
    assert view.compute()
    wait_idle(loaded)
    imp = loaded.session.importance
    assert message_boxes.texts() == [] and sorted(imp.criteria) == ["bn_gamma", "weight_l1"]
    assert imp.calibration.image_ids == () and "weights" in imp.calibration.selection
    # a criterion that needs images says what to do
    view.criteria_boxes["combined"].setChecked(True)
    assert not view.compute()
    assert "New sample benchmark" in message_boxes.texts()[-1]


def test_new_sample_benchmark_runs_in_the_worker_and_becomes_the_dataset(window, wait_idle, tmp_path, message_boxes):
    out = tmp_path / "bench" / "synth-0"
    assert window.workbench.new_benchmark(str(out), config=TINY)
    wait_idle(window)
    assert (out / "dataset.json").is_file() and window.session.dataset_path == str(out.resolve())
    # the same folder again: used as it is, not rewritten
    assert window.workbench.new_benchmark(str(out), config=TINY) and not window.runner.busy
    assert message_boxes[-1]["title"] == "Sample benchmark"
    # cancelled: nothing left behind
    other = tmp_path / "bench" / "synth-1"
    QTimer.singleShot(0, window.runner.cancel)
    assert window.workbench.new_benchmark(str(other), config=TINY)
    wait_idle(window)
    assert not other.exists() and [p.name for p in (tmp_path / "bench").iterdir()] == ["synth-0"]
    assert window.session.dataset_path == str(out.resolve())
    # the File menu offers it
    titles = [a.text() for a in window.menuBar().actions()[0].menu().actions()]
    assert "New sample benchmark…" in titles and Path(out).is_dir()
