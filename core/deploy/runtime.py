"""Exported OS2D graphs run by ONNX Runtime or OpenVINO, behind the surface `Detector` calls on a model.

`DeployedNet` stands in for the torch model inside `Detector`: `class_features(class_images)` and
`net(image, class_feats=...)` return the same tensors the torch model does, so decoding, NMS and
`Detections` are the one shared Python path whatever runs the network.

Precision on OpenVINO's CPU plugin is set explicitly: its default hint is bf16 on CPUs that have it,
which is a precision change, so fp32 asks for f32 and bf16 is offered only where the CPU has native
bf16. int8 runs the target branch quantized by NNCF (`core.deploy.quantize`); the class branch, run
once per class set, stays fp32.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.deploy.artefacts import (CLASS_ONNX, QUANTIZE_JSON, TARGET_INT8_XML, TARGET_ONNX, DeployError,
                                   check_ir_files, model_cache_dir, model_digest, read_sidecar)
from core.deploy.telemetry import disable_vendor_telemetry
from core.model.os2d import OS2DModel, OS2DOutput

BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")
OPENVINO_DEVICES = ("CPU", "GPU", "NPU")


def check_choice(backend: str, precision: str) -> None:
    """Refuse combinations no backend offers, in the user's words."""
    if backend not in BACKENDS:
        raise DeployError(f"backend {backend}", f"unknown backend; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise DeployError(f"precision {precision}", f"unknown precision; choose one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and backend != "openvino":
        raise DeployError(f"precision {precision}", f"the {backend} backend runs fp32 only; bf16 and int8 run on "
                                                    "the openvino backend")


# -- OpenVINO capabilities -------------------------------------------------------------------------
def _ov_core():
    disable_vendor_telemetry()
    import openvino as ov

    return ov.Core()


def openvino_devices() -> list[str]:
    """OpenVINO devices present on this machine among CPU, GPU, NPU (GPU.0, GPU.1 count as GPU)."""
    found = _ov_core().available_devices
    return [d for d in OPENVINO_DEVICES if any(x == d or x.startswith(d + ".") for x in found)]


def supports_bf16(device: str = "CPU") -> bool:
    """Whether OpenVINO runs bf16 natively on `device` (the CPU needs AVX-512 BF16 or AMX)."""
    core = _ov_core()
    try:
        caps = core.get_property(device, "OPTIMIZATION_CAPABILITIES")
    except RuntimeError:
        return False
    return "BF16" in caps


def _resolve_ov_device(device: str | torch.device | None) -> str:
    name = "CPU" if device is None or str(device).lower() in ("auto", "cpu") else str(device).upper()
    if name not in OPENVINO_DEVICES and not any(name.startswith(d + ".") for d in OPENVINO_DEVICES):
        raise DeployError(f"device {device}", f"not an OpenVINO device; choose one of {', '.join(OPENVINO_DEVICES)}")
    present = _ov_core().available_devices
    if name not in present and not any(p.startswith(name + ".") for p in present):
        raise DeployError(f"device {name}", f"not present on this machine; OpenVINO sees {', '.join(present) or 'none'}")
    return name


def availability(model: OS2DModel | None = None, device: str = "CPU") -> dict[tuple[str, str], str]:
    """Every (backend, precision) pair → "" when it can run here now, else why not, in one line (what a
    GUI shows beside a disabled choice). With `model`, int8 needs a quantized model of it in the cache."""
    out: dict[tuple[str, str], str] = {}
    present = openvino_devices()
    for backend in BACKENDS:
        for precision in PRECISIONS:
            try:
                check_choice(backend, precision)
                reason = ""
            except DeployError as e:
                reason = e.problem
            if not reason and backend == "openvino":
                if device.upper() not in present:
                    reason = f"no {device.upper()} here; OpenVINO sees {', '.join(present) or 'none'}"
                elif precision == "bf16" and not supports_bf16(device.upper()):
                    reason = f"the {device.upper()} here has no native bf16"
                elif precision == "int8" and model is not None and find_quantized(model_digest(model)) is None:
                    reason = "no int8 model of this model yet; quantize it on calibration images first"
            out[(backend, precision)] = reason
    return out


# -- one graph, one runtime ------------------------------------------------------------------------
class _OrtGraph:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception:  # ORT raises its own exception types, all with library text
            raise DeployError(path, "ONNX Runtime cannot load this graph (damaged or not from this version); "
                                    "export the model again") from None

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)


class _OvGraph:
    """One OpenVINO graph, compiled for any input size and, once a size repeats, for that size alone.

    A video or camera feeds the same frame size and class count frame after frame, and OpenVINO's CPU
    kernels for fixed shapes are much faster than its dynamic-shape ones (the pruned default model in
    int8 on a 640x480 frame: 22 ms a frame with dynamic shapes, 9 ms fixed; compiling for one size
    takes ~0.2 s). A size seen once (an evaluation over images of many sizes) runs on the dynamic
    graph, so nothing is compiled that is used only once."""

    STATIC_AFTER = 2  # a size gets its own compiled graph on its second use
    STATIC_KEEP = 4  # compiled sizes kept, least recently used dropped
    SEEN_KEEP = 256  # sizes counted before the count starts over

    def __init__(self, core, path: Path, device: str, config: dict) -> None:
        try:
            self.model = core.read_model(str(path))
        except RuntimeError:
            raise DeployError(path, "OpenVINO cannot read this model (damaged or made by another tool)") from None
        self.core, self.device, self.config = core, device, config
        self.compiled = core.compile_model(self.model, device, config)
        self.request = self.compiled.create_infer_request()
        self.outputs = list(self.compiled.outputs)
        self._seen: dict[tuple, int] = {}
        self._static: OrderedDict[tuple, tuple] = OrderedDict()

    def _request_for(self, feeds: dict[str, np.ndarray]):
        key = tuple((name, a.shape) for name, a in sorted(feeds.items()))
        if key in self._static:
            self._static.move_to_end(key)
            return self._static[key]
        if len(self._seen) >= self.SEEN_KEEP:
            self._seen.clear()
        self._seen[key] = self._seen.get(key, 0) + 1
        if self._seen[key] < self.STATIC_AFTER:
            return self.request, self.outputs
        fixed = self.model.clone()
        fixed.reshape({name: list(shape) for name, shape in key})
        compiled = self.core.compile_model(fixed, self.device, self.config)
        self._static[key] = (compiled.create_infer_request(), list(compiled.outputs))
        while len(self._static) > self.STATIC_KEEP:
            self._static.popitem(last=False)
        return self._static[key]

    def __call__(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        request, outputs = self._request_for(feeds)
        res = request.infer(feeds)
        return [np.array(res[o], copy=True) for o in outputs]


# -- the stand-in for the torch model ---------------------------------------------------------------
@dataclass(frozen=True)
class RuntimeInfo:
    backend: str
    precision: str
    device: str  # what runs the graphs: "CPU", "GPU", ...
    folder: str  # the deploy folder the graphs came from
    load_seconds: float

    def describe(self) -> str:
        return f"{self.backend} {self.precision} on {self.device}"


class DeployedNet:
    """The exported graphs of one model behind the model's own inference surface."""

    def __init__(self, target, classes, *, box_size: int, stride: int, feature_dim: int, info: RuntimeInfo) -> None:
        self._target = target
        self._classes = classes
        self.box_size = box_size
        self.stride = stride
        self.feature_dim = feature_dim
        self.info = info

    def class_features(self, class_images: Sequence[torch.Tensor]) -> torch.Tensor:
        feats = [self._classes({"class_image": _np(img.unsqueeze(0))})[0] for img in class_images]
        return torch.from_numpy(np.concatenate(feats, axis=0))

    def __call__(self, images: torch.Tensor, class_images=None, *, class_feats: torch.Tensor) -> OS2DOutput:
        if class_feats is None:
            class_feats = self.class_features(class_images)
        if images.shape[0] != 1:
            raise ValueError(f"exported graphs take one target image at a time, got a batch of {images.shape[0]}")
        loc, cls, corners = self._target({"image": _np(images), "class_features": _np(class_feats)})
        from core.deploy.export import feature_map_size

        fm_hw = feature_map_size(self.stride, int(images.shape[-2]), int(images.shape[-1]))
        if fm_hw[0] * fm_hw[1] != cls.shape[-1]:
            raise RuntimeError(f"{cls.shape[-1]} anchors from the graph, {fm_hw} expected")
        cls_t = torch.from_numpy(cls)
        return OS2DOutput(torch.from_numpy(loc), cls_t, cls_t, fm_hw, torch.from_numpy(corners))


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().numpy())


def _threads() -> int:
    return max(1, torch.get_num_threads())


def find_quantized(digest: str) -> Path | None:
    """The newest int8 deploy folder of this model in the cache, or None."""
    root = model_cache_dir(digest)
    found = []
    for d in root.glob("int8-*") if root.is_dir() else ():
        side = d / QUANTIZE_JSON
        if side.is_file() and (d / TARGET_INT8_XML).is_file():
            found.append((side.stat().st_mtime, d))
    return max(found)[1] if found else None


def read_quantized(folder: str | os.PathLike, digest: str | None = None) -> dict:
    """The sidecar of an int8 deploy folder, its IR present and (with `digest`) made from that model."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DeployError(folder, "folder not found" if not folder.exists() else "not a folder (expected a quantize folder)")
    info = read_sidecar(folder / QUANTIZE_JSON, "quantize")
    if digest is not None and info.get("parent_sha256") != digest:
        raise DeployError(folder / QUANTIZE_JSON, f"quantized from another model (sha256 "
                                                  f"{str(info.get('parent_sha256'))[:12]}…), not this one ({digest[:12]}…)")
    check_ir_files(folder / TARGET_INT8_XML)
    return info


def open_runtime(model: OS2DModel, backend: str, precision: str = "fp32", *, device: str | None = None,
                 deploy_dir: str | os.PathLike | None = None) -> DeployedNet:
    """The model's exported graphs on `backend` at `precision`.

    deploy_dir: a folder from `export` or `quantize`; None uses the cache (exporting on first use).
    int8 needs a quantized target branch: `deploy_dir` from `quantize`, else the newest in the cache."""
    from core.deploy.export import export_model, read_export

    check_choice(backend, precision)
    if backend == "torch":
        raise ValueError("the torch backend runs the model itself; open_runtime is for exported graphs")
    start = time.perf_counter()
    digest = model_digest(model)
    if precision == "int8":
        folder = Path(deploy_dir) if deploy_dir is not None else find_quantized(digest)
        if folder is None:
            raise DeployError("precision int8", "no int8 model of this model yet; make one with "
                                                 "`os2d-studio quantize` (it needs calibration images)")
        read_quantized(folder, digest)
        read_export(folder, digest)  # the class branch (and fp32 target) travel with the int8 IR
    elif deploy_dir is not None:
        folder = Path(deploy_dir)
        read_export(folder, digest)
    else:
        folder = export_model(model, digest=digest).folder
    threads = _threads()
    if backend == "onnxruntime":
        if device is not None and str(device).lower() not in ("auto", "cpu"):
            raise DeployError(f"device {device}", "the onnxruntime backend runs on the CPU here; use auto or cpu")
        target = _OrtGraph(folder / TARGET_ONNX, threads)
        classes = _OrtGraph(folder / CLASS_ONNX, threads)
        dev = "CPU"
    else:
        dev = _resolve_ov_device(device)
        core = _ov_core()
        if precision == "bf16" and not supports_bf16(dev):
            raise DeployError("precision bf16", f"the {dev} here has no native bf16 (OpenVINO reports "
                                                 f"{', '.join(core.get_property(dev, 'OPTIMIZATION_CAPABILITIES'))}); "
                                                 "use fp32 or int8")
        hint = "bf16" if precision == "bf16" else "f32"  # int8: what stays float runs in f32
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if dev == "CPU":
            config["INFERENCE_NUM_THREADS"] = threads
        class_config = dict(config, INFERENCE_PRECISION_HINT="f32" if precision == "int8" else hint)
        target_path = folder / (TARGET_INT8_XML if precision == "int8" else TARGET_ONNX)
        target = _OvGraph(core, target_path, dev, config)
        classes = _OvGraph(core, folder / CLASS_ONNX, dev, class_config)
    info = RuntimeInfo(backend, precision, dev, str(folder), time.perf_counter() - start)
    return DeployedNet(target, classes, box_size=int(model.box_size), stride=int(model.stride),
                       feature_dim=int(model.feature_dim), info=info)
