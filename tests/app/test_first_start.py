"""The path a new user walks, on a fresh profile with no data folder anywhere: the app opens on the default
model with its shipped pruned companion beside it, detects on the sample shelf, plays the sample video with
both sides finding the ground truth, then computes importance on the bundled benchmark, prunes 50 % (and
refits the next layers), fine-tunes, evaluates, and the fine-tuned model takes its place beside the original."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.resources import benchmark_dir, companion_model_path, default_model_path
from test_workbench import compute, prune

FRAMES = 12  # frames of the sample video played
RECALL = 0.2  # both sides find at least this share of the ground-truth boxes on them (IoU ≥ 0.5), each at
# its own best-F1 threshold from the shelf images; the whole video's recall and mAP per side are in
# bench/RESULTS.md (section video)
SLOW_JOB_MS = 600_000

pytestmark = pytest.mark.skipif(not companion_model_path().is_file(), reason="needs the shipped pruned model")


def test_first_start_to_a_fine_tuned_model_beside_the_original(window, qtbot, message_boxes, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing may come from the working folder
    w, s = window, window.session

    def idle(timeout_ms: int = SLOW_JOB_MS) -> None:
        qtbot.waitUntil(lambda: not w.runner.busy, timeout=timeout_ms)

    started = []
    assert w.controller.open_startup(then=lambda: started.append(w.detection_view.run_detection()))
    qtbot.waitUntil(lambda: bool(started), timeout=SLOW_JOB_MS)
    idle()
    # out of the box: original | pruned side by side on the sample shelf, a clean session
    assert Path(s.model.path) == default_model_path().resolve()
    assert Path(s.pruned.path) == companion_model_path().resolve()
    assert not s.dirty and s.detection_settings.compare == "both" and started == [True]
    assert set(s.detections.detections) == {"original", "pruned"}
    shown = w.detection_view.shown()
    assert len(shown["original"]) > 0 and len(shown["pruned"]) > 0
    assert w.detection_view.banner.isHidden()  # the companion was repaired after its cut: no warning
    assert s.detection_settings.pruned_score_threshold == pytest.approx(s.pruned.meta["score_threshold"], abs=1e-3)

    # the sample video at the frame's own size: both sides find the ground truth, the pruned one faster
    v = w.video_view
    w.tabs.setCurrentWidget(v)
    qtbot.waitUntil(lambda: v.frame is not None and not w.runner.busy, timeout=SLOW_JOB_MS)
    assert v.resolved_target_size() == pytest.approx((640 * 480) ** 0.5)
    assert v.play()
    qtbot.waitUntil(lambda: v.position >= FRAMES, timeout=SLOW_JOB_MS)
    v.pause()
    idle()
    fr = v.frame.result
    assert fr.original.recall >= RECALL and fr.pruned.recall >= RECALL, (fr.original.recall, fr.pruned.recall)
    assert "recall" in v.side_labels["pruned"].text()

    # the workbench on the bundled benchmark (no dataset chosen): importance, prune, fine-tune, evaluate
    assert s.dataset_path is None and w.workbench.dataset() == str(benchmark_dir().resolve())
    imp = compute(w, lambda _w: idle(), criteria=["combined"], images=2)
    assert imp is not None and imp.calibration.dataset and len(imp.calibration.image_ids) == 2
    w.pruning_view.refit_images.setValue(2)  # the refit after the cut, on by default; 2 images keep this quick
    prune(w, lambda _w: idle(), 0.5)
    assert s.pruned.path == "" and s.pruned.meta["reconstruction"]["images"] == 2
    assert w.detection_view.banner.isHidden()  # refit: no "fine-tune before comparing"
    w.workbench.checkpoint_every = 1
    assert w.workbench.finetune(2, eval_images=2)
    idle()
    out = Path(s.finetune_summary["out"])
    assert out.is_file() and out.parent == tmp_path / "documents" / "models"
    if message_boxes and message_boxes[-1]["title"] == "Fine-tuning lowered mAP":
        assert Path(s.pruned.path) != out  # the better model stays; the fine-tuned one is kept on disk
    else:
        assert Path(s.pruned.path) == out and w.detection_view.banner.isHidden()
    w.workbench.latency_repeats = 1
    assert w.workbench.evaluate(2)
    idle()
    assert [e.role for e in s.evaluations] == ["original", "pruned"]
    assert all(e.dataset.startswith("sample benchmark") and e.images == 2 for e in s.evaluations)
    assert [m for m in message_boxes if m["icon"].name == "Critical"] == []
