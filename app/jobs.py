"""Job-shaped adapters over core calls that core does not (yet) expose as `fn(..., progress, cancel)`.

Why here: the GUI needs progress and cancel points around `load_model` + `summarize` and around
`Detector.prepare_classes` + `Detector.detect`. These functions only compose public core calls in the
order the CLI does (`os2d-studio info` / `detect`), so the GUI shows what the CLI computes. No Qt here:
they run in the worker and in tests alike. (Candidates to move into core once it grows job wrappers.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from core.detect import DEFAULT_TARGET_SIZE, Detections, Detector
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import LoadedModel, load_model
from core.model.summary import ModelSummary, summarize


@dataclass(frozen=True)
class ModelLoad:
    """A loaded model, its summary, and the file size shown in the model panel."""

    loaded: LoadedModel
    summary: ModelSummary
    file_bytes: int


def load_model_job(path: str | os.PathLike, *, progress: Progress = no_progress,
                   cancel: CancelToken | None = None) -> ModelLoad:
    """Load a checkpoint (official or ours) and summarize it; errors are core's `CheckpointError`."""
    cancel = cancel or CancelToken()
    progress(0, 2, f"reading {os.path.basename(str(path))}")
    loaded = load_model(path)
    cancel.raise_if_cancelled()
    progress(1, 2, "summarizing")
    summary = summarize(loaded.model)
    progress(2, 2, "done")
    return ModelLoad(loaded, summary, os.path.getsize(loaded.path))


@dataclass(frozen=True)
class DetectionRun:
    """Detections of one or more models ("original", "pruned") on one target, before score filtering.

    Score thresholds are applied at display time with `Detections.top`, exactly like the CLI's
    `--min-score`; NMS is part of the run (`nms_iou_threshold`).
    """

    detections: Mapping[str, Detections]  # variant ("original", "pruned") -> all detections after NMS
    class_names: tuple[str, ...]
    nms_iou_threshold: float
    target_size: Mapping[str, float] = field(default_factory=dict)


def detect_job(models: Mapping[str, LoadedModel], class_images: Sequence[np.ndarray], class_names: Sequence[str],
               target: np.ndarray, *, nms_iou_threshold: float = 0.3, device: str | None = None,
               progress: Progress = no_progress, cancel: CancelToken | None = None) -> DetectionRun:
    """Run each model on the same class images and target (single scale, the model's eval scale)."""
    cancel = cancel or CancelToken()
    if not models:
        raise ValueError("no model to run: open a model first")
    if not class_images:
        raise ValueError("no class images: add a class image (file or a crop of the target) first")
    total = 2 * len(models)
    step = 0
    out, sizes = {}, {}
    for variant, loaded in models.items():
        cancel.raise_if_cancelled()
        size = float(loaded.meta.get("eval_scale") or DEFAULT_TARGET_SIZE)
        det = Detector(loaded.model, device, target_size=size)
        progress(step, total, f"{variant}: class features")
        bank = det.prepare_classes(list(class_images), names=list(class_names))
        step += 1
        cancel.raise_if_cancelled()
        progress(step, total, f"{variant}: detecting")
        out[variant] = det.detect(target, bank, score_threshold=float("-inf"), nms_iou_threshold=nms_iou_threshold)
        sizes[variant] = size
        step += 1
        progress(step, total, f"{variant}: {len(out[variant])} detections")
    return DetectionRun(out, tuple(class_names), float(nms_iou_threshold), sizes)
