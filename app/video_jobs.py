"""The Video tab's jobs: stream original | pruned detections over a video, export the comparison video.

Both are thin layers over `core.compare` (the CLI's `os2d-studio compare` runs the same `compare_video`):

* `video_job` opens the source, reports its `VideoInfo`, seeks to the start frame and runs
  `core.compare.compare`; each processed frame is rendered here, in the worker, with core's
  `render_pane` (boxes, the dashed-magenta "only here" boxes, the FPS | latency line) and reported as a
  `VideoFrame`, so the GUI thread only puts two images on screen. Playing, stepping and seeking are
  this one job with different start frames and frame counts; pausing cancels it.
* `export_job` writes the side-by-side video with `core.compare.compare_video` into a private temporary
  folder and moves it into place only if the name is still free: an export never replaces a file.

No Qt here: the jobs run in the worker (`app.worker`) and in tests alike.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.compare import CompareResult, FrameResult, compare, compare_video
from core.data.video import CAMERA_PREFIX, FrameSource, VideoError, open_source
from core.detect import CachingDetector, ClassBankCache, Detections
from core.errors import InputError
from core.io import give_new_file_mode
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import LoadedModel
from core.visualize import render_pane, render_side_by_side

Report = Callable[[Any], None]
ClassImage = np.ndarray | str | os.PathLike


@dataclass(frozen=True)
class VideoInfo:
    """What the GUI needs to know about a source: its name, rate, length and whether it can seek."""

    spec: str  # what was opened: a path, a folder or camera:N
    name: str
    fps: float
    frame_count: int | None  # None: a camera (unknown length)
    size: tuple[int, int]  # (width, height)
    seekable: bool
    live: bool

    @classmethod
    def of(cls, spec: str, src: FrameSource) -> "VideoInfo":
        return cls(str(spec), src.name, float(src.fps), src.frame_count, tuple(src.size), bool(src.seekable),
                   bool(src.live))


def probe_video(spec: str | os.PathLike) -> VideoInfo:
    """Open and close a file or folder source without decoding a frame (a few ms): core's VideoError names
    the file and the problem (missing, empty, not a video). Cameras are opened by the jobs only."""
    s = str(spec)
    if s.startswith(CAMERA_PREFIX):
        raise ValueError(f"{s}: cameras are opened when playing, not probed")
    with open_source(s) as src:
        return VideoInfo.of(s, src)


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One frame as the Video tab shows it.

    `panes` are the rendered original and pruned panes (RGB uint8); the pruned one is None when there is
    no pruned model. `result` is core's FrameResult (None when no model ran: a plain preview frame);
    `compared` tells whether both models ran (else only the original, and nothing is "only here").
    """

    index: int
    timestamp: float
    image: np.ndarray
    panes: tuple[np.ndarray, np.ndarray | None]
    result: FrameResult | None = None
    compared: bool = False


@dataclass(frozen=True)
class VideoRun:
    """How a `video_job` ended: the frames it processed and whether the source ran out."""

    info: VideoInfo
    start: int
    last_index: int  # the last frame reported (start - 1 if none)
    at_end: bool  # the source has no frame after `last_index`
    result: CompareResult | None = None


class _NoModel:
    """Stands in for a missing pruned model in `core.compare.compare`: finds nothing and takes no time, so
    the original plays alone at its own speed (its panes are drawn without "only here" marks)."""

    name = "(no pruned model)"

    def prepare_classes(self, class_images: Sequence[ClassImage], names: Sequence[str] | None = None) -> None:
        return None

    def detect(self, rgb: np.ndarray, bank: Any, **_kwargs: Any) -> Detections:
        h, w = rgb.shape[:2]
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), None, (w, h),
                          0.0)


class ClassFeatureCache(ClassBankCache):
    """Core's class-feature cache, and detectors that use it on any runtime (exported on first use)."""

    def detector(self, loaded: LoadedModel, device: str | None = None, target_size: float | None = None, *,
                 runtime: str = "torch:fp32", role: str = "", progress: Progress = no_progress,
                 cancel: CancelToken | None = None) -> CachingDetector:
        """A detector of `loaded` on `runtime` ("backend:precision"; exported on first use)."""
        from app.jobs import open_detector

        size = target_size or loaded.scale()
        det = open_detector(loaded.model, device, target_size=size, runtime=runtime, role=role,
                            detector_cls=CachingDetector, cache=self, progress=progress, cancel=cancel)
        det.name = Path(loaded.path).name if loaded.path else ""
        return det


def render_frame(frame: FrameResult, names: Sequence[str], compared: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The two panes of a processed frame (core's rendering; no titles and no FPS footer: the GUI's panes
    have a title above and the numbers below)."""
    if not compared:
        return render_pane(frame.image, frame.original, names, footer=False), None
    return (render_pane(frame.image, frame.original, names, footer=False),
            render_pane(frame.image, frame.pruned, names, footer=False))


def model_label(loaded: LoadedModel) -> str:
    """'default.pt (4.4M params)'."""
    name = Path(loaded.path).name if loaded.path else "in memory"
    params = loaded.model.num_parameters() if hasattr(loaded.model, "num_parameters") else 0
    return f"{name} ({params / 1e6:.1f}M params)" if params else name


def side_title(side: str, loaded: LoadedModel | None) -> str:
    """'original: default.pt (4.4M params)', as compare_video titles the panes of an exported video."""
    return side if loaded is None else f"{side}: {model_label(loaded)}"


def snapshot_image(frame: VideoFrame, names: Sequence[str], titles: tuple[str, str]) -> np.ndarray:
    """The side-by-side image of a shown frame, titled as in an exported video (one pane without a pruned
    model; the plain frame when no model ran)."""
    fr = frame.result
    if fr is None:
        return np.ascontiguousarray(frame.image)
    if not frame.compared:
        return render_pane(frame.image, fr.original, names, title=titles[0])
    return render_side_by_side(frame.image, fr.original, fr.pruned, names, titles=titles)


def video_job(spec: str, start: int, original: LoadedModel | None, pruned: LoadedModel | None,
              class_images: Sequence[ClassImage], class_names: Sequence[str], *, max_frames: int | None = None,
              mode: str = "offline", target_size: float | None = None, score_threshold: float = 0.5,
              nms_iou: float = 0.3, max_detections: int = 50, device: str | None = None,
              pruned_score_threshold: float | None = None, ground_truth: str | None = None,
              features: ClassFeatureCache | None = None, runtimes: dict[str, str] | None = None,
              progress: Progress = no_progress, cancel: CancelToken | None = None,
              report: Report | None = None) -> VideoRun:
    """Run the original and the pruned model over the frames of `spec` from frame `start` (at most
    `max_frames`), reporting a `VideoInfo` first and then one `VideoFrame` per processed frame.

    Without a pruned model the original runs alone; without any model the frames are only decoded
    (a preview). Cancelled through `cancel` (pausing); source errors are core's `VideoError`. With
    `features`, class features computed by an earlier job for the same models and images are reused.
    `runtimes` (side -> "backend:precision") picks what runs each side; PyTorch fp32 when absent.
    """
    cancel = cancel or CancelToken()
    report = report or (lambda _v: None)
    runtimes = dict(runtimes or {})
    src = open_source(spec)
    try:
        info = VideoInfo.of(spec, src)
        report(info)
        if start > 0 and src.seekable:
            src.seek(start)
        first = src.position
        last = first - 1
        if original is None:  # no model yet: show the frames as they are
            for _ in range(max_frames or 1):
                cancel.raise_if_cancelled()
                f = src.read()
                if f is None:
                    break
                report(VideoFrame(f.index, f.timestamp, f.rgb, (f.rgb, f.rgb if pruned is not None else None)))
                last = f.index
            if last < first:
                raise VideoError(src.name, f"no frame at {first}")
            return VideoRun(info, first, last, _at_end(src))

        compared = pruned is not None
        names = list(class_names)

        def on_frame(fr: FrameResult) -> None:
            nonlocal last
            if not compared:  # nothing to disagree with: no box is "only here"
                o = fr.original
                fr = replace(fr, original=replace(o, only_here=np.zeros(len(o.detections), bool)), matched=0,
                             mean_iou=None)
            report(VideoFrame(fr.index, fr.timestamp, fr.image, render_frame(fr, names, compared), fr, compared))
            last = fr.index

        def single(done: int, total: int, message: str = "") -> None:
            progress(done, total, message.split(" | ")[0])  # the stand-in's "0 ms" says nothing

        size = target_size or None
        on_runtime = any(runtimes.get(side, "torch:fp32") != "torch:fp32"
                         for side in (("original", "pruned") if compared else ("original",)))
        if features is not None or on_runtime:  # the same target size for both sides: the original's
            size = size or original.scale()
            cache = features or ClassFeatureCache()
            original = cache.detector(original, device, size, runtime=runtimes.get("original", "torch:fp32"),
                                      role="original", progress=progress, cancel=cancel)
            pruned = cache.detector(pruned, device, size, runtime=runtimes.get("pruned", "torch:fp32"),
                                    role="pruned", progress=progress, cancel=cancel) if compared else None
        res = compare(original, pruned if compared else _NoModel(), list(class_images), src,
                      target_size=size, score_threshold=score_threshold, nms_iou=nms_iou,
                      pruned_score_threshold=pruned_score_threshold, ground_truth=_ground_truth(ground_truth),
                      max_detections=max_detections, mode=mode, device=device, class_names=names,
                      max_frames=max_frames, progress=progress if compared else single, cancel=cancel,
                      on_frame=on_frame)
        return VideoRun(info, first, last, _at_end(src), res)
    finally:
        src.close()


def _ground_truth(path: str | None):
    """The video's per-frame ground truth (read in the job, never on the GUI thread), or None."""
    from core.data.video_gt import load_video_ground_truth

    return load_video_ground_truth(path) if path else None


def _at_end(src: FrameSource) -> bool:
    return src.frame_count is not None and src.position >= src.frame_count


def _place_new(src: Path, dst: Path) -> None:
    """Move `src` to `dst` only if `dst` does not exist (a hard link is atomic and never replaces)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise InputError(dst, "already exists; choose another name (never replaced)") from None
    except OSError:  # no hard links on this file system: check, then rename
        if dst.exists():
            raise InputError(dst, "already exists; choose another name (never replaced)") from None
        os.replace(src, dst)
    else:
        src.unlink()


def save_snapshot(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an RGB image (format from the suffix, PNG by default) without ever replacing a file."""
    import cv2

    path = Path(path)
    suffix = path.suffix.lower() or ".png"
    ok, buf = cv2.imencode(suffix, cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(path, f"cannot encode an image with suffix '{suffix}'")
    if path.exists():
        raise InputError(path, "already exists; snapshots never replace a file, choose another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
            f.flush()
            os.fsync(f.fileno())
        give_new_file_mode(tmp, path)
        _place_new(Path(tmp), path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def export_job(spec: str, out: str | os.PathLike, original: LoadedModel, pruned: LoadedModel,
               class_images: Sequence[ClassImage], class_names: Sequence[str], *, max_frames: int | None = None,
               target_size: float | None = None, score_threshold: float = 0.5, nms_iou: float = 0.3,
               max_detections: int = 50, device: str | None = None, pruned_score_threshold: float | None = None,
               ground_truth: str | None = None, runtimes: dict[str, str] | None = None,
               progress: Progress = no_progress, cancel: CancelToken | None = None) -> CompareResult:
    """Write the side-by-side comparison video of every frame (offline mode; the first `max_frames` when
    given) to `out`, as `os2d-studio compare --out` does. The suffix may change to .avi when this OpenCV
    has no mp4 encoder (`result.out_video` is where it went). Never replaces an existing file."""
    out = Path(out)
    if out.exists():
        raise InputError(out, "already exists; exports never replace a file, choose another name")
    if not str(spec).startswith(CAMERA_PREFIX) and Path(spec).resolve() == out.resolve():
        raise InputError(out, "is the input video; choose another name")
    out.parent.mkdir(parents=True, exist_ok=True)
    runtimes = dict(runtimes or {})
    if any(rt != "torch:fp32" for rt in runtimes.values()):
        from app.jobs import open_detector

        size = target_size or original.scale()
        sides = {}
        for role, loaded in (("original", original), ("pruned", pruned)):
            det = open_detector(loaded.model, device, target_size=size, runtime=runtimes.get(role, "torch:fp32"),
                                role=role, progress=progress, cancel=cancel)
            det.name = Path(loaded.path).name if loaded.path else ""
            sides[role] = det
        original, pruned, target_size = sides["original"], sides["pruned"], size
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.stem}.export-", dir=out.parent))
    try:
        res = compare_video(original, pruned, list(class_images), spec, out_video=tmp / out.name,
                            class_names=list(class_names), mode="offline", max_frames=max_frames or None,
                            target_size=target_size or None, score_threshold=score_threshold, nms_iou=nms_iou,
                            pruned_score_threshold=pruned_score_threshold, ground_truth=_ground_truth(ground_truth),
                            max_detections=max_detections, device=device, progress=progress, cancel=cancel)
        written = Path(res.out_video)
        final = out.with_suffix(written.suffix)
        _place_new(written, final)
        return replace(res, out_video=str(final))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
