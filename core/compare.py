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

Which boxes agree is `core.eval.matching`; the panes are drawn by `core.visualize`.
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

import numpy as np

from core.data.video import Frame, FrameSource, VideoError, VideoWriter, open_source
from core.data.video_gt import VideoGroundTruth, labels_for
from core.detect import DEFAULT_TARGET_SIZE, ClassBank, Detections, Detector
from core.eval.map import ImageDetections, ImageGroundTruth, evaluate_map, true_positives
from core.eval.matching import MATCH_IOU, match_detections
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import LoadedModel
from core.model.os2d import OS2DModel
from core.visualize import render_side_by_side

MODES = ("offline", "live")
FPS_WINDOW = 10  # frames in the running FPS shown on the overlay


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
    per_class_ap: dict[str, float] | None = None  # AP@0.5 per class image name: where a side loses its mAP

    def to_json(self) -> dict:
        rnd = lambda v: None if v is None else round(v, 4)  # noqa: E731
        return {"name": self.name, "parameters": self.parameters, "mean_latency_ms": round(self.mean_ms, 3),
                "median_latency_ms": round(self.median_ms, 3), "p90_latency_ms": round(self.p90_ms, 3),
                "fps": round(self.fps, 3), "detections": self.detections, "recall": rnd(self.recall),
                "mAP@0.5": rnd(self.map),
                "per_class_ap": None if self.per_class_ap is None else {k: rnd(v) for k, v in self.per_class_ap.items()}}


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
        if pruned_score_threshold is None:
            pruned_score_threshold = score_threshold
        sides = (_Side(name_o or "original", det_o, bank_o, score_threshold),
                 _Side(name_p or "pruned", det_p, bank_p, pruned_score_threshold))
        return _run(sides, src, tuple(bank_o.names), size=size, score_threshold=score_threshold, nms_iou=nms_iou,
                    max_detections=max_detections, mode=mode, max_frames=max_frames, progress=progress,
                    cancel=cancel, on_frame=on_frame, on_skip=on_skip, ground_truth=ground_truth)
    finally:
        if own_source:
            src.close()


@dataclass(eq=False)
class _Side:
    """One detector's running totals over the frames: latencies, boxes and, against ground truth, its
    ranked detections for mAP and its true positives for recall."""

    name: str
    detector: object
    bank: ClassBank
    score_threshold: float
    seconds: list[float] = field(default_factory=list)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=FPS_WINDOW))
    boxes: int = 0
    unmatched: int = 0  # boxes the other side has no partner for
    ranked: list[ImageDetections] = field(default_factory=list)
    true_positives: int = 0
    positives: int = 0

    def detect(self, rgb: np.ndarray, scored: bool, max_detections: int, **kw) -> tuple[Detections, Detections]:
        """(shown, ranked): the boxes at this side's threshold, and with `scored` its boxes before the
        threshold (mAP ranks by score; the threshold only decides what is shown), else the shown ones."""
        t = self.score_threshold
        if not scored:
            shown = self.detector.detect(rgb, self.bank, score_threshold=t, max_detections=max_detections,
                                         **kw).top(max_detections, t)
            return shown, shown
        d = self.detector.detect(rgb, self.bank, score_threshold=float("-inf"), max_detections=max_detections, **kw)
        return d.top(max_detections, t), d.top(max_detections)

    def score(self, shown: Detections, ranked: Detections, truth: ImageGroundTruth) -> float | None:
        """The running recall of the shown boxes; the ranked ones are kept for mAP."""
        self.ranked.append(ImageDetections(ranked.boxes, ranked.scores, ranked.labels))
        tp, npos = true_positives(ImageDetections(shown.boxes, shown.scores, shown.labels), truth)
        self.true_positives += tp
        self.positives += npos
        return self.recall

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None

    def add(self, shown: Detections, only_here: np.ndarray, recall: float | None) -> SideResult:
        self.seconds.append(shown.seconds)
        self.recent.append(shown.seconds)
        self.boxes += len(shown)
        self.unmatched += int(only_here.sum())
        window = sum(self.recent)
        return SideResult(shown, only_here, shown.seconds, len(self.recent) / window if window > 0 else 0.0, recall)

    def stats(self, truths: Sequence[ImageGroundTruth] | None) -> SideStats:
        ms = sorted(s * 1e3 for s in self.seconds) or [0.0]
        mean = statistics.fmean(ms)
        stats = SideStats(self.name, _parameters(self.detector), mean, statistics.median(ms),
                          ms[min(len(ms) - 1, int(0.9 * len(ms)))], 1e3 / mean if mean > 0 else 0.0, self.boxes)
        if truths is None:
            return stats
        result = evaluate_map(self.ranked, truths)
        mean_ap = None if result.map != result.map else float(result.map)  # NaN: no ground truth seen
        names = self.bank.names if self.bank is not None else []
        per_class = {(names[k] if 0 <= k < len(names) else str(k)): float(ap) for k, ap in result.per_class_ap.items()}
        return replace(stats, recall=self.recall, map=mean_ap, per_class_ap=per_class)


def _run(sides: tuple[_Side, _Side], src: FrameSource, names: tuple[str, ...], *, size, score_threshold, nms_iou,
         max_detections, mode, max_frames, progress, cancel, on_frame, on_skip,
         ground_truth: VideoGroundTruth | None = None) -> CompareResult:
    live = mode == "live"
    total = src.frame_count - src.position if src.frame_count is not None else 0
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    kw = dict(target_size=size, nms_iou_threshold=nms_iou)
    orig, prun = sides
    scored = ground_truth is not None
    labels_of = labels_for(names) if scored else None
    truths: list[ImageGroundTruth] = []  # the ground truth of each processed frame
    frames: list[FrameResult] = []
    skipped: list[int] = []
    taken = 0
    matched = 0
    ious: list[float] = []
    t_start = time.perf_counter()
    clock0: tuple[float, float] | None = None  # (perf_counter, source timestamp) of the first processed frame
    pending_skips = 0

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
            # warm-up, not timed: twice, since a runtime may prepare a size on its second use (OpenVINO
            # compiles a graph fixed to a size it meets again)
            for side in sides:
                for _ in range(2):
                    side.detector.detect(frame.rgb, side.bank, score_threshold=score_threshold,
                                         max_detections=max_detections, **kw)
            clock0 = (time.perf_counter(), frame.timestamp)
        # alternate which side runs first so neither always profits from a warm cache
        found: list = [None, None]
        for i in ((0, 1) if len(frames) % 2 == 0 else (1, 0)):
            found[i] = sides[i].detect(frame.rgb, scored, max_detections, **kw)
        (shown_o, ranked_o), (shown_p, ranked_p) = found
        m = match_detections(shown_o, shown_p)
        rec_o = rec_p = None
        if scored:
            truth = ImageGroundTruth(*ground_truth.for_frame(frame.index, labels_of,
                                                             (frame.rgb.shape[1], frame.rgb.shape[0])))
            truths.append(truth)
            rec_o = orig.score(shown_o, ranked_o, truth)
            rec_p = prun.score(shown_p, ranked_p, truth)
        fr = FrameResult(frame.index, frame.timestamp, orig.add(shown_o, m.only_a, rec_o),
                         prun.add(shown_p, m.only_b, rec_p), len(m.pairs), m.mean_iou, pending_skips, frame.rgb)
        pending_skips = 0
        matched += len(m.pairs)
        ious += [p[2] for p in m.pairs]
        frames.append(replace(fr, image=None))
        if on_frame is not None:
            on_frame(fr)
        progress(len(frames) + len(skipped), total,
                 f"{orig.name} {shown_o.seconds * 1e3:.0f} ms | {prun.name} {shown_p.seconds * 1e3:.0f} ms")
    if not frames:
        raise VideoError(src.name, "no frames to compare")
    return CompareResult(
        source=src.name, mode=mode, frame_count=taken, processed_count=len(frames), skipped=tuple(skipped),
        source_fps=src.fps, target_size=size, score_threshold=score_threshold, nms_iou=nms_iou,
        pruned_score_threshold=prun.score_threshold, class_names=tuple(names),
        device=str(getattr(orig.detector, "device", "")),
        original=orig.stats(truths if scored else None), pruned=prun.stats(truths if scored else None),
        ground_truth=ground_truth.source if ground_truth is not None else None,
        agreement=Agreement(matched, orig.unmatched, prun.unmatched, float(np.mean(ious)) if ious else None),
        wall_seconds=time.perf_counter() - t_start, frames=tuple(frames))


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
