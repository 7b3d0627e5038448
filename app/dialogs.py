"""Every modal question and message of the app goes through one `Dialogs` object.

Why: one error path (core's message in a QMessageBox, the traceback of a bug in its details), and one place
to swap for a non-blocking recorder when nobody is there to click (`--self-test`, `--screenshot`).
"""

from __future__ import annotations

import logging
from typing import Literal

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

log = logging.getLogger(__name__)

SaveAnswer = Literal["save", "discard", "cancel"]

MODEL_FILTER = "Model files (*.pt *.pth *.pth.tar *.ckpt);;All files (*)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)"
PROJECT_FILTER = "os2d-studio projects (*.os2d.json *.json);;All files (*)"
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg);;All files (*)"
VIDEO_OUT_FILTER = "MP4 video (*.mp4);;AVI video (*.avi)"
PNG_FILTER = "PNG image (*.png)"


class Dialogs:
    """Real dialogs, parented to the main window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.parent = parent

    def error(self, title: str, message: str, details: str = "") -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self.parent)
        if details:
            box.setDetailedText(details)
        box.exec()

    def warning(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self.parent)
        box.exec()

    def info(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, message, QMessageBox.StandardButton.Ok, self.parent)
        box.exec()

    def ask_save_changes(self) -> SaveAnswer:
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved changes",
                          "The project has unsaved changes. Save them before closing?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self.parent)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return "save"
        if answer == QMessageBox.StandardButton.Discard:
            return "discard"
        return "cancel"

    def open_file(self, title: str, file_filter: str, folder: str = "") -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, folder, file_filter)
        return path or None

    def open_files(self, title: str, file_filter: str, folder: str = "") -> list[str]:
        paths, _ = QFileDialog.getOpenFileNames(self.parent, title, folder, file_filter)
        return list(paths)

    def save_file(self, title: str, file_filter: str, suggested: str = "") -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, suggested, file_filter)
        return path or None

    def open_folder(self, title: str, folder: str = "") -> str | None:
        path = QFileDialog.getExistingDirectory(self.parent, title, folder)
        return path or None


class HeadlessDialogs(Dialogs):
    """Records messages instead of blocking; answers "discard" and picks no files (self-test, screenshots)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.messages: list[tuple[str, str, str]] = []  # (level, title, message): warnings and errors
        self.notes: list[tuple[str, str]] = []  # (title, message): information

    def error(self, title: str, message: str, details: str = "") -> None:
        log.error("%s: %s", title, message)
        self.messages.append(("error", title, message))

    def warning(self, title: str, message: str) -> None:
        log.warning("%s: %s", title, message)
        self.messages.append(("warning", title, message))

    def info(self, title: str, message: str) -> None:
        log.info("%s: %s", title, message)
        self.notes.append((title, message))

    def ask_save_changes(self) -> SaveAnswer:
        return "discard"

    def open_file(self, title: str, file_filter: str, folder: str = "") -> str | None:
        return None

    def open_files(self, title: str, file_filter: str, folder: str = "") -> list[str]:
        return []

    def save_file(self, title: str, file_filter: str, suggested: str = "") -> str | None:
        return None

    def open_folder(self, title: str, folder: str = "") -> str | None:
        return None
