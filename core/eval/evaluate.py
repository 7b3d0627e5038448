"""Evaluation job: run a detector over a dataset split and compute mAP@0.5 as OS2D does."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from core.data.images import load_image
from core.detect import Detector
from core.eval.map import ImageDetections, ImageGroundTruth, MapResult, evaluate_map
from core.jobs import CancelToken, Progress, no_progress


@dataclass(frozen=True)
class EvalConfig:
    scales: tuple[float, ...] = (1.0,)  # pyramid scales of the eval size; OS2D's multiscale: EVAL_PYRAMID_SCALES
    target_size: float = 0.0  # 0: the detector's chosen scale (a model's own), else the dataset's eval scale
    max_images: int = 0  # 0: all images of the split
    # leave out, in turn, the images an evenly spread `max_images` subset of each size picks: those a
    # training run selected its checkpoint on (`train --eval-images`), then those a benchmark tuned a
    # setting on, so a later mAP is not biased by either choice
    exclude_spread: tuple[int, ...] = ()
    nms_iou_threshold: float = 0.3
    iou_threshold: float = 0.5
    max_detections_per_image: int = 300


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    split: str
    num_images: int
    num_classes: int
    map: float
    per_class_ap: dict
    seconds: float
    seconds_per_image: float
    config: dict = field(default_factory=dict)
    best_f1_threshold: float = float("nan")  # the score threshold a viewer should default to (MapResult)
    # per-image detections and ground truth, kept only when asked (`keep_detections`): what a bootstrap
    # interval or a paired comparison of two models resamples; never written to JSON
    detections: list | None = field(default=None, repr=False, compare=False)
    ground_truth: list | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset, "split": self.split, "num_images": self.num_images,
            "num_classes": self.num_classes, "mAP@0.5": round(self.map, 5),
            "per_class_ap": {str(k): round(v, 5) for k, v in self.per_class_ap.items()},
            "seconds": round(self.seconds, 2), "seconds_per_image": round(self.seconds_per_image, 4),
            "config": self.config,
            "best_f1_threshold": None if self.best_f1_threshold != self.best_f1_threshold
            else round(self.best_f1_threshold, 4),
        }


def spread_indices(n: int, k: int) -> list[int]:
    """An evenly spread, deterministic subset of range(n) of (about) k indices."""
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


def select_images(images: list, config: EvalConfig) -> list:
    """The images an evaluation with this config uses, in dataset order."""
    for k in config.exclude_spread:
        if k and len(images) > k:
            dropped = set(spread_indices(len(images), k))
            images = [im for i, im in enumerate(images) if i not in dropped]
    if config.max_images and len(images) > config.max_images:
        images = [images[i] for i in spread_indices(len(images), config.max_images)]
    return images


def evaluate(detector: Detector, dataset, *, split: str = "", config: EvalConfig = EvalConfig(),
             progress: Progress = no_progress, cancel: CancelToken | None = None,
             keep_detections: bool = False) -> EvalReport:
    """Detect every class of the split in every image of the split (one-shot protocol), then mAP."""
    start = time.perf_counter()
    images = select_images(list(dataset.images), config)
    class_ids = sorted({int(c) for im in images for c in im.class_ids} | set(getattr(dataset, "split_class_ids", ()) or ()))
    if not class_ids:
        class_ids = sorted(dataset.classes)
    bank = detector.prepare_classes([dataset.classes[c] for c in class_ids], class_ids=class_ids,
                                    names=[str(c) for c in class_ids])
    # A model trained at its own scale (ours store it) is judged there: its fixed-size default boxes
    # only fit objects of the size it learned. Models without one use the dataset's scale, as OS2D does.
    size = config.target_size or detector.target_size or dataset.eval_scale
    dets: list[ImageDetections] = []
    gts: list[ImageGroundTruth] = []
    for i, im in enumerate(images):
        if cancel is not None:
            cancel.raise_if_cancelled()
        img = load_image(im.path)
        h, w = img.shape[:2]
        d = detector.detect(img, bank, target_size=size, scales=config.scales,
                            nms_iou_threshold=config.nms_iou_threshold,
                            max_detections=config.max_detections_per_image)
        dets.append(ImageDetections(d.boxes, d.scores, d.labels))
        gts.append(ImageGroundTruth(im.boxes * np.array([w, h, w, h], dtype=np.float32), im.class_ids, im.difficult))
        progress(i + 1, len(images), f"image {i + 1}/{len(images)}")
    result: MapResult = evaluate_map(dets, gts, iou_threshold=config.iou_threshold)
    seconds = time.perf_counter() - start
    return EvalReport(
        dataset=dataset.name, split=split, num_images=len(images), num_classes=len(class_ids), map=float(result.map),
        per_class_ap={int(k): float(v) for k, v in result.per_class_ap.items()}, seconds=seconds,
        seconds_per_image=seconds / max(len(images), 1),
        config={"scales": list(config.scales), "target_size": size, "nms_iou": config.nms_iou_threshold,
                "iou_threshold": config.iou_threshold, "device": str(detector.device),
                "max_images": config.max_images, "exclude_spread": list(config.exclude_spread)},
        best_f1_threshold=float(result.best_f1_threshold),
        detections=dets if keep_detections else None, ground_truth=gts if keep_detections else None,
    )
