"""The one look of the workbench's small pyqtgraph plots.

`Plot` keeps its title inside its frame: pyqtgraph sizes a title to its one-line text and fixes the title
row at 30 px, so a title wider than a narrow plot pushed the plot past its frame (the right end of the
axes, the last points and the title were cut off) and a second line was clipped. Here the title wraps to
the width over the data area, centred, and its row grows to the lines it needs.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer

MIN_WRAP_PX = 40


class FitTitle(pg.LabelItem):
    """A plot title that asks for no width: it wraps (centred) to the width the plot's layout gives it,
    and its height follows its lines (`on_height` lets the plot resize the title row)."""

    def __init__(self, *args, on_height=None, **kwargs) -> None:
        self._on_height = on_height
        super().__init__(*args, **kwargs)
        doc = self.item.document()
        option = doc.defaultTextOption()
        option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        doc.setDefaultTextOption(option)

    def _wrap(self) -> None:
        width = self.size().width()
        self.item.setTextWidth(-1)  # its natural one-line width
        # (not while the layout has not given it a width yet: a word per line would ask for a tall row)
        if width >= MIN_WRAP_PX and self.item.boundingRect().width() > width:
            self.item.setTextWidth(width)  # wraps at word boundaries

    def setText(self, text, **args) -> None:  # noqa: N802 - pyqtgraph API
        super().setText(text, **args)
        self.resizeEvent(None)

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt API
        self._wrap()
        super().resizeEvent(ev)

    def updateMin(self) -> None:  # noqa: N802 - pyqtgraph API
        bounds = self.itemRect()
        h = bounds.height()
        self.setMinimumWidth(0)
        self.setMinimumHeight(h)
        self.setMaximumHeight(h)
        self._sizeHint = {
            Qt.SizeHint.MinimumSize: (0, h),
            Qt.SizeHint.PreferredSize: (bounds.width(), h),
            Qt.SizeHint.MaximumSize: (-1, -1),
            Qt.SizeHint.MinimumDescent: (0, 0),
        }
        self.updateGeometry()
        if self._on_height is not None and self.isVisible():
            self._on_height(h)


class Plot(pg.PlotWidget):
    """A white plot whose title stays inside its frame (wrapping onto more lines when it must)."""

    def __init__(self, *args, **kwargs) -> None:
        self._refit_pending = False
        super().__init__(*args, **kwargs)
        pi = self.plotItem
        old = pi.titleLabel
        pi.layout.removeItem(old)
        if old.scene() is not None:
            old.scene().removeItem(old)
        pi.titleLabel = FitTitle("", size="11pt", parent=pi, on_height=self._title_height)
        pi.layout.addItem(pi.titleLabel, 0, 1)
        pi.setTitle(None)  # hidden until a title is set, as pyqtgraph's own

    def _title_height(self, h: float) -> None:
        pi = self.plotItem
        if pi is None or not pi.titleLabel.isVisible():
            return
        pi.layout.setRowFixedHeight(0, h)
        if not self._refit_pending:  # the title's row changed: fit the plot to the frame again (after layout)
            self._refit_pending = True
            QTimer.singleShot(0, self._refit)

    def _refit(self) -> None:
        self._refit_pending = False
        if self.plotItem is not None and self.centralWidget is self.plotItem:
            self.plotItem.setGeometry(QRectF(self.viewport().rect()))

    def setTitle(self, title: str | None = None, **args) -> None:  # noqa: N802 - pyqtgraph API
        self.plotItem.setTitle(title, **args)  # fixes the row at 30 px; the label then sets its own height
        if title is not None:
            self.plotItem.titleLabel.updateMin()


def make_plot(title: str, x: str, y: str, *, title_size: str = "9pt", min_height: int = 170) -> Plot:
    w = Plot(background="w")
    w.setTitle(title, color="#333", size=title_size)
    w.setLabel("bottom", x)
    w.setLabel("left", y)
    w.showGrid(x=True, y=True, alpha=0.25)
    for side in ("bottom", "left"):
        w.getAxis(side).enableAutoSIPrefix(False)  # no "(x0.001)": scores and mAP read as they are
    w.setMinimumHeight(min_height)
    return w
