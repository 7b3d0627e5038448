"""A tab that says which feature arrives there, until its real view lands."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaceholderView(QWidget):
    def __init__(self, title: str, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        label = QLabel(f"<h3>{title}</h3><p>{text}</p>")
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setTextFormat(Qt.TextFormat.RichText)
        label.setStyleSheet("color: palette(mid);")
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(label)
        lay.addStretch(1)
