"""The "Video" tab: the original and the pruned model side by side on the same frames of a video, a folder
of images or a camera, with per-side FPS and latency, and the boxes only one side found highlighted.

Every frame comes from the worker (`app.video_jobs`, the same `core.compare` as `os2d-studio compare`),
started by the tab's `PlaybackController`; this view builds the widgets and shows what it reports. The
class images are the sample video's unless "Use the Detection tab's class images" is on (a project
setting), so the Detection tab never changes what the video shows unasked.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QSlider, QSpinBox, QVBoxLayout, QWidget)

from app.controller import AppController
from app.dialogs import PNG_FILTER, VIDEO_FILTER, VIDEO_OUT_FILTER
from app.folders import save_folder
from app.playback import PlaybackController
from app.project import RUNTIME_LABELS
from app.state import Session
from app.video_jobs import VideoFrame, model_label, save_snapshot, snapshot_image
from app.video_text import agreement_text, export_text, side_text
from app.views.class_images import ClassImageList
from app.views.detection_settings import DetectionSettingsBox
from app.views.image_pane import ImagePane, PaneArea
from app.views.pruned_banner import PrunedBanner
from core.data.video import CAMERA_PREFIX
from core.resources import resources_dir, samples_dir

NO_PRUNED_HINT = ("No pruned model.\n\nPrune one in the Pruning tab, or File → Open pruned model…, to compare it "
                  "here with the original. Until then the original plays alone on the left.")


class VideoView(QWidget):
    def __init__(self, session: Session, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.controller = controller
        self.runner = controller.runner
        self.dialogs = controller.dialogs
        self._syncing = False  # the frame slider is being set to the frame on screen, not moved by the user
        self.playback = PlaybackController(session, self.runner, self.dialogs, lambda: self.classes.active(),
                                           self.isVisible, parent=self)
        demo_video = self.demo_video = self.playback.demo_video

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
        self.classes.set_defaults(self.playback.demo_classes)
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
        pb = self.playback
        self.open_button.clicked.connect(self.choose_video)
        self.folder_button.clicked.connect(self.choose_folder)
        self.demo_button.clicked.connect(lambda: self.open_video(self.demo_video) if self.demo_video else None)
        self.camera_button.clicked.connect(self.open_camera)
        self.play_button.clicked.connect(pb.toggle_play)
        self.step_button.clicked.connect(pb.step)
        self.slider.valueChanged.connect(self._slider_moved)
        self.export_button.clicked.connect(lambda: self.export_video())
        self.snapshot_button.clicked.connect(lambda: self.snapshot())
        self.target_size.valueChanged.connect(pb.set_target_size)
        self.realtime.toggled.connect(lambda on: setattr(pb, "realtime", bool(on)))
        session.modelChanged.connect(self._models_changed)
        session.prunedModelChanged.connect(self._models_changed)
        session.classImagesChanged.connect(self._classes_changed)
        self.share_classes.toggled.connect(
            lambda on: session.set_detection_settings(video_uses_detection_classes=bool(on)))
        session.detectionSettingsChanged.connect(self._sharing_changed)
        settings_box.shown.connect(self._show_titles)
        pb.opened.connect(self._source_opened)
        pb.infoChanged.connect(self._show_source)
        pb.frameShown.connect(self._show_frame)
        pb.stateChanged.connect(self._update_enabled)
        pb.message.connect(self.info_label.setText)
        pb.exported.connect(lambda res: self.info_label.setText(export_text(res)))

        if demo_video is not None:
            pb.open(demo_video, quiet=True)
        self._models_changed()
        self._classes_changed()

    # -- the playback, as the window and scripts reach it ---------------------------------------------------
    spec = property(lambda self: self.playback.spec)
    info = property(lambda self: self.playback.info)
    frame = property(lambda self: self.playback.frame)
    position = property(lambda self: self.playback.position)
    frame_count = property(lambda self: self.playback.frame_count)
    playing = property(lambda self: self.playback.playing)
    exporting = property(lambda self: self.playback.exporting)
    features = property(lambda self: self.playback.features)
    last_export = property(lambda self: self.playback.last_export)

    def play(self) -> bool:
        return self.playback.play()

    def pause(self) -> None:
        self.playback.pause()

    def step(self) -> bool:
        return self.playback.step()

    def seek(self, index: int) -> bool:
        return self.playback.seek(index)

    def resolved_target_size(self) -> float | None:
        return self.playback.resolved_target_size()

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
        return self.playback.open(spec)

    def _slider_moved(self, value: int) -> None:
        if not self._syncing:
            self.playback.seek(value)

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
        if not self.playback.ready_to_export():
            return False
        if path is None:
            path = self.dialogs.save_file("Export comparison video", VIDEO_OUT_FILTER, self._suggest(".mp4", "compare"))
            if not path:
                return False
            if not Path(path).suffix:
                path = f"{path}.mp4"
        return self.playback.export(path, self.export_frames.value() if frames is None else int(frames))

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
            out = save_snapshot(path, snapshot_image(self.frame, self.playback.shown_names,
                                                      self.playback.shown_titles))
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

    def _show_titles(self) -> None:
        """Each pane names the runtime it runs on and its model ("Pruned · OpenVINO int8 · x.pt (2.1M params)"):
        side and runtime first, so a narrow pane's elided title still says what the FPS below it were
        measured on."""
        s = self.session
        ds = s.detection_settings
        for side, loaded, none in (("original", s.model, "Original (no model)"), ("pruned", s.pruned, "Pruned (none)")):
            text = f"{side.capitalize()} · {RUNTIME_LABELS[ds.runtime_field_value(side)]} · {model_label(loaded)}" \
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
            self.playback.schedule_refresh()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.playback.shown()

    def _source_opened(self) -> None:
        for pane in self.panes.values():
            pane.set_image(None)
        self._show_source()
        self._show_numbers()

    def _show_source(self) -> None:
        if self.spec is None:
            self.source_label.setText("no video")
            return
        name = self.spec if self.spec.startswith(CAMERA_PREFIX) else Path(self.spec).name
        if self.playback.showing_demo:
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
        if self.frame is None:
            what = "the original and the pruned model" if self.session.pruned is not None else "the model"
            self.panes["original"].hint.setText(f"{name}\n\nPress Play to run {what} on it, or Step for one frame."
                                                if self.session.model is not None else
                                                f"{name}\n\nOpen a model (Model panel) to detect; Step shows frames.")
        self._show_position()

    def _show_frame(self, vf: VideoFrame) -> None:
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
            text, tip = side_text(side, res, compared)
            self.side_labels[side].setText(text)
            if tip is not None:
                self.side_labels[side].setToolTip(tip)
        self.agreement_label.setText(agreement_text(fr, compared))

    def _update_enabled(self) -> None:
        s = self.session
        other = (self.runner.busy and not self.playback.running) or self.exporting
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
