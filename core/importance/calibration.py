"""Calibration sets: the few annotated target images (with their class images) importance is measured on.

Why a separate object: every criterion -- the one-pass statistics, Taylor and layer-wise LCP -- must
see exactly the same inputs, or the benchmark compares apples with pears. A calibration set is built
deterministically from any OS2D dataset and records where it came from (dataset, split, image ids,
target size, seed), so an importance result can say what it was computed on. It holds preprocessed
input tensors only, never activation maps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import torch

from core.data.grozi import DatasetError, OS2DDataset
from core.data.images import load_image, preprocess
from core.jobs import CancelToken, Progress, no_progress

SELECTIONS = ("spread", "random")


@dataclass(frozen=True, eq=False)
class CalibrationSample:
    """One target image with its ground truth and the class images of the classes it shows."""

    image_id: int
    image: torch.Tensor  # [3, h, w] normalised, at the calibration target size
    boxes: torch.Tensor  # [N, 4] float32 xyxy in pixels of `image`
    labels: torch.Tensor  # [N] int64: index into `class_images`
    difficult: torch.Tensor  # [N] bool
    class_ids: tuple[int, ...]  # dataset class id of each class image
    class_images: tuple[torch.Tensor, ...]  # [3, h, w] each, normalised at the class image size

    def __post_init__(self) -> None:
        n = self.boxes.shape[0]
        if self.image.dim() != 3 or self.image.shape[0] != 3:
            raise ValueError(f"image {self.image_id}: expected a [3, h, w] tensor, got {tuple(self.image.shape)}")
        if self.boxes.dim() != 2 or self.boxes.shape[1] != 4:
            raise ValueError(f"image {self.image_id}: boxes must be [N, 4], got {tuple(self.boxes.shape)}")
        if self.labels.shape != (n,) or self.difficult.shape != (n,):
            raise ValueError(f"image {self.image_id}: {n} boxes but {tuple(self.labels.shape)} labels "
                             f"and {tuple(self.difficult.shape)} difficult flags")
        if len(self.class_ids) != len(self.class_images):
            raise ValueError(f"image {self.image_id}: {len(self.class_ids)} class ids for "
                             f"{len(self.class_images)} class images")
        if n and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_images)):
            raise ValueError(f"image {self.image_id}: box labels must index the {len(self.class_images)} class images")

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[2])


@dataclass(frozen=True)
class CalibrationProvenance:
    """Where a calibration set came from: enough to rebuild it byte for byte."""

    dataset: str
    split: str
    image_ids: tuple[int, ...]
    target_size: float
    seed: int
    selection: str = "spread"
    class_image_size: int = 240
    candidates: int = 0  # images with boxes the selection chose from

    def to_json(self) -> dict:
        d = asdict(self)
        d["image_ids"] = list(self.image_ids)
        return d

    @classmethod
    def from_json(cls, data: dict) -> "CalibrationProvenance":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["image_ids"] = tuple(int(i) for i in known.get("image_ids", ()))
        return cls(**known)


@dataclass(frozen=True, eq=False)
class CalibrationSet:
    """An ordered, immutable sequence of samples plus provenance."""

    samples: tuple[CalibrationSample, ...]
    provenance: CalibrationProvenance

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("a calibration set needs at least one image")

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[CalibrationSample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> CalibrationSample:
        return self.samples[i]

    @property
    def num_boxes(self) -> int:
        return sum(int(s.boxes.shape[0]) for s in self.samples)


def select_images(num_candidates: int, num_images: int, *, selection: str = "spread", seed: int = 0) -> np.ndarray:
    """Indices of the chosen candidates, increasing. `spread`: evenly over the list (the middle of
    each of `num_images` equal slices), so a calibration set covers a whole split; `random`: a
    seeded choice without replacement."""
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection '{selection}', expected one of {', '.join(SELECTIONS)}")
    k = min(int(num_images), int(num_candidates))
    if selection == "spread":
        return ((np.arange(k) + 0.5) * num_candidates / k).astype(np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_candidates, size=k, replace=False)).astype(np.int64)


def build_calibration(dataset: OS2DDataset, num_images: int, target_size: float | None = None, seed: int = 0, *,
                      selection: str = "spread", class_image_size: int = 240,
                      progress: Progress = no_progress, cancel: CancelToken | None = None) -> CalibrationSet:
    """Pick `num_images` annotated images of `dataset` and preprocess them for the model.

    target_size: OS2D's scale (h*w ≈ target_size²); default the dataset's evaluation scale.
    Class images are read once and shared by the samples that show their class.
    """
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    target_size = float(target_size if target_size is not None else dataset.eval_scale)
    if not target_size > 0:
        raise ValueError(f"target size must be positive, got {target_size}")
    candidates = [im for im in dataset.images if im.num_boxes > 0]
    if not candidates:
        raise DatasetError(dataset.csv_path or dataset.name, f"no image with boxes to calibrate on ({dataset.name})")
    chosen = [candidates[i] for i in select_images(len(candidates), num_images, selection=selection, seed=seed)]

    class_cache: dict[int, torch.Tensor] = {}
    samples = []
    for k, scene in enumerate(chosen):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(k, len(chosen), f"loading image {k + 1} of {len(chosen)}")  # a count, not the id
        image = preprocess(load_image(scene.path), target_size)
        h, w = int(image.shape[1]), int(image.shape[2])
        boxes = torch.from_numpy(scene.boxes_in_pixels(w, h).copy())
        ids = sorted({int(c) for c in scene.class_ids})
        for cid in ids:
            if cid not in class_cache:
                class_cache[cid] = preprocess(load_image(dataset.classes[cid]), class_image_size)
        index = {c: i for i, c in enumerate(ids)}
        samples.append(CalibrationSample(
            image_id=int(scene.imageid),
            image=image,
            boxes=boxes,
            labels=torch.tensor([index[int(c)] for c in scene.class_ids], dtype=torch.long),
            difficult=torch.from_numpy(scene.difficult.astype(bool).copy()),
            class_ids=tuple(ids),
            class_images=tuple(class_cache[c] for c in ids),
        ))
    progress(len(chosen), len(chosen), f"{len(chosen)} images loaded")
    prov = CalibrationProvenance(dataset=dataset.name, split=dataset.split,
                                 image_ids=tuple(s.image_id for s in samples), target_size=target_size, seed=int(seed),
                                 selection=selection, class_image_size=int(class_image_size),
                                 candidates=len(candidates))
    return CalibrationSet(tuple(samples), prov)
