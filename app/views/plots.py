"""The one look of the workbench's small pyqtgraph plots."""

from __future__ import annotations

import pyqtgraph as pg


def make_plot(title: str, x: str, y: str, *, title_size: str = "9pt", min_height: int = 170) -> pg.PlotWidget:
    w = pg.PlotWidget(background="w")
    w.setTitle(title, color="#333", size=title_size)
    w.setLabel("bottom", x)
    w.setLabel("left", y)
    w.showGrid(x=True, y=True, alpha=0.25)
    for side in ("bottom", "left"):
        w.getAxis(side).enableAutoSIPrefix(False)  # no "(x0.001)": scores and mAP read as they are
    w.setMinimumHeight(min_height)
    return w
