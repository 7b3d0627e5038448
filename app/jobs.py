"""Job-shaped adapters over core calls that core does not (yet) expose as `fn(..., progress, cancel)`.

Why here: the GUI needs progress and cancel points around `load_model` + `summarize` and around
`Detector.prepare_classes` + `Detector.detect`. These functions only compose public core calls in the
order the CLI does (`os2d-studio info` / `detect`), so the GUI shows what the CLI computes. No Qt here:
they run in the worker and in tests alike. (Candidates to move into core once it grows job wrappers.)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from core.detect import Detections, Detector
from core.errors import StepMissing
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import LoadedModel, load_model
from core.model.summary import ModelSummary, summarize
from core.prune.plan import PlanCostModel
from core.prune.units import Unit, find_units

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelLoad:
    """A loaded model, its summary, and the file size shown in the model panel.

    `units` and `cost` (the prunable units and the plan cost model) are computed with the load, in the
    worker, so the pruning sliders predict sizes without touching the model; both are empty for a model
    the pruning engine does not know. `digest` is `core.model.digest.weights_digest`: it tells whether
    an importance result belongs to these weights.
    """

    loaded: LoadedModel
    summary: ModelSummary
    file_bytes: int
    units: tuple[Unit, ...] = ()
    cost: PlanCostModel | None = None
    digest: str = ""


def analyze_model(loaded: LoadedModel, file_bytes: int = 0) -> ModelLoad:
    """Summary, prunable units, plan cost model and weight digest of a model already in memory."""
    from core.model.digest import weights_digest

    summary = summarize(loaded.model)
    try:
        units = tuple(find_units(loaded.model))
        cost = PlanCostModel.from_model(loaded.model, units)
    except (ValueError, AttributeError, KeyError) as e:  # not an architecture the pruning engine knows
        log.info("no pruning units for %s: %s", loaded.path or "(in memory)", e)
        units, cost = (), None
    return ModelLoad(loaded, summary, file_bytes, units, cost, weights_digest(loaded.model))


def load_model_job(path: str | os.PathLike, *, progress: Progress = no_progress,
                   cancel: CancelToken | None = None) -> ModelLoad:
    """Load a checkpoint (official or ours) and summarize it; errors are core's `CheckpointError`."""
    cancel = cancel or CancelToken()
    progress(0, 2, f"reading {os.path.basename(str(path))}")
    loaded = load_model(path)
    cancel.raise_if_cancelled()
    progress(1, 2, "summarizing")
    info = analyze_model(loaded, os.path.getsize(loaded.path))
    progress(2, 2, "done")
    return info


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
    runtimes: Mapping[str, str] = field(default_factory=dict)  # variant -> "backend:precision" it ran on


RUNTIME_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


def runtime_label(runtime: str) -> str:
    """"openvino:int8" -> "OpenVINO int8" (what the GUI calls a runtime)."""
    backend, _, precision = runtime.partition(":")
    return f"{RUNTIME_NAMES.get(backend, backend)} {precision or 'fp32'}"


def open_detector(model, device: str | None, *, target_size: float | None, runtime: str = "torch:fp32",
                  role: str = "", detector_cls: type = Detector, progress: Progress = no_progress,
                  cancel: CancelToken | None = None, **kwargs) -> Detector:
    """A Detector of `model` on `runtime` ("backend:precision"), exporting the graphs first when this model
    has none in the cache yet (the step the user waits for; reported as "exporting…").

    int8 needs a quantized model; making one here would silently take minutes and a dataset, so a missing
    one is refused with what to do instead (Pruning tab → Quantize)."""
    backend, _, precision = runtime.partition(":")
    precision = precision or "fp32"
    if backend == "torch" and precision == "fp32":
        return detector_cls(model, device, target_size=target_size, **kwargs)
    from core.deploy.artefacts import model_digest
    from core.deploy.runtime import check_choice, find_quantized

    check_choice(backend, precision)
    who = f"{role} model" if role else "model"
    digest = model_digest(model)
    if precision == "int8":
        if find_quantized(digest) is None:
            raise StepMissing(f"No int8 model of the {who} yet: quantize it first (Pruning tab → Quantize int8, "
                              f"8 calibration images of the dataset), or choose another runtime for this side.")
    else:
        from core.deploy.export import export_model

        def exporting(done: int, total: int, message: str = "") -> None:
            progress(done, total, f"{who}: exporting… ({message})" if message else f"{who}: exporting…")

        export_model(model, digest=digest, progress=exporting, cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()
    return detector_cls(model, None, target_size=target_size, backend=backend, precision=precision,
                        name=role, **kwargs)


def detect_job(models: Mapping[str, LoadedModel], class_images: Sequence[np.ndarray], class_names: Sequence[str],
               target: np.ndarray, *, nms_iou_threshold: float = 0.3, device: str | None = None,
               runtimes: Mapping[str, str] | None = None,
               progress: Progress = no_progress, cancel: CancelToken | None = None) -> DetectionRun:
    """Run each model on the same class images and target (single scale, the model's eval scale), each on
    its runtime (`runtimes`: variant -> "backend:precision", PyTorch fp32 when absent)."""
    cancel = cancel or CancelToken()
    runtimes = dict(runtimes or {})
    if not models:
        raise StepMissing("no model to run: open a model first")
    if not class_images:
        raise StepMissing("no class images: add a class image (file or a crop of the target) first")
    total = 2 * len(models)
    step = 0
    out, sizes = {}, {}
    for variant, loaded in models.items():
        cancel.raise_if_cancelled()
        size = loaded.scale()
        det = open_detector(loaded.model, device, target_size=size, runtime=runtimes.get(variant, "torch:fp32"),
                            role=variant, progress=lambda _d, _t, m: progress(step, total, m), cancel=cancel)
        progress(step, total, f"{variant} model: class features")
        bank = det.prepare_classes(list(class_images), names=list(class_names))
        step += 1
        cancel.raise_if_cancelled()
        progress(step, total, f"{variant} model: target image")
        out[variant] = det.detect(target, bank, score_threshold=float("-inf"), nms_iou_threshold=nms_iou_threshold)
        sizes[variant] = size
        step += 1
        progress(step, total, f"{variant} model: {len(out[variant])} detections")
    return DetectionRun(out, tuple(class_names), float(nms_iou_threshold), sizes,
                        {v: runtimes.get(v, "torch:fp32") for v in out})


CALIBRATION_IMAGES = 8  # int8 calibration: enough for NNCF's activation ranges on a one-shot detector


def export_deploy_job(loaded: LoadedModel, out_dir: str | os.PathLike, *, progress: Progress = no_progress,
                      cancel: CancelToken | None = None):
    """Export `loaded` as ONNX graphs into `out_dir` (`os2d-studio export`); never over existing files."""
    from core.deploy.export import export_model

    return export_model(loaded.model, out_dir, source_path=loaded.path or None, progress=progress, cancel=cancel)


def quantize_deploy_job(loaded: LoadedModel, dataset: str | None, out_dir: str | os.PathLike, *,
                        num_images: int = CALIBRATION_IMAGES, progress: Progress = no_progress,
                        cancel: CancelToken | None = None):
    """Quantize `loaded`'s target branch to int8 on `num_images` calibration images of `dataset`
    (`os2d-studio quantize`): into the cache, where the OpenVINO int8 runtime finds it, and `out_dir`."""
    from core.data.grozi import open_dataset
    from core.deploy.quantize import quantize
    from core.importance.calibration import build_calibration

    cancel = cancel or CancelToken()
    if not dataset:
        raise StepMissing("no dataset for calibration images: choose one in the Pruning tab")
    progress(0, 1, f"calibration: opening {os.path.basename(str(dataset).rstrip('/'))}")
    ds = open_dataset(dataset, "train")
    cancel.raise_if_cancelled()

    def calibrating(done: int, total: int, message: str = "") -> None:
        progress(done, total, f"calibration images ({num_images}): {message}" if message else "calibration images")

    calib = build_calibration(ds, int(num_images), float(loaded.scale(ds)), progress=calibrating, cancel=cancel)
    return quantize(loaded.model, calib, out_dir, source_path=loaded.path or None, progress=progress, cancel=cancel)


@dataclass(frozen=True)
class RuntimeTimings:
    """Each model's latency on every deployment runtime (the Metrics tab's table), with the label of the
    model it was measured on, so a table never describes a model that has since been replaced."""

    labels: Mapping[str, str]  # role → model_key of the measured model
    rows: Mapping[str, tuple]  # role → core.deploy.latency.RuntimeLatency per runtime
    input_size: tuple[int, int]
    repeats: int  # timed runs per model and runtime (the median is shown)


def runtime_timings_job(models: Mapping[str, LoadedModel], *, input_size: tuple[int, int] = (512, 512),
                        repeats: int = 5, progress: Progress = no_progress,
                        cancel: CancelToken | None = None) -> RuntimeTimings:
    """Time every model on every runtime (`core.deploy.latency.time_runtimes`), one phase per model."""
    from core.deploy.latency import time_runtimes
    from core.jobs import Phases

    phases = Phases(progress, [(f"{role} model", 1.0) for role in models])
    rows = {role: tuple(time_runtimes(loaded.model, input_size=input_size, repeats=repeats, warmup=1,
                                      progress=phases(f"{role} model"), cancel=cancel))
            for role, loaded in models.items()}
    phases.done()
    return RuntimeTimings({role: model_key(loaded) for role, loaded in models.items()}, rows, tuple(input_size),
                          int(repeats))


def model_key(loaded: LoadedModel) -> str:
    """What identifies a loaded model for results measured on it: its file's digest and the model object
    (a model pruned in this window has no file yet)."""
    return f"{loaded.sha256 or loaded.path}#{id(loaded.model)}"
