"""Playback of the Video tab: the source, the frame on screen and the comparison jobs behind them.

Why a controller of its own: Play, Step, Seek, Export and the automatic re-runs after a change of models,
classes or settings all compete for the one worker; `app.transport` decides which request runs, this
object starts and cancels the jobs, drops the frames of a cancelled one, and tells the view what to show
through its signals.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.dialogs import Dialogs
from app.project import ClassImageSpec
from app.state import Session
from app.transport import PlaybackRequest, Transport, Verdict, play_start, seek_index
from app.video_jobs import (ClassFeatureCache, VideoFrame, VideoInfo, VideoRun, export_job, probe_video,
                            side_title, video_job)
from app.worker import JobRunner
from core.data.video import CAMERA_PREFIX
from core.resources import sample_manifest, samples_dir

log = logging.getLogger(__name__)

REFRESH_DELAY_MS = 120  # changes within this time give one re-run of the shown frame


def demo_media() -> tuple[Path | None, list[ClassImageSpec], Path | None]:
    """The sample demo video, its class images and its per-frame ground truth (samples.json), when the
    samples are installed."""
    m = sample_manifest()
    if m is None:
        return None, [], None
    video = samples_dir() / m["demo_video"] if m.get("demo_video") else None
    specs = [ClassImageSpec(Path(c).stem, str((samples_dir() / c).resolve())) for c in m.get("demo_class_images", [])
             if (samples_dir() / c).is_file()]
    gt = samples_dir() / m["demo_ground_truth"] if m.get("demo_ground_truth") else None
    return ((video if video is not None and video.is_file() else None), specs,
            (gt if gt is not None and gt.is_file() else None))


class PlaybackController(QObject):
    """The Video tab's source, frame on screen and jobs. `class_specs` gives the class images the tab
    runs; automatic re-runs happen only while `visible()`."""

    opened = Signal()  # a new source: nothing on screen yet
    infoChanged = Signal()  # the source's size, length or rate became known
    frameShown = Signal(object)  # a VideoFrame to put on screen
    stateChanged = Signal()  # what may be started changed
    message = Signal(str)  # a line for the user
    exported = Signal(object)  # core.compare.CompareResult of a finished export

    def __init__(self, session: Session, runner: JobRunner, dialogs: Dialogs,
                 class_specs: Callable[[], list[ClassImageSpec]], visible: Callable[[], bool] = lambda: True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.dialogs = dialogs
        self.class_specs = class_specs
        self.visible = visible
        self.demo_video, self.demo_classes, self.demo_ground_truth = demo_media()
        self.spec: str | None = None  # the source: a video file, an image folder or camera:N
        self.info: VideoInfo | None = None
        self.frame: VideoFrame | None = None  # the frame on screen
        self.shown_names: list[str] = []  # class names and pane titles of the frame on screen (snapshot)
        self.shown_titles: tuple[str, str] = ("original", "pruned")
        self.last_export = None  # core.compare.CompareResult of the last export
        self.target_size = 0  # px, 0: the frame's own size
        self.realtime = False  # play skips frames to keep up with the video's rate
        self.features = ClassFeatureCache()  # class features reused by the next Step / Seek / Play
        self.transport = Transport()
        self._worker = None  # our running job
        self._job_meta: tuple[list[str], tuple[str, str]] = ([], ("original", "pruned"))
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self._refresh_now)
        session.modelChanged.connect(self.schedule_refresh)
        session.prunedModelChanged.connect(self.schedule_refresh)
        session.detectionSettingsChanged.connect(self.schedule_refresh)
        runner.busyChanged.connect(self._runner_busy)

    # -- state --------------------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self.transport.playing

    @property
    def exporting(self) -> bool:
        return self.transport.exporting

    @property
    def running(self) -> bool:
        """Our job holds the worker."""
        return self._worker is not None

    @property
    def position(self) -> int:
        """Index of the frame on screen (-1: none)."""
        return self.frame.index if self.frame is not None else -1

    @property
    def frame_count(self) -> int | None:
        return self.info.frame_count if self.info is not None else None

    @property
    def camera(self) -> bool:
        return self.spec is not None and self.spec.startswith(CAMERA_PREFIX)

    @property
    def showing_demo(self) -> bool:
        return self.demo_video is not None and self.spec == str(self.demo_video)

    def resolved_target_size(self) -> float | None:
        """The chosen size, else the frame's own (√(w·h)); None (the model's scale) before the size is known."""
        if self.target_size:
            return float(self.target_size)
        if self.info is not None and self.info.size[0] > 0:
            return float((self.info.size[0] * self.info.size[1]) ** 0.5)
        return None

    def set_target_size(self, px: int) -> None:
        self.target_size = int(px)
        self.schedule_refresh()

    # -- source -------------------------------------------------------------------------------------------
    def open(self, spec: str | os.PathLike, quiet: bool = False) -> bool:
        """Use `spec` (a video file, an image folder or camera:N) and, unless `quiet`, show its first frame.
        A file that cannot be opened gets core's message (logged only when `quiet`)."""
        spec = str(spec)
        info = None
        if not spec.startswith(CAMERA_PREFIX):
            try:
                info = probe_video(spec)
            except (ValueError, OSError) as e:  # core's VideoError: "<file>: <problem>"
                if quiet:
                    log.info("video source %s: %s", spec, e)
                else:
                    self.dialogs.error("Cannot open video", str(e))
                return False
        self.pause()
        self.spec, self.info, self.frame = spec, info, None
        self.opened.emit()
        if not quiet:
            self.request(PlaybackRequest.frame(0), quiet=True)
        self.stateChanged.emit()
        return True

    # -- transport ----------------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> bool:
        """Run both models over the frames after the one on screen (from the start at the end)."""
        if not self._ready(need_model=True):
            return False
        return self.request(PlaybackRequest.play(play_start(self.position, self.frame_count)))

    def pause(self) -> None:
        """Stop playing after the frame being processed; the frame on screen stays. (An export goes on:
        the status bar's Cancel stops it.)"""
        self.transport.pending = None
        if not self.exporting:
            self._stop()
        self.stateChanged.emit()

    def step(self) -> bool:
        """Pause, or (paused) run both models on the next frame."""
        if self.playing:
            self.pause()
            return True
        if not self._ready(need_model=False):
            return False
        start = self.position + 1
        if self.frame_count is not None and start >= self.frame_count:
            self.message.emit("Last frame: Seek back or Play from the start.")
            return False
        return self.request(PlaybackRequest.frame(start))

    def seek(self, index: int) -> bool:
        """Show frame `index` (while playing: go on playing from there)."""
        if not self._ready(need_model=False):
            return False
        if self.info is not None and not self.info.seekable:
            return False
        index = seek_index(index, self.frame_count)
        return self.request(PlaybackRequest.play(index) if self.playing else PlaybackRequest.frame(index))

    def ready_to_export(self) -> bool:
        """An export compares two models on a file or folder: False, with a message, when it cannot run."""
        if not self._ready(need_model=True):
            return False
        if self.session.pruned is None:
            self.dialogs.warning("No pruned model", "Exporting compares two models: prune one (Pruning tab) or "
                                                    "open one (File → Open pruned model…) first.")
            return False
        if self.camera:
            self.dialogs.warning("Cannot export a camera", "Export needs a video file or a folder of images.")
            return False
        return True

    def export(self, path: str | os.PathLike, frames: int) -> bool:
        """Write the comparison video of the first `frames` frames (0: all) to `path`, never over a file."""
        if Path(path).exists():
            self.dialogs.error("Cannot export", f"{path}: already exists; choose another name (an export never "
                                                "replaces a file)")
            return False
        return self.request(PlaybackRequest.export(path, frames))

    def _ready(self, need_model: bool) -> bool:
        if self.spec is None:
            self.dialogs.warning("No video", "Open a video file, a folder of images or a camera first.")
            return False
        if need_model and self.session.model is None:
            self.dialogs.warning("No model", "Open a model first (Model panel, or File → Open default model).")
            return False
        return True

    # -- jobs ---------------------------------------------------------------------------------------------
    def request(self, request: PlaybackRequest, quiet: bool = False) -> bool:
        """Start `request` now, or once our running job has stopped (it is cancelled); False when another
        job holds the worker (with a message unless `quiet`: then the frame is only marked stale)."""
        verdict = self.transport.submit(request, self.runner.busy)
        if verdict is Verdict.QUEUED:
            self._stop()
            self.stateChanged.emit()
            return True
        if verdict is Verdict.START:
            return self._start(request, quiet)
        if quiet:
            self.transport.stale = True
        elif verdict is Verdict.EXPORTING:  # never cancelled by a click on Play, Step or the slider
            self.dialogs.warning("Busy", "An export is running: wait for it, or cancel it in the status bar.")
        else:
            self.dialogs.warning("Busy", f"Wait for '{self.runner.current_name}' to finish, or cancel it.")
        return False

    def _stop(self) -> None:
        if self.transport.stop():
            self._worker.cancel()

    def _class_inputs(self) -> tuple[list, list[str]] | None:
        specs = self.class_specs()
        try:
            return [self.session.class_image_array(c) for c in specs], [c.name for c in specs]
        except ValueError as e:
            self.dialogs.error("Cannot read a class image", str(e))
            return None

    def _settings(self) -> dict:
        ds = self.session.detection_settings
        gt = self.demo_ground_truth if self.showing_demo else None
        return dict(target_size=self.resolved_target_size(), score_threshold=ds.score_threshold,
                    ground_truth=str(gt) if gt else None,
                    pruned_score_threshold=ds.pruned_score_threshold, nms_iou=ds.nms_iou_threshold,
                    max_detections=ds.max_shown,
                    runtimes={"original": ds.original_runtime, "pruned": ds.pruned_runtime})

    def _start(self, request: PlaybackRequest, quiet: bool = False) -> bool:
        s = self.session
        classes = self._class_inputs()
        if classes is None:
            return False
        images, names = classes
        if s.model is not None and not images:
            if quiet:  # an automatic re-run: no dialog, the panel says what is missing
                self.transport.stale = False
                self.message.emit("Add a class image to detect.")
            else:
                self.dialogs.warning("No class images", "Add a class image (Add…, or in the Detection tab) first.")
            return False
        callbacks = dict(on_result=self._job_done, on_error=self._job_failed, on_cancelled=self._job_cancelled)
        if request.kind == "export":
            worker = self.runner.start("Exporting video", export_job, self.spec, request.path, s.model, s.pruned,
                                       images, names, max_frames=request.frames or None, **self._settings(),
                                       **callbacks)
        else:
            mode = "live" if request.kind == "play" and self.realtime else "offline"
            if self.camera:  # a camera's errors are about the camera, not a frame
                name = f"Reading camera {self.spec[len(CAMERA_PREFIX):]}"
            else:
                name = "Playing video" if request.kind == "play" else f"Showing frame {request.start + 1}"
            worker = self.runner.start(name, video_job, self.spec, request.start, s.model, s.pruned, images, names,
                                       max_frames=request.frames, mode=mode, features=self.features,
                                       **self._settings(), on_report=self._on_report,
                                       stopped_as="paused" if request.kind == "play" else "skipped", **callbacks)
        if worker is None:
            return False
        self._worker = worker
        self.transport.started(request)
        self._job_meta = (names, (side_title("original", s.model), side_title("pruned", s.pruned)))
        if request.kind == "export":
            self.message.emit(f"Exporting to {Path(request.path).name}…")
        self.stateChanged.emit()
        return True

    def _job_done(self, result) -> None:
        running = self.transport.running
        if running is not None and running.kind == "export":
            self.last_export = result
            self.exported.emit(result)
        elif isinstance(result, VideoRun):
            if running is not None and running.kind == "play" and result.at_end and not self.transport.stopping:
                self.message.emit("End of the video.")
        self._finished()

    def _job_failed(self, _message: str) -> None:
        self.transport.pending = None  # the error dialog comes from the app's one error path for every job
        self._finished()

    def _job_cancelled(self) -> None:
        running = self.transport.running
        if running is not None and running.kind == "export" and self.transport.pending is None:
            self.message.emit("Export cancelled: nothing was written.")
        self._finished()

    def _finished(self) -> None:
        """Our job is over (the worker is idle again): start what was asked for meanwhile."""
        self._worker = None
        pending = self.transport.finished()
        if pending is not None:
            self.request(pending, quiet=True)
        self.stateChanged.emit()

    def _on_report(self, value: object) -> None:
        if self.transport.stopping:
            return  # a frame processed after Pause or Seek: the user asked for another one
        if isinstance(value, VideoInfo):
            if value.spec == self.spec:
                self.info = value
                self.infoChanged.emit()
        elif isinstance(value, VideoFrame):
            self.frame = value
            self.shown_names, self.shown_titles = self._job_meta
            self.frameShown.emit(value)

    # -- automatic re-runs --------------------------------------------------------------------------------
    # The first frame when the tab is shown, and the frame on screen again after a change of models,
    # classes or settings, are deferred and never compete for the worker: they run only while the tab is
    # visible and the worker is free (a job chained in another job's callback starts first), and are
    # retried when it becomes free. A camera is never opened unasked.
    def schedule_refresh(self) -> None:
        if self.spec is None:
            return
        if self.frame is None and not self.playing and self.camera:
            return
        self.transport.stale = True
        self._refresh_timer.start()

    def shown(self) -> None:
        """The tab became visible: catch up."""
        if self.frame is None:
            self.schedule_refresh()
        elif self.transport.stale:
            self._refresh_timer.start()

    def _refresh_now(self) -> None:
        if not self.transport.stale or self.spec is None or not self.visible():
            return  # a hidden tab runs nothing; it catches up when shown
        if self._worker is None and self.runner.busy:
            return  # someone else's job: retried when the worker is free
        request = self.transport.refresh(self.position, self.frame_count, self.camera)
        if request is not None:
            self.request(request, quiet=True)

    def _runner_busy(self, busy: bool) -> None:
        self.stateChanged.emit()
        if not busy and self.transport.stale and self.visible():
            self._refresh_timer.start()
