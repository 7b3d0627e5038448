"""One image with detection boxes on a pyqtgraph ViewBox; dragging with crop mode on selects a rectangle.

Why vector items instead of boxes burned into pixels: labels stay readable at any zoom, and one box can
be highlighted when its row is selected. Colours come from `core.visualize.class_color`, as in the CLI's
annotated images.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (QBoxLayout, QGraphicsRectItem, QLabel, QSizePolicy, QStackedWidget, QVBoxLayout,
                               QWidget)

from app.views.elided_label import ElidedLabel
from core.visualize import class_color


class CropViewBox(pg.ViewBox):
    """A ViewBox that, in crop mode, turns a left-button drag into `sigCropped(x0, y0, x1, y1)` (image px)."""

    sigCropped = Signal(float, float, float, float)
    sigDoubleClicked = Signal()

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.crop_enabled = False
        self._band = QGraphicsRectItem()
        pen = QPen(QColor(255, 255, 255))
        pen.setCosmetic(True)
        pen.setWidth(2)
        pen.setStyle(Qt.PenStyle.DashLine)
        self._band.setPen(pen)
        self._band.setBrush(QColor(255, 255, 255, 50))
        self._band.setZValue(100)
        self._band.setVisible(False)
        self.addItem(self._band, ignoreBounds=True)

    def mouseClickEvent(self, ev):  # noqa: N802 - pyqtgraph API
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigDoubleClicked.emit()
            return
        super().mouseClickEvent(ev)

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - pyqtgraph API
        if not self.crop_enabled or ev.button() != Qt.MouseButton.LeftButton:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        p0 = self.mapToView(ev.buttonDownPos())
        p1 = self.mapToView(ev.pos())
        self._band.setRect(QRectF(p0, p1).normalized())
        self._band.setVisible(not ev.isFinish())
        if ev.isFinish():
            r = QRectF(p0, p1).normalized()
            self.sigCropped.emit(r.left(), r.top(), r.right(), r.bottom())


class ImagePane(QWidget):
    """Title + image + boxes; shows a hint while there is no image."""

    def __init__(self, title: str = "", empty_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # elided at the right with the full text in its tooltip: the side and runtime come first and stay
        self.title = ElidedLabel(title, mode=Qt.TextElideMode.ElideRight)
        bold = self.title.font()
        bold.setBold(True)
        self.title.setFont(bold)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the window
        self.hint = QLabel(empty_text)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid); font-size: 14px;")
        self.view = CropViewBox()
        self.graphics = pg.GraphicsView()
        self.graphics.setCentralItem(self.view)
        self.graphics.setBackground(pg.mkColor(32, 32, 36))
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image_item)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(self.graphics)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.stack, 1)
        self._items: list[tuple[QGraphicsRectItem, pg.TextItem]] = []  # pool; the first _n are shown
        self._n = 0
        self._shape: tuple[int, ...] | None = None
        self._partner: ImagePane | None = None
        self._highlighted: int | None = None
        self.view.sigRangeChangedManually.connect(self._copy_range_to_partner)
        self.view.sigRangeChanged.connect(self._place_tags)  # tags keep their pixel size: re-place on zoom
        self.view.sigDoubleClicked.connect(self.fit)

    def set_image(self, rgb: np.ndarray | None) -> None:
        self.clear_boxes()
        if rgb is None:
            self.image_item.clear()
            self._shape = None
            self.stack.setCurrentWidget(self.hint)
            return
        self.image_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.stack.setCurrentWidget(self.graphics)
        if rgb.shape != self._shape:
            self._shape = rgb.shape
            self.view.enableAutoRange()  # fit the image, and keep fitting on resize until the user zooms

    def clear_boxes(self) -> None:
        for rect, text in self._items[: self._n]:
            rect.setVisible(False)
            text.setVisible(False)
        self._n = 0
        self._highlighted = None

    def _box_items(self, n: int) -> list[tuple[QGraphicsRectItem, pg.TextItem]]:
        """A pool of box items, grown on demand and reused: moving the score slider redraws in a few ms."""
        while len(self._items) < n:
            rect = QGraphicsRectItem()
            text = pg.TextItem("", color=(0, 0, 0))
            rect.setVisible(False)
            text.setVisible(False)
            self.view.addItem(rect, ignoreBounds=True)
            self.view.addItem(text, ignoreBounds=True)
            self._items.append((rect, text))
        return self._items[:n]

    def set_detections(self, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
                       names: Sequence[str]) -> None:
        """Boxes [N, 4] xyxy in image pixels with "name score" tags in the class colour."""
        self.clear_boxes()
        items = self._box_items(len(scores))
        top_band = 0.04 * self._shape[0] if self._shape is not None else 0.0
        for (rect, text), box, score, label in zip(items, boxes, scores, labels):
            color = QColor(*class_color(int(label)))
            x0, y0, x1, y1 = (float(v) for v in box)
            rect.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            pen = QPen(color)
            pen.setCosmetic(True)
            pen.setWidth(2)
            rect.setPen(pen)
            rect.setZValue(10)
            name = names[int(label)] if 0 <= int(label) < len(names) else str(int(label))
            text.setText(f"{name} {float(score):.2f}")
            text.fill = pg.mkBrush(color)
            # the tag sits above the box, or inside it when the box touches the image's top edge
            text.setAnchor((0, 0) if y0 < top_band else (0, 1))
            text.setPos(x0, y0)
            text.setZValue(11)
            rect.setVisible(True)
            text.setVisible(True)
        self._n = len(items)
        self._place_tags()

    def _place_tags(self, *_args) -> None:
        """Hide the tags that would cover a tag of a higher-scored box (boxes come best first), so a
        crowded image shows readable tags, not a pile; every box stays drawn, and zooming in brings the
        hidden tags back."""
        try:
            px, py = self.view.viewPixelSize()
        except Exception:  # noqa: BLE001 - pyqtgraph raises while the view has no size yet
            return
        if not (px > 0 and py > 0):
            return
        placed: list[tuple[float, float, float, float]] = []
        for i, (rect, text) in enumerate(self._items[: self._n]):
            r = rect.rect()
            size = text.textItem.boundingRect()
            w, h = size.width() * px, size.height() * py
            below = text.anchor.y() == 0  # anchor (0, 0): the tag hangs inside the box, below its top edge
            x0, y0 = r.left(), (r.top() if below else r.top() - h)
            tag = (x0, y0, x0 + w, y0 + h)
            free = all(tag[2] <= a[0] or a[2] <= tag[0] or tag[3] <= a[1] or a[3] <= tag[1] for a in placed)
            text.setVisible(free or i == self._highlighted)
            if free:
                placed.append(tag)

    def highlight(self, index: int | None) -> None:
        """Thicken one box (the selected detection), raise it above the others and show its tag."""
        self._highlighted = index
        self._place_tags()
        for i, (rect, text) in enumerate(self._items[: self._n]):
            pen = rect.pen()
            pen.setWidth(4 if i == index else 2)
            rect.setPen(pen)
            rect.setZValue(20 if i == index else 10)
            text.setZValue(21 if i == index else 11)

    @property
    def box_count(self) -> int:
        return self._n

    def set_crop_mode(self, on: bool) -> None:
        self.view.crop_enabled = on
        self.graphics.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    def link(self, other: "ImagePane | None") -> None:
        """Pan and zoom together with `other` (side-by-side comparison); None unlinks.

        pyqtgraph's setXLink/setYLink fight the aspect lock (the linked views end up cropped), so a pan or
        zoom by the user is copied to the partner instead; both fit the image on their own otherwise.
        """
        if other is self._partner:
            return
        for a, b in ((self, self._partner), (self._partner, self)):
            if a is not None and b is not None:
                a._partner = None
        self._partner = other
        if other is not None:
            other._partner = self
            self.view.enableAutoRange()
            other.view.enableAutoRange()

    def _copy_range_to_partner(self, *_args) -> None:
        if self._partner is not None and self._partner.isVisible():
            self._partner.view.setRange(rect=self.view.viewRect(), padding=0)

    def fit(self) -> None:
        """Show the whole image again (also on double-click), in both linked panes."""
        self.view.enableAutoRange()
        if self._partner is not None:
            self._partner.view.enableAutoRange()


class PaneArea(QWidget):
    """Holds the image panes; with two shown, puts them left | right, as a comparison reads and as the
    exported video shows them; one above the other only when the area is too narrow for two columns
    (`narrow_px`)."""

    NARROW_PX = 480  # two columns of at least 240 px

    def __init__(self, panes: Sequence[ImagePane], parent: QWidget | None = None, *,
                 narrow_px: int = NARROW_PX) -> None:
        super().__init__(parent)
        self.panes = list(panes)
        self.narrow_px = int(narrow_px)
        self.box = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        for pane in self.panes:
            self.box.addWidget(pane, 1)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self.arrange()

    def arrange(self) -> None:
        """Lay the shown panes out for the area's width (also after a pane is shown or hidden)."""
        if sum(not p.isHidden() for p in self.panes) < 2:
            return
        direction = (QBoxLayout.Direction.TopToBottom if self.width() < self.narrow_px
                     else QBoxLayout.Direction.LeftToRight)
        if direction != self.box.direction():
            self.box.setDirection(direction)
            for pane in self.panes:  # the panes changed shape: fit the image to the new one
                pane.view.enableAutoRange()
