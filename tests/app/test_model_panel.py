"""Model panel: opening models through the worker, core's error messages in a dialog, the layer table."""

from __future__ import annotations

import threading

from PySide6.QtWidgets import QMessageBox

import app.controller as controller_module
from app.views.model_panel import SUMMARY_ROWS


def summary_text(window, key: str, column: int = 0) -> str:
    return window.model_panel.summary.item(SUMMARY_ROWS.index(key), column).text()


def test_open_model_fills_summary_and_layers(loaded, tiny_model_path):
    w, panel = loaded, loaded.model_panel
    info = w.session.model_info
    assert info.loaded.kind == "os2d-studio"
    assert "resnet18" in summary_text(w, "Architecture")
    assert summary_text(w, "Parameters") == f"{info.summary.parameters:,}"
    assert summary_text(w, "Eval scale") == "480"
    assert summary_text(w, "File") == tiny_model_path.name
    assert not panel.empty_label.isVisible() and panel.summary.isVisible()
    assert panel.summary.isColumnHidden(1)  # no pruned model
    assert panel.layer_model.rowCount() == len(info.summary.layers) > 0
    assert panel.layer_count.text() == f"{len(info.summary.layers)} layers"
    assert w.session.recent_models.paths() == [str(tiny_model_path.resolve())]
    assert w.statusBar().currentMessage().startswith("Loading model: done")


def test_layer_filter_and_numeric_sort(loaded):
    panel = loaded.model_panel
    rows = loaded.session.model_info.summary.layers
    panel.filter_edit.setText("layer3")
    expected = sum("layer3" in r.name for r in rows)
    assert 0 < panel.proxy.rowCount() == expected < len(rows)
    assert panel.layer_count.text() == f"{expected} of {len(rows)} layers"
    panel.filter_edit.clear()
    panel.layer_table.sortByColumn(5, panel.layer_table.horizontalHeader().sortIndicatorOrder().DescendingOrder)
    top = panel.proxy.index(0, 5).data(panel.layer_model.SORT_ROLE)
    assert top == max(r.params for r in rows)  # numbers sort as numbers, not text


def test_pruned_model_gets_its_own_column(loaded, wait_idle, tiny_model_path):
    assert loaded.controller.open_model(tiny_model_path, "pruned")
    wait_idle(loaded)
    panel = loaded.model_panel
    assert not panel.summary.isColumnHidden(1)
    assert summary_text(loaded, "Parameters", 1) == summary_text(loaded, "Parameters", 0)
    panel.layers_of.setCurrentIndex(1)
    assert panel.layer_model.rowCount() == len(loaded.session.pruned_info.summary.layers)
    loaded.controller.unload_pruned()
    assert panel.summary.isColumnHidden(1) and panel.layers_of.currentIndex() == 0


def test_bad_model_file_shows_core_message(window, wait_idle, message_boxes, tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"this is not a checkpoint" * 10)
    assert window.controller.open_model(bad)
    wait_idle(window)
    assert window.session.model is None
    assert len(message_boxes) == 1
    box = message_boxes[0]
    assert box["icon"] == QMessageBox.Icon.Critical
    assert box["title"] == "Loading model failed"
    assert box["text"] == f"{bad}: not a PyTorch checkpoint (it looks like a text file)"
    assert box["details"] == ""  # a user error: no traceback
    assert window.model_panel.empty_label.isVisible()


def test_empty_and_missing_files(window, wait_idle, message_boxes, tmp_path):
    empty = tmp_path / "empty.pt"
    empty.touch()
    window.controller.open_model(empty)
    wait_idle(window)
    window.controller.open_model(tmp_path / "nope.pt")
    wait_idle(window)
    assert message_boxes.texts() == [f"{empty}: file is empty", f"{tmp_path / 'nope.pt'}: file not found"]


def test_missing_default_model_is_explained(qtbot, window, message_boxes, monkeypatch, tmp_path):
    monkeypatch.setattr(controller_module, "default_model_path", lambda: tmp_path / "models" / "default.pt")
    window.model_panel.refresh()
    assert not window.model_panel.default_button.isEnabled()
    assert "missing" in window.model_panel.default_button.toolTip()
    assert "not installed" in window.model_panel.empty_label.text()
    assert window.controller.open_default_model() is False
    assert message_boxes[0]["title"] == "No default model"
    assert "default.pt" in message_boxes[0]["text"] and "Open model" in message_boxes[0]["text"]
    assert not window.runner.busy


def test_loading_runs_off_the_gui_thread(window, wait_idle, tiny_model_path, monkeypatch):
    import app.jobs as jobs

    seen = []
    real = jobs.load_model

    def spy(path, **kw):
        seen.append(threading.current_thread() is threading.main_thread())
        return real(path, **kw)

    monkeypatch.setattr(jobs, "load_model", spy)
    window.controller.open_model(tiny_model_path)
    wait_idle(window)
    assert seen == [False]


def test_choose_model_uses_the_file_dialog(window, wait_idle, tiny_model_path, monkeypatch):
    monkeypatch.setattr(window.dialogs, "open_file", lambda *a, **k: str(tiny_model_path))
    window.model_panel.open_button.click()
    wait_idle(window)
    assert window.session.model is not None
    monkeypatch.setattr(window.dialogs, "open_file", lambda *a, **k: None)  # the user cancels
    window.model_panel.pruned_button.click()
    assert not window.runner.busy and window.session.pruned is None
