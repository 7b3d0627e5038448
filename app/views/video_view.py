"""The "Video" tab: the original and the pruned model side by side on the same frames of a video, a folder
of images or a camera, with per-side FPS and latency, and the boxes only one side found highlighted.

How it runs: every frame goes through `app.video_jobs.video_job` in the one worker (the same
`core.compare.compare` as `os2d-studio compare`); the job renders both panes and reports them frame by
frame, and this view only puts them on screen. Play is that job over the rest of the video, Step and Seek
are the same job over one frame; Pause cancels the running job, and Seek while playing cancels it and
starts again from the chosen frame. Export writes the comparison video with `core.compare.compare_video`
(also in the worker, never over an existing file); Snapshot saves the shown frame side by side.

Class images are the sample video's classes (`resources/samples/samples.json`), so the tab works out of
the box, unless "Use the Detection tab's class images" is on (a project setting); the Detection tab's
images never change what the video shows without that switch. Without a pruned model the original plays
alone and the right pane says how to get one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from app.controller import AppController
from app.dialogs import PNG_FILTER, VIDEO_FILTER, VIDEO_OUT_FILTER
from app.state import RUNTIME_LABELS, ClassImageSpec, Session
from app.video_jobs import (ClassFeatureCache, VideoFrame, VideoInfo, VideoRun, export_job, probe_video,
                            save_snapshot, side_title, snapshot_image, video_job)
from app.views.class_images import ClassImageList
from app.views.detection_settings import DetectionSettingsBox
from app.views.image_pane import ImagePane, PaneArea
from app.views.pruned_banner import PrunedBanner
from core.visualize import ONLY_COLOR
from core.data.video import CAMERA_PREFIX
from app.folders import save_folder
from core.resources import resources_dir, sample_manifest, samples_dir

log = logging.getLogger(__name__)

REFRESH_DELAY_MS = 120  # settings changes within this time give one re-run of the shown frame
NO_PRUNED_HINT = ("No pruned model.\n\nPrune one in the Pruning tab, or File → Open pruned model…, to compare it "
                  "here with the original. Until then the original plays alone on the left.")
ONLY_HEX = "#{:02x}{:02x}{:02x}".format(*ONLY_COLOR)


def fps_text(fps: float) -> str:
    """'12.3 FPS', or two decimals below 1 FPS (a slow CPU should not read as 0.0)."""
    return f"{fps:.1f} FPS" if fps >= 1 else f"{fps:.2f} FPS"


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


class VideoView(QWidget):
    def __init__(self, session: Session, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.controller = controller
        self.runner = controller.runner
        self.dialogs = controller.dialogs
        self.spec: str | None = None  # the source: a video file, an image folder or camera:N
        self.info: VideoInfo | None = None
        self.frame: VideoFrame | None = None  # the frame on screen
        self.shown_names: list[str] = []  # class names and pane titles of the frame on screen (snapshot)
        self.shown_titles: tuple[str, str] = ("original", "pruned")
        self.last_run: VideoRun | None = None
        self.last_export = None  # core.compare.CompareResult of the last export
        self._worker = None  # our running job
        self._kind = ""  # "play", "frame" or "export"
        self._job_meta: tuple[list[str], tuple[str, str]] = ([], ("original", "pruned"))
        self._pending: tuple | None = None  # the request to start once our running job has stopped
        self._stopping = False  # cancel requested: frames still coming from that job are dropped
        self._stale = False  # the shown frame no longer matches the models or settings
        self._syncing = False
        self.features = ClassFeatureCache()  # class features reused by the next Step / Seek / Play
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self._refresh_now)
        demo_video, demo_classes, demo_gt = demo_media()
        self.demo_video = demo_video
        self.demo_ground_truth = demo_gt

        # -- source
        self.source_label = QLabel("no video")
        self.source_label.setWordWrap(True)
        self.open_button = QPushButton("Open video…")
        self.folder_button = QPushButton("Image folder…")
        self.demo_button = QPushButton("Sample video")
        self.demo_button.setToolTip(str(demo_video) if demo_video else "the sample media are not installed")
        self.demo_button.setEnabled(demo_video is not None)
        self.camera_index = QSpinBox()
        self.camera_index.setRange(0, 63)
        self.camera_index.setPrefix("camera ")
        self.camera_button = QPushButton("Open camera")
        source_box = QGroupBox("Video")
        sl = QVBoxLayout(source_box)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.folder_button)
        sl.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.camera_index)
        row.addWidget(self.camera_button)
        sl.addLayout(row)
        sl.addWidget(self.demo_button)
        sl.addWidget(self.source_label)

        # -- class images: the sample video's, or (switch) the Detection tab's
        self.classes = ClassImageList(session, self.dialogs, self._folder, "Class images")
        self.classes.set_defaults(demo_classes)
        self.classes.set_use_session(session.detection_settings.video_uses_detection_classes)
        self.share_classes = QCheckBox("Use the Detection tab's class images")
        self.share_classes.setToolTip("Off: the sample video's classes. On: the class images of the Detection tab "
                                      "(add, crop and remove them there or here)")
        self.share_classes.setChecked(session.detection_settings.video_uses_detection_classes)
        self.classes.layout().insertWidget(0, self.share_classes)
        self.classes_note = QLabel()
        self.classes_note.setWordWrap(True)
        self.classes_note.setStyleSheet("color: palette(mid);")
        self.classes.layout().addWidget(self.classes_note)

        # -- settings (score and NMS are the session's, shared with the Detection tab)
        settings_box = self.settings = DetectionSettingsBox(session)
        self.score_slider, self.nms_slider = settings_box.score_slider, settings_box.nms_slider
        self.target_size = QSpinBox()
        self.target_size.setRange(0, 4096)
        self.target_size.setSingleStep(32)
        self.target_size.setSpecialValueText("frame's own")
        self.target_size.setSuffix(" px")
        self.target_size.setToolTip("Frames are resized so that h·w ≈ size² (smaller is faster); \"frame's own\" "
                                    "runs them at their own size, as the sample video is made for (its products "
                                    "appear at the size the model was trained on)")
        self.realtime = QCheckBox("Real time (skip frames to keep up)")
        self.realtime.setToolTip("Play at the video's frame rate, skipping the frames that arrive while the models "
                                 "run; off: every frame is processed (slower than real time on a CPU)")
        settings_box.form.addRow("Target size", self.target_size)
        settings_box.form.addRow(self.realtime)

        # -- export
        self.export_frames = QSpinBox()
        self.export_frames.setRange(0, 10_000_000)
        self.export_frames.setSpecialValueText("all frames")
        self.export_frames.setToolTip("Frames to export from the start of the video (every frame is processed)")
        self.export_button = QPushButton("Export video…")
        self.export_button.setToolTip("Write the side-by-side comparison video (as `os2d-studio compare --out`)")
        self.snapshot_button = QPushButton("Snapshot…")
        self.snapshot_button.setToolTip("Save the frame on screen, side by side, as a PNG")
        export_box = QGroupBox("Export")
        el = QFormLayout(export_box)
        el.addRow("Frames", self.export_frames)
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addWidget(self.snapshot_button)
        el.addRow(row)

        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.info_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        controls = QWidget()
        controls.setFixedWidth(300)
        c = QVBoxLayout(controls)
        c.setContentsMargins(0, 0, 0, 0)
        c.addWidget(source_box)
        c.addWidget(self.classes, 1)
        c.addWidget(settings_box)
        c.addWidget(export_box)
        c.addWidget(self.info_label)

        # -- the two panes, per-side numbers, transport
        self.panes = {"original": ImagePane("Original", "Open a video, then Play."),
                      "pruned": ImagePane("Pruned", NO_PRUNED_HINT)}
        self.panes["pruned"].link(self.panes["original"])  # zoom and pan together
        self.pane_area = PaneArea(list(self.panes.values()))
        self.side_labels = {"original": QLabel(), "pruned": QLabel()}
        for lab in self.side_labels.values():
            lab.setTextFormat(Qt.TextFormat.RichText)
            lab.setWordWrap(True)
            lab.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the window
        self.agreement_label = QLabel()
        self.agreement_label.setTextFormat(Qt.TextFormat.RichText)
        self.agreement_label.setWordWrap(True)
        self.agreement_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        stats = QHBoxLayout()
        stats.addWidget(self.side_labels["original"], 1)
        stats.addWidget(self.side_labels["pruned"], 1)

        self.play_button = QPushButton("Play")
        self.play_button.setMinimumWidth(80)
        self.play_button.setStyleSheet("font-weight: bold;")
        self.step_button = QPushButton("Step ▸")
        self.step_button.setToolTip("Run both models on the next frame")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setTracking(False)  # seek where the drag ends, not on every pixel
        self.frame_label = QLabel("–")
        self.frame_label.setMinimumWidth(130)
        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addWidget(self.step_button)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.frame_label)

        self.banner = PrunedBanner(session)
        right = QVBoxLayout()
        right.addWidget(self.banner)
        right.addWidget(self.pane_area, 1)
        right.addLayout(stats)
        right.addWidget(self.agreement_label)
        right.addLayout(transport)
        lay = QHBoxLayout(self)
        lay.addWidget(controls)
        lay.addLayout(right, 1)

        # -- wiring
        self.open_button.clicked.connect(self.choose_video)
        self.folder_button.clicked.connect(self.choose_folder)
        self.demo_button.clicked.connect(lambda: self.open_video(self.demo_video) if self.demo_video else None)
        self.camera_button.clicked.connect(self.open_camera)
        self.play_button.clicked.connect(self.toggle_play)
        self.step_button.clicked.connect(self.step)
        self.slider.valueChanged.connect(self._slider_moved)
        self.export_button.clicked.connect(lambda: self.export_video())
        self.snapshot_button.clicked.connect(lambda: self.snapshot())
        self.target_size.valueChanged.connect(lambda _v: self._schedule_refresh())
        session.modelChanged.connect(self._models_changed)
        session.prunedModelChanged.connect(self._models_changed)
        session.classImagesChanged.connect(self._classes_changed)
        self.share_classes.toggled.connect(
            lambda on: session.set_detection_settings(video_uses_detection_classes=bool(on)))
        session.detectionSettingsChanged.connect(self._sharing_changed)
        settings_box.shown.connect(self._schedule_refresh)
        settings_box.shown.connect(self._show_titles)
        self.runner.busyChanged.connect(self._runner_busy)

        if demo_video is not None:
            self._set_source(str(demo_video), quiet=True)
        self._models_changed()
        self._classes_changed()

    # -- properties ---------------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        """Playing, or about to play again (a seek while playing restarts the stream)."""
        if self._pending is not None:
            return self._pending[0] == "play"
        return self._worker is not None and self._kind == "play" and not self._stopping

    @property
    def exporting(self) -> bool:
        return self._worker is not None and self._kind == "export"

    @property
    def position(self) -> int:
        """Index of the frame on screen (-1: none)."""
        return self.frame.index if self.frame is not None else -1

    @property
    def frame_count(self) -> int | None:
        return self.info.frame_count if self.info is not None else None

    # -- sources ------------------------------------------------------------------------------------------
    def _folder(self) -> str:
        if self.spec and not self.spec.startswith(CAMERA_PREFIX):
            p = Path(self.spec)
            return str(p if p.is_dir() else p.parent)
        return str(samples_dir()) if samples_dir().is_dir() else ""

    def choose_video(self) -> bool:
        path = self.dialogs.open_file("Open video", VIDEO_FILTER, self._folder())
        return self.open_video(path) if path else False

    def choose_folder(self) -> bool:
        path = self.dialogs.open_folder("Open a folder of frames (images, in name order)", self._folder())
        return self.open_video(path) if path else False

    def open_camera(self) -> bool:
        return self.open_video(f"{CAMERA_PREFIX}{self.camera_index.value()}")

    def open_video(self, spec: str | os.PathLike) -> bool:
        """Use `spec` (a video file, an image folder or camera:N) and show its first frame (through the worker,
        with both models when they are loaded). A file that cannot be opened gets core's message."""
        return self._set_source(str(spec), quiet=False)

    def _set_source(self, spec: str, quiet: bool) -> bool:
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
        self.spec = spec
        self.info = info
        self.frame = None
        self.last_run = None
        for pane in self.panes.values():
            pane.set_image(None)
        self._show_source()
        self._show_numbers()
        if not quiet:
            self._request(("frame", 0, 1), quiet=True)
        self._update_enabled()
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
        start = self.position + 1
        if self.frame_count is not None and start >= self.frame_count:
            start = 0
        return self._request(("play", start, None))

    def pause(self) -> None:
        """Stop playing after the frame being processed; the frame on screen stays. (An export goes on:
        the status bar's Cancel stops it.)"""
        self._pending = None
        if not self.exporting:
            self._stop()
        self._update_enabled()

    def step(self) -> bool:
        """Pause, or (paused) run both models on the next frame."""
        if self.playing:
            self.pause()
            return True
        if not self._ready(need_model=False):
            return False
        start = self.position + 1
        if self.frame_count is not None and start >= self.frame_count:
            self.info_label.setText("Last frame: Seek back or Play from the start.")
            return False
        return self._request(("frame", start, 1))

    def seek(self, index: int) -> bool:
        """Show frame `index` (while playing: go on playing from there)."""
        if not self._ready(need_model=False):
            return False
        if self.info is not None and not self.info.seekable:
            return False
        n = self.frame_count
        index = max(0, min(int(index), (n - 1) if n else int(index)))
        if self.playing:
            return self._request(("play", index, None))
        return self._request(("frame", index, 1))

    def _slider_moved(self, value: int) -> None:
        if not self._syncing:
            self.seek(value)

    def _ready(self, need_model: bool) -> bool:
        if self.spec is None:
            self.dialogs.warning("No video", "Open a video file, a folder of images or a camera first.")
            return False
        if need_model and self.session.model is None:
            self.dialogs.warning("No model", "Open a model first (Model panel, or File → Open default model).")
            return False
        return True

    # -- jobs ---------------------------------------------------------------------------------------------
    def _request(self, request: tuple, quiet: bool = False) -> bool:
        """Start `request` now, or once our running job has stopped (it is cancelled); False when another
        job holds the worker (with a message unless `quiet`: then the frame is only marked stale)."""
        if self.exporting:  # never cancelled by a click on Play, Step or the slider
            if quiet:
                self._stale = True
            else:
                self.dialogs.warning("Busy", "An export is running: wait for it, or cancel it in the status bar.")
            return False
        if self._worker is not None:
            self._pending = request
            self._stop()
            self._update_enabled()
            return True
        if self.runner.busy:
            if quiet:
                self._stale = True
            else:
                self.dialogs.warning("Busy", f"Wait for '{self.runner.current_name}' to finish, or cancel it.")
            return False
        return self._start(request, quiet)

    def _stop(self) -> None:
        if self._worker is not None and not self._stopping:
            self._stopping = True
            self._worker.cancel()

    def _class_inputs(self) -> tuple[list, list[str]] | None:
        s = self.session
        specs = self.classes.active()
        try:
            return [s.class_image_array(c) for c in specs], [c.name for c in specs]
        except ValueError as e:
            self.dialogs.error("Cannot read a class image", str(e))
            return None

    @property
    def showing_demo(self) -> bool:
        return self.demo_video is not None and self.spec == str(self.demo_video)

    def resolved_target_size(self) -> float | None:
        """The box's size, else the frame's own (√(w·h)); None (the model's scale) before the size is known."""
        if self.target_size.value():
            return float(self.target_size.value())
        if self.info is not None and self.info.size[0] > 0:
            return float((self.info.size[0] * self.info.size[1]) ** 0.5)
        return None

    def _settings(self) -> dict:
        ds = self.session.detection_settings
        return dict(target_size=self.resolved_target_size(), score_threshold=ds.score_threshold,
                    ground_truth=str(self.demo_ground_truth) if self.showing_demo and self.demo_ground_truth else None,
                    pruned_score_threshold=ds.pruned_score_threshold, nms_iou=ds.nms_iou_threshold,
                    max_detections=ds.max_shown,
                    runtimes={"original": ds.original_runtime, "pruned": ds.pruned_runtime})

    def _start(self, request: tuple, quiet: bool = False) -> bool:
        kind = request[0]
        s = self.session
        classes = self._class_inputs()
        if classes is None:
            return False
        images, names = classes
        if s.model is not None and not images:
            if quiet:  # an automatic re-run: no dialog, the panel says what is missing
                self._stale = False
                self.info_label.setText("Add a class image to detect.")
            else:
                self.dialogs.warning("No class images", "Add a class image (Add…, or in the Detection tab) first.")
            return False
        callbacks = dict(on_result=self._job_done, on_error=self._job_failed, on_cancelled=self._job_cancelled)
        if kind == "export":
            _, path, frames = request
            worker = self.runner.start("Exporting video", export_job, self.spec, path, s.model, s.pruned, images,
                                       names, max_frames=frames or None, **self._settings(), **callbacks)
        else:
            _, start, frames = request
            mode = "live" if kind == "play" and self.realtime.isChecked() else "offline"
            if self.spec.startswith(CAMERA_PREFIX):  # a camera's errors are about the camera, not a frame
                name = f"Reading camera {self.spec[len(CAMERA_PREFIX):]}"
            else:
                name = "Playing video" if kind == "play" else f"Showing frame {start + 1}"
            worker = self.runner.start(name, video_job, self.spec, start, s.model, s.pruned, images, names,
                                       max_frames=frames, mode=mode, features=self.features, **self._settings(),
                                       on_report=self._on_report, **callbacks)
        if worker is None:
            return False
        self._worker, self._kind, self._stopping, self._stale = worker, kind, False, False
        self._job_meta = (names, (side_title("original", s.model), side_title("pruned", s.pruned)))
        if kind == "export":
            self.info_label.setText(f"Exporting to {Path(request[1]).name}…")
        self._update_enabled()
        return True

    def _job_done(self, result) -> None:
        kind = self._kind
        if kind == "export":
            self.last_export = result
            self.info_label.setText(self._export_text(result))
        elif isinstance(result, VideoRun):
            self.last_run = result
            if kind == "play" and result.at_end and not self._stopping:
                self.info_label.setText("End of the video.")
        self._finished()

    def _job_failed(self, _message: str) -> None:
        self._pending = None  # the error dialog comes from the controller (one error path for every job)
        self._finished()

    def _job_cancelled(self) -> None:
        if self._kind == "export" and self._pending is None:
            self.info_label.setText("Export cancelled: nothing was written.")
        self._finished()

    def _finished(self) -> None:
        """Our job is over (the worker is idle again): start what was asked for meanwhile."""
        self._worker, self._kind, self._stopping = None, "", False
        pending, self._pending = self._pending, None
        if pending is not None:
            self._request(pending, quiet=True)
        self._update_enabled()

    def _on_report(self, value: object) -> None:
        if self._stopping:
            return  # a frame processed after Pause or Seek: the user asked for another one
        if isinstance(value, VideoInfo):
            if value.spec == self.spec:
                self.info = value
                self._show_source()
        elif isinstance(value, VideoFrame):
            self._show_frame(value)

    # -- export and snapshot ------------------------------------------------------------------------------
    def _suggest(self, suffix: str, what: str) -> str:
        from app.workbench import unique_path

        stem = Path(self.spec).stem if self.spec and not self.spec.startswith(CAMERA_PREFIX) else "camera"
        folder = Path(self._folder()) if self._folder() else save_folder("videos")
        if not os.access(folder, os.W_OK) or folder.resolve().is_relative_to(resources_dir().resolve()):
            folder = save_folder("videos")  # never into the installed app's samples
        return str(unique_path(folder / f"{stem}-{what}{suffix}"))

    def export_video(self, path: str | os.PathLike | None = None, frames: int | None = None) -> bool:
        """Write the comparison video (`frames` from the start, 0/None: all; the Frames box when not given)
        to `path` (asked when None; an existing file is refused)."""
        s = self.session
        if not self._ready(need_model=True):
            return False
        if s.pruned is None:
            self.dialogs.warning("No pruned model", "Exporting compares two models: prune one (Pruning tab) or "
                                                    "open one (File → Open pruned model…) first.")
            return False
        if self.spec.startswith(CAMERA_PREFIX):
            self.dialogs.warning("Cannot export a camera", "Export needs a video file or a folder of images.")
            return False
        if path is None:
            path = self.dialogs.save_file("Export comparison video", VIDEO_OUT_FILTER, self._suggest(".mp4", "compare"))
            if not path:
                return False
            if not Path(path).suffix:
                path = f"{path}.mp4"
        if Path(path).exists():
            self.dialogs.error("Cannot export", f"{path}: already exists; choose another name (an export never "
                                                "replaces a file)")
            return False
        frames = self.export_frames.value() if frames is None else int(frames)
        return self._request(("export", str(path), frames))

    def snapshot(self, path: str | os.PathLike | None = None) -> Path | None:
        """Save the frame on screen side by side (titled, as in an exported video) as a PNG."""
        if self.frame is None:
            self.dialogs.warning("No frame", "Play, Step or Seek to a frame first.")
            return None
        if path is None:
            path = self.dialogs.save_file("Save snapshot", PNG_FILTER,
                                          self._suggest(".png", f"frame{self.frame.index:05d}"))
            if not path:
                return None
            if not Path(path).suffix:
                path = f"{path}.png"
        try:
            out = save_snapshot(path, snapshot_image(self.frame, self.shown_names, self.shown_titles))
        except (ValueError, OSError) as e:
            self.dialogs.error("Cannot save snapshot", str(e))
            return None
        self.info_label.setText(f"Saved {out}")
        return out

    # -- session -> widgets -------------------------------------------------------------------------------
    def _models_changed(self) -> None:
        s = self.session
        self._show_titles()
        if s.pruned is None and self.frame is not None:
            self.panes["pruned"].set_image(None)
        self.panes["pruned"].hint.setText(NO_PRUNED_HINT if s.pruned is None else "Press Play or Step.")
        self._show_source()
        self._update_enabled()
        self._schedule_refresh()

    def _show_titles(self) -> None:
        """Each pane names its model and the runtime it runs on ("Pruned: x.pt (2.1M params) · OpenVINO int8")."""
        s = self.session
        ds = s.detection_settings
        for side, loaded, none in (("original", s.model, "Original (no model)"), ("pruned", s.pruned, "Pruned (none)")):
            text = f"{side_title(side.capitalize(), loaded)} · {RUNTIME_LABELS[ds.runtime_field_value(side)]}" \
                if loaded else none
            self.panes[side].title.setText(text)

    def _sharing_changed(self) -> None:
        on = self.session.detection_settings.video_uses_detection_classes
        if on != self.classes.use_session:
            self.share_classes.setChecked(on)
            self.classes.set_use_session(on)
            self._classes_changed(force=True)

    def _classes_changed(self, force: bool = False) -> None:
        """The Detection tab's list changed (or the switch): re-run only when this tab uses that list."""
        if not self.classes.use_session:
            self.classes_note.setText("The sample video's classes.")
        elif self.classes.showing_defaults:
            self.classes_note.setText("The Detection tab has no class images: the sample video's classes are used.")
        else:
            self.classes_note.setText("")
        self.classes_note.setVisible(self.classes.showing_defaults)
        self._update_enabled()
        if force or self.classes.use_session or self.frame is None:
            self._schedule_refresh()

    # Automatic runs (the first frame when the tab is shown, the frame on screen again after a change of
    # models, classes or settings) are deferred and never compete for the worker: they run only while the
    # tab is visible and the worker is free (a job chained in another job's callback starts first), and
    # are retried when it becomes free. A camera is never opened unasked.
    def _schedule_refresh(self) -> None:
        if self.spec is None:
            return
        if self.frame is None and not self.playing and self.spec.startswith(CAMERA_PREFIX):
            return
        self._stale = True
        self._refresh_timer.start()

    def _refresh_now(self) -> None:
        if not self._stale or self.spec is None or not self.isVisible():
            return  # a hidden tab runs nothing; it catches up when shown
        if self._worker is None and self.runner.busy:
            return  # someone else's job: retried when the worker is free
        if self.playing:
            start = self.position + 1
            if self.frame_count is None or start < self.frame_count:
                self._request(("play", start, None), quiet=True)
        elif self.frame is not None:
            self._request(("frame", self.frame.index, 1), quiet=True)
        elif not self.spec.startswith(CAMERA_PREFIX):
            self._request(("frame", 0, 1), quiet=True)  # the first frame, so the tab is not empty
        else:
            self._stale = False

    def _runner_busy(self, busy: bool) -> None:
        self._update_enabled()
        if not busy and self._stale and self.isVisible():
            self._refresh_timer.start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.frame is None:
            self._schedule_refresh()
        elif self._stale:
            self._refresh_timer.start()

    def _show_source(self) -> None:
        if self.spec is None:
            self.source_label.setText("no video")
            return
        name = self.spec if self.spec.startswith(CAMERA_PREFIX) else Path(self.spec).name
        if self.demo_video is not None and self.spec == str(self.demo_video):
            name += " (sample)"
        i = self.info
        if i is not None:
            count = f"{i.frame_count} frames" if i.frame_count else "live"
            self.source_label.setText(f"<b>{name}</b><br>{i.size[0]}×{i.size[1]}, {count}, {i.fps:.3g} fps")
        else:
            self.source_label.setText(f"<b>{name}</b>")
        self.source_label.setToolTip(self.spec)
        n = i.frame_count if i is not None else None
        self._syncing = True
        try:
            self.slider.setRange(0, max((n or 1) - 1, 0))
        finally:
            self._syncing = False
        if i is not None:
            self.pane_area.set_image_size((i.size[1], i.size[0]))
        if self.frame is None:
            what = "the original and the pruned model" if self.session.pruned is not None else "the model"
            self.panes["original"].hint.setText(f"{name}\n\nPress Play to run {what} on it, or Step for one frame."
                                                if self.session.model is not None else
                                                f"{name}\n\nOpen a model (Model panel) to detect; Step shows frames.")
        self._show_position()

    def _show_frame(self, vf: VideoFrame) -> None:
        self.frame = vf
        self.shown_names, self.shown_titles = self._job_meta
        self.panes["original"].set_image(vf.panes[0])
        self.panes["pruned"].set_image(vf.panes[1])
        if vf.panes[1] is None:
            self.panes["pruned"].hint.setText(NO_PRUNED_HINT)
        self._show_position()
        self._show_numbers()

    def _show_position(self) -> None:
        n = self.frame_count
        if self.frame is None:
            self.frame_label.setText(f"– / {n}" if n else "–")
            return
        self.frame_label.setText(f"{self.frame.index + 1} / {n}  ·  {self.frame.timestamp:.2f} s" if n else
                                 f"{self.frame.index + 1}  ·  {self.frame.timestamp:.2f} s")
        if not self.slider.isSliderDown():
            self._syncing = True
            try:
                self.slider.setValue(self.frame.index)
            finally:
                self._syncing = False

    def _show_numbers(self) -> None:
        fr = self.frame.result if self.frame is not None else None
        if fr is None:
            for lab in self.side_labels.values():
                lab.setText("")
            self.agreement_label.setText("")
            return
        compared = self.frame.compared
        for side, res in (("original", fr.original), ("pruned", fr.pruned if compared else None)):
            if res is None:
                self.side_labels[side].setText("<b>Pruned</b>: no model")
                continue
            n_only = int(res.only_here.sum())
            only = f", <span style='color:{ONLY_HEX}'>{n_only} only here</span>" if compared and n_only else ""
            recall = f" · recall <b>{res.recall:.0%}</b>" if res.recall is not None else ""
            self.side_labels[side].setText(
                f"<b>{side.capitalize()}</b>: <b>{fps_text(res.fps)}</b> · {res.seconds * 1e3:.0f} ms · "
                f"{len(res.detections)} boxes{only}{recall}")
            self.side_labels[side].setToolTip(
                "FPS: running, over the last frames; ms: this frame's latency"
                + ("; recall: ground-truth boxes found so far (IoU ≥ 0.5) on the frames played, at this side's "
                   "score threshold" if res.recall is not None else ""))
        if compared:
            o, p = fr.original.fps, fr.pruned.fps  # running FPS: steadier than one frame's latencies
            speed = f" · pruned at {p / o:.2f}× the original's FPS" if o > 0 and p > 0 else ""
            iou = f" (mean IoU {fr.mean_iou:.2f})" if fr.mean_iou is not None else ""
            self.agreement_label.setText(
                f"Found by both: {fr.matched}{iou} · <span style='color:{ONLY_HEX}'>dashed magenta</span>: found by "
                f"one side only{speed}" + (f" · {fr.skipped_before} frames skipped" if fr.skipped_before else ""))
        else:
            self.agreement_label.setText("Original only: no pruned model to compare with."
                                         + (f" {fr.skipped_before} frames skipped." if fr.skipped_before else ""))

    def _export_text(self, res) -> str:
        speed = f", pruned {res.speedup:.2f}× as fast" if res.speedup else ""
        scored = (f" mAP@0.5 on the video's ground truth: original {res.original.map:.3f}, pruned "
                  f"{res.pruned.map:.3f}." if res.original.map is not None and res.pruned.map is not None else "")
        return (f"Wrote {res.out_video}: {res.processed_count} frames; mean latency original "
                f"{res.original.mean_ms:.0f} ms, pruned {res.pruned.mean_ms:.0f} ms{speed}; "
                f"agreement {res.agreement.rate:.0%}.{scored}")

    def _update_enabled(self) -> None:
        s = self.session
        ours = self._worker is not None
        other = (self.runner.busy and not ours) or self.exporting
        has_src = self.spec is not None
        seekable = self.info is not None and self.info.seekable and (self.info.frame_count or 0) > 1
        self.play_button.setText("Pause" if self.playing else "Play")
        self.play_button.setEnabled(has_src and s.model is not None and not other)
        self.step_button.setEnabled(has_src and not other)
        self.slider.setEnabled(seekable and not other)
        can_export = has_src and s.model is not None and s.pruned is not None and not other \
            and not self.spec.startswith(CAMERA_PREFIX)
        self.export_button.setEnabled(can_export)
        self.export_button.setToolTip("Write the side-by-side comparison video (as `os2d-studio compare --out`)"
                                      if s.pruned is not None else "Needs a pruned model (Pruning tab)")
        self.snapshot_button.setEnabled(self.frame is not None)
