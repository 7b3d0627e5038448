"""Original vs pruned detector on the same frames: per-frame latency, detections, and where they disagree.

`compare` is the job (the GUI's video tab runs it in its worker and paints from `on_frame`);
`compare_video` adds the side-by-side video and the JSON report, both written atomically; the CLI's
`os2d-studio compare` calls `compare_video`.

Fairness: both sides get the same frame, the same target size and thresholds, and their own class
features (a pruned trunk has fewer channels, so class features cannot be shared). The order of the
two forwards alternates between frames so neither side always runs on a warm cache, and each side
runs once on the first frame before timing starts (first-call allocations are not latency).

Modes: "offline" processes every frame (FPS = 1 / mean latency of that side). "live" emulates a real
time feed: after processing a frame, every frame superseded by a newer one whose timestamp has already
passed is skipped (and recorded), and a frame not yet "arrived" is waited for; a camera is real time
by itself, so nothing is skipped by us there (the driver drops frames).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from core.data.video import Frame, FrameSource, VideoError, VideoWriter, open_source
from core.data.video_gt import VideoGroundTruth, labels_for
from core.detect import DEFAULT_TARGET_SIZE, ClassBank, Detections, Detector
from core.eval.map import ImageDetections, ImageGroundTruth, evaluate_map, true_positives
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import LoadedModel
from core.model.os2d import OS2DModel
from core.visualize import draw_detections, put_label

MATCH_IOU = 0.5
MODES = ("offline", "live")
FPS_WINDOW = 10  # frames in the running FPS shown on the overlay


# -- matching --------------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes [N, 4] x [M, 4] → [N, M]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True, eq=False)
class Match:
    """Which boxes of `a` and `b` have a same-class partner with IoU ≥ the threshold."""

    only_a: np.ndarray  # bool [len(a)]
    only_b: np.ndarray  # bool [len(b)]
    pairs: tuple[tuple[int, int, float], ...]  # (index in a, index in b, IoU)

    @property
    def mean_iou(self) -> float | None:
        return float(np.mean([p[2] for p in self.pairs])) if self.pairs else None


def match_detections(a: Detections, b: Detections, iou_threshold: float = MATCH_IOU) -> Match:
    """Greedy matching, highest score of `a` first (as mAP matching does): each box takes the unmatched
    box of `b` of the same class with the highest IoU, if that IoU ≥ `iou_threshold`."""
    only_a = np.ones(len(a), bool)
    only_b = np.ones(len(b), bool)
    pairs = []
    if len(a) and len(b):
        iou = box_iou(a.boxes, b.boxes)
        iou[np.asarray(a.labels)[:, None] != np.asarray(b.labels)[None, :]] = -1.0
        for i in np.argsort(-np.asarray(a.scores), kind="stable"):
            cand = np.where(only_b, iou[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= iou_threshold:
                only_a[i] = only_b[j] = False
                pairs.append((int(i), j, float(cand[j])))
    return Match(only_a, only_b, tuple(pairs))


# -- results ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SideResult:
    """One detector on one frame."""

    detections: Detections  # kept detections (score ≥ threshold, at most max_detections)
    only_here: np.ndarray  # bool per detection: no same-class IoU ≥ 0.5 partner on the other side
    seconds: float  # this side's detection latency on this frame
    fps: float = 0.0  # running FPS over the last few frames (what the overlay shows)
    recall: float | None = None  # running recall against the video's ground truth, when it has one


@dataclass(frozen=True, eq=False)
class FrameResult:
    """Both detectors on one processed frame. `image` is the frame for `on_frame` (None once stored)."""

    index: int
    timestamp: float
    original: SideResult
    pruned: SideResult
    matched: int
    mean_iou: float | None
    skipped_before: int = 0  # frames skipped (live mode) since the previous processed frame
    image: np.ndarray | None = None

    def to_json(self) -> dict:
        return {"index": self.index, "t": round(self.timestamp, 4),
                "original_ms": round(self.original.seconds * 1e3, 2), "pruned_ms": round(self.pruned.seconds * 1e3, 2),
                "original_boxes": len(self.original.detections), "pruned_boxes": len(self.pruned.detections),
                "matched": self.matched, "only_original": int(self.original.only_here.sum()),
                "only_pruned": int(self.pruned.only_here.sum())}


@dataclass(frozen=True)
class SideStats:
    name: str
    parameters: int
    mean_ms: float
    median_ms: float
    p90_ms: float
    fps: float  # 1 / mean latency: what this side alone sustains
    detections: int  # kept boxes over all processed frames
    recall: float | None = None  # against the video's ground truth (at this side's score threshold)
    map: float | None = None  # mAP@0.5 over the processed frames, of each frame's top boxes by score (any score)

    def to_json(self) -> dict:
        rnd = lambda v: None if v is None else round(v, 4)  # noqa: E731
        return {"name": self.name, "parameters": self.parameters, "mean_latency_ms": round(self.mean_ms, 3),
                "median_latency_ms": round(self.median_ms, 3), "p90_latency_ms": round(self.p90_ms, 3),
                "fps": round(self.fps, 3), "detections": self.detections, "recall": rnd(self.recall),
                "mAP@0.5": rnd(self.map)}


@dataclass(frozen=True)
class Agreement:
    matched: int  # pairs found by both (same class, IoU ≥ 0.5)
    only_original: int
    only_pruned: int
    mean_iou: float | None  # over matched pairs

    @property
    def rate(self) -> float:
        """matched / all distinct boxes (1.0 when neither side found anything: they agree)."""
        total = self.matched + self.only_original + self.only_pruned
        return self.matched / total if total else 1.0

    def to_json(self) -> dict:
        return {"matched": self.matched, "only_original": self.only_original, "only_pruned": self.only_pruned,
                "agreement": round(self.rate, 4), "match_iou": MATCH_IOU,
                "mean_iou": None if self.mean_iou is None else round(self.mean_iou, 4)}


@dataclass(frozen=True)
class CompareResult:
    source: str
    mode: str
    frame_count: int  # frames taken from the source (processed + skipped)
    processed_count: int
    skipped: tuple[int, ...]  # indices of frames skipped in live mode
    source_fps: float
    target_size: float
    score_threshold: float
    nms_iou: float
    class_names: tuple[str, ...]
    device: str
    original: SideStats
    pruned: SideStats
    agreement: Agreement
    wall_seconds: float
    frames: tuple[FrameResult, ...] = field(default=(), repr=False)
    pruned_score_threshold: float | None = None  # None: the same as score_threshold
    ground_truth: str | None = None  # the per-frame ground truth the sides were scored against
    out_video: str | None = None
    out_json: str | None = None

    @property
    def speedup(self) -> float | None:
        return self.original.mean_ms / self.pruned.mean_ms if self.pruned.mean_ms > 0 else None

    def to_json(self) -> dict:
        return {
            "source": self.source, "mode": self.mode, "frame_count": self.frame_count,
            "processed_count": self.processed_count, "skipped": list(self.skipped), "source_fps": self.source_fps,
            "target_size": self.target_size, "score_threshold": self.score_threshold,
            "pruned_score_threshold": self.score_threshold if self.pruned_score_threshold is None
            else self.pruned_score_threshold, "nms_iou": self.nms_iou,
            "match_iou": MATCH_IOU, "class_names": list(self.class_names), "device": self.device,
            "original": self.original.to_json(), "pruned": self.pruned.to_json(),
            "speedup": None if self.speedup is None else round(self.speedup, 4),
            "agreement": self.agreement.to_json(), "wall_seconds": round(self.wall_seconds, 3),
            "ground_truth": self.ground_truth,
            "out_video": self.out_video, "frames": [f.to_json() for f in self.frames],
        }


# -- the job ---------------------------------------------------------------------------------------
ModelLike = LoadedModel | OS2DModel | Detector


def _detector(m: ModelLike, device, target_size: float) -> tuple[Detector, str]:
    """A Detector for the model; a ready Detector (or any object with its `prepare_classes`/`detect`,
    e.g. the GUI's or a test's stand-in) is used as it is."""
    if isinstance(m, LoadedModel):
        return Detector(m.model, device, target_size=target_size), Path(m.path).name
    if isinstance(m, OS2DModel):
        return Detector(m, device, target_size=target_size), ""
    if hasattr(m, "prepare_classes") and hasattr(m, "detect"):
        return m, str(getattr(m, "name", ""))
    raise TypeError(f"expected a LoadedModel, OS2DModel or Detector, got {type(m).__name__}")


def _parameters(det) -> int:
    model = getattr(det, "model", None)
    return int(model.num_parameters()) if hasattr(model, "num_parameters") else 0


def _stats(name: str, det, seconds: list[float], boxes: int) -> SideStats:
    ms = sorted(s * 1e3 for s in seconds) or [0.0]
    mean = statistics.fmean(ms)
    return SideStats(name, _parameters(det), mean, statistics.median(ms), ms[min(len(ms) - 1, int(0.9 * len(ms)))],
                     1e3 / mean if mean > 0 else 0.0, boxes)


def resolve_target_size(original: ModelLike, target_size: float | None) -> float:
    """The explicit size, else the original model's own scale (`LoadedModel.scale`), else a ready
    detector's, else OS2D's default."""
    if target_size:
        return float(target_size)
    if isinstance(original, LoadedModel):
        return original.scale()
    if getattr(original, "target_size", None):
        return float(original.target_size)
    return float(DEFAULT_TARGET_SIZE)


def compare(
    original: ModelLike,
    pruned: ModelLike,
    class_images: Sequence[np.ndarray | str | os.PathLike],
    source: FrameSource | str | os.PathLike,
    *,
    target_size: float | None = None,
    score_threshold: float = 0.5,
    nms_iou: float = 0.3,
    max_detections: int = 50,
    mode: str = "offline",
    pruned_score_threshold: float | None = None,
    ground_truth: VideoGroundTruth | None = None,
    device: str | None = None,
    class_names: Sequence[str] | None = None,
    max_frames: int | None = None,
    progress: Progress = no_progress,
    cancel: CancelToken | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    on_skip: Callable[[Frame], None] | None = None,
) -> CompareResult:
    """Run both detectors over the frames of `source` (see the module docstring for modes).

    `on_frame(FrameResult)` is called from the calling (job) thread after each processed frame, with
    the frame in `.image`; `on_skip(Frame)` for each skipped frame (decoded only when given; the
    video writer uses it). `source` given as a spec is opened and closed here; a FrameSource given
    by the caller is read from its current position and left open. Raises `Cancelled` via `cancel`.
    `pruned_score_threshold` (default: `score_threshold`) filters the pruned side: its scores sit on
    another scale than the original's. With `ground_truth` each side gets a running recall per frame
    and a final recall and mAP@0.5 (class images matched to its classes by the id their name ends with).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be ≥ 1, got {max_frames}")
    size = resolve_target_size(original, target_size)
    det_o, name_o = _detector(original, device, size)
    det_p, name_p = _detector(pruned, device, size)
    own_source = not isinstance(source, FrameSource)
    src = open_source(source) if own_source else source
    try:
        bank_o = det_o.prepare_classes(class_images, names=class_names)
        bank_p = det_p.prepare_classes(class_images, names=class_names)
        names = tuple(bank_o.names)
        return _run(det_o, det_p, bank_o, bank_p, src, names, (name_o or "original", name_p or "pruned"),
                    size=size, score_threshold=score_threshold, nms_iou=nms_iou, max_detections=max_detections,
                    mode=mode, max_frames=max_frames, progress=progress, cancel=cancel, on_frame=on_frame,
                    on_skip=on_skip,
                    pruned_score_threshold=score_threshold if pruned_score_threshold is None
                    else pruned_score_threshold, ground_truth=ground_truth)
    finally:
        if own_source:
            src.close()


def _run(det_o, det_p, bank_o: ClassBank, bank_p: ClassBank, src: FrameSource, names, side_names, *, size,
         score_threshold, nms_iou, max_detections, mode, max_frames, progress, cancel, on_frame, on_skip,
         pruned_score_threshold, ground_truth=None) -> CompareResult:
    live = mode == "live"
    total = src.frame_count - src.position if src.frame_count is not None else 0
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    kw = dict(target_size=size, nms_iou_threshold=nms_iou, max_detections=max_detections)

    ranked: dict[int, Detections] = {}  # with ground truth: each side's boxes before its score threshold

    def run(det, bank, rgb) -> Detections:
        t = pruned_score_threshold if det is det_p else score_threshold
        if scoring is None:
            return det.detect(rgb, bank, score_threshold=t, **kw).top(max_detections, t)
        # mAP ranks boxes by score, so it is measured before the threshold that only decides what is shown
        d = det.detect(rgb, bank, score_threshold=float("-inf"), **kw)
        ranked[id(det)] = d.top(max_detections)
        return d.top(max_detections, t)

    lat_o: list[float] = []
    lat_p: list[float] = []
    recent_o: deque[float] = deque(maxlen=FPS_WINDOW)
    recent_p: deque[float] = deque(maxlen=FPS_WINDOW)
    frames: list[FrameResult] = []
    skipped: list[int] = []
    taken = 0
    boxes_o = boxes_p = matched = only_o = only_p = 0
    ious: list[float] = []
    t_start = time.perf_counter()
    clock0: tuple[float, float] | None = None  # (perf_counter, source timestamp) of the first processed frame
    pending_skips = 0
    scoring = _Scoring(ground_truth, names) if ground_truth is not None else None

    def source_now() -> float:
        return clock0[1] + (time.perf_counter() - clock0[0])

    while True:
        if cancel is not None:
            cancel.raise_if_cancelled()
        if max_frames is not None and len(frames) >= max_frames:
            break
        if live and not src.live and clock0 is not None:
            now = source_now()
            # skip every frame that a newer, already-arrived frame supersedes
            while (src.frame_count is None or src.position + 1 < src.frame_count) \
                    and src.timestamp_of(src.position + 1) <= now:
                f = src.read(decode=on_skip is not None)
                if f is None:
                    break
                skipped.append(f.index)
                taken += 1
                pending_skips += 1
                if on_skip is not None:
                    on_skip(f)
            # a frame that has not "arrived" yet is waited for, as a real feed would make us wait
            wait = src.timestamp_of(src.position) - source_now()
            while wait > 0:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                time.sleep(min(wait, 0.05))
                wait = src.timestamp_of(src.position) - source_now()
        frame = src.read()
        if frame is None:
            break
        taken += 1
        if clock0 is None:
            for det, bank in ((det_o, bank_o), (det_p, bank_p)):  # warm-up, not timed
                det.detect(frame.rgb, bank, score_threshold=score_threshold, **kw)
            clock0 = (time.perf_counter(), frame.timestamp)
        # alternate which side runs first so neither always profits from a warm cache
        if len(frames) % 2 == 0:
            d_o = run(det_o, bank_o, frame.rgb)
            d_p = run(det_p, bank_p, frame.rgb)
        else:
            d_p = run(det_p, bank_p, frame.rgb)
            d_o = run(det_o, bank_o, frame.rgb)
        m = match_detections(d_o, d_p)
        rec_o = rec_p = None
        if scoring is not None:
            rec_o, rec_p = scoring.add(frame.index, (frame.rgb.shape[1], frame.rgb.shape[0]), (d_o, d_p),
                                       (ranked[id(det_o)], ranked[id(det_p)]))
        lat_o.append(d_o.seconds)
        lat_p.append(d_p.seconds)
        recent_o.append(d_o.seconds)
        recent_p.append(d_p.seconds)
        fr = FrameResult(
            frame.index, frame.timestamp,
            SideResult(d_o, m.only_a, d_o.seconds, len(recent_o) / sum(recent_o) if sum(recent_o) > 0 else 0.0,
                       rec_o),
            SideResult(d_p, m.only_b, d_p.seconds, len(recent_p) / sum(recent_p) if sum(recent_p) > 0 else 0.0,
                       rec_p),
            len(m.pairs), m.mean_iou, pending_skips, frame.rgb)
        pending_skips = 0
        boxes_o += len(d_o)
        boxes_p += len(d_p)
        matched += len(m.pairs)
        only_o += int(m.only_a.sum())
        only_p += int(m.only_b.sum())
        ious += [p[2] for p in m.pairs]
        frames.append(replace(fr, image=None))
        if on_frame is not None:
            on_frame(fr)
        progress(len(frames) + len(skipped), total,
                 f"{side_names[0]} {d_o.seconds * 1e3:.0f} ms | {side_names[1]} {d_p.seconds * 1e3:.0f} ms")
    if not frames:
        raise VideoError(src.name, "no frames to compare")
    return CompareResult(
        source=src.name, mode=mode, frame_count=taken, processed_count=len(frames), skipped=tuple(skipped),
        source_fps=src.fps, target_size=size, score_threshold=score_threshold, nms_iou=nms_iou,
        pruned_score_threshold=pruned_score_threshold, class_names=tuple(names), device=str(getattr(det_o, "device", "")),
        original=scoring.finish(0, _stats(side_names[0], det_o, lat_o, boxes_o)) if scoring
        else _stats(side_names[0], det_o, lat_o, boxes_o),
        pruned=scoring.finish(1, _stats(side_names[1], det_p, lat_p, boxes_p)) if scoring
        else _stats(side_names[1], det_p, lat_p, boxes_p),
        ground_truth=ground_truth.source if ground_truth is not None else None,
        agreement=Agreement(matched, only_o, only_p, float(np.mean(ious)) if ious else None),
        wall_seconds=time.perf_counter() - t_start, frames=tuple(frames))


class _Scoring:
    """Both sides' detections against a video's per-frame ground truth: running recall, final mAP."""

    def __init__(self, gt: VideoGroundTruth, names: Sequence[str]) -> None:
        self.gt = gt
        self.labels_of = labels_for(names)
        self.dets: tuple[list, list] = ([], [])
        self.gts: list[ImageGroundTruth] = []
        self.tp = [0, 0]
        self.npos = 0

    def add(self, index: int, size: tuple[int, int], shown: tuple[Detections, Detections],
            ranked: tuple[Detections, Detections]) -> tuple[float | None, float | None]:
        """Recall of the boxes each side shows (its threshold); mAP later from its ranked boxes."""
        boxes, labels, difficult = self.gt.for_frame(index, self.labels_of, size)
        g = ImageGroundTruth(boxes, labels, difficult)
        self.gts.append(g)
        recalls = []
        for i, (d, r) in enumerate(zip(shown, ranked)):
            self.dets[i].append(ImageDetections(r.boxes, r.scores, r.labels))
            tp, npos = true_positives(ImageDetections(d.boxes, d.scores, d.labels), g)
            self.tp[i] += tp
            if i == 0:
                self.npos += npos
            recalls.append(self.tp[i] / self.npos if self.npos else None)
        return recalls[0], recalls[1]

    def finish(self, side: int, stats: SideStats) -> SideStats:
        result = evaluate_map(self.dets[side], self.gts)
        mean = None if result.map != result.map else float(result.map)  # NaN: no ground truth seen
        return replace(stats, recall=self.tp[side] / self.npos if self.npos else None, map=mean)


# -- rendering -------------------------------------------------------------------------------------
ONLY_COLOR = (255, 0, 255)  # magenta: a box the other side did not find


def _dashed_rect(img: np.ndarray, p1, p2, color, thickness: int, dash: int = 8) -> None:
    x1, y1 = p1
    x2, y2 = p2
    for (a, b) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for s in range(0, max(length, 1), dash * 2):
            e = min(s + dash, length)
            t0, t1 = s / max(length, 1), e / max(length, 1)
            q0 = (int(round(a[0] + (b[0] - a[0]) * t0)), int(round(a[1] + (b[1] - a[1]) * t0)))
            q1 = (int(round(a[0] + (b[0] - a[0]) * t1)), int(round(a[1] + (b[1] - a[1]) * t1)))
            cv2.line(img, q0, q1, color, thickness, cv2.LINE_AA)


def _as_side(res: SideResult | Detections) -> SideResult:
    if isinstance(res, SideResult):
        return res
    return SideResult(res, np.zeros(len(res), bool), res.seconds, 1.0 / res.seconds if res.seconds > 0 else 0.0)


def render_pane(frame: np.ndarray, res: SideResult | Detections, names: Sequence[str], fps: float | None = None,
                title: str = "") -> np.ndarray:
    """One pane: boxes with scores, boxes only this side found thick and dashed-magenta with an "only" tag,
    a title at the top and "FPS | latency | boxes" at the bottom."""
    side = _as_side(res)
    d = side.detections
    only = np.asarray(side.only_here, bool)
    h, w = frame.shape[:2]
    pane = draw_detections(frame, d.boxes, d.scores, d.labels, list(names), highlight=only)
    t = max(1, round(min(h, w) / 300))
    scale = max(0.35, min(0.6, min(h, w) / 800))
    for box in d.boxes[only]:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        _dashed_rect(pane, (x1 - 2 * t, y1 - 2 * t), (x2 + 2 * t, y2 + 2 * t), ONLY_COLOR, t)
        (tw, th), base = cv2.getTextSize("only", cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, 1)
        yb = min(h - 1, y2 + 2 * t + th + base + 2)
        cv2.rectangle(pane, (x1 - 2 * t, yb - th - base - 2), (x1 - 2 * t + tw + 4, yb), ONLY_COLOR, -1)
        cv2.putText(pane, "only", (x1 - 2 * t + 2, yb - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8,
                    (255, 255, 255), 1, cv2.LINE_AA)
    lh = int(30 * scale / 0.6)
    if title:
        put_label(pane, title, (8, lh), scale)
    fps = side.fps if fps is None else fps
    n_only = int(only.sum())
    put_label(pane, f"{fps:.1f} FPS | {side.seconds * 1e3:.0f} ms | {len(d)} boxes"
              + (f", {n_only} only here" if n_only else ""), (8, h - max(6, lh // 3)), scale)
    return pane


def render_side_by_side(frame: np.ndarray, res_orig: SideResult | Detections, res_pruned: SideResult | Detections,
                        names: Sequence[str], fps_orig: float | None = None, fps_pruned: float | None = None, *,
                        titles: tuple[str, str] = ("original", "pruned"), gap: int = 4) -> np.ndarray:
    """Two panes, original | pruned, separated by a dark bar: RGB uint8 [H, 2W + gap, 3]."""
    left = render_pane(frame, res_orig, names, fps_orig, titles[0])
    right = render_pane(frame, res_pruned, names, fps_pruned, titles[1])
    bar = np.full((frame.shape[0], gap, 3), 32, np.uint8)
    return np.ascontiguousarray(np.concatenate([left, bar, right], axis=1))


# -- video + JSON ----------------------------------------------------------------------------------
def _title(side: str, model: ModelLike, name: str = "") -> str:
    m = model if isinstance(model, OS2DModel) else getattr(model, "model", None)
    params = m.num_parameters() if hasattr(m, "num_parameters") else None
    label = f"{side}: {name}" if name else side
    return f"{label} ({params / 1e6:.1f}M params)" if params else label


def compare_video(
    original: ModelLike,
    pruned: ModelLike,
    class_images: Sequence[np.ndarray | str | os.PathLike],
    source: FrameSource | str | os.PathLike,
    *,
    out_video: str | os.PathLike | None = None,
    out_json: str | os.PathLike | None = None,
    progress: Progress = no_progress,
    cancel: CancelToken | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
    **kwargs,
) -> CompareResult:
    """`compare` plus the side-by-side video (one output frame per input frame: skipped frames in live
    mode show the latest results, as a live viewer sees them) and the JSON report. Both are atomic: a
    cancelled or failed run leaves neither. `kwargs` go to `compare`."""
    from core.io import atomic_write_text

    titles = (_title("original", original, Path(original.path).name if isinstance(original, LoadedModel) else ""),
              _title("pruned", pruned, Path(pruned.path).name if isinstance(pruned, LoadedModel) else ""))
    names = list(kwargs.pop("class_names", None) or [
        Path(c).stem if not isinstance(c, np.ndarray) else f"class {i}" for i, c in enumerate(class_images)])
    own = not isinstance(source, FrameSource)
    src = open_source(source) if own else source
    writer: VideoWriter | None = None
    last: FrameResult | None = None

    def write_frame(rgb: np.ndarray, fr: FrameResult) -> None:
        nonlocal writer
        img = render_side_by_side(rgb, fr.original, fr.pruned, names, titles=titles)
        if writer is None:  # opened on the first frame: its size is known only then
            writer = VideoWriter(out_video, src.fps, (img.shape[1], img.shape[0]))
        writer.write(img)

    def frame_cb(fr: FrameResult) -> None:
        nonlocal last
        last = fr
        if out_video is not None:
            write_frame(fr.image, fr)
        if on_frame is not None:
            on_frame(fr)

    def skip_cb(f: Frame) -> None:
        if last is not None:
            write_frame(f.rgb, last)

    try:
        res = compare(original, pruned, class_images, src, class_names=names, progress=progress, cancel=cancel,
                      on_frame=frame_cb, on_skip=skip_cb if out_video is not None else None, **kwargs)
        video_path = str(writer.close()) if writer is not None else None
        res = replace(res, out_video=video_path, out_json=str(out_json) if out_json is not None else None)
        if out_json is not None:
            atomic_write_text(out_json, json.dumps(res.to_json(), indent=1))
        return res
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if own:
            src.close()
