"""The project file: what rebuilds a session -- model paths, detection inputs and settings, the
calibration/evaluation dataset, the pruning plan, the metrics and a reference to the importance result,
which is saved beside the project as `NAME.importance.npz/.json` (core's format, so
`os2d-studio prune --importance NAME.importance` reads it too).

Qt-free, so the file format can be read and tested without a window.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from app.pruning_jobs import Evaluation
from core.errors import InputError
from core.io import JSON_DIGEST_KEY, atomic_write_text, check_json_digest, read_json, with_json_digest
from core.prune.plan import PlanError, PruningPlan
from core.prune.sensitivity import SensitivityResult

PROJECT_FORMAT = "os2d-studio-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".os2d.json"
COMPARE_MODES = ("original", "pruned", "both")
# "backend:precision" choices a side can run on (core.deploy.runtime.BACKENDS x PRECISIONS that exist)
RUNTIMES = ("torch:fp32", "onnxruntime:fp32", "openvino:fp32", "openvino:bf16", "openvino:int8")
RUNTIME_LABELS = {"torch:fp32": "PyTorch fp32", "onnxruntime:fp32": "ONNX Runtime fp32",
                  "openvino:fp32": "OpenVINO fp32", "openvino:bf16": "OpenVINO bf16", "openvino:int8": "OpenVINO int8"}
# top-level keys this version reads; any other section is kept verbatim and written back
KNOWN_SECTIONS = frozenset({"format", "version", "model", "pruned_model", "detection", "plan", "importance",
                            "metrics", "dataset", JSON_DIGEST_KEY})


class ProjectError(InputError):
    """A project file that cannot be opened; the message names the file and the problem."""


def project_stem(path: str | os.PathLike) -> str:
    """`study` for `study.os2d.json` (files saved beside a project are named after it)."""
    name = Path(path).name
    for suffix in (PROJECT_SUFFIX, ".json"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def is_dataset_spec(dataset: str) -> bool:
    """`grozi:PATH` and the like name a dataset rather than a folder: kept as typed, never resolved."""
    return ":" in str(dataset).split("/")[0]


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

    def to_json(self) -> dict:
        return {"score_threshold": self.score_threshold, "nms_iou_threshold": self.nms_iou_threshold,
                "max_shown": self.max_shown, "compare": self.compare,
                "pruned_score_threshold": self.pruned_score_threshold,
                "video_uses_detection_classes": self.video_uses_detection_classes,
                "original_runtime": self.original_runtime, "pruned_runtime": self.pruned_runtime}

    @classmethod
    def from_json(cls, det: Mapping[str, Any]) -> "DetectionSettings":
        return cls(float(det.get("score_threshold", 0.5)), float(det.get("nms_iou_threshold", 0.3)),
                   int(det.get("max_shown", 50)), str(det.get("compare", "original")),
                   float(det.get("pruned_score_threshold", det.get("score_threshold", 0.5))),
                   bool(det.get("video_uses_detection_classes", False)),
                   str(det.get("original_runtime", "torch:fp32")), str(det.get("pruned_runtime", "torch:fp32")))


@dataclass(frozen=True)
class ImportanceRef:
    """What identifies an importance result in a project; its arrays live in `file` (core's format)
    once the project is saved. Two results with the same reference count as the same for unsaved changes."""

    criteria: tuple[str, ...] = ()
    units: int = 0
    calibration: Mapping[str, Any] = field(default_factory=dict)
    model_sha256: str = ""
    file: str | None = None  # absolute; NAME.importance.json beside the project

    @classmethod
    def of(cls, result: Any, file: str | None = None) -> "ImportanceRef":
        return cls(tuple(result.criteria), len(result.units), result.calibration.to_json(),
                   (result.model or {}).get("sha256", ""), file)

    def to_json(self, base: Path | None = None) -> dict:
        return {**({"file": _rel(self.file, base)} if self.file else {}), "criteria": list(self.criteria),
                "units": self.units, "calibration": self.calibration, "model_sha256": self.model_sha256}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: Path | None = None) -> "ImportanceRef":
        """Lenient: only `file` is needed to load the result; the rest is recomputed from it."""
        crits = data.get("criteria")
        return cls(tuple(str(c) for c in crits) if isinstance(crits, list) else (), data.get("units", 0),
                   data.get("calibration") or {}, data.get("model_sha256", ""), _abs(data.get("file"), base))

    def load(self) -> Any:
        """The result itself (core.importance.result.ImportanceResult); raises ImportanceFileError or
        OSError naming the file and the problem."""
        from core.importance.result import ImportanceResult

        return ImportanceResult.load(self.file)


@dataclass(frozen=True)
class Metrics:
    """Evaluations, the sensitivity curves and the last fine-tuning run (loss entries and its summary)."""

    evaluations: tuple[Evaluation, ...] = ()
    sensitivity: SensitivityResult | None = None
    finetune_log: tuple[dict, ...] = ()
    finetune_summary: dict | None = None  # core's FinetuneResult.to_json()

    def to_json(self) -> dict:
        return {"evaluations": [e.to_json() for e in self.evaluations],
                "sensitivity": self.sensitivity.to_json() if self.sensitivity else None,
                "finetune": {"log": list(self.finetune_log), "summary": self.finetune_summary}}

    @classmethod
    def from_json(cls, data: Any, problems: list[str]) -> "Metrics":
        """What can be read; a damaged part is reported in `problems` and it and the parts after it dropped."""
        parts: dict[str, Any] = {}
        if not data:
            return cls()
        try:
            parts["evaluations"] = tuple(Evaluation.from_json(e) for e in data.get("evaluations", []))
            sens = data.get("sensitivity")
            parts["sensitivity"] = SensitivityResult.from_json(sens) if sens else None
            ft = data.get("finetune") or {}
            parts["finetune_log"] = tuple(dict(e) for e in ft.get("log", []))
            parts["finetune_summary"] = ft.get("summary")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            problems.append(f"metrics section: {e}")
        return cls(**parts)


@dataclass(frozen=True)
class Project:
    """What a project file holds. Paths are absolute here; the file stores those inside its folder
    relative to it. `problems` are the sections that could not be read (the rest opens)."""

    model_path: str | None = None
    pruned_model_path: str | None = None
    target_path: str | None = None
    class_images: tuple[ClassImageSpec, ...] = ()
    detection: DetectionSettings = DetectionSettings()
    plan: PruningPlan = PruningPlan()
    importance: ImportanceRef | None = None
    metrics: Metrics = Metrics()
    dataset: str | None = None  # a folder, or a spec such as grozi:PATH
    unknown_sections: Mapping[str, Any] = field(default_factory=dict)  # written by a later version: kept
    problems: tuple[str, ...] = field(default=(), compare=False)

    def to_json(self, base: Path | None = None) -> dict:
        data = {
            "format": PROJECT_FORMAT, "version": PROJECT_VERSION,
            "model": _rel(self.model_path, base), "pruned_model": _rel(self.pruned_model_path, base),
            "detection": {"target": _rel(self.target_path, base),
                          "class_images": [c.to_json(base) for c in self.class_images], **self.detection.to_json()},
            **self.unknown_sections,
            "plan": self.plan.to_json(),
        }
        if self.importance is not None:
            data["importance"] = self.importance.to_json(base)
        data["metrics"] = self.metrics.to_json()
        if self.dataset:
            data["dataset"] = self.dataset if is_dataset_spec(self.dataset) else _rel(self.dataset, base)
        return data

    @classmethod
    def from_json(cls, data: Any, base: Path | None = None, source: str = "<project>") -> "Project":
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ProjectError(source, f"not an os2d-studio project (expected \"format\": \"{PROJECT_FORMAT}\")")
        if not isinstance(data.get("version"), int) or data["version"] > PROJECT_VERSION:
            raise ProjectError(source, f"written by a newer os2d-studio (project version {data.get('version')})")
        try:
            det = data.get("detection") or {}
            settings = DetectionSettings.from_json(det)
            classes = tuple(ClassImageSpec.from_json(c, base) for c in det.get("class_images", []))
        except (KeyError, TypeError, ValueError) as e:
            raise ProjectError(source, f"bad detection section: {e}") from None
        problems: list[str] = []
        try:
            plan = PruningPlan.from_json(data["plan"]) if data.get("plan") else PruningPlan()
        except PlanError as e:
            problems.append(f"plan: {e}")
            plan = PruningPlan()
        imp = data.get("importance")
        importance = ImportanceRef.from_json(imp, base) if isinstance(imp, dict) else None
        metrics = Metrics.from_json(data.get("metrics"), problems)
        dataset = data.get("dataset")
        dataset = (dataset if is_dataset_spec(dataset) else _abs(dataset, base)) if dataset else None
        return cls(_abs(data.get("model"), base), _abs(data.get("pruned_model"), base),
                   _abs(det.get("target"), base), classes, settings, plan, importance, metrics, dataset,
                   {k: v for k, v in data.items() if k not in KNOWN_SECTIONS}, tuple(problems))


def read_project(path: str | os.PathLike) -> Project:
    """Parse a project file, its checksum verified (files written before checksums open as before)."""
    path = Path(path)
    data = read_json(path, ProjectError, "project file")
    check_json_digest(data, path, ProjectError)
    return Project.from_json(data, path.parent.resolve(), str(path))


def write_project(path: str | os.PathLike, project: Project, importance: Any = None) -> Path:
    """Write the project atomically with its checksum; `importance` (the result `project.importance`
    refers to) is saved beside it as NAME.importance.npz/.json."""
    path = Path(path)
    if importance is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _, json_path = importance.save(path.parent / f"{project_stem(path)}.importance")
        project = replace(project, importance=ImportanceRef.of(importance, str(Path(json_path).resolve())))
    atomic_write_text(path, json.dumps(with_json_digest(project.to_json(path.parent.resolve())), indent=1))
    return path
