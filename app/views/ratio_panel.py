"""The ratio panel: the pruning plan as sliders (global, one per group, one per unit) and the parameters,
MACs and fp32 size it predicts, following the sliders live.

The plan lives in the session (`Session.plan`, a `core.prune.plan.PruningPlan`); this panel only edits it
and shows it. Precedence is the plan's: a unit's own ratio > its group's > the global one. A *locked* row
is one with its own ratio (an override): it keeps its value when the global or group slider moves;
unlocking (or Reset) removes the override and the row follows again. Predictions come from the model's
`PlanCostModel` (computed with the model load, in the worker): `plan_counts` + `predict` are a few numpy
dot products (~0.1 ms), so they run on the GUI thread on every slider step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QPushButton, QSizePolicy, QSpinBox,
                               QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)
from superqt import QLabeledDoubleSlider

from app.pruning_jobs import DATA_FREE
from app.state import Session
from core.prune.plan import GROUPS, MAX_RATIO, PlanCostModel, Prediction, PruningPlan, plan_counts
from core.prune.units import REGRESSOR, TRUNK, Unit

GROUP_TITLES = {"stem": "Stem", "layer1": "Layer 1", "layer2": "Layer 2", "layer3": "Layer 3",
                "transform": "Transform net"}
UNIT_COLUMNS = ("Unit", "Group", "Channels", "Ratio removed", "Kept", "Lock")
COL_SLIDER, COL_KEPT, COL_LOCK = 3, 4, 5


def short_unit_name(name: str) -> str:
    """`layer3.2.conv1` for `net_feature_maps.layer3.2.conv1`; `transform.conv.0` for the head's units."""
    if name.startswith(TRUNK + "."):
        return name[len(TRUNK) + 1:]
    if name.startswith(REGRESSOR + "."):
        return "transform." + name[len(REGRESSOR) + 1:]
    return name


def ratio_slider() -> QLabeledDoubleSlider:
    s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    s.setRange(0.0, MAX_RATIO)
    s.setSingleStep(0.01)
    s.setDecimals(2)
    s.setValue(0.0)
    s.setToolTip("Fraction of the channels removed")
    return s


def fmt_change(new: float, base: float) -> str:
    if not base:
        return ""
    d = new / base - 1.0
    return "±0 %" if abs(d) < 5e-4 else f"{d:+.1%}".replace("-", "−")


class RatioPanel(QWidget):
    """Global / group / unit ratio sliders with lock and reset, plan options, live predictions."""

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._syncing = False
        self._units: tuple[Unit, ...] = ()
        self.prediction: Prediction | None = None
        self.counts: dict[str, int] = {}

        # -- global and groups
        self.global_slider = ratio_slider()
        self.reset_all = QPushButton("Reset")
        self.reset_all.setToolTip("Remove every group and unit override and set the global ratio to 0")
        ratios_box = QGroupBox("Ratios: fraction of channels removed")
        grid = QGridLayout(ratios_box)
        grid.setColumnStretch(1, 1)
        grid.addWidget(QLabel("<b>All units</b>"), 0, 0)
        grid.addWidget(self.global_slider, 0, 1)
        grid.addWidget(self.reset_all, 0, 2, 1, 2)
        self.group_sliders: dict[str, QLabeledDoubleSlider] = {}
        self.group_locks: dict[str, QCheckBox] = {}
        self.group_resets: dict[str, QToolButton] = {}
        for row, g in enumerate(GROUPS, start=1):
            slider = ratio_slider()
            lock = QCheckBox("lock")
            lock.setToolTip("Locked: this group keeps its own ratio when the global slider moves")
            reset = QToolButton()
            reset.setText("Reset")
            reset.setToolTip("Follow the global ratio again")
            grid.addWidget(QLabel(GROUP_TITLES[g]), row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(lock, row, 2)
            grid.addWidget(reset, row, 3)
            slider.valueChanged.connect(lambda v, g=g: self._group_moved(g, v))
            lock.toggled.connect(lambda on, g=g: self._group_locked(g, on))
            reset.clicked.connect(lambda _=False, g=g: self._group_locked(g, False))
            self.group_sliders[g], self.group_locks[g], self.group_resets[g] = slider, lock, reset

        # -- options
        self.criterion = QComboBox()
        self.criterion.setToolTip("<p>Which importance ranks the channels of each unit (the lowest are removed). "
                                  "On the default model, combined keeps the most mAP as cut; weight_l1 recovers "
                                  "fastest when fine-tuned (bench/RESULTS.md, seed table).</p>")  # rich text wraps
        self.min_channels = QSpinBox()
        self.min_channels.setRange(1, 4096)
        self.min_channels.setToolTip("Every unit keeps at least this many channels")
        self.round_to = QSpinBox()
        self.round_to.setRange(1, 256)
        self.round_to.setToolTip("Kept channels are rounded up to a multiple of this (fast kernels)")
        self.prune_trunk_output = QCheckBox("Prune the trunk output")
        self.prune_trunk_output.setToolTip("The layer-3 output channels read by the correlation of both branches "
                                           "(OS2D's feature dimension)")
        self.prune_head = QCheckBox("Prune the transform net")
        self.prune_head.setToolTip("The two hidden layers of the transformation net that regresses the box geometry")
        options_box = QGroupBox("Plan options")
        form = QFormLayout(options_box)
        form.addRow("Criterion", self.criterion)
        mins = QHBoxLayout()
        mins.addWidget(self.min_channels)
        mins.addWidget(QLabel("round to"))
        mins.addWidget(self.round_to)
        mins.addStretch(1)
        form.addRow("Min channels", mins)
        form.addRow(self.prune_trunk_output)
        form.addRow(self.prune_head)

        # -- predictions
        pred_box = QGroupBox("Predicted size and cost")
        pred_box.setToolTip("Analytic prediction from kept channel counts (PlanCostModel), no model is built")
        pg = QGridLayout(pred_box)
        for col, title in enumerate(("", "Original", "Plan", "Change")):
            lab = QLabel(f"<b>{title}</b>")
            lab.setAlignment(Qt.AlignmentFlag.AlignRight if col else Qt.AlignmentFlag.AlignLeft)
            pg.addWidget(lab, 0, col)
        self.pred_labels: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        for row, key in enumerate(("Parameters", "MACs", "Size (fp32)", "Feature channels"), start=1):
            pg.addWidget(QLabel(key), row, 0)
            cells = tuple(QLabel() for _ in range(3))
            for col, lab in enumerate(cells, start=1):
                lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                pg.addWidget(lab, row, col)
            self.pred_labels[key] = cells
        self.pred_note = QLabel()
        self.pred_note.setWordWrap(True)
        self.pred_note.setStyleSheet("color: palette(mid);")
        pg.addWidget(self.pred_note, 5, 0, 1, 4)

        # -- units
        self.table = QTableWidget(0, len(UNIT_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(UNIT_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(28)
        h = self.table.horizontalHeader()
        # column widths are set once per model (`_rebuild_units`): with ResizeToContents every "Kept" update
        # would re-measure the whole column, which made a slider step cost ~80 ms on ResNet-101's 66 units
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(COL_SLIDER, QHeaderView.ResizeMode.Stretch)
        self.unit_sliders: dict[str, QLabeledDoubleSlider] = {}
        self.unit_locks: dict[str, QCheckBox] = {}
        self.unit_rows: dict[str, int] = {}
        self.empty_label = QLabel("Open a model (Model panel) to plan its pruning.")
        self.empty_label.setStyleSheet("color: palette(mid);")

        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(ratios_box)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(pred_box)
        right.addWidget(options_box)
        right.addStretch(1)
        top.addLayout(left, 3)
        top.addLayout(right, 2)
        units_title = QLabel("<b>Units</b> — a unit's own ratio overrides its group's")
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.empty_label)
        lay.addWidget(units_title)
        lay.addWidget(self.table, 1)
        ratios_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        # -- wiring
        self.global_slider.valueChanged.connect(self._global_moved)
        self.reset_all.clicked.connect(self.reset)
        self.criterion.currentTextChanged.connect(lambda t: self._change(criterion=t) if t else None)
        self.min_channels.valueChanged.connect(lambda v: self._change(min_channels=int(v)))
        self.round_to.valueChanged.connect(lambda v: self._change(round_to=int(v)))
        self.prune_trunk_output.toggled.connect(lambda on: self._switch("prune_trunk_output", on))
        self.prune_head.toggled.connect(lambda on: self._switch("prune_head", on))
        session.planChanged.connect(self.refresh)
        session.modelChanged.connect(self.refresh)
        session.importanceChanged.connect(self.refresh)
        self.refresh()

    # -- widgets -> plan --------------------------------------------------------------------------------
    @property
    def plan(self) -> PruningPlan:
        return self.session.plan

    def _change(self, **changes) -> None:
        if not self._syncing:
            self.session.set_plan(self.plan.with_changes(**changes))

    def _global_moved(self, value: float) -> None:
        self._change(ratio=round(float(value), 4))

    def _group_moved(self, group: str, value: float) -> None:
        ratios = self.plan.group_ratio_map
        ratios[group] = round(float(value), 4)
        self._change(group_ratios=ratios)

    def _group_locked(self, group: str, on: bool) -> None:
        ratios = self.plan.group_ratio_map
        if on:
            ratios.setdefault(group, round(float(self.group_sliders[group].value()), 4))
        else:
            ratios.pop(group, None)
        self._change(group_ratios=ratios)

    def _unit_moved(self, name: str, value: float) -> None:
        ratios = self.plan.unit_ratio_map
        ratios[name] = round(float(value), 4)
        self._change(unit_ratios=ratios)

    def _unit_locked(self, name: str, on: bool) -> None:
        ratios = self.plan.unit_ratio_map
        if on:
            ratios.setdefault(name, round(float(self.unit_sliders[name].value()), 4))
        else:
            ratios.pop(name, None)
        self._change(unit_ratios=ratios)

    def _switch(self, name: str, on: bool) -> None:
        """Turning a switch off also drops the overrides of the units it now keeps whole."""
        if self._syncing:
            return
        plan = self.plan.with_changes(**{name: bool(on)})
        units = {u.name: u for u in self._units}
        overrides = {n: r for n, r in plan.unit_ratios if n not in units or not plan.excludes(units[n])}
        self.session.set_plan(plan.with_changes(unit_ratios=overrides))

    def reset(self) -> None:
        self.session.set_plan(self.plan.with_changes(ratio=0.0, group_ratios={}, unit_ratios={}))

    # -- API used by tests and other code ---------------------------------------------------------------
    def set_unit_ratio(self, name: str, value: float) -> None:
        """What moving a unit's slider does."""
        self.unit_sliders[name].setValue(value)

    # -- session -> widgets ------------------------------------------------------------------------------
    def _rebuild_units(self, units: tuple[Unit, ...]) -> None:
        self._units = units
        self.table.setRowCount(0)
        self.unit_sliders.clear()
        self.unit_locks.clear()
        self.unit_rows.clear()
        self.table.setRowCount(len(units))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for row, u in enumerate(units):
            name = QTableWidgetItem(short_unit_name(u.name))
            name.setToolTip(f"{u.name}\n{u.kind} unit; producers: {', '.join(u.producers)}")
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, QTableWidgetItem(u.group))
            ch = QTableWidgetItem(str(u.channels))
            ch.setTextAlignment(right)
            self.table.setItem(row, 2, ch)
            slider = ratio_slider()
            slider.valueChanged.connect(lambda v, n=u.name: self._unit_moved(n, v))
            self.table.setCellWidget(row, COL_SLIDER, slider)
            kept = QTableWidgetItem()
            kept.setTextAlignment(right)
            self.table.setItem(row, COL_KEPT, kept)
            lock = QCheckBox()
            lock.setToolTip("Locked: this unit keeps its own ratio when the group or global slider moves")
            lock.toggled.connect(lambda on, n=u.name: self._unit_locked(n, on))
            holder = QWidget()
            hl = QHBoxLayout(holder)
            hl.setContentsMargins(6, 0, 6, 0)
            hl.addWidget(lock)
            self.table.setCellWidget(row, COL_LOCK, holder)
            self.unit_sliders[u.name], self.unit_locks[u.name], self.unit_rows[u.name] = slider, lock, row
        for c in range(len(UNIT_COLUMNS)):
            if c != COL_SLIDER:
                self.table.resizeColumnToContents(c)
        self.table.setColumnWidth(COL_KEPT, max(self.table.columnWidth(COL_KEPT),
                                                self.table.fontMetrics().horizontalAdvance("0000 / 0000") + 16))

    def _criteria(self) -> list[str]:
        imp = self.session.importance
        names = list(imp.criteria) if imp is not None else []
        return names + [c for c in DATA_FREE if c not in names]

    def refresh(self) -> None:
        s = self.session
        info = s.model_info
        units = tuple(info.units) if info is not None else ()
        if tuple((u.name, u.channels) for u in units) != tuple((u.name, u.channels) for u in self._units):
            self._rebuild_units(units)
        plan = s.plan
        present = {u.group for u in units}
        self._syncing = True
        try:
            self.global_slider.setValue(plan.ratio)
            groups = plan.group_ratio_map
            for g in GROUPS:
                excluded = g == "transform" and not plan.prune_head
                self.group_sliders[g].setValue(groups.get(g, plan.ratio))
                self.group_locks[g].setChecked(g in groups)
                usable = g in present and not excluded
                for w in (self.group_sliders[g], self.group_locks[g], self.group_resets[g]):
                    w.setEnabled(usable)
                self.group_resets[g].setEnabled(usable and g in groups)
                tip = ("" if g in present or not units else
                       f"This model has no separate {g} unit (ResNet-18/34: the stem is coupled to layer 1)")
                self.group_sliders[g].setToolTip(tip or "Fraction of this group's channels removed")
            self.counts = plan_counts(plan, units) if units else {}
            overrides = plan.unit_ratio_map
            for u in units:
                slider = self.unit_sliders[u.name]
                slider.setValue(plan.ratio_for(u))
                self.unit_locks[u.name].setChecked(u.name in overrides)
                excluded = plan.excludes(u)
                slider.setEnabled(not excluded)
                self.unit_locks[u.name].setEnabled(not excluded)
                item = self.table.item(self.unit_rows[u.name], COL_KEPT)
                text = f"{self.counts[u.name]} / {u.channels}"
                if item.text() != text:
                    item.setText(text)
            crits = self._criteria()
            if [self.criterion.itemText(i) for i in range(self.criterion.count())] != crits:
                self.criterion.clear()
                self.criterion.addItems(crits)
            if plan.criterion not in crits:
                self.criterion.addItem(plan.criterion)
            self.criterion.setCurrentText(plan.criterion)
            self.min_channels.setValue(plan.min_channels)
            self.round_to.setValue(plan.round_to)
            self.prune_trunk_output.setChecked(plan.prune_trunk_output)
            self.prune_head.setChecked(plan.prune_head)
        finally:
            self._syncing = False
        self.empty_label.setVisible(not units)
        self.table.setEnabled(bool(units))
        self._show_prediction(info.cost if info is not None else None)

    def _show_prediction(self, cost: PlanCostModel | None) -> None:
        if cost is None or not self.counts:
            self.prediction = None
            for cells in self.pred_labels.values():
                for lab in cells:
                    lab.setText("–")
            self.pred_note.setText("")
            return
        p = cost.predict(self.counts)
        b = cost.base
        self.prediction = p
        rows = {
            "Parameters": (f"{b.parameters:,}", f"{p.parameters:,}", fmt_change(p.parameters, b.parameters)),
            "MACs": (f"{b.macs / 1e9:.2f} G", f"{p.macs / 1e9:.2f} G", fmt_change(p.macs, b.macs)),
            "Size (fp32)": (f"{b.size_mb:.2f} MB", f"{p.size_mb:.2f} MB", fmt_change(p.size_mb, b.size_mb)),
            "Feature channels": (str(b.feature_dim), str(p.feature_dim), fmt_change(p.feature_dim, b.feature_dim)),
        }
        for key, texts in rows.items():
            for lab, text in zip(self.pred_labels[key], texts):
                lab.setText(text)
            change = self.pred_labels[key][2]
            change.setStyleSheet("color: #1a7f37; font-weight: bold;" if texts[2].startswith("−") else "")
        pruned = sum(1 for u in self._units if self.counts.get(u.name, u.channels) < u.channels)
        h, w = p.input_size
        self.pred_note.setText(f"{pruned} of {len(self._units)} units pruned. MACs for a {w}×{h} target and "
                               f"{p.num_classes} class image of {p.class_image_size} px.")
