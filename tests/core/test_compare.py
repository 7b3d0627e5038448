"""Original vs pruned on video: offline/live runs, outputs, cancellation, disagreement flags, CLI."""

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.cli import main
from core.compare import CompareResult, SideResult, compare, compare_video
from core.data.video import ImageFolderSource, VideoError, VideoFileSource
from core.detect import ClassBank, Detections
from core.eval.matching import match_detections
from core.jobs import CancelToken, Cancelled
from core.model.checkpoint import save_model
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.job import prune
from core.prune.plan import PruningPlan
from core.importance.result import data_free_importance
from core.visualize import ONLY_COLOR, render_side_by_side

from _video_helpers import FPS, H, N, W, frame_rgb, write_cv2  # noqa: E402


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())

SIZE = 96  # target size: small and fast; the video is 160x120


@pytest.fixture(scope="module")
def models() -> tuple[OS2DModel, OS2DModel]:
    torch.manual_seed(0)
    original = OS2DModel(ModelConfig("resnet18")).eval()
    pruned = prune(original, PruningPlan(ratio=0.3, criterion="weight_l1"), data_free_importance(original)).model
    return original, pruned


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_cv2(tmp_path_factory.mktemp("cmp") / "in.mp4", "mp4v")


CLASS = frame_rgb(3)[25:65, 20:60]  # the patch with some background


def test_offline_writes_side_by_side_and_json(models, video, tmp_path):
    seen = []
    res = compare_video(*models, [CLASS], video, out_video=tmp_path / "sbs.mp4", out_json=tmp_path / "s.json",
                        target_size=SIZE, score_threshold=-1.0, max_detections=5,
                        on_frame=lambda fr: seen.append((fr.index, fr.image.shape)))
    assert isinstance(res, CompareResult)
    assert (res.frame_count, res.processed_count, res.skipped, res.mode) == (N, N, (), "offline")
    assert seen == [(i, (H, W, 3)) for i in range(N)]  # the GUI gets every frame, with its image
    assert all(f.image is None for f in res.frames)  # the stored result holds no images
    assert res.pruned.parameters < res.original.parameters
    for side in (res.original, res.pruned):
        assert side.mean_ms > 0 and side.fps == pytest.approx(1e3 / side.mean_ms)
    assert res.agreement.matched + res.agreement.only_original == res.original.detections
    assert res.agreement.matched + res.agreement.only_pruned == res.pruned.detections
    with VideoFileSource(res.out_video) as src:  # playable, one output frame per input frame
        assert res.out_video == str(tmp_path / "sbs.mp4")
        assert src.frame_count == N and src.size == (2 * W + 4, H) and src.fps == FPS
        assert len(list(src)) == N
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["original"]["mean_latency_ms"] == pytest.approx(res.original.mean_ms, abs=1e-3)
    assert data["pruned"]["mean_latency_ms"] > 0 and data["pruned"]["fps"] > 0
    assert data["processed_count"] == N and len(data["frames"]) == N and data["out_video"] == res.out_video
    assert sorted(leftovers(tmp_path)) == ["s.json", "sbs.mp4"]


class SlowDetector:
    """Stands in for Detector: fixed detections after `delay` seconds (detection slower than the video)."""

    def __init__(self, delay: float, boxes) -> None:
        self.delay, self.boxes, self.target_size, self.name = delay, np.asarray(boxes, np.float32), 64.0, "slow"

    def prepare_classes(self, images, class_ids=None, names=None):
        return ClassBank(torch.zeros(len(images), 1, 15, 15), list(range(len(images))), list(names or ["a"]))

    def detect(self, target, bank, **kw):
        t = time.perf_counter()
        time.sleep(self.delay)
        n = len(self.boxes)
        return Detections(self.boxes, np.linspace(0.9, 0.6, n).astype(np.float32), np.zeros(n, np.int64),
                          image_size=(target.shape[1], target.shape[0]), seconds=time.perf_counter() - t)


def test_live_skips_frames_when_detection_is_slower(video, tmp_path):
    """10 fps video, ~0.16 s per processed frame (two sides × 0.08 s): roughly every other frame is skipped."""
    a = SlowDetector(0.08, [[10, 10, 50, 50], [100, 20, 150, 60]])
    b = SlowDetector(0.08, [[12, 11, 52, 50]])
    processed = []
    res = compare_video(a, b, [CLASS], video, out_video=tmp_path / "live.mp4", mode="live",
                        on_frame=lambda fr: processed.append(fr.index))
    assert res.mode == "live" and res.frame_count == N
    assert 1 <= len(res.skipped) <= N - 2 and res.processed_count == N - len(res.skipped)
    assert sorted(processed + list(res.skipped)) == list(range(N)) and not set(processed) & set(res.skipped)
    assert processed[0] == 0 and processed[-1] == N - 1  # the newest frame is never dropped
    assert sum(f.skipped_before for f in res.frames) == len(res.skipped)
    assert res.original.mean_ms >= 75 and res.agreement.only_original == res.processed_count
    with VideoFileSource(res.out_video) as src:  # skipped frames are shown with the latest results
        assert src.frame_count == N


def test_live_with_real_models_and_a_fast_source(models, tmp_path):
    """A 1000 fps image sequence: after the first frame every frame but the last is already stale."""
    for i in range(6):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), frame_rgb(i))
    res = compare(*models, [CLASS], ImageFolderSource(tmp_path, fps=1000), target_size=SIZE, mode="live")
    assert [f.index for f in res.frames] == [0, 5] and res.skipped == (1, 2, 3, 4)
    offline = compare(*models, [CLASS], ImageFolderSource(tmp_path, fps=1000), target_size=SIZE, max_frames=3)
    assert offline.processed_count == 3 and offline.skipped == ()


def test_cancel_stops_and_leaves_no_output(video, tmp_path):
    token = CancelToken()
    calls = []

    def on_frame(fr):
        calls.append(fr.index)
        if fr.index == 1:
            token.cancel()

    a = SlowDetector(0.0, [[10, 10, 50, 50]])
    with pytest.raises(Cancelled):
        compare_video(a, a, [CLASS], video, out_video=tmp_path / "c.mp4", out_json=tmp_path / "c.json",
                      cancel=token, on_frame=on_frame)
    assert calls == [0, 1]
    assert leftovers(tmp_path) == []


def test_decode_failure_mid_stream_fails_the_job_without_output(tmp_path):
    src = write_cv2(tmp_path / "in.avi", "MJPG")
    data = src.read_bytes()
    src.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "out"
    out.mkdir()
    a = SlowDetector(0.0, [[10, 10, 50, 50]])
    with pytest.raises(VideoError, match=r"in\.avi: frame \d+ could not be decoded"):
        compare_video(a, a, [CLASS], src, out_video=out / "c.mp4", out_json=out / "c.json")
    assert leftovers(out) == []


def dets(boxes, labels, scores=None) -> Detections:
    n = len(boxes)
    scores = np.linspace(0.9, 0.5, n) if scores is None else scores
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32),
                      np.asarray(labels, np.int64), image_size=(W, H), seconds=0.05)


def test_only_one_side_flags_on_hand_made_detections():
    a = dets([[10, 10, 50, 50], [60, 10, 100, 50], [0, 60, 40, 100], [110, 60, 150, 100]], [0, 1, 0, 0])
    b = dets([[12, 12, 52, 52],   # same class, IoU 0.82 with a[0]: found by both
              [60, 10, 100, 50],  # same place as a[1] but another class: not a match
              [20, 60, 60, 100],  # IoU 0.33 with a[2]: below 0.5
              [112, 60, 152, 100]], [0, 0, 0, 0])
    m = match_detections(a, b)
    assert m.only_a.tolist() == [False, True, True, False]
    assert m.only_b.tolist() == [False, True, True, False]
    assert [(i, j) for i, j, _ in m.pairs] == [(0, 0), (3, 3)] and m.mean_iou > 0.8
    # greedy by score: of two candidates for one box, the higher-scoring one takes it
    two = dets([[10, 10, 50, 50], [11, 10, 51, 50]], [0, 0], scores=[0.6, 0.9])
    m2 = match_detections(two, dets([[10, 10, 50, 50]], [0]))
    assert m2.only_a.tolist() == [True, False]
    empty = dets([], [])
    assert match_detections(empty, a).only_b.all() and len(match_detections(a, empty).only_a) == 4


def test_render_marks_boxes_only_one_side_found():
    frame = np.full((H, W, 3), 90, np.uint8)
    a = dets([[20, 30, 60, 70]], [0])
    b = dets([[90, 30, 130, 70]], [0])
    m = match_detections(a, b)
    img = render_side_by_side(frame, SideResult(a, m.only_a, 0.05, 20.0), SideResult(b, m.only_b, 0.02, 50.0), ["x"])
    assert img.shape == (H, 2 * W + 4, 3) and img.dtype == np.uint8
    magenta = np.all(img == ONLY_COLOR, axis=-1)
    assert magenta[:, :W].any() and magenta[:, W + 4:].any()
    agreed = render_side_by_side(frame, a, a, ["x"], 20.0, 20.0)  # plain Detections: nothing flagged
    assert not np.all(agreed == ONLY_COLOR, axis=-1).any()
    assert not np.array_equal(img[:, :W], agreed[:, :W])


def test_cli_compare(models, video, tmp_path, capsys):
    o, p = tmp_path / "o.pt", tmp_path / "p.pt"
    save_model(models[0], o, meta={"eval_scale": SIZE})
    save_model(models[1], p, meta={"eval_scale": SIZE})
    cls = tmp_path / "patch.png"
    cv2.imwrite(str(cls), CLASS)
    rc = main(["compare", "--original", str(o), "--pruned", str(p), "--class-image", str(cls), "--video", str(video),
               "--out", str(tmp_path / "out.mp4"), "--json", str(tmp_path / "out.json"), "--max-frames", "3",
               "--score-threshold", "-1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "3 of 3 frames processed" in out and "o.pt" in out and "p.pt" in out and out.count(" FPS") == 2
    assert json.loads((tmp_path / "out.json").read_text())["target_size"] == SIZE
    with VideoFileSource(tmp_path / "out.mp4") as src:
        assert src.frame_count == 3
    rc = main(["compare", "--original", str(o), "--pruned", str(p), "--class-image", str(cls),
               "--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == f"error: {tmp_path / 'nope.mp4'}: file not found"
    assert not (tmp_path / "x.mp4").exists()


def test_ground_truth_gives_each_side_a_running_recall_and_map(video, tmp_path):
    """Ground truth: class 7 at [10, 10, 50, 50] in every frame (plus a difficult box and a class not
    asked for). One side finds it, the other finds something else: recall 1 against 0, mAP 1 against 0."""
    from core.data.video_gt import VIDEO_GT_FORMAT, load_video_ground_truth

    rows = []
    for i in range(N):
        rows += [[i, 7, 10, 10, 50, 50, 0], [i, 7, 100, 20, 150, 60, 1], [i, 9, 60, 60, 90, 90, 0]]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"format": VIDEO_GT_FORMAT, "frames": N, "size": [W, H], "boxes": rows}))
    gt = load_video_ground_truth(path)
    good = SlowDetector(0.0, [[11, 10, 50, 51]])
    bad = SlowDetector(0.0, [[60, 60, 90, 90]])  # where class 9 is: not a class it was given
    recalls = []
    res = compare(good, bad, [CLASS], video, class_names=["class_7"], ground_truth=gt,
                  on_frame=lambda fr: recalls.append((fr.original.recall, fr.pruned.recall)))
    assert recalls == [(1.0, 0.0)] * N
    assert res.original.recall == 1.0 and res.original.map == pytest.approx(1.0)
    assert res.pruned.recall == 0.0 and res.pruned.map == pytest.approx(0.0)
    assert res.original.per_class_ap == {"class_7": pytest.approx(1.0)}  # where each side wins or loses
    assert res.pruned.per_class_ap == {"class_7": pytest.approx(0.0)}
    data = res.to_json()
    assert data["pruned"]["per_class_ap"] == {"class_7": 0.0}
    assert data["ground_truth"] == str(path) and data["original"]["mAP@0.5"] == 1.0
    # without class ids in the names nothing is scored against it
    res = compare(good, bad, [CLASS], video, class_names=["patch"], ground_truth=gt, max_frames=2)
    assert res.original.recall is None and res.original.map is None


@pytest.mark.parametrize("content, problem", [
    ("", "not a readable JSON file"),
    ('{"format": "something else"}', "not a video ground-truth file"),
    ('{"format": "os2d-studio-video-gt", "frames": 2, "size": [4, 4], "boxes": [[0, 1, 2]]}', "bad ground-truth content"),
    ('{"format": "os2d-studio-video-gt", "frames": 2, "size": [4, 4], "boxes": [[0, 1, 3, 3, 1, 1, 0]]}',
     "x1 ≥ x0"),
])
def test_bad_ground_truth_files_name_the_file(tmp_path, content, problem):
    from core.data.video_gt import GroundTruthError, load_video_ground_truth

    path = tmp_path / "gt.json"
    path.write_text(content)
    with pytest.raises(GroundTruthError) as e:
        load_video_ground_truth(path)
    assert str(e.value).startswith(f"{path}: ") and problem in str(e.value) and "\n" not in str(e.value)
