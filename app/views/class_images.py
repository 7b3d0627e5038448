"""The session's class images as a thumbnail list: add files, remove (several at once), rename
(double-click a name).

Why a widget of its own: the Detection tab edits the session's list and the Video tab can show the same
one, so both embed this box; the Detection tab adds its "Crop from target" button to `buttons`.
`defaults` are shown greyed when the view does not use the session's list (`use_session` off) or while
it is empty: what the view runs instead (the Video tab: the sample video's classes), never written to
the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QGroupBox, QHBoxLayout, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from app.dialogs import IMAGE_FILTER, Dialogs
from app.project import ClassImageSpec
from app.state import Session

THUMB = 56


def thumbnail(rgb: np.ndarray, side: int = THUMB) -> QPixmap:
    h, w = rgb.shape[:2]
    img = QImage(np.ascontiguousarray(rgb).data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation)


class ClassImageList(QGroupBox):
    """`session.class_images` with Add…/Remove buttons; `folder()` is where the file dialog opens."""

    def __init__(self, session: Session, dialogs: Dialogs, folder: Callable[[], str] = lambda: "",
                 title: str = "Class images", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.session = session
        self.dialogs = dialogs
        self.folder = folder
        self._syncing = False
        self._defaults: list[ClassImageSpec] = []
        self.use_session = True
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.setToolTip("Double-click a name to rename the class; Ctrl/Shift-click to select several")
        self.add_button = QPushButton("Add…")
        self.remove_button = QPushButton("Remove")
        self.buttons = QHBoxLayout()
        self.buttons.addWidget(self.add_button)
        self.buttons.addWidget(self.remove_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list)
        lay.addLayout(self.buttons)

        self.add_button.clicked.connect(self.choose)
        self.remove_button.clicked.connect(self._remove_selected)
        self.list.itemChanged.connect(self._renamed)
        session.classImagesChanged.connect(self.refresh)
        self.refresh()

    # -- actions ----------------------------------------------------------------------------------------
    def choose(self) -> None:
        self.add_files(self.dialogs.open_files("Add class images", IMAGE_FILTER, self.folder()))

    def add_files(self, paths: Sequence[str]) -> None:
        try:
            self.session.add_class_images([ClassImageSpec(Path(p).stem, str(Path(p).resolve())) for p in paths])
        except ValueError as e:
            self.dialogs.error("Cannot add class image", str(e))

    def _remove_selected(self) -> None:
        rows = sorted({self.list.row(item) for item in self.list.selectedItems()})
        if not rows and self.list.currentRow() >= 0:
            rows = [self.list.currentRow()]
        if self.use_session and rows:
            self.session.remove_class_images(rows)

    def _renamed(self, item: QListWidgetItem) -> None:
        if self._syncing:
            return
        row = self.list.row(item)
        if row >= len(self.session.class_images):
            return
        name = item.text().strip()
        if name and name != self.session.class_images[row].name:
            self.session.rename_class_image(row, name)

    # -- display ----------------------------------------------------------------------------------------
    @property
    def defaults(self) -> list[ClassImageSpec]:
        return list(self._defaults)

    def set_defaults(self, specs: Sequence[ClassImageSpec]) -> None:
        self._defaults = list(specs)
        self.refresh()

    def set_use_session(self, on: bool) -> None:
        self.use_session = bool(on)
        self.refresh()

    @property
    def showing_defaults(self) -> bool:
        return (not self.use_session or not self.session.class_images) and bool(self._defaults)

    def active(self) -> list[ClassImageSpec]:
        """The class images the view runs: the session's, or the defaults."""
        return self.defaults if self.showing_defaults else list(self.session.class_images)

    def refresh(self) -> None:
        self._syncing = True
        try:
            self.list.clear()
            own = not self.showing_defaults
            for spec in self.session.class_images if own else self._defaults:
                item = QListWidgetItem(spec.name)
                try:
                    item.setIcon(thumbnail(self.session.class_image_array(spec)))
                except ValueError:  # a default that went missing: the name still says what it was
                    pass
                where = f"crop {spec.crop} of " if spec.crop else ""
                if own:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                    item.setToolTip(f"{where}{spec.path}")
                else:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                    item.setToolTip(f"sample class: {spec.path}")
                self.list.addItem(item)
        finally:
            self._syncing = False
        editable = self.use_session
        self.add_button.setEnabled(editable)
        self.remove_button.setEnabled(editable and bool(self.session.class_images))
        why = "" if editable else "These are the sample video's classes; use the Detection tab's class images to edit"
        self.add_button.setToolTip(why)
        self.remove_button.setToolTip(why or ("" if self.session.class_images else "No class images to remove"))
