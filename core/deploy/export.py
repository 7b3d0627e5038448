"""ONNX export of an OS2D model: the target branch and the class branch, with a sidecar.

Two graphs because a detector runs them at different rates: class images once per class set, the
target branch once per frame. The target branch takes the ImageNet-normalised image [1, 3, H, W] and
class features [C, F, 15, 15] and returns OS2D's raw `loc` [1, C, 4, A], `cls` [1, C, A] and `corners`
[1, C, 8, A], with H, W and C dynamic. Box decoding and NMS are not in the graph: they stay in
`box_coder.decode_detections`, the one Python path every backend shares, so all backends return the
same kind of `Detections`. The export is traced (TorchScript exporter, opset 17) from the folded,
channels-last inference copy `Detector` runs (float32 correlation resampling).
"""

from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.data.images import size_preserving_aspect
from core.deploy.artefacts import (CLASS_ONNX, EXPORT_JSON, EXPORT_VERSION, READABLE_EXPORT_VERSIONS, TARGET_ONNX,
                                   DeployError, check_onnx, existing, model_cache_dir, model_digest, publish,
                                   read_sidecar, staging_dir, write_sidecar)
from core.jobs import CancelToken, Progress, no_progress
from core.model.checkpoint import file_sha256
from core.model.os2d import GRID, OS2DModel

OPSET = 17
TARGET_INPUTS = ("image", "class_features")
TARGET_OUTPUTS = ("loc", "cls", "corners")
CLASS_INPUTS = ("class_image",)
CLASS_OUTPUTS = ("features",)
EXPORT_FILES = (TARGET_ONNX, CLASS_ONNX, EXPORT_JSON)
EXAMPLE_FRAME_HW = (480, 640)  # the example the graphs are traced with; any size runs afterwards
EXAMPLE_SIZE = 512
EXAMPLE_CLASSES = 2


class TargetBranch(nn.Module):
    """Target image + class features → (loc, cls, corners): the per-frame part of OS2D."""

    def __init__(self, net: OS2DModel) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, class_features: torch.Tensor):
        out = self.net(image, class_feats=class_features)
        return out.loc, out.cls, out.corners


class ClassBranch(nn.Module):
    """One class image [1, 3, h, w] → its features on the 15x15 grid [1, F, 15, 15]."""

    def __init__(self, net: OS2DModel) -> None:
        super().__init__()
        self.net = net

    def forward(self, class_image: torch.Tensor) -> torch.Tensor:
        return self.net.class_features([class_image[0]])


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    target: Path  # target.onnx
    classes: Path  # class.onnx
    sidecar: Path  # export.json
    sha256: str  # the model's content digest (`artefacts.model_digest`)
    info: dict  # the sidecar's content
    cached: bool = False  # found in the cache rather than made now
    seconds: float = 0.0


def feature_map_size(net_stride: int, h: int, w: int) -> tuple[int, int]:
    """The trunk's output size for an h x w input: each stride-2 stage maps n to (n - 1) // 2 + 1
    (ResNet's 7x7/2 stem, 3x3/2 max-pool and 3x3/2 or 1x1/2 stage convolutions alike)."""
    for _ in range(int(net_stride).bit_length() - 1):
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    return h, w


def _versions() -> dict:
    import onnx

    return {"torch": torch.__version__, "onnx": onnx.__version__}


def _trace(module: nn.Module, args: tuple, path: Path, inputs, outputs, dynamic: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET, input_names=list(inputs),
                          output_names=list(outputs), dynamic_axes=dynamic, do_constant_folding=True)


def _check_against_torch(target_path: Path, class_path: Path, branch: TargetBranch, classes: ClassBranch,
                         image: torch.Tensor, class_image: torch.Tensor, feats: torch.Tensor) -> dict:
    """Run the new graphs once in ONNX Runtime on the trace example: a broken export fails here, not
    in front of a user. Returns the largest differences from torch (recorded in the sidecar)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.log_severity_level = 3
    with torch.inference_mode():
        ref = branch(image, feats)
        ref_feats = classes(class_image)
    sess = ort.InferenceSession(str(target_path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": image.numpy(), "class_features": feats.numpy()})
    sess_c = ort.InferenceSession(str(class_path), opts, providers=["CPUExecutionProvider"])
    got_feats = sess_c.run(None, {"class_image": class_image.numpy()})[0]
    diffs = {name: float(np.abs(g - r.numpy()).max()) for name, g, r in zip(TARGET_OUTPUTS, got, ref)}
    diffs["features"] = float(np.abs(got_feats - ref_feats.numpy()).max())
    scale = max(1.0, float(ref_feats.abs().max()))  # features are not normalised: compare relative to their size
    if not (diffs["cls"] <= 1e-3 and diffs["features"] <= 1e-4 * scale):
        raise RuntimeError(f"the exported graphs disagree with torch: {diffs}")
    return {k: float(f"{v:.3g}") for k, v in diffs.items()}


def _write_export(model: OS2DModel, staged: Path, digest: str, source: dict | None, progress: Progress,
                  cancel: CancelToken | None) -> dict:
    from core.model.inference import inference_model

    def step(k: int, msg: str) -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(k, 4, msg)

    net = inference_model(model, "cpu")  # a folded copy; the caller's model stays where it is
    g = torch.Generator().manual_seed(0)
    h, w = size_preserving_aspect(*EXAMPLE_FRAME_HW, EXAMPLE_SIZE)
    image = torch.randn(1, 3, h, w, generator=g)
    cis = int(model.config.class_image_size)
    class_image = torch.randn(1, 3, cis, cis, generator=g)
    with torch.inference_mode():
        feats = net.class_features([torch.randn(3, cis, cis, generator=g) for _ in range(EXAMPLE_CLASSES)])
    branch, classes = TargetBranch(net).eval(), ClassBranch(net).eval()

    step(0, "exporting the target branch")
    _trace(branch, (image, feats), staged / TARGET_ONNX, TARGET_INPUTS, TARGET_OUTPUTS, {
        "image": {2: "height", 3: "width"}, "class_features": {0: "classes"},
        "loc": {1: "classes", 3: "anchors"}, "cls": {1: "classes", 2: "anchors"},
        "corners": {1: "classes", 3: "anchors"}})
    step(1, "exporting the class branch")
    _trace(classes, (class_image,), staged / CLASS_ONNX, CLASS_INPUTS, CLASS_OUTPUTS,
           {"class_image": {2: "height", 3: "width"}})
    step(2, "checking the graphs against torch")
    check = _check_against_torch(staged / TARGET_ONNX, staged / CLASS_ONNX, branch, classes, image, class_image, feats)
    step(3, "writing the sidecar")
    info = {
        "export_version": EXPORT_VERSION,
        "parent_sha256": digest,
        "parent_file": source,
        "config": model.config.to_json(),
        "feature_dim": int(model.feature_dim),
        "box_size": int(model.box_size),
        "stride": int(model.stride),
        "class_image_size": cis,
        "grid": GRID,
        "opset": OPSET,
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "graphs": {
            "target": {"file": TARGET_ONNX, "sha256": file_sha256(staged / TARGET_ONNX),
                       "inputs": {"image": "[1, 3, H, W] float32, ImageNet-normalised RGB",
                                  "class_features": f"[C, {model.feature_dim}, {GRID}, {GRID}] float32"},
                       "outputs": {"loc": "[1, C, 4, A] box codes (10, 10, 5, 5) w.r.t. the anchors",
                                   "cls": "[1, C, A] scores", "corners": "[1, C, 8, A] pixels"}},
            "class": {"file": CLASS_ONNX, "sha256": file_sha256(staged / CLASS_ONNX),
                      "inputs": {"class_image": "[1, 3, h, w] float32, ImageNet-normalised RGB"},
                      "outputs": {"features": f"[1, {model.feature_dim}, {GRID}, {GRID}]"}},
        },
        "check_max_abs_diff": check,
        "resample_dtype": "float32",
        "batch_norms_folded": True,
    }
    write_sidecar(staged / EXPORT_JSON, "export", info)
    progress(4, 4, "exported")
    return info


def read_export(folder: str | Path, digest: str | None = None, *, verify: bool = True) -> dict:
    """The sidecar of an export folder, its graphs checked: present, ours, undamaged, and (with
    `digest`) exported from that model. Anything else is a one-line DeployError naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeployError(folder, "folder not found" if not folder.exists() else "not a folder (expected an export folder)")
    info = read_sidecar(folder / EXPORT_JSON, "export")
    if info.get("export_version") not in READABLE_EXPORT_VERSIONS:
        raise DeployError(folder / EXPORT_JSON, f"export format {info.get('export_version')}, this version reads "
                                                f"{', '.join(map(str, READABLE_EXPORT_VERSIONS))}; export the model again")
    if digest is not None and info.get("parent_sha256") != digest:
        raise DeployError(folder / EXPORT_JSON, f"exported from another model (sha256 {str(info.get('parent_sha256'))[:12]}…), "
                                                f"not this one ({digest[:12]}…)")
    for key, ins, outs in (("target", TARGET_INPUTS, TARGET_OUTPUTS), ("class", CLASS_INPUTS, CLASS_OUTPUTS)):
        path = folder / (TARGET_ONNX if key == "target" else CLASS_ONNX)
        check_onnx(path, ins, outs)
        if verify:
            recorded = info.get("graphs", {}).get(key, {}).get("sha256")
            if recorded != file_sha256(path):
                raise DeployError(path, f"damaged: content does not match the sha256 its {EXPORT_JSON} records")
    return info


def export_model(model: OS2DModel, out_dir: str | Path | None = None, *, source_path: str | Path | None = None,
                 source_sha256: str | None = None, digest: str | None = None,
                 progress: Progress = no_progress, cancel: CancelToken | None = None) -> ExportResult:
    """Export the target and class branches of `model` as ONNX with a sidecar.

    out_dir None: the model's folder in the cache, reused when it holds a sound export of this model
    (a damaged cache entry is made again). A folder the user names must not hold any of the files
    (target.onnx, class.onnx, export.json): nothing of theirs is ever replaced. `source_path` and
    `source_sha256` record the model file it came from in the sidecar."""
    start = time.perf_counter()
    digest = digest or model_digest(model)
    cached = out_dir is None
    dest = model_cache_dir(digest) / "export" if cached else Path(out_dir)
    if cached and dest.exists():
        try:
            info = read_export(dest, digest)
            if info.get("export_version") != EXPORT_VERSION:
                raise DeployError(dest / EXPORT_JSON, "made by an older version")
            progress(1, 1, "found in the cache")
            return ExportResult(dest, dest / TARGET_ONNX, dest / CLASS_ONNX, dest / EXPORT_JSON, digest, info, True,
                                time.perf_counter() - start)
        except DeployError:
            _discard(dest)  # our own cache entry, unreadable: make it again
    if not cached:
        if dest.exists() and not dest.is_dir():
            raise DeployError(dest, "exists and is not a folder; choose a new folder for the export")
        clash = existing(dest, EXPORT_FILES) if dest.is_dir() else []
        if clash:
            raise DeployError(dest / clash[0], "file exists; refusing to overwrite it (choose a new folder)")
    source = None
    if source_path is not None:
        source = {"path": str(source_path), "sha256": source_sha256 or file_sha256(source_path)}
    staged = staging_dir(dest)
    try:
        info = _write_export(model, staged, digest, source, progress, cancel)
        if cached and dest.exists():  # another process exported it meanwhile
            shutil.rmtree(staged, ignore_errors=True)
            info = read_export(dest, digest)
        else:
            publish(staged, dest)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return ExportResult(dest, dest / TARGET_ONNX, dest / CLASS_ONNX, dest / EXPORT_JSON, digest, info, False,
                        time.perf_counter() - start)


def _discard(folder: Path) -> None:
    """Move a broken cache entry out of the way first, so a concurrent reader never sees it half-deleted."""
    aside = folder.with_name(f".{folder.name}.broken-{time.time_ns()}")
    try:
        folder.rename(aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)
