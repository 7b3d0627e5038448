"""The session: everything the views share (models, detection inputs and results, plan, importance,
metrics).

Why one object: views never talk to each other; each reads the session and listens to its past-tense
signals, and writes to it through setters. Nothing here runs torch: models arrive already loaded (from a
worker job) and are only stored. What a project file holds is `app.project.Project`; the session turns
itself into one (`snapshot`) and back (`restore`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal

from app.image_cache import ImageCache
from app.jobs import DetectionRun, ModelLoad
from app.project import (ClassImageSpec, DetectionSettings, ImportanceRef, Metrics, Project, is_dataset_spec,
                         read_project, write_project)
from app.pruning_jobs import Evaluation, importance_mismatch
from app.recent import RecentFiles, default_settings
from core.errors import StepMissing
from core.importance.criteria import DATA_FREE
from core.model.checkpoint import LoadedModel
from core.prune.plan import PruningPlan
from core.prune.sensitivity import SensitivityResult

PREFERRED_CRITERIA = ("combined", "lcp", "taylor")  # what a loaded importance result selects, in this order


def reference_mismatch(reference: Any, info: ModelLoad | None) -> str | None:
    """None when every unit `reference` scores is a unit of this model with as many channels, and its
    recorded weights (if any) are these. A reference may rank only some units: a staged ranking holds the
    units its stages cut."""
    if reference is None or info is None:
        return None
    mine = {u.name: u.channels for u in info.units}
    theirs = list(zip(reference.units, reference.channels))
    if not theirs:
        return "it ranks no units"
    wrong = [(n, c) for n, c in theirs if mine.get(n) != c]
    if wrong:
        n, c = wrong[0]
        has = "does not have" if n not in mine else f"has with {mine[n]}"
        return (f"it ranks {n} with {c} channels, which this model {has} ({len(wrong)} of its {len(theirs)} units "
                "differ: a result of another architecture or of a pruned model)")
    sha = (getattr(reference, "model", None) or {}).get("sha256")
    if sha and info.digest and sha != info.digest:
        return (f"it was computed for other weights (sha256 {sha[:12]}…), not the open model's "
                f"({info.digest[:12]}…)")
    return None


class Session(QObject):
    """The shared state of one window; setters emit the matching past-tense signal."""

    modelChanged = Signal()
    prunedModelChanged = Signal()
    classImagesChanged = Signal()
    targetChanged = Signal()
    detectionSettingsChanged = Signal()
    detectionsChanged = Signal()
    planChanged = Signal()
    importanceChanged = Signal()
    referenceChanged = Signal()  # the importance result loaded to compare with (the scatter's reference)
    datasetChanged = Signal()
    metricsChanged = Signal()  # evaluations, sensitivity or the fine-tuning summary changed
    finetuneLogged = Signal(object)  # one loss entry of the running fine-tune (live curve)
    dirtyChanged = Signal(bool)
    projectPathChanged = Signal(str)
    recentChanged = Signal()

    def __init__(self, settings: QSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else default_settings()
        self.recent_models = RecentFiles(self.settings, "recent/models")
        self.recent_projects = RecentFiles(self.settings, "recent/projects")
        self.model_info: ModelLoad | None = None
        self.pruned_info: ModelLoad | None = None
        self.class_images: list[ClassImageSpec] = []
        self.target_path: str | None = None
        self.target_image: np.ndarray | None = None  # RGB uint8 [H, W, 3]
        self.detection_settings = DetectionSettings()
        self.detections: DetectionRun | None = None
        self.plan = PruningPlan()  # what the ratio sliders edit
        self.importance: Any = None  # core.importance.result.ImportanceResult of the original model
        self.reference: Any = None  # another ImportanceResult of its units to compare with (not saved)
        self.reference_path: str | None = None  # the file it was read from
        self.prune_result: Any = None  # core.prune.job.PruneResult of the pruned model, when pruned here
        self.dataset_path: str | None = None  # calibration and evaluation data (folder or grozi:PATH)
        self.evaluations: list[Evaluation] = []
        self.sensitivity: SensitivityResult | None = None
        self.finetune_log: list[dict] = []  # loss entries of the last fine-tuning run
        self.finetune_summary: dict | None = None  # its FinetuneResult.to_json()
        self.runtime_timings: Any = None  # app.jobs.RuntimeTimings: latency per deployment runtime (not saved)
        self.unknown_sections: dict = {}  # of a project written by a later version: kept and written back
        self.project_path: str | None = None
        self.dirty = False
        self.project_problems: list[str] = []
        self.images = ImageCache()
        self._saved = self.snapshot()  # what the project file on disk (or an empty session) holds

    # -- models ---------------------------------------------------------------------------------------
    @property
    def model(self) -> LoadedModel | None:
        return self.model_info.loaded if self.model_info else None

    @property
    def pruned(self) -> LoadedModel | None:
        return self.pruned_info.loaded if self.pruned_info else None

    def set_model(self, info: ModelLoad | None) -> None:
        """The original model. An importance result of other weights is dropped; unit overrides the new
        model does not have are removed from the plan."""
        self.model_info = info
        if info is not None and info.loaded.path:
            self.recent_models.add(info.loaded.path)
            self.recentChanged.emit()
        self.set_detections(None)
        self._adopt_threshold("original", info)
        if info is not None and self.importance is not None and importance_mismatch(self.importance, info):
            self.set_importance(None)
        if info is not None and self.reference is not None and reference_mismatch(self.reference, info):
            self.set_reference(None)
        if info is not None and info.units and self.plan.unit_ratios:
            names = {u.name for u in info.units}
            kept = {n: r for n, r in self.plan.unit_ratios if n in names}
            if len(kept) != len(self.plan.unit_ratios):
                self.set_plan(self.plan.with_changes(unit_ratios=kept))
        self.modelChanged.emit()
        self.mark_dirty()

    def set_pruned(self, info: ModelLoad | None, prune_result: Any = None) -> None:
        """The pruned model; `prune_result` when it was pruned in this session (saving records its plan)."""
        self.pruned_info = info
        self.prune_result = prune_result
        if info is None and self.detection_settings.compare != "original":
            self.set_detection_settings(compare="original")
        if info is not None and self.detection_settings.compare == "original":
            self.set_detection_settings(compare="both")  # a pruned model is there to be compared
        self._adopt_threshold("pruned", info)
        self.set_detections(None)
        self.prunedModelChanged.emit()
        self.mark_dirty()

    def _adopt_threshold(self, role: str, info: ModelLoad | None) -> None:
        """A model that records the score threshold its evaluation chose (best F1) is shown with it."""
        t = info.loaded.meta.get("score_threshold") if info is not None else None
        if isinstance(t, (int, float)) and not isinstance(t, bool) and -1.0 <= float(t) <= 1.0:
            self.set_detection_settings(**{DetectionSettings.threshold_field(role): round(float(t), 3)})

    # -- detection inputs -------------------------------------------------------------------------------
    def class_image_array(self, spec: ClassImageSpec) -> np.ndarray:
        return self.images.region(spec.path, spec.crop)

    def set_target(self, path: str | None) -> None:
        """Load and show a target image (errors propagate: the caller shows core's message)."""
        self.target_image = self.images.get(path) if path else None
        self.target_path = str(Path(path).resolve()) if path else None
        self.set_detections(None)
        self.targetChanged.emit()
        self.mark_dirty()

    def add_class_images(self, specs: Sequence[ClassImageSpec]) -> None:
        for spec in specs:
            self.class_image_array(spec)  # fail before changing anything
        self.class_images.extend(specs)
        self.classImagesChanged.emit()
        self.mark_dirty()

    def add_class_crop(self, box: Sequence[float], name: str | None = None) -> ClassImageSpec:
        """Crop a class image from the target (box x0, y0, x1, y1 in target pixels, clipped to it)."""
        if self.target_image is None or self.target_path is None:
            raise StepMissing("choose a target image before cropping a class image from it")
        h, w = self.target_image.shape[:2]
        x0, x1 = sorted((int(round(box[0])), int(round(box[2]))))
        y0, y1 = sorted((int(round(box[1])), int(round(box[3]))))
        x0, x1, y0, y1 = max(0, x0), min(w, x1), max(0, y0), min(h, y1)
        if x1 - x0 < 8 or y1 - y0 < 8:
            raise ValueError(f"the crop {x1 - x0}x{y1 - y0} px is too small for a class image (at least 8x8)")
        n = sum(1 for c in self.class_images if c.crop is not None) + 1
        spec = ClassImageSpec(name or f"crop {n}", self.target_path, (x0, y0, x1, y1))
        self.add_class_images([spec])
        return spec

    def remove_class_image(self, index: int) -> None:
        self.remove_class_images([index])

    def remove_class_images(self, indices: Sequence[int]) -> None:
        """Remove several at once: one change, so the views re-run one preview, not one per image."""
        drop = {i for i in indices if 0 <= i < len(self.class_images)}
        if not drop:
            return
        self.class_images = [c for i, c in enumerate(self.class_images) if i not in drop]
        self.classImagesChanged.emit()
        self.mark_dirty()

    def rename_class_image(self, index: int, name: str) -> None:
        self.class_images[index] = replace(self.class_images[index], name=name)
        self.classImagesChanged.emit()
        self.mark_dirty()

    def set_detection_settings(self, **changes: Any) -> None:
        new = replace(self.detection_settings, **changes)
        if new != self.detection_settings:
            self.detection_settings = new
            self.detectionSettingsChanged.emit()
            self.mark_dirty()

    def set_detections(self, run: DetectionRun | None) -> None:
        if run is None and self.detections is None:
            return
        self.detections = run
        self.detectionsChanged.emit()

    # -- pruning workbench ------------------------------------------------------------------------------
    def set_plan(self, plan: PruningPlan) -> None:
        if not isinstance(plan, PruningPlan):
            raise TypeError(f"a plan is a core.prune.plan.PruningPlan, got {type(plan).__name__}")
        if plan == self.plan:
            return
        self.plan = plan
        self.planChanged.emit()
        self.mark_dirty()

    def set_importance(self, result: Any, adopt_criterion: bool = False) -> None:
        """The importance result; with `adopt_criterion` (a result the user loaded to prune by) the plan ranks
        channels by its best criterion (combined, then the gradient references), else only when the plan's
        criterion is missing."""
        self.importance = result
        if result is not None:
            crits = list(result.criteria)
            preferred = next((c for c in PREFERRED_CRITERIA if c in crits), crits[0] if crits else None)
            if preferred and (adopt_criterion or self.plan.criterion not in crits + list(DATA_FREE)):
                self.set_plan(self.plan.with_changes(criterion=preferred))
        self.importanceChanged.emit()
        self.mark_dirty()

    def set_reference(self, result: Any, path: str | None = None) -> None:
        """An importance result to compare the session's with (`reference_mismatch` says whether it fits the
        model); a view of the session, not part of the project."""
        self.reference = result
        self.reference_path = str(path) if result is not None and path else None
        self.referenceChanged.emit()

    def set_dataset(self, path: str | None) -> None:
        path = str(path) if path else None
        if path and not is_dataset_spec(path):  # a folder
            path = str(Path(path).expanduser().resolve())
        if path != self.dataset_path:
            self.dataset_path = path
            self.datasetChanged.emit()
            self.mark_dirty()

    def add_evaluations(self, evaluations: Sequence[Evaluation]) -> None:
        self.evaluations.extend(evaluations)
        for e in evaluations:  # each side is shown at the threshold its own evaluation found best
            if e.score_threshold is not None:
                self.set_detection_settings(**{DetectionSettings.threshold_field(e.role): float(e.score_threshold)})
        self.metricsChanged.emit()
        self.mark_dirty()

    def set_runtime_timings(self, timings: Any) -> None:
        self.runtime_timings = timings
        self.metricsChanged.emit()

    def clear_metrics(self) -> None:
        self.runtime_timings = None
        self.evaluations = []
        self.sensitivity = None
        self.finetune_log = []
        self.finetune_summary = None
        self.metricsChanged.emit()
        self.mark_dirty()

    def set_sensitivity(self, result: SensitivityResult | None) -> None:
        self.sensitivity = result
        self.metricsChanged.emit()
        self.mark_dirty()

    def start_finetune_log(self) -> None:
        self.finetune_log = []
        self.finetune_summary = None
        self.metricsChanged.emit()

    def log_finetune(self, entry: dict) -> None:
        """One entry of the running fine-tune (a loss entry, or an evaluation with "mAP@0.5")."""
        self.finetune_log.append(dict(entry))
        self.finetuneLogged.emit(entry)

    def set_finetune_summary(self, summary: dict | None) -> None:
        self.finetune_summary = summary
        self.metricsChanged.emit()
        self.mark_dirty()

    def metrics(self) -> Metrics:
        return Metrics(tuple(self.evaluations), self.sensitivity, tuple(self.finetune_log), self.finetune_summary)

    # -- project files ----------------------------------------------------------------------------------
    def mark_clean(self) -> None:
        """What the session holds now is the baseline: a fresh window set up at start is not 'unsaved'."""
        self._saved = self.snapshot()
        self.mark_dirty()

    def mark_dirty(self) -> None:
        """Unsaved changes = the session differs from the last saved/opened project (or an empty one)."""
        dirty = self.snapshot() != self._saved
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirtyChanged.emit(dirty)

    def snapshot(self) -> Project:
        def norm(p: str | None) -> str | None:
            return str(Path(p).resolve()) if p else None

        return Project(norm(self.model.path if self.model else None), norm(self.pruned.path if self.pruned else None),
                       self.target_path, tuple(self.class_images), self.detection_settings, self.plan,
                       ImportanceRef.of(self.importance) if self.importance is not None else None,
                       self.metrics(), self.dataset_path, dict(self.unknown_sections))

    def restore(self, project: Project) -> Project:
        """Take the project's detection inputs, settings, plan, importance and metrics; returns it in the form
        snapshot() gives once its models (which the caller loads in the worker) are back. Image files or
        sections that cannot be read are skipped; their problems are left in `project_problems`."""
        problems: list[str] = []
        self.set_model(None)
        self.set_pruned(None)
        try:
            self.set_target(project.target_path)
        except ValueError as e:
            problems.append(str(e))
            self.set_target(None)
        self.class_images = []
        for spec in project.class_images:
            try:
                self.class_image_array(spec)
                self.class_images.append(spec)
            except ValueError as e:
                problems.append(f"class image '{spec.name}': {e}")
        self.classImagesChanged.emit()
        self.detection_settings = project.detection
        self.detectionSettingsChanged.emit()
        self.unknown_sections = dict(project.unknown_sections)
        self.plan = project.plan
        problems.extend(project.problems)
        self.importance = None
        if project.importance is not None and project.importance.file:
            from core.importance.result import ImportanceFileError

            try:
                self.importance = project.importance.load()
            except (ImportanceFileError, OSError) as e:
                problems.append(f"importance: {e}")
        self.dataset_path = project.dataset
        m = project.metrics
        self.evaluations, self.sensitivity = list(m.evaluations), m.sensitivity
        self.finetune_log, self.finetune_summary = [dict(e) for e in m.finetune_log], m.finetune_summary
        self.prune_result = None
        self.planChanged.emit()
        self.importanceChanged.emit()
        self.datasetChanged.emit()
        self.metricsChanged.emit()
        self.project_problems = problems
        now = self.snapshot()
        project = replace(project, plan=now.plan, importance=now.importance, metrics=now.metrics,
                          dataset=now.dataset, unknown_sections=now.unknown_sections)
        self.mark_dirty()
        return project

    def save_project(self, path: str | os.PathLike) -> Path:
        """Write the project (and the importance result beside it: NAME.importance.npz/.json)."""
        snap = self.snapshot()
        path = write_project(path, snap, self.importance)
        self._saved = snap
        self._set_project_path(path)
        self.mark_dirty()
        return path

    def open_project(self, path: str | os.PathLike) -> Project:
        path = Path(path)
        project = self.restore(read_project(path))
        self._saved = project  # models still loading count as saved: loading them makes the session clean
        self._set_project_path(path)
        self.mark_dirty()
        return project

    def _set_project_path(self, path: Path) -> None:
        self.project_path = str(path.resolve())
        self.recent_projects.add(path)
        self.recentChanged.emit()
        self.projectPathChanged.emit(self.project_path)
