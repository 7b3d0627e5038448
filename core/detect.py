"""One-shot detection: class images + a target image → detections in original-image pixels."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import weakref
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from core.data.images import load_image, preprocess, pyramid
from core.model import box_coder
from core.model.inference import inference_model
from core.model.os2d import OS2DModel

DEFAULT_TARGET_SIZE = 1280  # GroZi-3.2k evaluation scale; our own models store theirs in the checkpoint


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, unless the caller says otherwise."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class Detections:
    """Boxes in original-image pixels (xyxy), sorted by decreasing score."""

    boxes: np.ndarray  # [N, 4] float32
    scores: np.ndarray  # [N] float32
    labels: np.ndarray  # [N] int64 class ids
    corners: np.ndarray | None = None  # [N, 8] transformed-grid corners (x, y) * 4
    image_size: tuple[int, int] = (0, 0)  # (width, height)
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.scores)

    def top(self, k: int | None = None, min_score: float = float("-inf")) -> "Detections":
        keep = np.nonzero(self.scores >= min_score)[0]
        if k is not None:
            keep = keep[:k]
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep],
                          None if self.corners is None else self.corners[keep], self.image_size, self.seconds)

    def to_json(self, class_names: Sequence[str] | None = None) -> dict:
        items = []
        for b, s, l in zip(self.boxes.tolist(), self.scores.tolist(), self.labels.tolist()):
            item = {"box_xyxy": [round(v, 2) for v in b], "score": round(s, 5), "label": int(l)}
            if class_names is not None and 0 <= l < len(class_names):
                item["class"] = class_names[l]
            items.append(item)
        return {"image_size": list(self.image_size), "seconds": round(self.seconds, 4), "detections": items}


@contextmanager
def torch_threads(n: int):
    """Torch's intra-op threads set to `n` for a block, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class ClassBank:
    """Class-image features computed once and reused for many targets (video, evaluation)."""

    features: torch.Tensor  # [C, D, 15, 15]
    class_ids: list[int]
    names: list[str] = field(default_factory=list)


class Detector:
    """Runs an OS2D model on one device; inference mode, no gradients.

    With `optimize` (the default) it runs a folded channels-last copy (`core.model.inference`), so later
    changes to `model` are not seen; `optimize=False` runs `model` itself (bit-exact float64 resampling).

    `backend` "onnxruntime" or "openvino" runs the model's exported graphs instead (`core.deploy`),
    at `precision` "fp32", or on OpenVINO also "bf16" (CPUs with native bf16) and "int8" (a target
    branch quantized by `os2d-studio quantize`); `device` then names the OpenVINO device (CPU, GPU,
    NPU; auto is CPU). `deploy_dir` is a folder from export or quantize, else the cache is used.
    Decoding and NMS are the same Python code for every backend."""

    def __init__(self, model: OS2DModel, device: str | torch.device | None = None, *,
                 target_size: float | None = None, optimize: bool = True, backend: str = "torch",
                 precision: str = "fp32", deploy_dir: str | os.PathLike | None = None, name: str = "") -> None:
        self.backend, self.precision, self.name = backend, precision, name
        if backend != "torch" or precision != "fp32":
            from core.deploy.runtime import check_choice, open_runtime

            check_choice(backend, precision)
            self.device = torch.device("cpu")  # where decoding runs; the graphs run on `self.net.info.device`
            self.model = model.eval()
            self.net = open_runtime(model, backend, precision, device=None if device is None else str(device),
                                    deploy_dir=deploy_dir)
            self.memory_format = torch.contiguous_format
            self.target_size = float(target_size) if target_size else None
            return
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.net = inference_model(self.model, self.device) if optimize else self.model
        self.memory_format = torch.channels_last if optimize else torch.contiguous_format
        # the scale the caller chose (a model's own eval scale), None for OS2D's default; evaluation keeps
        # a chosen one over the dataset's
        self.target_size = float(target_size) if target_size else None

    def describe(self) -> str:
        """What runs the network, in words: "torch fp32 on cpu", "openvino int8 on CPU"."""
        info = getattr(self.net, "info", None)
        return info.describe() if info is not None else f"torch fp32 on {self.device}"

    @torch.inference_mode()
    def prepare_classes(self, class_images: Sequence[np.ndarray | str | os.PathLike],
                        class_ids: Sequence[int] | None = None, names: Sequence[str] | None = None) -> ClassBank:
        imgs = [load_image(c) if not isinstance(c, np.ndarray) else c for c in class_images]
        if not imgs:
            raise ValueError("at least one class image is needed")
        size = self.model.config.class_image_size
        tensors = [preprocess(im, size).to(self.device) for im in imgs]
        feats = self.net.class_features(tensors)
        ids = list(class_ids) if class_ids is not None else list(range(len(imgs)))
        if names is None:
            names = [Path(c).stem if not isinstance(c, np.ndarray) else f"class {i}" for i, c in zip(ids, class_images)]
        return ClassBank(feats, ids, list(names))

    @torch.inference_mode()
    def detect(
        self,
        target: np.ndarray | str | os.PathLike,
        classes: ClassBank | Sequence[np.ndarray | str | os.PathLike],
        *,
        target_size: float | None = None,
        scales: Sequence[float] = (1.0,),
        score_threshold: float = float("-inf"),
        nms_iou_threshold: float = 0.3,
        max_detections: int | None = None,
    ) -> Detections:
        import time

        start = time.perf_counter()
        # An exported graph runs on its runtime's own threads; torch only resizes, decodes and runs NMS on
        # small tensors around it. Its OpenMP threads spinning beside the runtime's took a pruned int8
        # frame from 91 to 326 ms on 2 busy cores, so torch keeps to one thread there.
        with torch_threads(1) if self.backend != "torch" and self.device.type == "cpu" else nullcontext():
            return self._detect(target, classes, target_size, scales, score_threshold, nms_iou_threshold,
                                max_detections, start)

    def _detect(self, target, classes, target_size, scales, score_threshold, nms_iou_threshold, max_detections,
                start: float) -> Detections:
        import time

        img = load_image(target) if not isinstance(target, np.ndarray) else target
        bank = classes if isinstance(classes, ClassBank) else self.prepare_classes(classes)
        levels = []
        for lvl in pyramid(img, target_size or self.target_size or DEFAULT_TARGET_SIZE, scales):
            x = lvl.tensor.unsqueeze(0).to(self.device).contiguous(memory_format=self.memory_format)
            out = self.net(x, class_feats=bank.features)
            levels.append(box_coder.PyramidLevel(
                loc=out.loc[0], cls=out.cls[0], image_hw=(x.shape[-2], x.shape[-1]), fm_hw=out.fm_hw,
                box_size=self.net.box_size, stride=self.net.stride,
                scale_to_original=lvl.scale_to_original, corners=out.corners[0],
            ))
        raw = box_coder.decode_detections(levels, bank.class_ids, score_threshold=score_threshold,
                                          nms_iou_threshold=nms_iou_threshold)
        n = len(raw.scores) if max_detections is None else min(max_detections, len(raw.scores))
        h, w = img.shape[:2]
        boxes = raw.boxes[:n].cpu().numpy().astype(np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return Detections(
            boxes=boxes,
            scores=raw.scores[:n].cpu().numpy().astype(np.float32),
            labels=raw.labels[:n].cpu().numpy().astype(np.int64),
            corners=None if raw.transform_corners is None else raw.transform_corners[:n].cpu().numpy(),
            image_size=(w, h),
            seconds=time.perf_counter() - start,
        )


class ClassBankCache:
    """Class features kept between jobs, per model, runtime and set of class images.

    Why: stepping or seeking through a video is a one-frame job, and computing the class features of two
    models again each time costs more than the frame itself (3.5 s of a 5.2 s step with four class images
    on a busy CPU). Entries hold their model weakly, so a replaced model's features are never reused; the
    `size` most recent entries are kept. Locked, as jobs run on a worker thread."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.hits = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[weakref.ref, ClassBank]] = OrderedDict()

    def get(self, key: tuple, model: Any) -> ClassBank | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0]() is not model:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: tuple, model: Any, bank: ClassBank) -> None:
        with self._lock:
            self._entries[key] = (weakref.ref(model), bank)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def class_images_key(class_images: Sequence[np.ndarray | str | os.PathLike]) -> tuple:
    """Identifies a list of class images: arrays by content, files by path."""
    return tuple((c.shape, hashlib.blake2b(np.ascontiguousarray(c).tobytes(), digest_size=16).hexdigest())
                 if isinstance(c, np.ndarray) else str(c) for c in class_images)


class CachingDetector(Detector):
    """A Detector whose `prepare_classes` goes through a ClassBankCache."""

    def __init__(self, model: OS2DModel, device: str | torch.device | None = None, *,
                 target_size: float | None = None, cache: ClassBankCache, **runtime: Any) -> None:
        super().__init__(model, device, target_size=target_size, **runtime)
        self.cache = cache

    def prepare_classes(self, class_images: Sequence[np.ndarray | str | os.PathLike],
                        class_ids: Sequence[int] | None = None, names: Sequence[str] | None = None) -> ClassBank:
        # features differ (slightly) between runtimes: the runtime is part of the key
        key = (id(self.model), str(self.device), self.backend, self.precision, class_images_key(class_images),
               tuple(class_ids) if class_ids is not None else None, tuple(names) if names is not None else None)
        bank = self.cache.get(key, self.model)
        if bank is None:
            bank = super().prepare_classes(class_images, class_ids, names)
            self.cache.put(key, self.model, bank)
        return bank


def save_detections_json(dets: Detections, path: str | os.PathLike, class_names: Sequence[str] | None = None) -> None:
    from core.io import atomic_write_text

    atomic_write_text(path, json.dumps(dets.to_json(class_names), indent=1))
