"""The ratio panel: the pruning plan as sliders (global, one per group, one per unit) and the parameters,
MACs and fp32 size it predicts, following the sliders live.

The plan lives in the session (`Session.plan`, a `core.prune.plan.PruningPlan`); this panel only edits it
and shows it. Precedence is the plan's: a unit's own ratio > its group's > the global one. A *locked* row
is one with its own ratio (an override): it keeps its value when the global or group slider moves;
unlocking (or Reset) removes the override and the row follows again. Predictions come from the model's
`PlanCostModel` (computed with the model load, in the worker): `plan_counts` + `predict` are a few numpy
dot products (~0.1 ms), so they run on the GUI thread on every slider step.

Layout: the ratio sliders span the panel's width (each track at least `MIN_TRACK_PX`, so a pixel of drag
is a small step even in a 1280 px window), predictions and options sit side by side below, then the units.
A control that is off says why in its tooltip (`set_enabled`), and a group slider that cannot apply to
this model also says so next to it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QHeaderView, QLabel, QPushButton, QSizePolicy, QSlider, QSpinBox, QStyle,
                               QStyleOptionComboBox, QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout,
                               QWidget)
from superqt import QLabeledDoubleSlider

from core.importance.criteria import DATA_FREE
from core.importance.result import ALL_CRITERIA
from app.state import Session
from core.prune.plan import GROUPS, MAX_RATIO, PlanCostModel, Prediction, PruningPlan, plan_counts
from core.prune.units import REGRESSOR, TRUNK, Unit

GROUP_TITLES = {"stem": "Stem", "layer1": "Layer 1", "layer2": "Layer 2", "layer3": "Layer 3",
                "transform": "Transform net"}
UNIT_COLUMNS = ("Unit", "Group", "Channels", "Ratio removed", "Kept", "Lock")
COL_CHANNELS, COL_SLIDER, COL_KEPT, COL_LOCK = 2, 3, 4, 5  # the column indices are the table's API
MIN_TRACK_PX = 150  # a ratio slider's track: 0..0.95 over >= 150 px is <= 0.007 per pixel


def short_unit_name(name: str) -> str:
    """`layer3.2.conv1` for `net_feature_maps.layer3.2.conv1`; `transform.conv.0` for the head's units."""
    if name.startswith(TRUNK + "."):
        return name[len(TRUNK) + 1:]
    if name.startswith(REGRESSOR + "."):
        return "transform." + name[len(REGRESSOR) + 1:]
    return name



def fit_every_criterion(combo: QComboBox) -> None:
    """A criterion combo exactly as wide as its longest possible item from the start: its width never
    waits on a re-layout after the items change (which sometimes came late and cut "fg_bg_separation")."""
    fm = combo.fontMetrics()
    longest = max(ALL_CRITERIA, key=fm.horizontalAdvance)
    opt = QStyleOptionComboBox()
    combo.initStyleOption(opt)
    opt.currentText = longest
    size = combo.style().sizeFromContents(QStyle.ContentsType.CT_ComboBox, opt,
                                          QSize(fm.horizontalAdvance(longest), fm.height()), combo)
    combo.setMinimumWidth(size.width())

class RatioSlider(QLabeledDoubleSlider):
    """A ratio slider with its value beside it; the track never shrinks below `min_track` pixels."""

    def __init__(self, min_track: int = MIN_TRACK_PX, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setRange(0.0, MAX_RATIO)
        self.setSingleStep(0.01)
        self.setDecimals(2)
        self.setValue(0.0)
        self.track.setMinimumWidth(min_track)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Fraction of the channels removed")

    @property
    def track(self) -> QSlider:
        """The slider itself (without the value box): what a drag moves over."""
        return self._slider

    def setToolTip(self, text: str) -> None:  # noqa: N802 - Qt API
        """On the track and the value box too: the tooltip is seen wherever the mouse rests, enabled or not."""
        super().setToolTip(text)
        for child in (self._slider, self._label):
            child.setToolTip(text)


def ratio_slider(min_track: int = MIN_TRACK_PX) -> RatioSlider:
    return RatioSlider(min_track)


def set_enabled(widget: QWidget, enabled: bool, why_not: str, tip: str = "") -> None:
    """Enable `widget`, or disable it and say why in its tooltip (Qt shows tooltips of disabled widgets)."""
    widget.setEnabled(enabled)
    if enabled:
        text = tip
    else:  # rich text, so Qt wraps a long reason instead of running it across the screen
        text = (f"<p>{html.escape(tip)}</p>" if tip else "") + f"<p><i>Unavailable:</i> {html.escape(why_not)}</p>"
    if widget.toolTip() != text:  # refresh runs on every slider step
        widget.setToolTip(text)


def group_unavailable(group: str, present: set[str], has_units: bool, prune_head: bool) -> str:
    """Why a group slider cannot act on this model ('' when it can)."""
    if not has_units:
        return "open a model first (Model panel)"
    if group == "transform" and not prune_head:
        return "“Prune the transform net” is off (Plan options)"
    if group not in present:
        if group == "stem":
            return ("this model has no separate stem unit: its stem conv is coupled to layer 1 by the residual "
                    "connection (ResNet-18/34), so the Layer 1 slider prunes it")
        return f"this model has no {GROUP_TITLES.get(group, group)} unit"
    return ""


def unit_excluded_reason(unit: Unit, plan: PruningPlan) -> str:
    """Why a unit's slider is off ('' when the plan may prune it)."""
    if unit.kind == "head" and not plan.prune_head:
        return "“Prune the transform net” is off (Plan options)"
    if unit.feeds_correlation and not plan.prune_trunk_output:
        return "it feeds the correlation (the trunk output) and “Prune the trunk output” is off (Plan options)"
    return ""


PRED_TITLES = {"Feature channels": "Features"}  # short row titles keep the predictions beside the options


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
        self.global_slider.setToolTip("Fraction of the channels removed from every unit without its own "
                                      "or its group's ratio")
        self.allocate_button = QPushButton("Allocate across units")
        self.allocate_note = QLabel()
        self.allocate_note.setStyleSheet("color: palette(mid);")
        self.allocate_note.setWordWrap(True)
        ratios_box = QGroupBox("Ratios: fraction of channels removed")
        grid = QGridLayout(ratios_box)
        grid.setColumnStretch(1, 1)
        grid.addWidget(QLabel("<b>All units</b>"), 0, 0)
        grid.addWidget(self.global_slider, 0, 1)
        grid.addWidget(self.reset_all, 0, 2, 1, 2)
        self.group_sliders: dict[str, RatioSlider] = {}
        self.group_locks: dict[str, QCheckBox] = {}
        self.group_resets: dict[str, QToolButton] = {}
        self.group_labels: dict[str, QLabel] = {}
        self.group_notes: dict[str, QLabel] = {}  # a visible "why" where a group slider is off
        for row, g in enumerate(GROUPS, start=1):
            slider = ratio_slider()
            lock = QCheckBox("lock")
            reset = QToolButton()
            reset.setText("Reset")
            title = QLabel(GROUP_TITLES[g])
            note = QLabel()
            note.setStyleSheet("color: palette(mid); font-style: italic;")
            note.setVisible(False)
            grid.addWidget(title, row, 0)
            grid.addWidget(slider, row, 1)
            grid.addWidget(lock, row, 2)
            grid.addWidget(reset, row, 3)
            grid.addWidget(note, row, 2, 1, 2)
            self.group_labels[g], self.group_notes[g] = title, note
            slider.valueChanged.connect(lambda v, g=g: self._group_moved(g, v))
            lock.toggled.connect(lambda on, g=g: self._group_locked(g, on))
            reset.clicked.connect(lambda _=False, g=g: self._group_locked(g, False))
            self.group_sliders[g], self.group_locks[g], self.group_resets[g] = slider, lock, reset
        row = len(GROUPS) + 1
        grid.addWidget(self.allocate_button, row, 0)
        grid.addWidget(self.allocate_note, row, 1, 1, 3)

        # -- options
        self.criterion = QComboBox()
        self.criterion.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # "combined", not "combine"
        fit_every_criterion(self.criterion)
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
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Criterion", self.criterion)
        form.addRow("Min channels", self.min_channels)
        form.addRow("Round to", self.round_to)
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
            pg.addWidget(QLabel(PRED_TITLES.get(key, key)), row, 0)
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
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a unit's start and end both tell
        self.table.setHorizontalHeaderLabels(list(UNIT_COLUMNS))
        self.table.horizontalHeaderItem(COL_KEPT).setToolTip("Channels the plan keeps / the unit's channels")
        self.table.horizontalHeaderItem(COL_LOCK).setToolTip("Locked rows keep their own ratio")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(28)
        h = self.table.horizontalHeader()
        # column widths are set once per model (`_rebuild_units`): with ResizeToContents every "Kept" update
        # would re-measure the whole column, which made a slider step cost ~80 ms on ResNet-101's 66 units
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(COL_SLIDER, QHeaderView.ResizeMode.Stretch)
        # the channel count is also in "Kept" (kept / channels): its own column is hidden, leaving the
        # slider its track in a 1280 px window
        self.table.setColumnHidden(COL_CHANNELS, True)
        self.unit_sliders: dict[str, RatioSlider] = {}
        self.unit_locks: dict[str, QCheckBox] = {}
        self.unit_rows: dict[str, int] = {}
        self.empty_label = QLabel("Open a model (Model panel) to plan its pruning.")
        self.empty_label.setStyleSheet("color: palette(mid);")

        # the sliders get the panel's whole width; predictions and options share the row below
        below = QHBoxLayout()
        below.addWidget(pred_box, 3)
        below.addWidget(options_box, 2)
        units_title = QLabel("<b>Units</b> — a unit's own ratio overrides its group's")
        lay = QVBoxLayout(self)
        lay.addWidget(ratios_box)
        lay.addLayout(below)
        lay.addWidget(self.empty_label)
        lay.addWidget(units_title)
        lay.addWidget(self.table, 1)
        ratios_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.ratios_box, self.pred_box, self.options_box = ratios_box, pred_box, options_box

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
            name.setToolTip(f"{u.name}\n{u.channels} channels; {u.kind} unit; producers: {', '.join(u.producers)}")
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, QTableWidgetItem(u.group))
            ch = QTableWidgetItem(str(u.channels))
            ch.setTextAlignment(right)
            self.table.setItem(row, COL_CHANNELS, ch)
            slider = ratio_slider(MIN_TRACK_PX)
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
        # the slider column stretches, but never below a usable track plus its value box
        slider_min = MIN_TRACK_PX + self.table.fontMetrics().horizontalAdvance("0.00") + 28  # + the value box
        others = sum(self.table.columnWidth(c) for c in range(len(UNIT_COLUMNS))
                     if c != COL_SLIDER and not self.table.isColumnHidden(c))
        self.table.setMinimumWidth(others + slider_min + self.table.verticalScrollBar().sizeHint().width()
                                   + 2 * self.table.frameWidth())

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
                self.group_sliders[g].setValue(groups.get(g, plan.ratio))
                self.group_locks[g].setChecked(g in groups)
                why = group_unavailable(g, present, bool(units), plan.prune_head)
                set_enabled(self.group_sliders[g], not why, why, f"Fraction of the {GROUP_TITLES[g]} channels removed")
                set_enabled(self.group_locks[g], not why, why,
                            "Locked: this group keeps its own ratio when the global slider moves")
                set_enabled(self.group_resets[g], not why and g in groups,
                            why or "this group has no ratio of its own: it follows the global one",
                            "Follow the global ratio again")
                self.group_labels[g].setEnabled(not why)
                self.group_labels[g].setToolTip(f"<p><i>Unavailable:</i> {html.escape(why)}</p>" if why else "")
                # a short visible reason in place of lock / reset (the tooltip has the whole story)
                note = self.group_notes[g]
                note.setText(self._short_reason(g, why))
                note.setToolTip(f"<p><i>Unavailable:</i> {html.escape(why)}</p>" if why else "")
                show_note = bool(why) and bool(units)
                note.setVisible(show_note)
                self.group_locks[g].setVisible(not show_note)
                self.group_resets[g].setVisible(not show_note)
            self.counts = plan_counts(plan, units) if units else {}
            overrides = plan.unit_ratio_map
            for u in units:
                slider = self.unit_sliders[u.name]
                slider.setValue(plan.ratio_for(u))
                self.unit_locks[u.name].setChecked(u.name in overrides)
                why = unit_excluded_reason(u, plan) if plan.excludes(u) else ""
                set_enabled(slider, not why, why, "Fraction of this unit's channels removed (its own ratio "
                            "overrides its group's)")
                set_enabled(self.unit_locks[u.name], not why, why,
                            "Locked: this unit keeps its own ratio when the group or global slider moves")
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
        set_enabled(self.table, bool(units), "open a model first (Model panel)")
        self._show_prediction(info.cost if info is not None else None)

    @staticmethod
    def _short_reason(group: str, why: str) -> str:
        if not why:
            return ""
        if group == "stem" and "coupled" in why:
            return "in Layer 1"
        if "transform net" in why:
            return "switched off"
        return "n/a"

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
