"""The "Detection" tab: class images (files or crops dragged on the target) + a target image -> one-shot
detections of the original model, the pruned one, or both side by side.

The network runs in the worker (`app.jobs.detect_job`, the same core calls as `os2d-studio detect`); it
returns every detection after NMS, so moving the score threshold or "max shown" only re-filters them
(`Detections.top`, the CLI's `--min-score`). NMS is part of a run: changing its IoU asks for a new run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.controller import AppController
from app.dialogs import IMAGE_FILTER
from app.jobs import detect_job
from app.project import RUNTIME_LABELS, ClassImageSpec
from app.state import Session
from app.views.class_images import ClassImageList
from app.views.detection_settings import DetectionSettingsBox
from app.views.image_pane import ImagePane, PaneArea
from app.views.pruned_banner import PrunedBanner
from core.resources import samples_dir
from core.visualize import class_color


class DetectionView(QWidget):
    def __init__(self, session: Session, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.controller = controller
        self.runner = controller.runner
        self.dialogs = controller.dialogs
        self._rows: list[tuple[str, int]] = []  # table row -> (variant, index among the shown detections)

        # -- class images (the session's list, shared with the Video tab) + crops of the target
        classes_box = self.classes = ClassImageList(session, self.dialogs, self._folder)
        self.class_list = self.classes.list
        self.add_button = self.classes.add_button
        self.remove_button = self.classes.remove_button
        self.crop_button = QPushButton("Crop from target")
        self.crop_button.setCheckable(True)
        self.crop_button.setToolTip("Drag a rectangle on the target image to use it as a class image")
        self.classes.buttons.insertWidget(1, self.crop_button)

        # -- target
        self.target_button = QPushButton("Choose target…")
        self.target_label = QLabel("no target image")
        self.target_label.setWordWrap(True)
        target_box = QGroupBox("Target image")
        tl = QVBoxLayout(target_box)
        tl.addWidget(self.target_button)
        tl.addWidget(self.target_label)

        # -- settings (the session's, shared with the Video tab)
        settings_box = self.settings = DetectionSettingsBox(
            session, display_rows=True,
            score_tip="Minimum score shown (OS2D scores are correlations in [-1, 1]); re-filters instantly",
            nms_tip="IoU above which NMS merges boxes of a class; applies on the next Detect")
        self.score_slider, self.nms_slider = settings_box.score_slider, settings_box.nms_slider
        self.max_shown, self.compare = settings_box.max_shown, settings_box.compare

        self.detect_button = QPushButton("Detect")
        self.detect_button.setMinimumHeight(32)
        self.detect_button.setStyleSheet("font-weight: bold;")
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)

        controls = QWidget()
        controls.setFixedWidth(300)
        c = QVBoxLayout(controls)
        c.setContentsMargins(0, 0, 0, 0)
        c.addWidget(classes_box, 1)
        c.addWidget(target_box)
        c.addWidget(settings_box)
        c.addWidget(self.detect_button)
        c.addWidget(self.info_label)

        # -- images and the detection list
        self.panes = {
            "original": ImagePane("Original model", "Choose a target image (left), add class images, then Detect."),
            "pruned": ImagePane("Pruned model", "Choose a target image."),
        }
        self.pane_area = PaneArea(list(self.panes.values()))
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Model", "Class", "Score", "Box (x0, y0, x1, y1)"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.banner = PrunedBanner(session)
        panes_box = QWidget()
        pl = QVBoxLayout(panes_box)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.banner)
        pl.addWidget(self.pane_area, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(panes_box)
        splitter.addWidget(self.table)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([560, 160])

        lay = QHBoxLayout(self)
        lay.addWidget(controls)
        lay.addWidget(splitter, 1)

        # -- wiring
        self.crop_button.toggled.connect(self._set_crop_mode)
        self.target_button.clicked.connect(self.choose_target)
        self.detect_button.clicked.connect(self.run_detection)
        self.table.itemSelectionChanged.connect(self._highlight_selected)
        for pane in self.panes.values():
            pane.view.sigCropped.connect(self.crop_class_image)
        session.targetChanged.connect(self._show_target)
        session.classImagesChanged.connect(self._show_class_images)
        settings_box.shown.connect(self.redraw)
        session.detectionsChanged.connect(self.redraw)
        session.modelChanged.connect(self._update_enabled)
        session.prunedModelChanged.connect(self._update_enabled)
        self.runner.busyChanged.connect(self._update_enabled)
        self._show_target()
        self._show_class_images()

    # -- user actions -----------------------------------------------------------------------------------
    def _folder(self) -> str:
        if self.session.target_path:
            return str(Path(self.session.target_path).parent)
        return str(samples_dir()) if samples_dir().is_dir() else ""

    def choose_class_images(self) -> None:
        self.classes.choose()

    def add_class_image_files(self, paths: list[str]) -> None:
        self.classes.add_files(paths)

    def choose_target(self) -> None:
        path = self.dialogs.open_file("Choose target image", IMAGE_FILTER, self._folder())
        if path:
            self.set_target_file(path)

    def set_target_file(self, path: str) -> None:
        try:
            self.session.set_target(path)
        except ValueError as e:
            self.dialogs.error("Cannot open target image", str(e))

    def crop_class_image(self, x0: float, y0: float, x1: float, y1: float) -> ClassImageSpec | None:
        """What a drag in crop mode does: add the rectangle of the target (image pixels) as a class image."""
        try:
            return self.session.add_class_crop((x0, y0, x1, y1))
        except ValueError as e:
            self.dialogs.error("Cannot crop a class image", str(e))
            return None

    def _set_crop_mode(self, on: bool) -> None:
        for pane in self.panes.values():
            pane.set_crop_mode(on)

    def variants(self) -> list[str]:
        mode = self.session.detection_settings.compare
        return ["original", "pruned"] if mode == "both" else [mode]

    def run_detection(self) -> bool:
        """Start a detection run in the worker; False (with a message) when something is missing."""
        s = self.session
        models = {"original": s.model, "pruned": s.pruned}
        missing = [v for v in self.variants() if models[v] is None]
        problem = None
        if missing:
            problem = f"No {missing[0]} model is loaded: open one in the Model panel."
        elif s.target_image is None:
            problem = "Choose a target image first."
        elif not s.class_images:
            problem = "Add a class image first (a file, or Crop from target)."
        if problem:
            self.dialogs.warning("Cannot detect", problem)
            return False
        try:
            arrays = [s.class_image_array(c) for c in s.class_images]
        except ValueError as e:
            self.dialogs.error("Cannot read a class image", str(e))
            return False
        names = [c.name for c in s.class_images]
        chosen = {v: models[v] for v in self.variants()}
        target = s.target_image

        def done(run) -> None:
            # drop a result whose target or models were replaced while it ran (it would not match)
            if s.target_image is target and all({"original": s.model, "pruned": s.pruned}[v] is m
                                                for v, m in chosen.items()):
                s.set_detections(run)

        ds = s.detection_settings
        worker = self.runner.start("Detecting", detect_job, chosen, arrays, names, target,
                                   nms_iou_threshold=ds.nms_iou_threshold,
                                   runtimes={v: ds.runtime_field_value(v) for v in chosen}, on_result=done)
        return worker is not None

    # -- session -> widgets -----------------------------------------------------------------------------
    def _show_target(self) -> None:
        s = self.session
        for pane in self.panes.values():
            pane.set_image(s.target_image)
        if s.target_path and s.target_image is not None:
            h, w = s.target_image.shape[:2]
            self.target_label.setText(f"{Path(s.target_path).name} ({w}×{h})")
            self.target_label.setToolTip(s.target_path)
        else:
            self.target_label.setText("no target image")
        self._update_enabled()
        self.redraw()

    def _show_class_images(self) -> None:
        """The list itself refreshes (ClassImageList); what depends on having class images follows here."""
        self._update_enabled()
        self.redraw()

    def _update_enabled(self) -> None:
        s = self.session
        has_pruned = s.pruned is not None
        for i in (1, 2):
            self.compare.model().item(i).setEnabled(has_pruned)
        self.compare.setToolTip("" if has_pruned else "Open a pruned model (Model panel) to compare")
        busy = self.runner.busy
        ready = s.model is not None and s.target_image is not None and bool(s.class_images)
        self.detect_button.setEnabled(ready and not busy)
        self.crop_button.setEnabled(s.target_image is not None)
        if s.target_image is None and self.crop_button.isChecked():
            self.crop_button.setChecked(False)

    def shown(self) -> dict:
        """variant -> the detections drawn now (after score threshold and max shown)."""
        run = self.session.detections
        ds = self.session.detection_settings
        if run is None:
            return {}
        return {v: run.detections[v].top(ds.max_shown, min_score=ds.threshold(v))
                for v in self.variants() if v in run.detections}

    def redraw(self) -> None:
        """Re-filter the last run's detections with the current settings and draw them (no network)."""
        variants = self.variants()
        for name, pane in self.panes.items():
            pane.setVisible(name in variants)
        self.panes["pruned"].link(self.panes["original"] if len(variants) > 1 else None)
        self.pane_area.arrange()
        self.panes["original"].title.setVisible(len(variants) > 1 or variants != ["original"])
        ds = self.session.detection_settings
        for variant, pane in self.panes.items():
            pane.title.setText(f"{variant.capitalize()} · {RUNTIME_LABELS[ds.runtime_field_value(variant)]}")
        run = self.session.detections
        shown = self.shown()
        names = list(run.class_names) if run else []
        self.table.setRowCount(0)
        self._rows = []
        for variant in variants:
            pane = self.panes[variant]
            d = shown.get(variant)
            if d is None:
                pane.clear_boxes()
                continue
            pane.set_detections(d.boxes, d.scores, d.labels, names)
            for i, (box, score, label) in enumerate(zip(d.boxes, d.scores, d.labels)):
                self._add_row(variant, names[int(label)] if int(label) < len(names) else str(label), score, box, label)
                self._rows.append((variant, i))
        self.info_label.setText(self._info_text(run, shown))

    def _add_row(self, variant: str, name: str, score: float, box: np.ndarray, label: int) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        cells = (variant, name, f"{float(score):.3f}", ", ".join(f"{v:.0f}" for v in box))
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col == 1:
                item.setData(Qt.ItemDataRole.DecorationRole, _swatch(int(label)))
            if col == 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(r, col, item)

    def _info_text(self, run, shown: dict) -> str:
        if run is None:
            return ""
        parts = [f"{v}: {len(d)} shown of {len(run.detections[v])} ({run.detections[v].seconds:.2f} s)"
                 for v, d in shown.items()]
        ds = self.session.detection_settings
        notes = []
        if abs(run.nms_iou_threshold - ds.nms_iou_threshold) > 1e-6:
            notes.append(f"NMS IoU changed from {run.nms_iou_threshold:.2f}: press Detect to apply it.")
        if tuple(c.name for c in self.session.class_images) != run.class_names:
            notes.append("Class images changed: press Detect to update.")
        missing = [v for v in self.variants() if v not in run.detections]
        if missing:
            notes.append(f"No {', '.join(missing)} run yet: press Detect.")
        return "<br>".join(parts + [f"<i>{n}</i>" for n in notes])

    def _highlight_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        selected = self._rows[rows[0].row()] if rows else None
        for variant, pane in self.panes.items():
            pane.highlight(selected[1] if selected and selected[0] == variant else None)


def _swatch(label: int) -> QPixmap:
    pm = QPixmap(10, 10)
    pm.fill(QColor(*class_color(label)))
    return pm
