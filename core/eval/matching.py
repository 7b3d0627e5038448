"""Which boxes two detectors agree on: same class, IoU ≥ 0.5, matched greedily as mAP matches.

Plain IoU (no VOC +1 pixel): this compares two models' boxes with each other, not with ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from core.detect import Detections

MATCH_IOU = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes [N, 4] x [M, 4] → [N, M]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass(frozen=True, eq=False)
class Match:
    """Which boxes of `a` and `b` have a same-class partner with IoU ≥ the threshold."""

    only_a: np.ndarray  # bool [len(a)]
    only_b: np.ndarray  # bool [len(b)]
    pairs: tuple[tuple[int, int, float], ...]  # (index in a, index in b, IoU)

    @property
    def mean_iou(self) -> float | None:
        return float(np.mean([p[2] for p in self.pairs])) if self.pairs else None


def match_detections(a: Detections, b: Detections, iou_threshold: float = MATCH_IOU) -> Match:
    """Greedy matching, highest score of `a` first (as mAP matching does): each box takes the unmatched
    box of `b` of the same class with the highest IoU, if that IoU ≥ `iou_threshold`."""
    only_a = np.ones(len(a), bool)
    only_b = np.ones(len(b), bool)
    pairs = []
    if len(a) and len(b):
        iou = box_iou(a.boxes, b.boxes)
        iou[np.asarray(a.labels)[:, None] != np.asarray(b.labels)[None, :]] = -1.0
        for i in np.argsort(-np.asarray(a.scores), kind="stable"):
            cand = np.where(only_b, iou[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= iou_threshold:
                only_a[i] = only_b[j] = False
                pairs.append((int(i), j, float(cand[j])))
    return Match(only_a, only_b, tuple(pairs))
