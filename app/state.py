"""The session: everything the views share (models, detection inputs and results, plan, importance,
metrics).

Why one object: views never talk to each other; each reads the session and listens to its past-tense
signals, and writes to it through setters. Nothing here runs torch: models arrive already loaded (from a
worker job) and are only stored. A project file (JSON) records what is needed to rebuild a session --
model paths, detection inputs and settings, the calibration/evaluation dataset, the pruning plan, the
metrics (evaluations, sensitivity curves, the last fine-tuning loss curve) and a reference to the
importance result, which is saved beside the project as `NAME.importance.npz/.json` (core's format, so
`os2d-studio prune --importance NAME.importance` reads it too).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QObject, QSettings, Signal

from app.jobs import DetectionRun, ModelLoad
from app.pruning_jobs import Evaluation, SensitivityResult, importance_mismatch
from core.data.images import load_image
from core.errors import InputError, StepMissing
from core.io import JSON_DIGEST_KEY, atomic_write_text, check_json_digest, read_json, with_json_digest
from core.model.checkpoint import LoadedModel
from core.prune.plan import PlanError, PruningPlan

PROJECT_FORMAT = "os2d-studio-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".os2d.json"
COMPARE_MODES = ("original", "pruned", "both")
# "backend:precision" choices a side can run on (core.deploy.runtime.BACKENDS x PRECISIONS that exist)
RUNTIMES = ("torch:fp32", "onnxruntime:fp32", "openvino:fp32", "openvino:bf16", "openvino:int8")
RUNTIME_LABELS = {"torch:fp32": "PyTorch fp32", "onnxruntime:fp32": "ONNX Runtime fp32",
                  "openvino:fp32": "OpenVINO fp32", "openvino:bf16": "OpenVINO bf16", "openvino:int8": "OpenVINO int8"}
PREFERRED_CRITERIA = ("combined", "lcp", "taylor")  # what a fresh importance result selects, in this order
SESSION_SECTIONS = ("plan", "importance", "metrics", "dataset")  # project sections the session owns


def project_stem(path: str | os.PathLike) -> str:
    """`study` for `study.os2d.json` (files saved beside a project are named after it)."""
    name = Path(path).name
    for suffix in (PROJECT_SUFFIX, ".json"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def importance_token(result: Any) -> dict:
    """What identifies an importance result in a project (its arrays live in the .npz beside it)."""
    return {"criteria": list(result.criteria), "units": len(result.units),
            "calibration": result.calibration.to_json(), "model_sha256": (result.model or {}).get("sha256", "")}


class ProjectError(InputError):
    """A project file that cannot be opened; the message names the file and the problem."""


def _rel(path: str | None, base: Path | None) -> str | None:
    """Paths inside the project's folder are stored relative to it, so a project folder can move."""
    if not path:
        return None
    p = Path(path).resolve()
    if base is not None:
        try:
            return p.relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return str(p)


def _abs(path: str | None, base: Path | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve())


@dataclass(frozen=True)
class ClassImageSpec:
    """A class image: a file, or a crop (x0, y0, x1, y1 in pixels) of a file such as the target."""

    name: str
    path: str
    crop: tuple[int, int, int, int] | None = None

    def to_json(self, base: Path | None = None) -> dict:
        return {"name": self.name, "path": _rel(self.path, base), "crop": list(self.crop) if self.crop else None}

    @classmethod
    def from_json(cls, data: dict, base: Path | None = None) -> "ClassImageSpec":
        crop = data.get("crop")
        return cls(str(data["name"]), _abs(data["path"], base) or "", tuple(int(v) for v in crop) if crop else None)


@dataclass(frozen=True)
class DetectionSettings:
    """How detections are shown. Each side has its own score threshold: a pruned model's scores sit on
    another scale than its original's, so one shared threshold makes one side look broken."""

    score_threshold: float = 0.5  # the original's; OS2D scores are correlations in [-1, 1]
    nms_iou_threshold: float = 0.3  # OS2D's default
    max_shown: int = 50
    compare: str = "original"  # one of COMPARE_MODES
    pruned_score_threshold: float = 0.5
    video_uses_detection_classes: bool = False  # else the Video tab runs the sample video's classes
    original_runtime: str = "torch:fp32"  # what runs each side: "backend:precision", one of RUNTIMES
    pruned_runtime: str = "torch:fp32"

    def __post_init__(self) -> None:
        if self.compare not in COMPARE_MODES:
            raise ValueError(f"compare must be one of {', '.join(COMPARE_MODES)}, got '{self.compare}'")
        for name in ("original_runtime", "pruned_runtime"):
            if getattr(self, name) not in RUNTIMES:
                raise ValueError(f"{name} must be one of {', '.join(RUNTIMES)}, got '{getattr(self, name)}'")

    def runtime(self, role: str) -> tuple[str, str]:
        """(backend, precision) that runs `role`'s side."""
        backend, precision = self.runtime_field_value(role).split(":")
        return backend, precision

    def runtime_field_value(self, role: str) -> str:
        return self.pruned_runtime if role == "pruned" else self.original_runtime

    @staticmethod
    def runtime_field(role: str) -> str:
        return "pruned_runtime" if role == "pruned" else "original_runtime"

    def threshold(self, role: str) -> float:
        return self.pruned_score_threshold if role == "pruned" else self.score_threshold

    @staticmethod
    def threshold_field(role: str) -> str:
        return "pruned_score_threshold" if role == "pruned" else "score_threshold"


@dataclass(frozen=True)
class Project:
    """What a project file holds; `extra` keeps sections of later features (plan, importance) verbatim."""

    model_path: str | None = None
    pruned_model_path: str | None = None
    target_path: str | None = None
    class_images: tuple[ClassImageSpec, ...] = ()
    detection: DetectionSettings = DetectionSettings()
    extra: dict = field(default_factory=dict)

    def to_json(self, base: Path | None = None) -> dict:
        return {
            "format": PROJECT_FORMAT, "version": PROJECT_VERSION,
            "model": _rel(self.model_path, base), "pruned_model": _rel(self.pruned_model_path, base),
            "detection": {
                "target": _rel(self.target_path, base),
                "class_images": [c.to_json(base) for c in self.class_images],
                "score_threshold": self.detection.score_threshold,
                "nms_iou_threshold": self.detection.nms_iou_threshold,
                "max_shown": self.detection.max_shown, "compare": self.detection.compare,
                "pruned_score_threshold": self.detection.pruned_score_threshold,
                "video_uses_detection_classes": self.detection.video_uses_detection_classes,
                "original_runtime": self.detection.original_runtime,
                "pruned_runtime": self.detection.pruned_runtime,
            },
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: Any, base: Path | None = None, source: str = "<project>") -> "Project":
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ProjectError(source, f"not an os2d-studio project (expected \"format\": \"{PROJECT_FORMAT}\")")
        if not isinstance(data.get("version"), int) or data["version"] > PROJECT_VERSION:
            raise ProjectError(source, f"written by a newer os2d-studio (project version {data.get('version')})")
        try:
            det = data.get("detection") or {}
            settings = DetectionSettings(
                float(det.get("score_threshold", 0.5)), float(det.get("nms_iou_threshold", 0.3)),
                int(det.get("max_shown", 50)), str(det.get("compare", "original")),
                float(det.get("pruned_score_threshold", det.get("score_threshold", 0.5))),
                bool(det.get("video_uses_detection_classes", False)),
                str(det.get("original_runtime", "torch:fp32")), str(det.get("pruned_runtime", "torch:fp32")))
            classes = tuple(ClassImageSpec.from_json(c, base) for c in det.get("class_images", []))
        except (KeyError, TypeError, ValueError) as e:
            raise ProjectError(source, f"bad detection section: {e}") from None
        known = {"format", "version", "model", "pruned_model", "detection", JSON_DIGEST_KEY}
        return cls(_abs(data.get("model"), base), _abs(data.get("pruned_model"), base),
                   _abs(det.get("target"), base), classes, settings,
                   {k: v for k, v in data.items() if k not in known})


class RecentFiles:
    """Most-recently-used paths in QSettings (newest first, at most `limit`).

    A file that went missing or is damaged stays listed: dropping it silently would leave the user
    wondering where it went, and a missing one may come back (a drive attached again). The menus mark
    missing files (`missing`); opening a damaged one reports what is wrong with it."""

    def __init__(self, settings: QSettings, key: str, limit: int = 10) -> None:
        self.settings, self.key, self.limit = settings, key, limit

    def paths(self) -> list[str]:
        value = self.settings.value(self.key, [])
        items = [value] if isinstance(value, str) else list(value or [])
        return [str(p) for p in items if p]

    @staticmethod
    def missing(path: str) -> bool:
        return not os.path.exists(path)

    def add(self, path: str | os.PathLike) -> None:
        p = str(Path(path).resolve())
        items = [p] + [q for q in self.paths() if q != p]
        self.settings.setValue(self.key, items[: self.limit])

    def clear(self) -> None:
        self.settings.remove(self.key)


def default_settings() -> QSettings:
    """INI settings in the user's config folder (tests point QSettings.setPath at a temporary folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "os2d-studio", "os2d-studio")


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
    datasetChanged = Signal()
    metricsChanged = Signal()  # evaluations, sensitivity or the fine-tuning summary changed
    finetuneLogged = Signal(object)  # one loss entry of the running fine-tune (live curve)
    dirtyChanged = Signal(bool)
    projectPathChanged = Signal(str)
    recentChanged = Signal()

    IMAGE_CACHE = 8  # decoded images kept (target and class sources)

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
        self.prune_result: Any = None  # core.prune.job.PruneResult of the pruned model, when pruned here
        self.dataset_path: str | None = None  # calibration and evaluation data (folder or grozi:PATH)
        self.evaluations: list[Evaluation] = []
        self.sensitivity: SensitivityResult | None = None
        self.finetune_log: list[dict] = []  # loss entries of the last fine-tuning run
        self.finetune_summary: dict | None = None  # its FinetuneResult.to_json()
        self.extra: dict = {}
        self.project_path: str | None = None
        self.dirty = False
        self.project_problems: list[str] = []
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
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
    def image(self, path: str) -> np.ndarray:
        """Decode (or reuse) an image file; raises core's `ImageError` with the file and the problem."""
        key = str(Path(path).resolve())
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        img = load_image(key)
        self._images[key] = img
        while len(self._images) > self.IMAGE_CACHE:
            self._images.popitem(last=False)
        return img

    def class_image_array(self, spec: ClassImageSpec) -> np.ndarray:
        img = self.image(spec.path)
        if spec.crop is None:
            return img
        x0, y0, x1, y1 = spec.crop
        return np.ascontiguousarray(img[y0:y1, x0:x1])

    def set_target(self, path: str | None) -> None:
        """Load and show a target image (errors propagate: the caller shows core's message)."""
        self.target_image = self.image(path) if path else None
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
        """The importance result; with `adopt_criterion` (a fresh result) the plan ranks channels by its
        best criterion (combined, then the gradient references), else only when the plan's is missing."""
        self.importance = result
        if result is not None:
            crits = list(result.criteria)
            preferred = next((c for c in PREFERRED_CRITERIA if c in crits), crits[0] if crits else None)
            if preferred and (adopt_criterion or self.plan.criterion not in crits + ["weight_l1", "weight_l2"]):
                self.set_plan(self.plan.with_changes(criterion=preferred))
        self.importanceChanged.emit()
        self.mark_dirty()

    def set_dataset(self, path: str | None) -> None:
        path = str(path) if path else None
        if path and ":" not in path.split("/")[0]:  # a folder (grozi:PATH specs stay as typed)
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

    def clear_metrics(self) -> None:
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

    def metrics_json(self) -> dict:
        return {"evaluations": [e.to_json() for e in self.evaluations],
                "sensitivity": self.sensitivity.to_json() if self.sensitivity else None,
                "finetune": {"log": list(self.finetune_log), "summary": self.finetune_summary}}

    def _restore_metrics(self, data: Any, problems: list[str]) -> None:
        self.evaluations, self.sensitivity, self.finetune_log, self.finetune_summary = [], None, [], None
        if not data:
            return
        try:
            self.evaluations = [Evaluation.from_json(e) for e in data.get("evaluations", [])]
            sens = data.get("sensitivity")
            self.sensitivity = SensitivityResult.from_json(sens) if sens else None
            ft = data.get("finetune") or {}
            self.finetune_log = [dict(e) for e in ft.get("log", [])]
            self.finetune_summary = ft.get("summary")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            problems.append(f"metrics section: {e}")

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
        extra = dict(self.extra)
        extra["plan"] = self.plan.to_json()
        if self.importance is not None:
            extra["importance"] = importance_token(self.importance)
        extra["metrics"] = self.metrics_json()
        if self.dataset_path:
            extra["dataset"] = self.dataset_path

        def norm(p: str | None) -> str | None:
            return str(Path(p).resolve()) if p else None

        return Project(norm(self.model.path if self.model else None), norm(self.pruned.path if self.pruned else None),
                       self.target_path, tuple(self.class_images), self.detection_settings, extra)

    def to_json(self, base: Path | None = None) -> dict:
        return self.snapshot().to_json(base)

    def from_json(self, data: Any, base: Path | None = None, source: str = "<project>") -> Project:
        """Restore detection inputs and settings; returns the project so the caller can load its models
        in the worker. Missing image files are skipped; their problems are returned in `project_problems`."""
        project = Project.from_json(data, base, source)
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
        ex = project.extra
        self.extra = {k: v for k, v in ex.items() if k not in SESSION_SECTIONS}
        try:
            self.plan = PruningPlan.from_json(ex["plan"]) if ex.get("plan") else PruningPlan()
        except PlanError as e:
            problems.append(f"plan: {e}")
            self.plan = PruningPlan()
        self.importance = None
        imp = ex.get("importance")
        if isinstance(imp, dict) and imp.get("file"):
            from core.importance.result import ImportanceFileError, ImportanceResult

            try:
                self.importance = ImportanceResult.load(_abs(imp["file"], base))
            except (ImportanceFileError, OSError) as e:
                problems.append(f"importance: {e}")
        dataset = ex.get("dataset")
        self.dataset_path = (dataset if ":" in str(dataset).split("/")[0] else _abs(dataset, base)) if dataset else None
        self._restore_metrics(ex.get("metrics"), problems)
        self.prune_result = None
        self.planChanged.emit()
        self.importanceChanged.emit()
        self.datasetChanged.emit()
        self.metricsChanged.emit()
        self.project_problems = problems
        # what the file holds, in the form snapshot() gives once the models are loaded again
        project = replace(project, extra=self.snapshot().extra)
        self.mark_dirty()
        return project

    def save_project(self, path: str | os.PathLike) -> Path:
        """Write the project (and the importance result beside it: NAME.importance.npz/.json)."""
        path = Path(path)
        snap = self.snapshot()
        base = path.parent.resolve()
        data = snap.to_json(base)
        if self.importance is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _, json_path = self.importance.save(path.parent / f"{project_stem(path)}.importance")
            data["importance"] = {"file": _rel(str(json_path), base), **importance_token(self.importance)}
        if self.dataset_path and ":" not in self.dataset_path.split("/")[0]:
            data["dataset"] = _rel(self.dataset_path, base)
        atomic_write_text(path, json.dumps(with_json_digest(data), indent=1))
        self._saved = snap
        self._set_project_path(path)
        self.mark_dirty()
        return path

    def open_project(self, path: str | os.PathLike) -> Project:
        path = Path(path)
        data = read_json(path, ProjectError, "project file")
        check_json_digest(data, path, ProjectError)
        project = self.from_json(data, path.parent.resolve(), str(path))
        self._saved = project  # models still loading count as saved: loading them makes the session clean
        self._set_project_path(path)
        self.mark_dirty()
        return project

    def _set_project_path(self, path: Path) -> None:
        self.project_path = str(path.resolve())
        self.recent_projects.add(path)
        self.recentChanged.emit()
        self.projectPathChanged.emit(self.project_path)
