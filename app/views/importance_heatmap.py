"""The importance heatmap (pyqtgraph's MatrixDisplay recipe: `ImageItem` + `ColorBarItem` + named ticks).

One row per unit (names on Y), the unit's channels sorted by the chosen criterion along X (most
important first; a row is as wide as its unit, the rest is NaN, drawn transparent), colour = the score
divided by the unit's maximum (min-max when a criterion has negative scores). The plan's cut sits after
the kept count of each row; the channels it removes are washed out. Why a module of its own: the widget
has its own hover and click handling, and the arrays it draws are plain numpy of an importance result.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Signal
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QToolTip, QWidget

CMAP = "viridis"
CUT_PEN = pg.mkPen(QColor(230, 30, 40), width=2.5)
SELECT_PEN = pg.mkPen(QColor(255, 140, 0), width=2)
PRUNED_RGBA = (236, 236, 236, 200)  # greys out the channels the plan removes
TICK_PX = 13  # minimum pixels per labelled row


def normalize_unit(scores: np.ndarray) -> np.ndarray:
    """Scores / max for non-negative criteria, min-max otherwise; NaN stays NaN; a constant unit is all 1."""
    s = np.asarray(scores, dtype=np.float64)
    finite = s[np.isfinite(s)]
    if finite.size == 0:
        return np.full_like(s, np.nan)
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0:
        return s / hi if hi > 0 else np.where(np.isfinite(s), 1.0, np.nan)
    return (s - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(s), 1.0, np.nan)


def heatmap_rows(importance: Any, criterion: str) -> np.ndarray:
    """[units, max channels] normalized scores, each row sorted (most important first), NaN-padded."""
    widths = list(importance.channels)
    out = np.full((len(widths), max(widths) if widths else 0), np.nan)
    for i, name in enumerate(importance.units):
        order = importance.orders[criterion][name]
        out[i, : widths[i]] = normalize_unit(importance.scores[criterion][name])[order]
    return out


def kept_by_plan(importance: Any, criterion: str, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Per unit, a boolean mask over channels: kept by the plan (top-k of `criterion`, ties to the lower index)."""
    masks = {}
    for name, c in zip(importance.units, importance.channels):
        k = counts.get(name, c)
        mask = np.zeros(c, dtype=bool)
        mask[importance.orders[criterion][name][:k]] = True
        masks[name] = mask
    return masks


class ImportanceHeatmap(pg.GraphicsLayoutWidget):
    """Rows = units, columns = channel rank. `sigRowClicked(row)`, `sigHover(text)` (empty: left the map)."""

    sigRowClicked = Signal(int)
    sigHover = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.plot = self.addPlot()
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "channel rank (most important first)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.shade = pg.ImageItem(axisOrder="row-major")
        self.shade.setZValue(5)
        self.cuts = pg.PlotDataItem(pen=CUT_PEN, connect="pairs")
        self.cuts.setZValue(10)
        self.selection = pg.PlotDataItem(pen=SELECT_PEN)
        self.selection.setZValue(11)
        for item in (self.image, self.shade, self.cuts, self.selection):
            self.plot.addItem(item)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(CMAP), interactive=False,
                                   label="importance / unit max", width=14)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.names: list[str] = []
        self.widths: list[int] = []
        self.plot.getViewBox().sigResized.connect(self._update_ticks)
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.describe = lambda row, col: ""  # set by the view: hover text of a cell

    def set_rows(self, matrix: np.ndarray, names: list[str], widths: list[int]) -> None:
        self.names, self.widths = list(names), list(widths)
        n, c = matrix.shape if matrix.size else (0, 0)
        if n == 0:
            self.image.clear()
            self.shade.clear()
            self.cuts.setData([], [])
            self.selection.setData([], [])
            self._update_ticks()
            return
        self.image.setImage(matrix, levels=(0, 1), autoLevels=False)
        self.image.setRect(0, 0, c, n)
        vb = self.plot.getViewBox()
        vb.setLimits(xMin=0, xMax=c, yMin=0, yMax=n)
        self.plot.setRange(xRange=(0, c), yRange=(0, n), padding=0)
        self._update_ticks()

    def set_plan(self, counts: list[int], pruned: np.ndarray | None) -> None:
        """Cut after `counts[i]` channels on row i; `pruned` [rows, cols] bool washes those cells out."""
        xs, ys = [], []
        for i, k in enumerate(counts):
            if k < self.widths[i]:
                xs += [k, k]
                ys += [i, i + 1]
        self.cuts.setData(np.array(xs, dtype=float), np.array(ys, dtype=float))
        if pruned is None or not pruned.any():
            self.shade.clear()
            return
        rgba = np.zeros(pruned.shape + (4,), dtype=np.uint8)
        rgba[pruned] = PRUNED_RGBA
        self.shade.setImage(rgba, autoLevels=False)
        self.shade.setRect(0, 0, pruned.shape[1], pruned.shape[0])

    def set_selected(self, row: int | None) -> None:
        if row is None or row >= len(self.widths):
            self.selection.setData([], [])
            return
        w = self.widths[row]
        self.selection.setData([0, w, w, 0, 0], [row, row, row + 1, row + 1, row])

    def _update_ticks(self, *_args) -> None:
        n = len(self.names)
        axis = self.plot.getAxis("left")
        if not n:
            axis.setTicks([[]])
            return
        px_per_row = max(self.plot.getViewBox().height(), 1.0) / n
        step = max(1, math.ceil(TICK_PX / px_per_row))
        axis.setTicks([[(i + 0.5, self.names[i]) for i in range(0, n, step)], []])

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        vb = self.plot.getViewBox()
        if not self.widths or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = vb.mapSceneToView(scene_pos)
        row, col = int(math.floor(p.y())), int(math.floor(p.x()))
        if 0 <= row < len(self.widths) and 0 <= col < self.widths[row]:
            return row, col
        return None

    def _moved(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        text = self.describe(*cell) if cell else ""
        self.sigHover.emit(text)
        if text and self.underMouse():
            QToolTip.showText(QCursor.pos(), text, self)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        """The readout describes the cell under the mouse: none once the mouse has left the map."""
        self.sigHover.emit("")
        QToolTip.hideText()
        super().leaveEvent(event)

    def _clicked(self, ev) -> None:
        cell = self.cell_at(ev.scenePos())
        if cell is not None:
            self.sigRowClicked.emit(cell[0])
