"""The "Pruning" tab: the ratio panel (the plan and its predictions) and the jobs that act on it --
prune, save the pruned model, fine-tune, evaluate and the sensitivity analysis. Results appear in the
Metrics tab; the jobs run in the worker through the workbench controller."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QScrollArea, QSpinBox, QVBoxLayout, QWidget)

from app.pruning_jobs import SENSITIVITY_RATIOS
from app.state import Session
from app.views.dataset_picker import DatasetPicker
from app.views.ratio_panel import RatioPanel, set_enabled
from app.workbench import WorkbenchController


def parse_ratios(text: str) -> tuple[float, ...]:
    """'0.1 0.2, 0.3' -> (0.1, 0.2, 0.3); ValueError names the bad entry."""
    out = []
    for tok in text.replace(",", " ").split():
        try:
            r = float(tok.rstrip("%")) / (100.0 if tok.endswith("%") else 1.0)
        except ValueError:
            raise ValueError(f"'{tok}' is not a ratio (write ratios like 0.1 0.3 0.5)") from None
        if not 0.0 < r < 1.0:
            raise ValueError(f"ratio {r:g} is outside (0, 1)")
        out.append(r)
    if not out:
        raise ValueError("give at least one ratio")
    return tuple(sorted(set(out)))


def _spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setToolTip(tip)
    return s


def _learning_rate() -> QDoubleSpinBox:
    from core.train.finetune import FinetuneConfig

    s = QDoubleSpinBox()
    s.setDecimals(6)
    s.setRange(1e-6, 1e-2)
    s.setSingleStep(1e-5)
    s.setValue(FinetuneConfig.lr)
    s.setToolTip("Peak learning rate (AdamW, cosine decay). Lower keeps more of what the original learned; "
                 f"{FinetuneConfig.lr:g} is what bench/seed_table.py measured best on the default model")
    return s


TIPS = {
    "prune": "Remove the plan's channels from a copy of the model (the original is kept)",
    "refit": ("<p>After the cut, refit the weights of the layers that read the cut channels by least squares, so "
              "that their outputs inside the objects' boxes match the original's on these train images of the "
              "dataset (LCP's reconstruction step; no gradients). On the default model a 50 % weight-L1 cut "
              "keeps 0.91 mAP this way instead of 0.30, and fine-tunes further from there. It takes about "
              "10 s per image at the default model's scale on 2 CPU cores.</p>"),
    "allocate": ("<p>Replace the ratios by one per unit: every unit's scores (the plan's criterion) over their "
                 "mean, one threshold across all units, at the MACs the current ratios leave. Units whose "
                 "channels are alike lose fewer, units with many weak channels more (no unit more than 80 %). "
                 "The sliders then show the result.</p>"),
    "save": "Write the pruned model to a new file (never over the original)",
    "finetune": "Train the pruned model with the original as teacher (score and attention distillation); "
                "Cancel keeps a checkpoint, and Fine-tune again resumes from it",
    "evaluate": "mAP@0.5 on the val split, parameters, MACs, size and CPU latency",
    "sensitivity": "For each group: prune it alone at each ratio with the plan's criterion, measure mAP; "
                   "curves in the Metrics tab",
}


class PruningView(QWidget):
    def __init__(self, session: Session, workbench: WorkbenchController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workbench = workbench
        runner = workbench.runner
        self.ratio_panel = RatioPanel(session)

        # -- prune
        self.prune_button = QPushButton("Prune")
        self.prune_button.setMinimumHeight(32)
        self.prune_button.setStyleSheet("font-weight: bold;")
        self.refit = QCheckBox("Refit the next layers")
        self.refit.setChecked(True)
        self.refit_images = QSpinBox()
        self.refit_images.setRange(1, 256)
        self.refit_images.setValue(8)
        for w in (self.refit, self.refit_images):
            w.setToolTip(TIPS["refit"])
        self.refit.toggled.connect(self.refit_images.setEnabled)
        self.save_button = QPushButton("Save pruned model…")
        self.pruned_label = QLabel()
        self.pruned_label.setWordWrap(True)
        self.pruned_label.setTextFormat(Qt.TextFormat.RichText)
        prune_box = QGroupBox("Prune")
        pl = QVBoxLayout(prune_box)
        pl.addWidget(self.prune_button)
        pl.addWidget(self.refit)
        refit_form = QFormLayout()
        refit_form.addRow("Images", self.refit_images)
        pl.addLayout(refit_form)
        pl.addWidget(self.save_button)
        pl.addWidget(self.pruned_label)

        # -- data
        self.dataset = DatasetPicker(session, workbench)
        data_box = QGroupBox("Dataset")
        data_box.setToolTip("Fine-tuning trains on its train split; mAP is measured on its val split")
        dl = QVBoxLayout(data_box)
        dl.addWidget(self.dataset)

        # -- fine-tune
        self.ft_iterations = _spin(1, 100_000, 50, "Training iterations (batches) of this short run")
        self.ft_eval_images = _spin(0, 10_000, 10, "Validation images for mAP before and after (0: all)")
        self.ft_lr = _learning_rate()
        self.finetune_button = QPushButton("Fine-tune")
        ft_box = QGroupBox("Fine-tune (teacher: original)")
        fl = QFormLayout(ft_box)
        fl.addRow("Iterations", self.ft_iterations)
        fl.addRow("Learning rate", self.ft_lr)
        fl.addRow("mAP images", self.ft_eval_images)
        fl.addRow(self.finetune_button)

        # -- evaluate
        self.eval_images = _spin(0, 10_000, 20, "Validation images (0: the whole split)")
        self.evaluate_button = QPushButton("Evaluate original + pruned")
        ev_box = QGroupBox("Evaluate")
        el = QFormLayout(ev_box)
        el.addRow("Images", self.eval_images)
        el.addRow(self.evaluate_button)

        # -- sensitivity
        self.sens_images = _spin(1, 10_000, 10, "Validation images per point")
        self.sens_ratios = QLineEdit(" ".join(f"{r:g}" for r in SENSITIVITY_RATIOS))
        self.sens_ratios.setToolTip("Ratios tried for each group (one group pruned at a time)")
        self.sensitivity_button = QPushButton("Run sensitivity analysis")
        sens_box = QGroupBox("Sensitivity analysis")
        sl = QFormLayout(sens_box)
        sl.addRow("Ratios", self.sens_ratios)
        sl.addRow("Images", self.sens_images)
        sl.addRow(self.sensitivity_button)
        # -- deploy
        self.export_button = QPushButton("Export ONNX")
        self.quantize_button = QPushButton("Quantize int8")
        self.deploy_label = QLabel()
        self.deploy_label.setWordWrap(True)
        self.deploy_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        deploy_box = QGroupBox("Deploy")
        dpl = QVBoxLayout(deploy_box)
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addWidget(self.quantize_button)
        dpl.addLayout(row)
        dpl.addWidget(self.deploy_label)

        hint = QLabel("Results: Metrics tab.")
        hint.setStyleSheet("color: palette(mid);")

        actions = QWidget()
        al = QVBoxLayout(actions)
        al.setContentsMargins(0, 0, 0, 0)
        for w in (prune_box, data_box, ft_box, ev_box, sens_box, deploy_box, hint):
            al.addWidget(w)
        al.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(actions)
        scroll.setWidgetResizable(True)
        scroll.setFixedWidth(262)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        lay = QHBoxLayout(self)
        lay.addWidget(self.ratio_panel, 1)
        lay.addWidget(scroll)

        # -- wiring
        self.prune_button.clicked.connect(self.run_prune)
        self.ratio_panel.allocate_button.clicked.connect(lambda: workbench.allocate_ratios())
        workbench.allocated.connect(self.ratio_panel.allocate_note.setText)
        session.modelChanged.connect(lambda *_: self.ratio_panel.allocate_note.setText(""))
        self.save_button.clicked.connect(lambda: workbench.save_pruned())
        self.finetune_button.clicked.connect(self.run_finetune)
        self.evaluate_button.clicked.connect(self.run_evaluate)
        self.sensitivity_button.clicked.connect(self.run_sensitivity)
        self.export_button.clicked.connect(lambda: workbench.export_deploy())
        self.quantize_button.clicked.connect(lambda: workbench.quantize_deploy())
        workbench.deployed.connect(self._show_deployed)
        session.modelChanged.connect(self._update)
        session.prunedModelChanged.connect(self._update)
        session.planChanged.connect(self._update)
        runner.busyChanged.connect(self._update)
        self._update()

    # -- actions ----------------------------------------------------------------------------------------
    def run_prune(self) -> bool:
        return self.workbench.prune(self.refit_images.value() if self.refit.isChecked() else 0)

    def run_finetune(self) -> bool:
        return self.workbench.finetune(self.ft_iterations.value(), self.ft_eval_images.value(), self.ft_lr.value())

    def run_evaluate(self) -> bool:
        return self.workbench.evaluate(self.eval_images.value())

    def run_sensitivity(self) -> bool:
        try:
            ratios = parse_ratios(self.sens_ratios.text())
        except ValueError as e:
            self.workbench.dialogs.warning("Cannot run the sensitivity analysis", str(e))
            return False
        return self.workbench.sensitivity(self.sens_images.value(), ratios)

    # -- session -> widgets ------------------------------------------------------------------------------
    def _update(self, *_args) -> None:
        s = self.session
        busy = self.workbench.runner.busy
        has_model = s.model_info is not None and bool(s.model_info.units)
        has_pruned = s.pruned is not None
        running = f"wait for the running job ({self.workbench.runner.current_name}) or cancel it" if busy else ""
        no_model = "open a model first (Model panel)"
        no_pruned = "prune first: there is no pruned model yet"
        set_enabled(self.prune_button, has_model and not busy, running or no_model, TIPS["prune"])
        removes = has_model and s.plan.cuts_any(s.model_info.units)
        set_enabled(self.ratio_panel.allocate_button, removes and not busy,
                    running or (no_model if not has_model else "the plan removes nothing: set a ratio first"),
                    TIPS["allocate"])
        set_enabled(self.save_button, has_pruned and not busy, running or no_pruned, TIPS["save"])
        set_enabled(self.finetune_button, has_model and has_pruned and not busy,
                    running or (no_model if not has_model else no_pruned), TIPS["finetune"])
        set_enabled(self.evaluate_button, s.model is not None and not busy, running or no_model, TIPS["evaluate"])
        set_enabled(self.sensitivity_button, has_model and not busy, running or no_model, TIPS["sensitivity"])
        which = "pruned" if has_pruned else "original"
        set_enabled(self.export_button, s.model is not None and not busy, running or no_model,
                    f"Export the {which} model as ONNX graphs (target and class branches) into a new folder "
                    "beside the project (NAME.work), else in Documents/os2d-studio/models; never over a file")
        set_enabled(self.quantize_button, s.model is not None and not busy, running or no_model,
                    f"Quantize the {which} model's target branch to int8 (NNCF) on 8 calibration images of the "
                    "dataset; then choose OpenVINO int8 in the Detection or Video tab")
        self.pruned_label.setText(self._pruned_text())

    def _show_deployed(self, result) -> None:
        what = "int8 model" if hasattr(result, "xml") else "ONNX export"
        self.deploy_label.setText(f"{what}: {result.folder}")
        self.deploy_label.setToolTip(str(result.folder))

    def _pruned_text(self) -> str:
        s = self.session
        if s.pruned_info is None:
            return "<i>No pruned model yet: Prune makes one (Save and Fine-tune need it).</i>"
        info = s.pruned_info
        where = Path(info.loaded.path).name if info.loaded.path else "in memory, not saved"
        text = f"<b>Pruned model</b> ({where}): {info.summary.parameters:,} parameters, {info.summary.fp32_mb:.2f} MB"
        r = s.prune_result
        if r is not None:
            text += (f"<br>predicted {r.predicted.parameters:,}, measured {r.measured_parameters:,}; "
                     f"criterion {r.plan.criterion}; {r.seconds:.2f} s")
            rec = s.pruned.meta.get("reconstruction") if s.pruned is not None else None
            if rec:
                text += f"<br>next layers refit on {rec.get('images', '?')} images ({rec.get('updated', 0)} layers)"
            if r.plan != s.plan:
                text += "<br><i>The plan changed since: press Prune to apply it.</i>"
        return text
