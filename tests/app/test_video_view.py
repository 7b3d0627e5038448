"""Video tab: the sample demo video with the default model and a 30 %-pruned copy side by side; play, pause,
step, seek (also while playing), export (frame counts read back with OpenCV, never over a file), snapshot,
and errors (a broken file, a vanished file, a missing camera) as dialogs with core's message.

Kept fast: a small target size (frames resized to ~160x120 for the network) and a few frames each."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from app.controller import default_model_problem
from app.video_jobs import VideoFrame
from app.video_text import fps_text
from core.eval.matching import match_detections
from core.data.video import VideoWriter
from core.prune.plan import PruningPlan
from core.resources import samples_dir

TARGET = 160  # px: what the network sees (h·w ≈ 160²); the panes keep the 640x480 frames
DEMO = samples_dir() / "demo.mp4"

pytestmark = pytest.mark.skipif(default_model_problem() is not None or not DEMO.is_file(),
                                reason="needs the bundled default model and the sample demo video")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a busy 2-core machine two threads waiting for each other make each small
    forward pass many times slower (measured: class features 0.2 s with one thread, 30 s with two)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture
def video(window, wait_idle):
    """The default model loaded, the network's input small; the Video tab not shown yet."""
    assert window.controller.open_default_model()
    wait_idle(window)
    window.video_view.target_size.setValue(TARGET)
    return window


@pytest.fixture
def compared(qtbot, video, wait_idle):
    """... plus a 30 % pruned copy (weight L1, through the Pruning tab's prune job = core.prune), then the
    Video tab shown: it shows the sample video's first frame by itself."""
    video.session.set_plan(PruningPlan(ratio=0.3, criterion="weight_l1"))
    assert video.workbench.prune()
    wait_idle(video)
    assert video.session.pruned is not None
    show_tab(qtbot, video)
    assert video.video_view.frame.compared
    return video


def show_tab(qtbot, window, timeout_ms: int = 120_000) -> None:
    """Show the Video tab and wait for the first frame it shows by itself (a deferred job)."""
    view = window.video_view
    window.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.frame is not None and not window.runner.busy, timeout=timeout_ms)


def play_until(qtbot, view, index: int, timeout_ms: int = 120_000) -> None:
    qtbot.waitUntil(lambda: view.position >= index, timeout=timeout_ms)


def test_opens_on_the_sample_video_with_its_classes(qtbot, window, wait_idle, message_boxes):
    """Out of the box: the demo video is the source, its sample classes are the (greyed) defaults, and
    showing the tab shows frame 0 (no model yet: the plain frame; with a model: its detections)."""
    view = window.video_view
    assert view.spec == str(DEMO) and view.info.frame_count == 192 and view.info.size == (640, 480)
    assert [s.name for s in view.classes.defaults] == ["class_80", "class_83", "class_86", "class_93"]
    assert view.classes.list.count() == 4 and not view.classes.list.item(0).flags() & Qt.ItemFlag.ItemIsEnabled
    assert view.classes.showing_defaults and "sample video" in view.classes_note.text()
    assert view.frame is None and not view.play_button.isEnabled()
    show_tab(qtbot, window)
    assert view.frame.index == 0 and view.frame.result is None
    assert view.panes["original"].image_item.image.shape == (480, 640, 3)
    assert view.panes["pruned"].stack.currentWidget() is view.panes["pruned"].hint  # no pruned model: says so
    assert "No pruned model" in view.panes["pruned"].hint.text()
    assert view.play() is False and message_boxes[-1]["title"] == "No model"  # nothing runs
    assert not window.runner.busy
    # a model loaded while the tab shows a frame: that frame is run through it
    view.target_size.setValue(TARGET)
    assert window.controller.open_default_model()
    qtbot.waitUntil(lambda: view.frame.result is not None, timeout=120_000)
    wait_idle(window)
    assert view.frame.index == 0 and not view.frame.compared and view.play_button.isEnabled()


def test_play_pause_step_seek_side_by_side(qtbot, compared, wait_idle):
    w = compared
    view = w.video_view
    assert view.frame.index == 0 and view.frame.compared  # the first frame, both models, on showing the tab
    started = []
    w.runner.jobStarted.connect(started.append)
    reports: list[VideoFrame] = []
    view.playback.frameShown.connect(reports.append)  # every frame put on screen

    # play some frames, then pause: the frame on screen stays, nothing runs
    assert view.play() and view.playing and view.play_button.text() == "Pause"
    play_until(qtbot, view, 3)
    view.pause()
    assert not view.playing
    wait_idle(w)
    assert started == ["Playing video"] and view.play_button.text() == "Play"
    assert w.statusBar().currentMessage() == "Playing video: paused"  # a pause is not a failure or a cancel
    paused_at = view.position
    assert paused_at >= 3 and [f.index for f in reports] == list(range(1, paused_at + 1))  # every frame, in order
    qtbot.wait(200)
    assert view.position == paused_at and not w.runner.busy

    # both panes show the same frame: one FrameResult, rendered once per side, same size as the video
    vf = view.frame
    fr = vf.result
    left, right = view.panes["original"].image_item.image, view.panes["pruned"].image_item.image
    assert left.shape == right.shape == (480, 640, 3) and vf.compared
    assert fr.original.detections.image_size == fr.pruned.detections.image_size == (640, 480)
    assert not np.array_equal(left, vf.image) or len(fr.original.detections) == 0  # boxes drawn on the frame
    # the "only here" marks are core's matching of the two sides
    m = match_detections(fr.original.detections, fr.pruned.detections)
    np.testing.assert_array_equal(fr.original.only_here, m.only_a)
    np.testing.assert_array_equal(fr.pruned.only_here, m.only_b)
    for side, res in (("original", fr.original), ("pruned", fr.pruned)):
        text = view.side_labels[side].text()
        assert fps_text(res.fps) in text and f"{res.seconds * 1e3:.0f} ms" in text
        assert f"{len(res.detections)} boxes" in text
    assert f"Found by both: {fr.matched}" in view.agreement_label.text()
    assert view.frame_label.text().startswith(f"{paused_at + 1} / 192") and view.slider.value() == paused_at

    # step: exactly the next frame; both models' class features come from the cache, not the network
    hits = view.features.hits
    assert view.step()
    wait_idle(w)
    assert view.position == paused_at + 1 and started[-1] == f"Showing frame {paused_at + 2}"
    assert view.features.hits == hits + 2

    # seek while paused: that frame; the slider follows
    assert view.seek(50)
    wait_idle(w)
    assert view.position == 50 and view.slider.value() == 50 and view.frame.compared
    # the slider itself seeks (a click on the groove or the end of a drag)
    view.slider.setValue(60)
    wait_idle(w)
    assert view.position == 60

    # seek while playing: the stream restarts from the chosen frame and goes on playing
    reports.clear()
    assert view.play()
    play_until(qtbot, view, 61)
    assert view.seek(80) and view.playing
    play_until(qtbot, view, 81)
    assert 80 in [f.index for f in reports]
    view.pause()
    wait_idle(w)
    after = [f.index for f in reports if f.index >= 80]
    assert after == list(range(80, view.position + 1))
    assert started.count("Playing video") == 3 and not view.playing

    # at the end: Step says so; Play starts again from the beginning
    assert view.seek(191)
    wait_idle(w)
    assert view.step() is False and "Last frame" in view.info_label.text()
    assert view.play()
    play_until(qtbot, view, 0)
    qtbot.waitUntil(lambda: view.frame is not None and view.frame.index < 191, timeout=120_000)
    view.pause()
    wait_idle(w)


def test_settings_rerun_the_frame_on_screen(qtbot, compared, wait_idle):
    view = compared.video_view
    assert view.seek(10)
    wait_idle(compared)
    before = view.frame
    view.score_slider.setValue(0.95)  # the original side's threshold, shared with the Detection tab
    view.settings.pruned_score_slider.setValue(0.9)  # the pruned side has its own
    assert compared.session.detection_settings.score_threshold == pytest.approx(0.95)
    assert compared.session.detection_settings.pruned_score_threshold == pytest.approx(0.9)
    qtbot.waitUntil(lambda: view.frame is not before, timeout=120_000)
    wait_idle(compared)
    assert view.frame.index == 10
    assert (view.frame.result.original.detections.scores >= 0.95).all()
    assert (view.frame.result.pruned.detections.scores >= 0.9).all()
    assert compared.detection_view.score_slider.value() == pytest.approx(0.95)
    assert compared.detection_view.settings.pruned_score_slider.value() == pytest.approx(0.9)


def test_original_alone_without_a_pruned_model(qtbot, window, wait_idle, message_boxes, tmp_path):
    """Starting on the Video tab (`python -m app --tab video`): the tab's own first-frame job waits for the
    model's load instead of taking the worker from it; then the original plays alone."""
    w = window
    view = w.video_view
    view.target_size.setValue(TARGET)
    w.tabs.setCurrentWidget(view)
    assert w.controller.open_default_model()  # not refused: the tab's job is deferred
    qtbot.waitUntil(lambda: view.frame is not None and view.frame.result is not None, timeout=120_000)
    wait_idle(w)
    assert [m["title"] for m in message_boxes] == []
    vf = view.frame
    assert vf.index == 0 and vf.result is not None and not vf.compared
    assert vf.panes[1] is None and view.panes["pruned"].stack.currentWidget() is view.panes["pruned"].hint
    assert not vf.result.original.only_here.any()  # nothing to disagree with: no "only here" marks
    assert "no model" in view.side_labels["pruned"].text() and "FPS" in view.side_labels["original"].text()
    assert view.play()
    play_until(qtbot, view, 2)
    view.pause()
    wait_idle(w)
    assert not view.export_button.isEnabled()
    assert view.export_video(tmp_path / "x.mp4") is False
    assert message_boxes[-1]["title"] == "No pruned model" and not (tmp_path / "x.mp4").exists()
    snap = view.snapshot(tmp_path / "one.png")  # one pane, titled
    assert cv2.imread(str(snap)).shape == (480, 640, 3)


def test_export_and_snapshot(qtbot, compared, wait_idle, message_boxes, tmp_path):
    w = compared
    view = w.video_view
    # the first N frames of the demo video
    out = tmp_path / "out" / "demo-compare.mp4"
    assert view.export_video(out, frames=4)
    assert view.exporting and not view.play_button.isEnabled()
    assert view.play() is False and message_boxes[-1]["title"] == "Busy"  # a click never cancels an export
    view.pause()
    assert view.exporting
    wait_idle(w)
    res = view.last_export
    assert res is not None and res.out_video == str(out) and out.is_file(), message_boxes.texts()
    assert frame_count(out) == res.processed_count == 4
    cap = cv2.VideoCapture(str(out))
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (2 * 640 + 4, 480)
    cap.release()
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo-compare.mp4"]  # no temporary left over
    assert "Wrote" in view.info_label.text() and "4 frames" in view.info_label.text()

    # never over an existing file: refused before anything runs
    started = []
    w.runner.jobStarted.connect(started.append)
    size = out.stat().st_size
    assert view.export_video(out, frames=2) is False
    assert "already exists" in message_boxes.texts()[-1] and started == [] and out.stat().st_size == size

    # every frame of a (short) input: the file dialog's path, frame count = the input's
    short = VideoWriter(tmp_path / "short.avi", 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(5):
        short.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    short_path = short.close()
    assert view.open_video(short_path)
    wait_idle(w)
    assert view.info.frame_count == 5 and view.frame.index == 0
    w.dialogs.save_file = lambda *a, **k: str(tmp_path / "all")
    view.export_frames.setValue(0)  # "all frames"
    assert view.export_video()
    wait_idle(w)
    assert frame_count(tmp_path / "all.mp4") == 5 == view.last_export.frame_count

    # snapshot: the frame on screen, side by side and titled; never over a file
    assert view.seek(3)
    wait_idle(w)
    snap = view.snapshot(tmp_path / "snap.png")
    img = cv2.imread(str(snap))
    assert img.shape == (120, 2 * 160 + 4, 3)
    assert view.snapshot(tmp_path / "snap.png") is None and "already exists" in message_boxes.texts()[-1]


def test_broken_video_gives_an_error_dialog(qtbot, compared, wait_idle, message_boxes, tmp_path):
    w = compared
    view = w.video_view
    bad = tmp_path / "x.mp4"
    bad.write_text("this is not a video\n" * 50)
    assert view.open_video(bad) is False
    assert message_boxes.texts()[-1] == f"{bad}: not a video (it looks like a text file)"
    assert view.spec == str(DEMO) and not w.runner.busy  # nothing changed

    # a file that disappears after opening: the job's VideoError reaches the same dialog, playing stops
    gone = tmp_path / "gone.avi"
    writer = VideoWriter(gone, 10.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    gone = writer.close()
    assert view.open_video(gone)
    wait_idle(w)
    gone.unlink()
    assert view.play()
    wait_idle(w)
    assert message_boxes[-1]["title"] == "Playing video failed" and message_boxes[-1]["text"] == f"{gone}: file not found"
    assert not view.playing and view.play_button.text() == "Play"

    # a camera that is not there
    view.camera_index.setValue(63)
    assert view.open_camera()
    wait_idle(w)
    assert message_boxes.texts()[-1].startswith("camera:63: cannot open the camera")
    assert message_boxes[-1]["title"] == "Reading camera 63 failed"  # the camera, not "frame 1"
    assert not view.playing


def test_class_feature_cache_never_serves_another_model():
    from app.video_jobs import ClassFeatureCache
    from core.detect import ClassBank

    class Model:  # weak-referenceable stand-ins
        pass

    cache, a, b = ClassFeatureCache(size=2), Model(), Model()
    bank = ClassBank(torch.zeros(1, 2, 15, 15), [0], ["x"])
    cache.put(("k",), a, bank)
    assert cache.get(("k",), a) is bank and cache.get(("k",), b) is None
    for i in range(2):
        cache.put((i,), a, bank)
    assert cache.get(("k",), a) is None  # the oldest entry went


def test_snapshots_get_the_usual_file_mode(tmp_path):
    import os

    from app.video_jobs import save_snapshot

    old = os.umask(0o022)
    try:
        snap = save_snapshot(tmp_path / "s.png", np.zeros((8, 8, 3), np.uint8))
    finally:
        os.umask(old)
    assert oct(os.stat(snap).st_mode & 0o777) == oct(0o644)
