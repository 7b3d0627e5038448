"""Session and project files: save/open round trip, unsaved changes, recent files, bad project files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.image_cache import ImageCache
from app.project import PROJECT_FORMAT, ClassImageSpec, ImportanceRef, Metrics, Project, ProjectError, read_project
from app.pruning_jobs import Evaluation
from app.state import Session
from core.prune.plan import PruningPlan


@pytest.fixture
def session(tmp_path) -> Session:
    return Session(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))


def test_project_json_round_trip(tmp_path):
    classes = (ClassImageSpec("cup", str(tmp_path / "cup.png")),
               ClassImageSpec("crop 1", str(tmp_path / "t.png"), (1, 2, 30, 40)))
    evaluation = Evaluation("original", "a.pt", "ResNet-18", 10, 20, 1.5, 3.25, 0.5, 4, "ds", "val", 1.0)
    p = Project("/m/a.pt", None, str(tmp_path / "t.png"), classes,
                plan=PruningPlan(ratio=0.2, unit_ratios={"net_feature_maps.layer3.0.conv1": 0.3}),
                importance=ImportanceRef(("weight_l1",), 2, {"dataset": "d"}, "0" * 64, str(tmp_path / "p.importance.json")),
                metrics=Metrics((evaluation,), None, ({"iteration": 1, "loss": 0.5},), {"iterations": 1}),
                dataset=str(tmp_path / "data"), unknown_sections={"future": {"ratios": [0.5]}})
    data = json.loads(json.dumps(p.to_json(tmp_path)))
    assert data["format"] == PROJECT_FORMAT and data["detection"]["target"] == "t.png"  # relative inside the folder
    assert data["model"] == "/m/a.pt"  # absolute outside it
    assert data["dataset"] == "data" and data["importance"]["file"] == "p.importance.json"
    assert data["future"] == {"ratios": [0.5]}  # a later version's section is written back as it was
    assert Project.from_json(data, tmp_path) == p
    spec = replace(p, dataset="grozi:data/grozi")  # a dataset spec stays as typed
    assert Project.from_json(spec.to_json(tmp_path), tmp_path).dataset == "grozi:data/grozi"


# written by an earlier os2d-studio: every file it wrote must keep opening, its checksum verified
EARLIER_PROJECT = {
    "format": "os2d-studio-project", "version": 1, "model": None, "pruned_model": None,
    "detection": {"target": None, "class_images": [], "score_threshold": 0.3, "nms_iou_threshold": 0.3,
                  "max_shown": 50, "compare": "original", "pruned_score_threshold": 0.5,
                  "video_uses_detection_classes": False, "original_runtime": "torch:fp32",
                  "pruned_runtime": "openvino:int8"},
    "future": {"k": 1},
    "plan": {"format": "os2d-studio-plan", "version": 1, "ratio": 0.2, "group_ratios": {},
             "unit_ratios": {"net_feature_maps.layer3.0.conv1": 0.3}, "min_channels": 8, "round_to": 1,
             "criterion": "weight_l1", "prune_trunk_output": True, "prune_head": True},
    "metrics": {"evaluations": [{"role": "original", "model": "a.pt", "description": "ResNet-18", "parameters": 10,
                                 "macs": 20, "size_mb": 1.5, "latency_ms": 3.25, "map": 0.5, "images": 4,
                                 "dataset": "ds", "split": "val", "seconds": 1.0, "when": 2.0,
                                 "score_threshold": None}],
                "sensitivity": None, "finetune": {"log": [], "summary": None}},
    "dataset": "grozi:/data/grozi",
    "content_sha256": "7454e20c64f09a44f7a5f919b4ba9f80f29d9ab59ee57f3bc4bf457a5e55a17d",
}


def test_a_project_written_earlier_opens_and_is_written_back_the_same(session, tmp_path):
    path = tmp_path / "p.os2d.json"
    path.write_text(json.dumps(EARLIER_PROJECT, indent=1))
    project = read_project(path)
    assert project.detection.pruned_runtime == "openvino:int8" and project.dataset == "grozi:/data/grozi"
    assert project.plan.ratio == 0.2 and project.metrics.evaluations[0].map == 0.5 and not project.problems
    session.open_project(path)
    assert session.plan == project.plan and session.dataset_path == "grozi:/data/grozi" and not session.dirty
    again = session.save_project(tmp_path / "again.os2d.json")
    assert json.loads(again.read_text()) == EARLIER_PROJECT  # same content, same checksum


def test_damaged_sections_are_problems_and_the_rest_opens(tmp_path):
    data = json.loads(json.dumps(EARLIER_PROJECT))
    data["plan"]["ratio"] = 7
    data["metrics"]["sensitivity"] = {"criterion": "weight_l1"}  # evaluations before it are kept
    project = Project.from_json(data, tmp_path)
    assert project.plan == PruningPlan() and len(project.metrics.evaluations) == 1
    assert [p.split(":")[0] for p in project.problems] == ["plan", "metrics section"]
    assert project.detection.score_threshold == 0.3


def test_image_cache_keeps_the_most_recently_used(scene, tmp_path, monkeypatch):
    import app.image_cache

    decoded = []
    real = app.image_cache.load_image
    monkeypatch.setattr(app.image_cache, "load_image", lambda p: decoded.append(p) or real(p))
    paths = [str(tmp_path / f"{i}.png") for i in range(3)]
    for p in paths:
        Path(p).write_bytes(scene[0].read_bytes())
    cache = ImageCache(capacity=2)
    first = cache.get(paths[0])
    assert cache.get(paths[0]) is first and decoded == paths[:1]  # decoded once
    cache.get(paths[1])
    cache.get(paths[0])  # used again: now the newest
    cache.get(paths[2])  # drops paths[1], the least recently used
    assert cache.get(paths[0]) is first and decoded == paths
    cache.get(paths[1])
    assert decoded == paths + paths[1:2]
    assert cache.region(paths[0], (1, 2, 11, 7)).shape == (5, 10, 3)
    with pytest.raises(ValueError, match="file not found"):
        cache.get(tmp_path / "gone.png")


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
