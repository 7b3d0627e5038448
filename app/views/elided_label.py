"""A one-line label that fits the width its layout gives it by eliding its text.

Why: a QLabel asks for the width of its text, so a long status message or a long model name would widen
the main window or be cut off mid-word; this one shows "…" and keeps the full text in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """A one-line label that takes the width its layout gives it and elides its text (in the middle, so
    the start and the end of a long message stay); the full text is its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.hint_chars = 40
        # its size hint is steady (not its text's width) and it shrinks to its minimum: text never widens it
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        """The full text (what is painted may be elided: `shownText`)."""
        return self._full

    def shownText(self) -> str:  # noqa: N802 - Qt style
        return super().text()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(self.minimumWidth(), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        """A steady width (`hint_chars` average characters), whatever the text: the layout around it
        does not jump as messages change."""
        return QSize(self.fontMetrics().averageCharWidth() * self.hint_chars, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(self.contentsRect().width(), 0))
        if shown != super().text():
            super().setText(shown)
