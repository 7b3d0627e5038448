"""The seed study's mAP-vs-size plot: `draw_study`, the one function `bench/seed_table.py` draws its PNG with
and the Metrics tab draws its "Study: mAP vs size" page with; `read_study`, the reader of the file the bench
writes its rows to (`resources/studies/seed-table.json`, bundled); and `StudyPanel`, that page, which
places the session's original and pruned model on the study.

The file: {"format": "os2d-studio-study", "version": 1, "studies": [...]}, one study per bench section
(`--section`), each with the model's sha256, the benchmark, the val images, the fine-tune iterations, the
date, the machine, criterion labels and the rows (criterion, ratio, size_mb, map_before, map_after, ...).
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.views.plots import make_plot
from core.errors import InputError
from core.resources import resources_dir

if TYPE_CHECKING:
    from app.state import Session

STUDY_FORMAT = "os2d-studio-study"
STUDY_VERSION = 1


def study_path() -> Path:
    """The seed study the app ships (`bench/seed_table.py --study`)."""
    return resources_dir() / "studies" / "seed-table.json"


# one colour per criterion ("": the unpruned original); others get a colour of their own in name order
STUDY_COLOURS = {"": (40, 40, 40), "combined": (214, 39, 40), "weight_l1": (31, 119, 180), "bn_gamma": (44, 160, 44),
                 "lcp": (148, 103, 189), "combined_staged": (255, 127, 14)}


def draw_study(plot: pg.PlotWidget, rows: Sequence[Mapping], labels: Mapping[str, str] | None = None
               ) -> dict[str, list[pg.PlotDataItem]]:
    """Seed-study rows as mAP vs size (fp32 MB) on `plot`, one colour per criterion: each cut as pruned
    (hollow, unjoined) and fine-tuned (filled, joined: the criterion's curve). Returns the items per
    criterion; `labels` names them in the legend."""
    crits = list(dict.fromkeys(r["criterion"] for r in rows))
    order = [c for c in STUDY_COLOURS if c in crits] + sorted(c for c in crits if c not in STUDY_COLOURS)
    items: dict[str, list[pg.PlotDataItem]] = {}
    for i, crit in enumerate(order):
        colour = STUDY_COLOURS.get(crit) or pg.intColor(i, hues=max(len(order), 6)).getRgb()[:3]
        label = (labels or {}).get(crit) or crit or "original"
        sel = [r for r in rows if r["criterion"] == crit]
        before = [r for r in sel if r["map_before"] is not None]  # a staged row has no single cut to score
        after = [r for r in sel if r["map_after"] is not None]
        items[crit] = []
        if before:
            items[crit].append(plot.plot([r["size_mb"] for r in before], [r["map_before"] for r in before], pen=None,
                                         symbol="o", symbolBrush=None, symbolPen=pg.mkPen(colour, width=2),
                                         symbolSize=10, name=f"{label} (pruned)" if crit else label))
        if after:
            items[crit].append(plot.plot([r["size_mb"] for r in after], [r["map_after"] for r in after],
                                         pen=pg.mkPen(colour, width=1.5), symbol="o", symbolBrush=colour,
                                         symbolPen=colour, symbolSize=10, name=f"{label} (fine-tuned)"))
    return items


def read_study(path: str | os.PathLike) -> list[dict]:
    """The studies of a seed-study file (each with its rows), or InputError naming the file and the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise InputError(path, f"cannot read the study ({e.strerror or type(e).__name__})") from None
    except ValueError as e:
        raise InputError(path, f"not a study file (not JSON: {e})") from None
    if not isinstance(data, dict) or data.get("format") != STUDY_FORMAT:
        kind = str(data.get("format") if isinstance(data, dict) else None)[:40]
        raise InputError(path, f"not an os2d-studio study file (format {kind!r})")
    if not isinstance(data.get("version"), int) or data["version"] > STUDY_VERSION:
        raise InputError(path, f"study file version {data.get('version')!r}; this os2d-studio reads up to "
                               f"{STUDY_VERSION}")
    studies = data.get("studies")
    if not isinstance(studies, list) or not studies:
        raise InputError(path, "the study file holds no studies")

    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for k, study in enumerate(studies):
        rows = study.get("rows") if isinstance(study, dict) else None
        if not isinstance(rows, list) or not rows or not all(
                isinstance(r, dict) and isinstance(r.get("criterion"), str) and number(r.get("size_mb"))
                and all(r.get(m) is None or number(r.get(m)) for m in ("map_before", "map_after")) for r in rows):
            raise InputError(path, f"study {k + 1} has no rows of criterion, size_mb, map_before and map_after")
    return studies


class StudyPanel(QWidget):
    """The seed study's mAP vs size (one curve per criterion, as bench/seed_table.py plots it) with this
    session's original and pruned model on it: a point at their size and evaluated mAP, or a dashed line at
    their size while they are not evaluated."""

    def __init__(self, session: Session, current: Callable, role_colors: Mapping[str, tuple],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.current = current  # role -> the latest Evaluation of the session's model in that role, or None
        self.roles = dict(role_colors)  # "original" / "pruned" -> the colour the Metrics tab gives it
        try:
            self.studies, problem = read_study(study_path()), ""
        except InputError as e:
            self.studies, problem = [], str(e)
        self.choice = QComboBox()
        self.choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for st in self.studies:
            self.choice.addItem(f"{st.get('finetune_iterations', '?')} fine-tune iterations, "
                                f"{len({r['criterion'] for r in st['rows']} - {''})} criteria "
                                f"({st.get('section', '')}, {st.get('date', '')})")
        self.choice.setToolTip("Which run of the study: the same cuts, fine-tuned for a different budget")
        self.plot = make_plot("seed study: mAP@0.5 vs model size", "size (MB, fp32)", "mAP@0.5", title_size="10pt",
                              min_height=260)
        self.plot.addLegend(offset=(-8, -8), brush=pg.mkBrush(255, 255, 255, 215), pen=pg.mkPen(200, 200, 200),
                            labelTextColor="#333", labelTextSize="8pt", verSpacing=-4)
        self.curves: dict[str, list[pg.PlotDataItem]] = {}
        self.session_points = {role: pg.ScatterPlotItem(size=16, symbol="star", pen=pg.mkPen("w"),
                                                        brush=pg.mkBrush(*c), name=f"this session: {role}")
                               for role, c in self.roles.items()}
        dashed = {role: pg.mkPen(c, width=1.5, style=Qt.PenStyle.DashLine) for role, c in self.roles.items()}
        self.session_lines = {role: pg.InfiniteLine(angle=90, pen=pen) for role, pen in dashed.items()}
        # the lines' legend entries (an InfiniteLine draws no legend sample; a label on it would cover the study)
        self.line_keys = {role: pg.PlotDataItem([], [], pen=pen) for role, pen in dashed.items()}
        for role in self.roles:
            self.plot.addItem(self.session_points[role])
            self.plot.addItem(self.session_lines[role])
        self.note = QLabel(problem)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.RichText)
        self.note.setStyleSheet("color: palette(mid);")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Study"))
        bar.addWidget(self.choice)
        bar.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.note)
        self.choice.setVisible(len(self.studies) > 1)
        self.choice.currentIndexChanged.connect(lambda _i: self.show_study())
        self.show_study()

    def study(self) -> dict | None:
        i = self.choice.currentIndex()
        return self.studies[i] if 0 <= i < len(self.studies) else None

    def show_study(self) -> None:
        for items in self.curves.values():
            for item in items:
                self.plot.removeItem(item)
        st = self.study()
        self.curves = draw_study(self.plot, st["rows"], st.get("labels") or {}) if st else {}
        for role in self.roles:  # the session's markers drawn over the study
            for item in (self.session_points[role], self.session_lines[role]):
                self.plot.removeItem(item)
                self.plot.addItem(item)
        self.plot.setYRange(0.0, 1.0, padding=0.02)
        self.show_session()

    def show_session(self) -> None:
        """Place the session's models: size from their parameter count, mAP from their latest evaluation."""
        st = self.study()
        sizes = [r["size_mb"] for r in st["rows"]] if st else []
        seen = []
        for role in self.roles:
            info = self.session.model_info if role == "original" else self.session.pruned_info
            e = self.current(role) if info is not None else None
            size = info.summary.parameters * 4 / 1e6 if info is not None else None
            point, line = self.session_points[role], self.session_lines[role]
            if e is not None:
                point.setData([size], [e.map], data=[f"{role}: {size:.2f} MB, mAP {e.map:.4f}"])
            else:
                point.setData([], [])
            line.setVisible(info is not None and e is None)
            if size is not None:
                line.setValue(size)
                sizes.append(size)
            if e is not None:
                seen.append(f"{role} {e.map:.3f} on {e.images} images of {html.escape(e.dataset)} ({e.split})")
        if sizes:
            self.plot.setXRange(min(sizes), max(sizes), padding=0.08)
        if st:
            self.note.setText(self._describe(st, seen))
        self._fill_legend()

    def _fill_legend(self) -> None:
        """The legend in one order: the study's entries, then the session's that are on the plot
        (entries removed and added one by one would fill the gaps out of order)."""
        legend = self.plot.plotItem.legend
        legend.clear()
        for item in (it for items in self.curves.values() for it in items):
            legend.addItem(item, item.name())
        for role in self.roles:
            point = self.session_points[role]
            if len(point.data):
                legend.addItem(point, point.name())
            if self.session_lines[role].isVisible():
                legend.addItem(self.line_keys[role], f"this session: {role} (size; not evaluated)")

    def _describe(self, st: dict, seen: list[str]) -> str:
        sha = str(st.get("model_sha256", ""))
        info = self.session.model_info
        same = ("the open original" if info is not None and sha and info.loaded.sha256 == sha
                else "not the open original")
        text = (f"<b>{st.get('section', 'study')}</b>: {html.escape(str(st.get('model', '')))} (sha256 {sha[:12]}…, "
                f"{same}), benchmark {html.escape(str(st.get('dataset', '')))}, "
                f"{html.escape(str(st.get('val_images_note') or st.get('val_images', '?')))}; every cut fine-tuned "
                f"{st.get('finetune_iterations', '?')} iterations. Measured {st.get('date', '?')} on "
                f"{html.escape(str(st.get('machine', '?')))}. Hollow: pruned; filled: fine-tuned. ")
        if seen:
            text += ("★ this session's models, mAP as evaluated here (" + "; ".join(seen) + "): other images than "
                     "the study's, so compare retention, not absolute mAP. ")
        if any(line.isVisible() for line in self.session_lines.values()):
            text += "A dashed line: a model of this session at its size, not evaluated yet (Pruning tab → Evaluate)."
        return text
