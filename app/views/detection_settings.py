"""The session's detection settings as a form: a score threshold per side (original, pruned) and NMS IoU,
optionally "max shown" and the model choice.

Why a widget of its own: the Detection and Video tabs edit the same `session.detection_settings`, so both
embed this box and neither keeps its own copy in sync. Views add their own rows to `form` and listen to
`shown`, emitted after the widgets show a change, to redraw. Each side has its own threshold because a
pruned model scores on another scale than its original; a model's evaluation sets its side's default.

Each side also picks its runtime (PyTorch, ONNX Runtime, OpenVINO at a precision): the choices
`core.deploy.runtime.availability` rules out are disabled with its reason as tooltip.
"""

from __future__ import annotations

import logging
import weakref

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QSpinBox, QWidget
from superqt import QLabeledDoubleSlider

from app.project import COMPARE_MODES, RUNTIME_LABELS, RUNTIMES
from app.state import Session

log = logging.getLogger(__name__)
NO_INT8 = "no int8 model of this model yet: Pruning tab → Quantize int8 makes one"


class RuntimeCombo(QComboBox):
    """A side's runtime; availability is checked again each time the list opens (a quantize may have
    finished since)."""

    aboutToShow = Signal()

    def showPopup(self) -> None:  # noqa: N802 - Qt API
        self.aboutToShow.emit()
        super().showPopup()


def labeled_slider(lo: float, hi: float, value: float) -> QLabeledDoubleSlider:
    s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setSingleStep(0.01)
    s.setDecimals(2)
    s.setValue(value)
    return s


class DetectionSettingsBox(QGroupBox):
    """Score / NMS sliders (+ "Max shown" and "Model" with `display_rows`) bound to the session."""

    shown = Signal()  # the widgets now show the session's settings

    def __init__(self, session: Session, *, display_rows: bool = False, score_tip: str = "",
                 nms_tip: str = "", title: str = "Settings", parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.session = session
        self._syncing = False
        ds = session.detection_settings
        tip = score_tip or "Minimum score of a box shown (OS2D scores are correlations; useful ones lie in 0…1)"
        self.score_slider = labeled_slider(0.0, 1.0, ds.score_threshold)
        self.score_slider.setToolTip(f"Original model: {tip[0].lower()}{tip[1:]}")
        self.pruned_score_slider = labeled_slider(0.0, 1.0, ds.pruned_score_threshold)
        self.nms_slider = labeled_slider(0.05, 0.95, ds.nms_iou_threshold)
        self.nms_slider.setToolTip(nms_tip or "IoU above which NMS merges boxes of a class")
        self._pruned_tip = (f"Pruned model: {tip[0].lower()}{tip[1:]}. Its own threshold, since a pruned model "
                            "scores on another scale; its evaluation (Pruning tab → Evaluate) sets the best one")
        self.form = QFormLayout(self)
        self.form.addRow("Score, original", self.score_slider)
        self.form.addRow("Score, pruned", self.pruned_score_slider)
        self.form.addRow("NMS IoU", self.nms_slider)
        self.score_slider.valueChanged.connect(lambda v: self._write(score_threshold=round(float(v), 4)))
        self.pruned_score_slider.valueChanged.connect(
            lambda v: self._write(pruned_score_threshold=round(float(v), 4)))
        self.nms_slider.valueChanged.connect(lambda v: self._write(nms_iou_threshold=round(float(v), 4)))
        self.max_shown: QSpinBox | None = None
        self.compare: QComboBox | None = None
        if display_rows:
            self.max_shown = QSpinBox()
            self.max_shown.setRange(1, 1000)
            self.max_shown.setValue(ds.max_shown)
            self.compare = QComboBox()
            self.compare.addItems(list(COMPARE_MODES))
            self.form.addRow("Max shown", self.max_shown)
            self.form.addRow("Model", self.compare)
            self.max_shown.valueChanged.connect(lambda v: self._write(max_shown=int(v)))
            self.compare.currentTextChanged.connect(lambda t: self._write(compare=t))
        self._base_availability: dict[tuple[str, str], str] | None = None
        self._int8: dict[int, tuple[weakref.ref, bool]] = {}  # id(model) -> (model, has a quantized IR)
        self.runtime_combos: dict[str, RuntimeCombo] = {}
        for role, label in (("original", "Runtime, original"), ("pruned", "Runtime, pruned")):
            combo = self.runtime_combos[role] = RuntimeCombo()
            for rt in RUNTIMES:
                combo.addItem(RUNTIME_LABELS[rt], rt)
            self.form.addRow(label, combo)
            combo.currentIndexChanged.connect(
                lambda _i, r=role, c=combo: self._write(**{"original_runtime" if r == "original" else
                                                           "pruned_runtime": c.currentData()}))
            combo.aboutToShow.connect(self.refresh_runtimes)
        session.detectionSettingsChanged.connect(self.show_settings)
        session.prunedModelChanged.connect(self._update_enabled)
        # a model change must not hash the model's weights on the GUI thread (tens of ms per MB): int8
        # stays off until the list opens, which looks for a quantized model
        session.modelChanged.connect(lambda: self.refresh_runtimes(look_for_int8=False))
        session.prunedModelChanged.connect(lambda: self.refresh_runtimes(look_for_int8=False))
        self.refresh_runtimes(look_for_int8=False)
        self.show_settings()
        self._update_enabled()

    def _update_enabled(self) -> None:
        has = self.session.pruned is not None
        self.pruned_score_slider.setEnabled(has)
        self.pruned_score_slider.setToolTip(self._pruned_tip if has else
                                            "No pruned model: prune one (Pruning tab) or File → Open pruned model…")

    def availability(self, role: str, look_for_int8: bool = True) -> dict[str, str]:
        """"backend:precision" -> "" when `role`'s side can run it here, else why not. Without
        `look_for_int8` only a quantized model found before counts (no hashing of weights)."""
        if self._base_availability is None:
            try:
                from core.deploy.runtime import availability

                self._base_availability = availability()
            except (ImportError, RuntimeError) as e:  # no OpenVINO / ONNX Runtime in this install
                log.info("deploy runtimes unavailable: %s", e)
                self._base_availability = {tuple(rt.split(":")): ("" if rt == "torch:fp32" else
                                                                  "not installed with this app") for rt in RUNTIMES}
        out = {f"{b}:{p}": why for (b, p), why in self._base_availability.items() if f"{b}:{p}" in RUNTIMES}
        loaded = self.session.pruned if role == "pruned" else self.session.model
        if not out.get("openvino:int8") and loaded is not None and not self._has_int8(loaded.model, look_for_int8):
            out["openvino:int8"] = NO_INT8
        return out

    def _has_int8(self, model, look: bool = True) -> bool:
        entry = self._int8.get(id(model))
        if entry is not None and entry[0]() is model and entry[1]:
            return True  # a quantized IR, once made, stays in the cache; a missing one is looked for again
        if not look:
            return False
        from core.deploy.artefacts import model_digest
        from core.deploy.runtime import find_quantized

        found = find_quantized(model_digest(model)) is not None
        self._int8[id(model)] = (weakref.ref(model), found)
        return found

    def refresh_runtimes(self, look_for_int8: bool = True) -> None:
        """Enable the runtimes each side can run now; the others say why not."""
        for role, combo in self.runtime_combos.items():
            avail = self.availability(role, look_for_int8)
            items = combo.model()
            for i in range(combo.count()):
                why = avail.get(combo.itemData(i), "")
                item = items.item(i)
                item.setEnabled(not why)
                item.setToolTip(why)

    def _write(self, **changes) -> None:
        if not self._syncing:
            self.session.set_detection_settings(**changes)

    def show_settings(self) -> None:
        ds = self.session.detection_settings
        self._syncing = True
        try:
            self.score_slider.setValue(ds.score_threshold)
            self.pruned_score_slider.setValue(ds.pruned_score_threshold)
            self.nms_slider.setValue(ds.nms_iou_threshold)
            for role, combo in self.runtime_combos.items():
                combo.setCurrentIndex(max(0, combo.findData(ds.runtime_field_value(role))))
            if self.max_shown is not None:
                self.max_shown.setValue(ds.max_shown)
                self.compare.setCurrentText(ds.compare)
        finally:
            self._syncing = False
        self.shown.emit()
