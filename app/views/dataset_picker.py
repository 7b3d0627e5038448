"""The calibration / evaluation dataset: a folder in the OS2D CSV format (`os2d-studio synth` writes one)
or `grozi:PATH`. Shown in the Importance and Pruning tabs; both edit the session's one choice."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QMenu, QToolButton, QVBoxLayout, QWidget

from app.folders import save_folder
from app.state import Session
from app.workbench import WorkbenchController


BUNDLED_TEXT = "bundled sample benchmark"


class DatasetPicker(QWidget):
    def __init__(self, session: Session, workbench: WorkbenchController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workbench = workbench
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("dataset folder or grozi:PATH")
        self.edit.setToolTip("Calibration images (importance) and evaluation images (mAP): a folder with "
                             "dataset.json (os2d-studio synth), or grozi:PATH for GroZi-3.2k")
        self.browse = QToolButton()
        self.browse.setText("…")
        self.browse.setToolTip("Choose a dataset folder; the arrow offers the bundled sample and a bigger one")
        self.browse.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        menu = QMenu(self.browse)
        menu.addAction("Choose a dataset folder…", self.choose)
        menu.addAction("Bundled sample benchmark", lambda: self.session.set_dataset(None))
        menu.addAction("New sample benchmark…", lambda: self.workbench.new_benchmark())
        self.browse.setMenu(menu)
        self.note = QLabel()
        self.note.setStyleSheet("color: palette(mid);")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)
        lay.addLayout(row)
        lay.addWidget(self.note)
        self.edit.editingFinished.connect(self._edited)
        self.browse.clicked.connect(self.choose)
        session.datasetChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        current = self.workbench.dataset() or ""
        bundled = not self.session.dataset_path and bool(current)
        shown = "" if bundled else current  # the bundled set is named by the placeholder, not its install path
        if self.edit.text() != shown:
            self.edit.setText(shown)
        self.edit.setCursorPosition(0)
        self.edit.setPlaceholderText(BUNDLED_TEXT if bundled else "dataset folder or grozi:PATH")
        self.edit.setToolTip(f"The bundled sample benchmark: {current}" if bundled else
                             (current or "dataset folder or grozi:PATH"))
        self.note.setText("16 train + 16 held-out val images. A bigger one: … → New sample benchmark…"
                          if bundled else "")
        self.note.setWordWrap(True)
        self.note.setVisible(bundled)

    def _edited(self) -> None:
        text = self.edit.text().strip()
        if (text or None) != self.session.dataset_path:
            self.session.set_dataset(text or None)

    def choose(self) -> None:
        start = self.workbench.dataset() or str(save_folder("benchmarks"))
        folder = self.workbench.dialogs.open_folder("Choose a dataset folder", start)
        if folder:
            self.session.set_dataset(folder)
