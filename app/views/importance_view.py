"""The "Importance" tab: per-channel importance of every prunable unit as a heatmap with the plan's cut on
every row (`app.views.importance_heatmap`), and a closer look at one unit.

Hover reads unit, channel, rank and value; a click on a row shows that unit's sorted-importance curve,
its histogram and a scatter against a second criterion. Channels the plan removes are ranked by the
*plan's* criterion, which may differ from the one displayed. "Compute importance" runs `core.importance`
in the worker on a calibration set.

"Load reference…" reads another importance result of the same model in the worker (the staged ranking
`prune-stages` writes, `OUT.stages/lcp_staged.json`, or any `os2d-studio importance` output) into the
session's `reference`: its criteria join the scatter's second axis as "NAME (reference)"; a unit it does
not rank shows n/a.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from app.folders import documents_dir
from app.pruning_jobs import load_importance_job
from app.state import PREFERRED_CRITERIA, Session, reference_mismatch
from app.views.dataset_picker import DatasetPicker
from app.views.importance_heatmap import CUT_PEN, ImportanceHeatmap, heatmap_rows, kept_by_plan, normalize_unit
from app.views.elided_label import ElidedLabel
from app.views.plots import make_plot
from app.views.ratio_panel import fit_every_criterion, set_enabled, short_unit_name
from app.workbench import WorkbenchController
from core.importance.criteria import CRITERIA
from core.importance.result import GRADIENT_DESCRIPTIONS, describe_criterion
from core.prune.plan import plan_counts

GRADIENT_CRITERIA = GRADIENT_DESCRIPTIONS
DEFAULT_CRITERIA = ("combined", "weight_l1", "act_variance", "sparsity", "bn_gamma", "fg_bg_separation")
COMPUTE_TIP = ("Score every unit's channels with the checked criteria on the calibration images "
               "(runs in the background; Cancel in the status bar)")
LOAD_TIP = "An importance result from `os2d-studio importance` (PREFIX.json / .npz)"
REFERENCE_TIP = ("Compare with another ranking of this model's channels: the staged ranking prune-stages writes "
                 "(OUT.stages/lcp_staged.json) or any `os2d-studio importance` result; its criteria join "
                 "'Scatter vs' as '(reference)'")
REFERENCE_FILTER = "Importance results (*.json *.npz);;All files (*)"
REFERENCE = " (reference)"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (ties by order of appearance; enough for a plot title)."""
    if len(a) < 2:
        return float("nan")
    ra = np.argsort(np.argsort(np.nan_to_num(a, nan=-np.inf), kind="stable"), kind="stable").astype(float)
    rb = np.argsort(np.argsort(np.nan_to_num(b, nan=-np.inf), kind="stable"), kind="stable").astype(float)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den else float("nan")


def _plot(title: str, x: str, y: str) -> pg.PlotWidget:
    # shorter than the default: when the unit's title wraps onto a third line the plots shrink, not clip
    return make_plot(title, x, y, min_height=140)


class ImportanceView(QWidget):
    def __init__(self, session: Session, workbench: WorkbenchController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workbench = workbench
        self.selected: str | None = None  # unit name
        self._shown_importance = None  # the result the criterion combo was last chosen for
        self._matrix = np.zeros((0, 0))
        self._masks: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}

        # -- compute box
        self.dataset = DatasetPicker(session, workbench)
        self.criteria_boxes: dict[str, QCheckBox] = {}
        crit_grid = QGridLayout()
        names = list(CRITERIA) + list(GRADIENT_CRITERIA)
        for i, name in enumerate(names):
            box = QCheckBox(name + (" (gradient)" if name in GRADIENT_CRITERIA else ""))
            box.setChecked(name in DEFAULT_CRITERIA)
            box.setToolTip(GRADIENT_CRITERIA.get(name) or CRITERIA[name].description)
            crit_grid.addWidget(box, i // 2, i % 2)
            self.criteria_boxes[name] = box
        self.num_images = QSpinBox()
        self.num_images.setRange(1, 10_000)
        self.num_images.setValue(16)
        self.num_images.setToolTip("Calibration images (train split), spread evenly over the split")
        self.compute_button = QPushButton("Compute importance")

        self.compute_button.setMinimumHeight(32)
        self.compute_button.setStyleSheet("font-weight: bold;")
        self.load_button = QPushButton("Load…")
        buttons = QHBoxLayout()
        buttons.addWidget(self.compute_button, 1)
        buttons.addWidget(self.load_button)
        compute_box = QGroupBox("Compute importance")
        cl = QVBoxLayout(compute_box)
        cl.addWidget(QLabel("Dataset"))
        cl.addWidget(self.dataset)
        cl.addWidget(QLabel("Criteria"))
        cl.addLayout(crit_grid)
        form = QFormLayout()
        form.addRow("Calibration images", self.num_images)
        cl.addLayout(form)
        cl.addLayout(buttons)
        self.timings = QLabel()
        self.timings.setWordWrap(True)
        self.timings.setTextFormat(Qt.TextFormat.RichText)
        self.timings.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        timing_box = QGroupBox("Result")
        tl = QVBoxLayout(timing_box)
        tl.addWidget(self.timings)
        controls = QWidget()
        controls.setFixedWidth(290)
        c = QVBoxLayout(controls)
        c.setContentsMargins(0, 0, 0, 0)
        c.addWidget(compute_box)
        c.addWidget(timing_box)
        c.addStretch(1)

        # -- heatmap
        self.criterion = QComboBox()
        self.criterion.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        fit_every_criterion(self.criterion)
        self.criterion.setToolTip("The criterion that sorts and colours each row")
        # elided to the room it has: a long readout must not widen the window
        self.hover_label = ElidedLabel(mode=Qt.TextElideMode.ElideRight)
        self.hover_label.setMinimumWidth(120)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Criterion"))
        bar.addWidget(self.criterion)
        bar.addSpacing(12)
        bar.addWidget(self.hover_label, 1)
        self.heatmap = ImportanceHeatmap()
        self.heatmap.describe = self.describe_cell
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("color: palette(mid); font-size: 14px;")

        # -- one unit
        self.curve_plot = _plot("sorted importance", "rank", "score / unit max")
        self.curve = self.curve_plot.plot(pen=pg.mkPen("#3060c0", width=2))
        self.curve_cut = pg.InfiniteLine(angle=90, pen=CUT_PEN)
        self.curve_plot.addItem(self.curve_cut)
        self.hist_plot = _plot("histogram", "score", "channels")
        self.hist = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=(48, 96, 192, 120), pen=pg.mkPen("#3060c0"))
        self.hist_plot.addItem(self.hist)
        self.hist_cut = pg.InfiniteLine(angle=90, pen=CUT_PEN)
        self.hist_plot.addItem(self.hist_cut)
        self.scatter_plot = _plot("scatter", "", "")
        self.scatter = pg.ScatterPlotItem(size=6, pen=None)
        self.scatter_plot.addItem(self.scatter)
        self.versus = QComboBox()
        self.versus.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        fit_every_criterion(self.versus)
        self.versus.setToolTip("Second criterion of the scatter plot")
        self.unit_title = QLabel("<i>Click a row of the heatmap to inspect a unit.</i>")
        self.unit_title.setTextFormat(Qt.TextFormat.RichText)
        self.unit_title.setWordWrap(True)
        self.unit_title.setMinimumWidth(120)
        unit_bar = QHBoxLayout()
        unit_bar.addWidget(self.unit_title, 1)
        unit_bar.addWidget(QLabel("Scatter vs"))
        unit_bar.addWidget(self.versus)
        self.reference_button = QPushButton("Load reference…")
        unit_bar.addWidget(self.reference_button)
        plots = QHBoxLayout()
        for w in (self.curve_plot, self.hist_plot, self.scatter_plot):
            plots.addWidget(w)
        unit_box = QWidget()
        ul = QVBoxLayout(unit_box)
        ul.setContentsMargins(0, 0, 0, 0)
        ul.addLayout(unit_bar)
        ul.addLayout(plots)

        top = QWidget()
        tlay = QVBoxLayout(top)
        tlay.setContentsMargins(0, 0, 0, 0)
        tlay.addLayout(bar)
        tlay.addWidget(self.heatmap, 1)
        tlay.addWidget(self.empty_label, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(unit_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([520, 220])
        lay = QHBoxLayout(self)
        lay.addWidget(controls)
        lay.addWidget(splitter, 1)

        # -- wiring
        self.compute_button.clicked.connect(self.compute)
        self.load_button.clicked.connect(lambda: workbench.load_importance())
        self.reference_button.clicked.connect(lambda: self.load_reference())
        self.criterion.currentTextChanged.connect(self._criterion_changed)
        self.versus.currentTextChanged.connect(lambda _t: self._show_unit())
        self.heatmap.sigRowClicked.connect(self._row_clicked)
        self.heatmap.sigHover.connect(self.hover_label.setText)
        session.importanceChanged.connect(self.refresh)
        session.referenceChanged.connect(self.refresh)
        session.modelChanged.connect(self.refresh)
        session.planChanged.connect(self._show_plan)
        workbench.runner.busyChanged.connect(self._update_enabled)
        self.refresh()

    # -- actions ----------------------------------------------------------------------------------------
    def chosen_criteria(self) -> list[str]:
        return [name for name, box in self.criteria_boxes.items() if box.isChecked()]

    def compute(self) -> bool:
        return self.workbench.compute_importance(self.chosen_criteria(), self.num_images.value())

    def load_reference(self, path: str | None = None) -> bool:
        """Read an importance result of the open model in the worker and compare the scatter with it; a file
        that cannot be read, or one of another model, is told with its name and the problem."""
        wb, s = self.workbench, self.session
        if s.model_info is None:
            wb.dialogs.warning("Cannot load a reference", "Open a model first (Model panel).")
            return False
        if path is None:
            path = wb.dialogs.open_file("Load reference importance", REFERENCE_FILTER, self._reference_folder())
            if not path:
                return False
        info = s.model_info

        def done(result) -> None:
            if s.model_info is not info:  # another model arrived while it loaded
                return
            problem = reference_mismatch(result, info)
            if problem:
                wb.dialogs.error("Cannot use this reference", f"{path}: {problem}")
                return
            s.set_reference(result, str(path))

        if wb.runner.start("Loading reference importance", load_importance_job, str(path), on_result=done) is None:
            wb.dialogs.warning("Cannot load a reference", f"Wait for '{wb.runner.current_name}' to finish, "
                                                          "or cancel it.")
            return False
        return True

    def _reference_folder(self) -> str:
        """Where the last reference came from, else the project's folder, else Documents/os2d-studio."""
        s = self.session
        for p in (s.reference_path, s.project_path):
            if p and Path(p).parent.is_dir():
                return str(Path(p).parent)
        return str(documents_dir())

    def select_unit(self, name: str | None) -> None:
        imp = self.session.importance
        self.selected = name if imp is not None and name in imp.units else None
        self.heatmap.set_selected(imp.units.index(self.selected) if self.selected else None)
        self._show_unit()

    def _row_clicked(self, row: int) -> None:
        imp = self.session.importance
        if imp is not None and 0 <= row < len(imp.units):
            self.select_unit(imp.units[row])

    # -- session -> widgets ------------------------------------------------------------------------------
    def _update_enabled(self, *_args) -> None:
        busy = self.workbench.runner.busy
        has_model = self.session.model_info is not None and bool(self.session.model_info.units)
        why = (f"wait for the running job ({self.workbench.runner.current_name}) or cancel it" if busy
               else "open a model first (Model panel)")
        set_enabled(self.compute_button, has_model and not busy, why, COMPUTE_TIP)
        set_enabled(self.load_button, has_model and not busy, why, LOAD_TIP)
        set_enabled(self.reference_button, has_model and not busy, why, REFERENCE_TIP)

    def refresh(self) -> None:
        imp = self.session.importance
        self._update_enabled()
        crits = list(imp.criteria) if imp is not None else []
        ref = self.session.reference
        for combo, refs in ((self.criterion, []), (self.versus, list(ref.criteria) if ref is not None else [])):
            combo.blockSignals(True)
            old = combo.currentText()
            combo.clear()
            for name in crits:
                combo.addItem(name)
                combo.setItemData(combo.count() - 1, describe_criterion(name), Qt.ItemDataRole.ToolTipRole)
            for name in refs:  # the reference's criteria: data says which result scores them
                combo.addItem(name + REFERENCE, name)
                combo.setItemData(combo.count() - 1, f"{describe_criterion(name) or name}\nfrom "
                                  f"{self.session.reference_path}", Qt.ItemDataRole.ToolTipRole)
            if combo.findText(old) >= 0:
                combo.setCurrentText(old)
            combo.blockSignals(False)
        if imp is not None:
            # a new result opens on its gradient-free score (the plan may rank by weight L1 meanwhile: the
            # cut lines say which); the same result keeps the user's choice
            fresh = imp is not self._shown_importance
            self._shown_importance = imp
            if fresh or self.criterion.currentText() not in crits:
                plan_crit = self.session.plan.criterion
                pick = next((c for c in PREFERRED_CRITERIA if c in crits), plan_crit if plan_crit in crits else crits[0])
                self.criterion.blockSignals(True)
                self.criterion.setCurrentText(pick)
                self.criterion.blockSignals(False)
        has = imp is not None
        self.heatmap.setVisible(has)
        self.empty_label.setVisible(not has)
        if not has:
            self.empty_label.setText("No importance yet. Open a model, choose a dataset and criteria on the left, "
                                     "then Compute importance." if self.session.model is not None
                                     else "Open a model (Model panel) to rank its channels.")
        if self.selected and (imp is None or self.selected not in imp.units):
            self.selected = None
        self.timings.setText(self._timings_text())
        self._criterion_changed()

    def _criterion_changed(self, *_args) -> None:
        imp = self.session.importance
        crit = self.criterion.currentText()
        if imp is None or crit not in imp.criteria:
            self._matrix = np.zeros((0, 0))
            self.heatmap.set_rows(self._matrix, [], [])
            self._show_unit()
            return
        if self.versus.currentText() == crit and len(imp.criteria) > 1:  # a scatter against itself says nothing
            self.versus.blockSignals(True)
            self.versus.setCurrentText(next(c for c in imp.criteria if c != crit))
            self.versus.blockSignals(False)
        self._matrix = heatmap_rows(imp, crit)
        self.heatmap.set_rows(self._matrix, [short_unit_name(u) for u in imp.units], list(imp.channels))
        self._show_plan()
        self.select_unit(self.selected)

    def _plan_criterion(self) -> str:
        imp = self.session.importance
        c = self.session.plan.criterion
        return c if imp is not None and c in imp.criteria else self.criterion.currentText()

    def _show_plan(self) -> None:
        imp = self.session.importance
        info = self.session.model_info
        crit = self.criterion.currentText()
        if imp is None or crit not in imp.criteria:
            return
        units = info.units if info is not None else ()
        self._counts = plan_counts(self.session.plan, units) if units else {}
        self._masks = kept_by_plan(imp, self._plan_criterion(), self._counts)
        pruned = np.zeros(self._matrix.shape, dtype=bool)
        for i, name in enumerate(imp.units):
            order = imp.orders[crit][name]
            pruned[i, : len(order)] = ~self._masks[name][order]
        self.heatmap.set_plan([self._counts.get(n, c) for n, c in zip(imp.units, imp.channels)], pruned)
        self._show_unit()

    def describe_cell(self, row: int, col: int) -> str:
        """Hover text: unit, channel index, rank, raw and normalized score, kept or removed by the plan."""
        imp = self.session.importance
        crit = self.criterion.currentText()
        if imp is None or crit not in imp.criteria or row >= len(imp.units):
            return ""
        name = imp.units[row]
        order = imp.orders[crit][name]
        if col >= len(order):
            return ""
        ch = int(order[col])
        raw = float(imp.scores[crit][name][ch])
        kept = bool(self._masks[name][ch]) if name in self._masks else True
        state = "kept" if kept else f"removed by the plan ({self._plan_criterion()})"
        # what the plan does with the channel before the numbers: the readout may be elided at its end
        return (f"{short_unit_name(name)} · channel {ch} · rank {col + 1}/{len(order)} · {state} · "
                f"{crit} {raw:.4g} ({float(self._matrix[row, col]):.2f} of unit max)")

    def _show_unit(self) -> None:
        imp = self.session.importance
        crit = self.criterion.currentText()
        name = self.selected
        if imp is None or name is None or crit not in imp.criteria:
            self.curve.setData([], [])
            self.hist.setData([0, 1], [0])
            self.scatter.setData([], [])
            self.curve_cut.setVisible(False)
            self.hist_cut.setVisible(False)
            self.unit_title.setText("<i>Click a row of the heatmap to inspect a unit.</i>")
            return
        scores = np.asarray(imp.scores[crit][name], dtype=np.float64)
        order = imp.orders[crit][name]
        c = len(scores)
        k = self._counts.get(name, c)
        norm = normalize_unit(scores)[order]
        self.curve.setData(np.arange(c), norm)
        self.curve_cut.setValue(k)
        self.curve_cut.setVisible(k < c)
        self.curve_plot.setTitle(f"sorted {crit}", color="#333", size="9pt")
        finite = scores[np.isfinite(scores)]
        bins = max(5, min(40, c // 4))
        counts, edges = np.histogram(finite, bins=bins) if finite.size else (np.zeros(1), np.array([0.0, 1.0]))
        self.hist.setData(edges, counts)
        self.hist_plot.setTitle(f"histogram of {crit}", color="#333", size="9pt")
        if k < c and k > 0:
            self.hist_cut.setValue(float(scores[order[k - 1]]))  # the lowest score kept (by this criterion)
            self.hist_cut.setVisible(True)
        else:
            self.hist_cut.setVisible(False)
        other = self.versus.currentText()
        mask = self._masks.get(name, np.ones(c, dtype=bool))
        ys = self._versus_scores(name)
        if ys is not None and len(ys) == c:
            brushes = [pg.mkBrush(48, 96, 192, 170) if m else pg.mkBrush(208, 40, 40, 200) for m in mask]
            self.scatter.setData(scores, ys, brush=brushes)
            self.scatter_plot.setTitle(f"ρ = {spearman(scores, ys):.2f} (Spearman)", color="#333", size="9pt")
        elif other:  # a reference that does not rank this unit
            self.scatter.setData([], [])
            self.scatter_plot.setTitle("ρ = n/a (unit not in the reference)", color="#333", size="9pt")
        if other:
            self.scatter_plot.setLabel("bottom", crit)
            ref_crit = self.versus.currentData()  # the axis is short: "lcp_staged (ref.)"
            self.scatter_plot.setLabel("left", f"{ref_crit} (ref.)" if ref_crit else other)
        self.unit_title.setText(f"<b>{short_unit_name(name)}</b> — {c} channels; the plan keeps "
                                f"<span style='color:#3060c0'>● {int(mask.sum())}</span>, removes "
                                f"<span style='color:#d02828'>● {c - int(mask.sum())}</span> "
                                f"(by {self._plan_criterion()})")

    def _versus_scores(self, unit: str) -> np.ndarray | None:
        """The unit's scores under the scatter's second criterion (the session's or the reference's), or None."""
        ref_crit = self.versus.currentData()
        result = self.session.reference if ref_crit else self.session.importance
        crit = ref_crit or self.versus.currentText()
        if result is None or crit not in result.criteria or unit not in result.scores[crit]:
            return None
        return np.asarray(result.scores[crit][unit], dtype=np.float64)

    def _reference_text(self) -> str:
        ref = self.session.reference
        if ref is None:
            return ""
        total = len(self.session.model_info.units) if self.session.model_info is not None else len(ref.units)
        return (f"<br>reference: {', '.join(ref.criteria)} ranking {len(ref.units)} of {total} units, from "
                f"{html.escape(Path(self.session.reference_path or '').name)}")

    def _timings_text(self) -> str:
        imp = self.session.importance
        if imp is None:
            return "<i>No importance result.</i>" + self._reference_text()
        cal = imp.calibration
        rows = []
        free = 0.0
        grad = {}
        for phase, m in imp.timings.items():
            if phase in GRADIENT_CRITERIA:
                grad[phase] = m.seconds
            else:
                free += m.seconds
            mib = f"{m.peak_bytes / 2**20:.0f} MiB" if m.peak_bytes else ""
            rows.append(f"<tr><td>{phase}</td><td align=right>&nbsp;{m.seconds:.2f} s</td>"
                        f"<td align=right>&nbsp;{mib}</td></tr>")
        text = (f"{len(imp.units)} units, {len(imp.criteria)} criteria<br>"
                f"calibration: {len(cal.image_ids)} images of {cal.dataset} ({cal.split}), target {cal.target_size:g}"
                f"<br><table>{''.join(rows)}</table>")
        if free:
            text += f"<br><b>gradient-free: {free:.2f} s</b>"
        for name, sec in grad.items():
            ratio = f" ({sec / free:.1f}× the gradient-free pass)" if free > 0 else ""
            text += f"<br><b>{name}: {sec:.2f} s</b>{ratio}"
        return text + self._reference_text()


__all__ = ["ImportanceView", "spearman"]
