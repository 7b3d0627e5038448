"""int8 post-training quantization of the target branch with NNCF, written as an OpenVINO IR.

Calibration uses the same images importance does (`core.importance.calibration.build_calibration`),
each with the features of the class images it shows, so the activation ranges NNCF measures are the
ranges the detector meets. The class branch is not quantized: it runs once per class set.

Parts that int8 would hurt are kept float with NNCF's ignored scope (see INT8_PARTS); the sidecar
records which and why, the calibration set, and how far int8 scores moved from fp32 on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from core.deploy.artefacts import (CLASS_ONNX, EXPORT_JSON, EXPORT_VERSION, QUANTIZE_JSON, TARGET_INT8_BIN,
                                   TARGET_INT8_XML, TARGET_ONNX, DeployError, existing, model_cache_dir, model_digest, publish,
                                   staging_dir, write_sidecar)
from core.deploy.telemetry import disable_vendor_telemetry
from core.importance.calibration import CalibrationSet
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import file_sha256
from core.model.os2d import OS2DModel

# The parts of the target branch int8 may run, by the names the export gives their operations (name
# prefixes, anchored). Everything else -- feature normalisation, the affine inversion, sampling grids,
# grid_sample, score pooling and box encoding -- always stays float: it computes pixel coordinates and
# cosines near 1 that int8's 256 steps cannot hold (with it quantized the default model scored 0 mAP).
# Measured on the default model (calibrated on the bundled benchmark's 16 train images, scored on 50 val
# images of synth-0 at 1100; fp32 0.941): trunk + transform_net 0.941, + correlation 0.941 and faster,
# + transform_output as well 0.944 with the largest box-code drift. The default keeps the last regressor
# layer float: it is tiny (64 → 6 channels), so int8 buys nothing there, and it places every box.
INT8_PARTS: dict[str, tuple[str, str]] = {
    "trunk": ("/net/net_feature_maps/", "ResNet trunk convolutions: most of the compute"),
    "transform_net": ("/net/aligner/parameter_regressor/conv/",
                      "hidden convolutions of the transformation net on the 225 correlation channels"),
    "transform_output": ("/net/aligner/parameter_regressor/linear/",
                         "last layer of the transformation net: its 6 affine parameters place the box directly"),
    "correlation": ("/net/MatMul$", "dense correlation of class and target features: matching scores near 1 "
                                    "differ by less than an int8 step"),
}
ALWAYS_FLOAT = ("head arithmetic: feature normalisation, affine inversion, sampling grid, grid_sample, score "
                "pooling and box encoding (pixel coordinates and cosines near 1)")
DEFAULT_INT8_PARTS = ("trunk", "transform_net", "correlation")
QUANTIZE_FILES = (TARGET_INT8_XML, TARGET_INT8_BIN, QUANTIZE_JSON, TARGET_ONNX, CLASS_ONNX, EXPORT_JSON)


@dataclass(frozen=True)
class QuantizeConfig:
    int8_parts: tuple[str, ...] = DEFAULT_INT8_PARTS  # keys of INT8_PARTS run in int8; the rest stays float
    preset: str = "performance"  # NNCF preset: symmetric activations ("performance") or "mixed"
    fast_bias_correction: bool = True

    def __post_init__(self) -> None:
        unknown = [p for p in self.int8_parts if p not in INT8_PARTS]
        if unknown:
            raise ValueError(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(INT8_PARTS)}")
        if not self.int8_parts:
            raise ValueError("at least one part must run in int8")
        if self.preset not in ("performance", "mixed"):
            raise ValueError(f"preset must be performance or mixed, got '{self.preset}'")

    def to_json(self) -> dict:
        d = asdict(self)
        d["int8_parts"] = list(self.int8_parts)
        return d

    def ignored_pattern(self) -> str:
        """One NNCF ignored-scope pattern: every operation outside the int8 parts."""
        return "^(?!" + "|".join(INT8_PARTS[p][0] for p in self.int8_parts) + ")"

    def float_parts(self) -> dict[str, str]:
        parts = {p: why for p, (_, why) in INT8_PARTS.items() if p not in self.int8_parts}
        parts["head"] = ALWAYS_FLOAT
        return parts


@dataclass(frozen=True)
class QuantizeResult:
    folder: Path  # a deploy folder: the int8 IR, its sidecar, and the fp32 export it came from
    xml: Path
    sidecar: Path
    sha256: str  # the parent model's content digest
    info: dict = field(default_factory=dict)
    cached: bool = False
    seconds: float = 0.0


def _versions() -> dict:
    import nncf
    import openvino as ov

    return {"nncf": nncf.__version__, "openvino": ov.get_version(), "torch": torch.__version__,
            "export": EXPORT_VERSION}


def _calibration_inputs(model: OS2DModel, calibration: CalibrationSet, cancel: CancelToken | None) -> list[dict]:
    """Per calibration image: the normalised image and the features of the class images it shows."""
    from core.model.inference import inference_model

    net = inference_model(model, "cpu")
    items = []
    with torch.inference_mode():
        for s in calibration:
            if cancel is not None:
                cancel.raise_if_cancelled()
            feats = net.class_features(list(s.class_images))
            items.append({"image": s.image.unsqueeze(0).numpy(), "class_features": feats.numpy()})
    return items


def _score_drift(fp32_path: Path, int8_path: Path, items: list[dict]) -> dict:
    """How far int8 scores and box codes moved from fp32 on the calibration inputs (OpenVINO, f32 hint)."""
    import openvino as ov

    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads())}
    ref = core.compile_model(str(fp32_path), "CPU", cfg)
    q = core.compile_model(str(int8_path), "CPU", cfg)
    score_abs, top_abs, loc_abs = [], [], []
    for it in items:
        r, g = ref(it), q(it)
        rc, gc = np.asarray(r["cls"]), np.asarray(g["cls"])
        score_abs.append(np.abs(gc - rc).mean())
        top = np.argsort(rc.reshape(-1))[-20:]  # the anchors that become detections
        top_abs.append(np.abs(gc.reshape(-1)[top] - rc.reshape(-1)[top]).max())
        rl, gl = np.asarray(r["loc"]), np.asarray(g["loc"])
        loc_abs.append(np.abs(gl - rl).reshape(rl.shape[1], 4, -1).transpose(0, 2, 1).reshape(-1, 4)[top].max())
    return {"images": len(items), "mean_abs_score_diff": round(float(np.mean(score_abs)), 5),
            "max_abs_score_diff_top20": round(float(np.max(top_abs)), 5),
            "max_abs_box_code_diff_top20": round(float(np.max(loc_abs)), 5)}


def _key(digest: str, calibration: CalibrationSet, config: QuantizeConfig) -> str:
    blob = json.dumps({"model": digest, "calibration": calibration.provenance.to_json(), "config": config.to_json(),
                       "versions": _versions()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def quantize(model: OS2DModel, calibration: CalibrationSet, out_dir: str | Path | None = None, *,
             config: QuantizeConfig = QuantizeConfig(), source_path: str | Path | None = None,
             source_sha256: str | None = None, progress: Progress = no_progress,
             cancel: CancelToken | None = None) -> QuantizeResult:
    """Quantize the target branch of `model` to int8 on `calibration`.

    The result always lands in the model's cache folder (`int8-<key>`, reused when the same model,
    calibration set, configuration and library versions were quantized before), where `Detector(...,
    precision="int8")` finds it; `out_dir` also gets a copy, written only where none of its files exist."""
    disable_vendor_telemetry()
    start = time.perf_counter()
    digest = model_digest(model)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise DeployError(out, "exists and is not a folder; choose a new folder for the int8 model")
        clash = existing(out, QUANTIZE_FILES) if out.is_dir() else []
        if clash:
            raise DeployError(out / clash[0], "file exists; refusing to overwrite it (choose a new folder)")
    cache = model_cache_dir(digest) / f"int8-{_key(digest, calibration, config)}"
    from core.deploy.runtime import read_quantized

    cached = False
    if cache.is_dir():
        try:
            info = read_quantized(cache, digest)
            cached = True
        except DeployError:
            shutil.rmtree(cache, ignore_errors=True)
    if not cached:
        info = _quantize_into(cache, model, digest, calibration, config, source_path, source_sha256, progress, cancel)
    folder = cache
    if out is not None:
        staged = staging_dir(out)
        for name in QUANTIZE_FILES:
            shutil.copy2(cache / name, staged / name)
        if source_path is not None:  # the cache entry may have been made from another file of the same model
            info = dict(info, parent_file={"path": str(source_path),
                                           "sha256": source_sha256 or file_sha256(source_path)})
            write_sidecar(staged / QUANTIZE_JSON, "quantize", {k: v for k, v in info.items()
                                                               if k not in ("format", "kind")})
        publish(staged, out)
        folder = out
    progress(1, 1, "int8 model ready")
    return QuantizeResult(folder, folder / TARGET_INT8_XML, folder / QUANTIZE_JSON, digest, info, cached,
                          time.perf_counter() - start)


def _quantize_into(dest: Path, model: OS2DModel, digest: str, calibration: CalibrationSet, config: QuantizeConfig,
                   source_path, source_sha256, progress: Progress, cancel: CancelToken | None) -> dict:
    from core.deploy.export import export_model

    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # NNCF's torch probe: "no CUDA" noise
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    n = len(calibration)
    total = 2 * n + 3  # export, class features, statistics pass (n), save, drift check (n)
    done = 0

    def step(msg: str, k: int = 1) -> None:
        nonlocal done
        if cancel is not None:
            cancel.raise_if_cancelled()
        done += k
        progress(min(done, total), total, msg)

    progress(0, total, "exporting the fp32 graphs")
    exported = export_model(model, digest=digest, cancel=cancel,
                            source_path=source_path, source_sha256=source_sha256)
    step("computing class features of the calibration images")
    items = _calibration_inputs(model, calibration, cancel)
    done += 1  # the statistics pass reports its own images from here
    seen = {"k": 0}

    def feed(item: dict) -> dict:
        # NNCF walks the data set once per statistics pass; report each image of the first pass
        if cancel is not None:
            cancel.raise_if_cancelled()
        seen["k"] += 1
        if seen["k"] <= n:
            progress(min(done + seen["k"] - 1, total), total, f"calibrating on image {seen['k']} of {n}")
        return item

    core = ov.Core()
    fp32 = core.read_model(str(exported.target))
    pattern = config.ignored_pattern()
    quantized = nncf.quantize(
        fp32, nncf.Dataset(items, feed), preset=getattr(nncf.QuantizationPreset, config.preset.upper()),
        subset_size=n, fast_bias_correction=config.fast_bias_correction,
        ignored_scope=nncf.IgnoredScope(patterns=[pattern], validate=True))
    done += n
    staged = staging_dir(dest)
    try:
        step("saving the int8 model")
        ov.save_model(quantized, str(staged / TARGET_INT8_XML), compress_to_fp16=False)
        for name in (TARGET_ONNX, CLASS_ONNX, EXPORT_JSON):
            shutil.copy2(exported.folder / name, staged / name)
        progress(done, total, "comparing int8 with fp32 on the calibration images")
        drift = _score_drift(staged / TARGET_ONNX, staged / TARGET_INT8_XML, items)
        step("int8 model written", n)
        info = {
            "parent_sha256": digest,
            "parent_file": exported.info.get("parent_file") or (
                {"path": str(source_path), "sha256": source_sha256} if source_path else None),
            "config": model.config.to_json(),
            "calibration": calibration.provenance.to_json(),
            "calibration_boxes": calibration.num_boxes,
            "quantized": "target branch (target.onnx → target_int8.xml); the class branch stays fp32",
            "int8_parts": {p: INT8_PARTS[p][1] for p in config.int8_parts},
            "ignored_scope": {"kept_float": config.float_parts(), "nncf_patterns": [pattern]},
            "settings": config.to_json(),
            "versions": _versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "int8_vs_fp32_on_calibration": drift,
        }
        write_sidecar(staged / QUANTIZE_JSON, "quantize", info)
        if dest.exists():  # made meanwhile by another process: keep theirs
            shutil.rmtree(staged, ignore_errors=True)
        else:
            publish(staged, dest)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return info
