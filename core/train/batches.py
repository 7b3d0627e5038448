"""Training batches for OS2D: random scale-jittered crops around objects, plus a class batch.

Each batch holds a few target crops and the class images of every class visible in them, padded
with random other classes as negatives. Batches are a pure function of (seed, rank, iteration), so
a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.data.grozi import DatasetError
from core.data.images import load_image, normalize, preprocess, resize_rgb, size_preserving_aspect


@dataclass(frozen=True)
class BatchConfig:
    batch_size: int = 4
    class_batch_size: int = 8
    crop_size: int = 448  # square crops (pixels at the training scale)
    train_scale: float = 0.0  # 0: the dataset's eval scale
    scale_jitter: tuple[float, float] = (0.75, 1.3)
    min_box_coverage: float = 0.7  # boxes cut more than this by the crop are ignored
    flip: bool = True  # flip target crops and class images together
    class_color_jitter: float = 0.15


@dataclass
class Batch:
    images: torch.Tensor  # [B, 3, S, S]
    class_images: list[torch.Tensor]  # [3, h, w] each
    class_ids: list[int]  # dataset class id of each class image
    boxes: list[torch.Tensor]  # per image [N, 4] crop pixels
    labels: list[torch.Tensor]  # per image [N] index into the class batch
    difficult: list[torch.Tensor]  # per image [N] bool


CACHE_BYTES = 3 << 30  # decoded scene images kept in memory; decoding one again costs a few ms


class BatchSampler:
    def __init__(self, dataset, cfg: BatchConfig, *, class_image_size: int = 240, seed: int = 0, rank: int = 0,
                 cache_images: bool = True, cache_bytes: int = CACHE_BYTES) -> None:
        self.ds = dataset
        self.cfg = cfg
        self.class_image_size = class_image_size
        self.seed = seed
        self.rank = rank
        self.scale = float(cfg.train_scale or dataset.eval_scale)
        self.images = [im for im in dataset.images if len(im.class_ids) > 0]
        if not self.images:
            raise DatasetError(dataset.csv_path or dataset.name, f"no annotated images to train on ({dataset.name})")
        self.class_pool = sorted(dataset.classes)
        self._cache: dict = {} if cache_images else None  # decoded images at the training scale
        self._cache_room = cache_bytes  # past it images are decoded each time (several datasets would not fit)
        self._class_cache: dict[int, np.ndarray] = {}

    # -- loading -----------------------------------------------------------------------------------
    def _scene(self, k: int) -> np.ndarray:
        if self._cache is not None and k in self._cache:
            return self._cache[k]
        img = load_image(self.images[k].path)
        # keep a copy at the largest scale we will sample, so jitter only ever downsizes
        hw = size_preserving_aspect(img.shape[0], img.shape[1], self.scale * self.cfg.scale_jitter[1])
        if hw[0] < img.shape[0]:
            img = resize_rgb(img, hw).permute(1, 2, 0).byte().numpy()
        if self._cache is not None and img.nbytes <= self._cache_room:
            self._cache[k] = img
            self._cache_room -= img.nbytes
        return img

    def _class_image(self, cid: int) -> np.ndarray:
        if cid not in self._class_cache:
            self._class_cache[cid] = load_image(self.ds.classes[cid])
        return self._class_cache[cid]

    # -- sampling ----------------------------------------------------------------------------------
    def batch(self, iteration: int) -> Batch:
        rng = np.random.default_rng([self.seed, self.rank, iteration])
        cfg = self.cfg
        picks = rng.choice(len(self.images), size=cfg.batch_size, replace=len(self.images) < cfg.batch_size)
        flip = cfg.flip and rng.random() < 0.5
        crops, raw_boxes, raw_cids, raw_diff = [], [], [], []
        for k in picks:
            crop, boxes, cids, diff = self._crop(int(k), rng)
            if flip:
                crop = crop[:, ::-1]
                boxes = boxes.copy()
                boxes[:, [0, 2]] = cfg.crop_size - boxes[:, [2, 0]]
            crops.append(crop)
            raw_boxes.append(boxes)
            raw_cids.append(cids)
            raw_diff.append(diff)
        present = sorted({int(c) for cids in raw_cids for c in cids})
        others = [c for c in self.class_pool if c not in set(present)]
        n_extra = max(cfg.class_batch_size - len(present), 0)
        extra = list(rng.choice(others, size=min(n_extra, len(others)), replace=False)) if others else []
        class_ids = present + [int(c) for c in extra]
        index = {c: i for i, c in enumerate(class_ids)}
        class_images = []
        for cid in class_ids:
            img = self._class_image(cid)
            if flip:
                img = img[:, ::-1]
            t = preprocess(np.ascontiguousarray(img), self.class_image_size)
            if cfg.class_color_jitter > 0:
                gain = 1 + rng.uniform(-cfg.class_color_jitter, cfg.class_color_jitter, size=(3, 1, 1))
                t = t * torch.from_numpy(gain).float() + float(rng.uniform(-0.2, 0.2))
            class_images.append(t)
        images = torch.stack([normalize(torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1).float())
                              for c in crops])
        return Batch(
            images=images,
            class_images=class_images,
            class_ids=class_ids,
            boxes=[torch.from_numpy(b).float() for b in raw_boxes],
            labels=[torch.tensor([index[int(c)] for c in cids], dtype=torch.long) for cids in raw_cids],
            difficult=[torch.from_numpy(d) for d in raw_diff],
        )

    def _crop(self, k: int, rng: np.random.Generator):
        cfg = self.cfg
        scene = self.images[k]
        img = self._scene(k)
        s = self.scale * rng.uniform(*cfg.scale_jitter)
        hw = size_preserving_aspect(img.shape[0], img.shape[1], s)
        if hw != img.shape[:2]:
            img = resize_rgb(img, hw).permute(1, 2, 0).byte().numpy()
        h, w = img.shape[:2]
        boxes = scene.boxes.astype(np.float32) * np.array([w, h, w, h], dtype=np.float32)
        # centre the crop on a random object, with a random offset
        j = int(rng.integers(len(boxes)))
        cx = (boxes[j, 0] + boxes[j, 2]) / 2 + rng.uniform(-0.3, 0.3) * cfg.crop_size
        cy = (boxes[j, 1] + boxes[j, 3]) / 2 + rng.uniform(-0.3, 0.3) * cfg.crop_size
        x0 = int(np.clip(cx - cfg.crop_size / 2, 0, max(w - cfg.crop_size, 0)))
        y0 = int(np.clip(cy - cfg.crop_size / 2, 0, max(h - cfg.crop_size, 0)))
        crop = np.zeros((cfg.crop_size, cfg.crop_size, 3), dtype=np.uint8)
        crop[:] = np.array([124, 116, 104], dtype=np.uint8)  # ImageNet mean: zero after normalisation
        part = img[y0:y0 + cfg.crop_size, x0:x0 + cfg.crop_size]
        crop[:part.shape[0], :part.shape[1]] = part
        b = boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
        lim = np.array([part.shape[1], part.shape[0]] * 2, dtype=np.float32)
        clipped = np.clip(b, 0, lim)
        area = np.maximum(b[:, 2] - b[:, 0], 1e-6) * np.maximum(b[:, 3] - b[:, 1], 1e-6)
        inter = np.maximum(clipped[:, 2] - clipped[:, 0], 0) * np.maximum(clipped[:, 3] - clipped[:, 1], 0)
        coverage = inter / area
        visible = coverage > 0
        difficult = scene.difficult.astype(bool) | (coverage < cfg.min_box_coverage)
        return crop, clipped[visible], scene.class_ids[visible], difficult[visible]
