"""Session and project files: save/open round trip, unsaved changes, recent files, bad project files."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.state import PROJECT_FORMAT, ClassImageSpec, Project, ProjectError, RecentFiles, Session
from core.prune.plan import PruningPlan


@pytest.fixture
def session(tmp_path) -> Session:
    return Session(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))


def test_project_json_round_trip_keeps_unknown_sections(tmp_path):
    classes = (ClassImageSpec("cup", str(tmp_path / "cup.png")),
               ClassImageSpec("crop 1", str(tmp_path / "t.png"), (1, 2, 30, 40)))
    p = Project("/m/a.pt", None, str(tmp_path / "t.png"), classes,
                extra={"future": {"ratios": {"net_feature_maps.layer3.0.conv1": 0.5}}})
    data = json.loads(json.dumps(p.to_json(tmp_path)))
    assert data["format"] == PROJECT_FORMAT and data["detection"]["target"] == "t.png"  # relative inside the folder
    assert data["model"] == "/m/a.pt"  # absolute outside it
    assert Project.from_json(data, tmp_path) == p


@pytest.mark.parametrize("payload, problem", [
    ([1, 2], "not an os2d-studio project"),
    ({"format": "something-else"}, "not an os2d-studio project"),
    ({"format": PROJECT_FORMAT, "version": 99}, "newer os2d-studio"),
    ({"format": PROJECT_FORMAT, "version": 1, "detection": {"compare": "sideways"}}, "bad detection section"),
])
def test_bad_project_files(session, tmp_path, payload, problem):
    path = tmp_path / "p.os2d.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ProjectError, match=problem):
        session.open_project(path)


def test_unreadable_project_file(session, tmp_path):
    path = tmp_path / "p.os2d.json"
    path.write_text("{not json")
    with pytest.raises(ProjectError) as e:
        session.open_project(path)
    assert str(e.value) == f"{path}: not a readable JSON file (invalid at line 1, column 2)"  # no decoder text
    with pytest.raises(ProjectError, match="project file not found"):
        session.open_project(tmp_path / "missing.os2d.json")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(ProjectError, match="it looks like a PNG image"):
        session.open_project(path)


def test_dirty_follows_the_saved_project(session, scene, tmp_path):
    target, boxes = scene
    assert not session.dirty
    changes = []
    session.dirtyChanged.connect(changes.append)
    session.set_target(str(target))
    assert session.dirty
    session.add_class_crop(boxes[0])
    path = session.save_project(tmp_path / "p.os2d.json")
    assert not session.dirty and session.project_path == str(path.resolve())
    session.set_detection_settings(score_threshold=0.7)
    assert session.dirty
    session.set_detection_settings(score_threshold=0.5)  # back to what the file says
    assert not session.dirty
    assert changes == [True, False, True, False]


def test_save_and_open_round_trip(qtbot, loaded, wait_idle, scene, tmp_path, tiny_model_path, message_boxes):
    target, boxes = scene
    w = loaded
    view = w.detection_view
    view.set_target_file(str(target))
    view.crop_class_image(*boxes[0])
    w.session.rename_class_image(0, "red patch")
    view.score_slider.setValue(0.25)
    view.max_shown.setValue(12)
    w.controller.open_model(tiny_model_path, "pruned")
    wait_idle(w)
    plan = PruningPlan(ratio=0.2, unit_ratios={"net_feature_maps.layer3.0.conv1": 0.3})
    w.session.set_plan(plan)
    assert w.isWindowModified()

    path = tmp_path / "proj" / "study.os2d.json"
    monkey_path = str(path)
    w.dialogs.save_file = lambda *a, **k: monkey_path
    assert w.controller.save_project()
    assert not w.session.dirty and not w.isWindowModified()
    assert w.windowTitle().startswith("study.os2d.json")
    saved = w.session.snapshot()
    data = json.loads(path.read_text())
    assert data["plan"]["unit_ratios"] == {"net_feature_maps.layer3.0.conv1": 0.3}

    # a fresh window opens it: models load in the worker, inputs and settings come back, nothing unsaved
    from app.main_window import MainWindow

    w2 = MainWindow(Session(QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat)))
    qtbot.addWidget(w2)
    assert w2.controller.open_project(path)
    wait_idle(w2)
    assert w2.session.model is not None and w2.session.pruned is not None
    assert w2.session.snapshot() == saved
    assert not w2.session.dirty
    assert w2.detection_view.class_list.item(0).text() == "red patch"
    assert w2.detection_view.score_slider.value() == pytest.approx(0.25)
    assert w2.session.plan == plan
    assert str(path.resolve()) in w2.session.recent_projects.paths()
    assert message_boxes.texts() == []


def test_project_with_missing_images_opens_with_a_warning(window, scene, tmp_path, message_boxes):
    target, boxes = scene
    project = Project(None, None, str(tmp_path / "gone.png"), (ClassImageSpec("c", str(target), boxes[0]),))
    path = tmp_path / "p.os2d.json"
    path.write_text(json.dumps(project.to_json(tmp_path)))
    assert window.controller.open_project(path)
    assert window.session.target_path is None and len(window.session.class_images) == 1
    assert message_boxes[0]["title"] == "Project opened with problems"
    assert "gone.png: file not found" in message_boxes[0]["text"]


def test_close_asks_about_unsaved_changes(window, scene, message_boxes):
    window.detection_view.set_target_file(str(scene[0]))
    assert window.session.dirty
    message_boxes.answer = QMessageBox.StandardButton.Cancel
    assert not window.close()
    assert window.isVisible() and message_boxes[-1]["title"] == "Unsaved changes"
    message_boxes.answer = QMessageBox.StandardButton.Discard
    assert window.close()


def test_recent_files_newest_first_missing_ones_kept(tmp_path):
    settings = QSettings(str(tmp_path / "r.ini"), QSettings.Format.IniFormat)
    recent = RecentFiles(settings, "recent/models", limit=3)
    files = []
    for i in range(5):
        f = tmp_path / f"m{i}.pt"
        f.touch()
        files.append(f)
        recent.add(f)
    recent.add(files[3])
    assert recent.paths() == [str(files[3]), str(files[4]), str(files[2])]
    files[4].unlink()  # stays listed (the menus mark it), never dropped without a word
    assert recent.paths() == [str(files[3]), str(files[4]), str(files[2])]
    assert RecentFiles.missing(str(files[4])) and not RecentFiles.missing(str(files[3]))
    again = RecentFiles(QSettings(str(tmp_path / "r.ini"), QSettings.Format.IniFormat), "recent/models")
    assert again.paths() == recent.paths()  # persisted


def test_a_saved_project_records_a_checksum_that_opening_verifies(session, tmp_path):
    import json

    path = tmp_path / "p.os2d.json"
    session.set_dataset(str(tmp_path))
    session.save_project(path)
    data = json.loads(path.read_text())
    assert len(data["content_sha256"]) == 64
    session.open_project(path)  # verified: opens
    path.write_text(json.dumps(data, indent=4))  # re-indented: same content, still opens
    session.open_project(path)
    data["detection"]["score_threshold"] = 0.1  # a value changed behind the app's back
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectError) as e:
        session.open_project(path)
    assert str(e.value) == f"{path}: damaged: content does not match its checksum"
    del data["content_sha256"]  # a project written before checksums opens as before
    path.write_text(json.dumps(data))
    session.open_project(path)
