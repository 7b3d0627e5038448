"""mAP exactly as the official OS2D evaluation computes it (`os2d/data/voc_eval.py`, use_07_metric=False).

Why each detail matters for matching the published numbers:
- IoU uses the VOC pixel convention: the official code adds 1 to x2 and y2 of both boxes before a
  plain IoU, so widths are x2 - x1 + 1. This is not scale invariant: pass boxes in the pixel frame the
  official loader uses (GroZi: images resized to a 3264 longer side, see `OS2DDataset.image_size`).
  Boxes and IoUs are float32 as in the official BoxList/torchvision code; a detection matches when
  IoU >= threshold (the official code rejects only IoU < threshold).
- Per image and class, detections are ranked by score; each takes the gt of highest IoU (among all
  gt of its class, taken or not). Matched to a difficult gt: ignored (neither TP nor FP). Matched to an
  already-taken gt: FP. So the greedy match is per image, and ties in score follow numpy's
  `argsort()[::-1]` as in the official code (that order, not a stable one, decides tied detections).
- AP is the VOC 2010+ area under the monotone precision envelope, no 11-point sampling.
- A class counts in the mAP only if it has at least one non-difficult gt box (official: AP is NaN for
  the others and the mAP is `np.nanmean`). A class with gt but no detections has AP 0 and counts;
  detections of classes without gt are ignored. mAP is NaN when no class has gt.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np


def _as_boxes(a, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    if a.size == 0:
        return a.reshape(0, 4)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{what}: boxes must be [N, 4] xyxy, got shape {a.shape}")
    return a


def _as_vector(a, n: int, dtype, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=dtype).reshape(-1)
    if a.shape[0] != n:
        raise ValueError(f"{what}: expected {n} values (one per box), got {a.shape[0]}")
    return a


@dataclass(frozen=True, eq=False)
class ImageDetections:
    """Detections of one image, boxes xyxy in pixels of the image the ground truth is in."""

    boxes: np.ndarray  # [N, 4]
    scores: np.ndarray  # [N]
    class_ids: np.ndarray  # [N]

    def __post_init__(self) -> None:
        boxes = _as_boxes(self.boxes, "detections")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", _as_vector(self.scores, len(boxes), np.float32, "detection scores"))
        object.__setattr__(self, "class_ids", _as_vector(self.class_ids, len(boxes), np.int64, "detection class_ids"))


@dataclass(frozen=True, eq=False)
class ImageGroundTruth:
    """Ground truth of one image, boxes xyxy in pixels; difficult boxes neither reward nor penalize."""

    boxes: np.ndarray  # [M, 4]
    class_ids: np.ndarray  # [M]
    difficult: np.ndarray  # [M] bool

    def __post_init__(self) -> None:
        boxes = _as_boxes(self.boxes, "ground truth")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "class_ids", _as_vector(self.class_ids, len(boxes), np.int64, "gt class_ids"))
        object.__setattr__(self, "difficult", _as_vector(self.difficult, len(boxes), bool, "gt difficult"))


@dataclass(frozen=True)
class MapResult:
    map: float  # mean AP over classes with at least one non-difficult gt; NaN if there are none
    per_class_ap: dict[int, float]  # only the classes that count in the mean
    num_gt: dict[int, int]  # non-difficult gt per class, for every class seen in gt or detections
    iou_threshold: float
    # the score threshold with the best F1 over all classes pooled (what a viewer should show by default:
    # models differ in score scale, a pruned one most of all), and that F1; NaN without detections
    best_f1_threshold: float = math.nan
    best_f1: float = math.nan

    def to_json(self) -> dict:
        """Plain JSON types; NaN becomes null, class ids become string keys."""
        def num(x: float):
            return None if math.isnan(x) else float(x)
        return {
            "map": num(self.map),
            "iou_threshold": float(self.iou_threshold),
            "best_f1_threshold": num(self.best_f1_threshold), "best_f1": num(self.best_f1),
            "per_class_ap": {str(c): num(ap) for c, ap in self.per_class_ap.items()},
            "num_gt": {str(c): int(n) for c, n in self.num_gt.items()},
        }


def iou_voc(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """[N, M] IoU with the +1 pixel convention (x2, y2 inclusive), in float32 like the official code."""
    b1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4).copy()
    b2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4).copy()
    b1[:, 2:] += np.float32(1)
    b2[:, 2:] += np.float32(1)
    area1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    area2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    lt = np.maximum(b1[:, None, :2], b2[None, :, :2])
    rb = np.minimum(b1[:, None, 2:], b2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def average_precision(recall, precision) -> float:
    """VOC 2010+ AP: area under the precision envelope (max precision at any higher recall).

    NaN precisions (no detection counted yet) count as 0, as in the official code."""
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.nan_to_num(np.asarray(precision, dtype=np.float64).reshape(-1))
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _match_one_class(pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray,
                     gt_difficult: np.ndarray, iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores sorted descending and their labels: 1 TP, 0 FP, -1 ignored (hit a difficult gt)."""
    order = pred_scores.argsort()[::-1]
    scores = pred_scores[order]
    match = np.zeros(len(order), dtype=np.int8)
    if len(order) == 0 or len(gt_boxes) == 0:
        return scores, match
    iou = iou_voc(pred_boxes[order], gt_boxes)
    gt_index = iou.argmax(axis=1)
    hit = ~(iou.max(axis=1) < iou_threshold)  # NaN IoU counts as a hit, as `gt_index[max < t] = -1` does
    hit_rows = np.flatnonzero(hit)
    # the first (highest-ranked) detection to reach a gt takes it; later ones are duplicates
    _, first = np.unique(gt_index[hit_rows], return_index=True)
    taker = np.zeros(len(order), dtype=bool)
    taker[hit_rows[first]] = True
    to_difficult = hit & gt_difficult[gt_index]
    match[taker & ~to_difficult] = 1
    match[to_difficult] = -1
    return scores, match


def _pooled_ap(scores: Sequence[np.ndarray], matches: Sequence[np.ndarray], positives: int) -> float:
    """AP of one class from its images' scores and matches (1 true, 0 false, -1 difficult) pooled."""
    s = np.concatenate(scores)
    m = np.concatenate(matches)[s.argsort()[::-1]]
    tp = np.cumsum(m == 1)
    fp = np.cumsum(m == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
    return average_precision(tp / positives, precision)


def evaluate_map(detections: Sequence[ImageDetections], ground_truth: Sequence[ImageGroundTruth],
                 iou_threshold: float = 0.5) -> MapResult:
    """Per-class VOC AP over a dataset and their mean, as os2d `eval_detection_voc` (use_07_metric=False)."""
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection lists but {len(ground_truth)} ground-truth lists")
    n_pos: dict[int, int] = defaultdict(int)
    scores: dict[int, list[np.ndarray]] = defaultdict(list)
    matches: dict[int, list[np.ndarray]] = defaultdict(list)
    for det, gt in zip(detections, ground_truth):
        # group by class once; a stable sort keeps each class's detections in their given order,
        # which is what the official boolean mask sees before its argsort
        d_order = np.argsort(det.class_ids, kind="stable")
        d_labels = det.class_ids[d_order]
        g_order = np.argsort(gt.class_ids, kind="stable")
        g_labels = gt.class_ids[g_order]
        for label in np.unique(np.concatenate((d_labels, g_labels))):
            d = d_order[np.searchsorted(d_labels, label, "left"):np.searchsorted(d_labels, label, "right")]
            g = g_order[np.searchsorted(g_labels, label, "left"):np.searchsorted(g_labels, label, "right")]
            key = int(label)
            g_diff = gt.difficult[g]
            n_pos[key] += int(np.count_nonzero(~g_diff))
            s, m = _match_one_class(det.boxes[d], det.scores[d], gt.boxes[g], g_diff, iou_threshold)
            scores[key].append(s)
            matches[key].append(m)

    per_class_ap: dict[int, float] = {}
    for key in sorted(n_pos):
        if n_pos[key] == 0:
            continue
        per_class_ap[key] = _pooled_ap(scores[key], matches[key], n_pos[key])
    mean = float(np.mean(list(per_class_ap.values()))) if per_class_ap else math.nan
    threshold, f1 = best_f1_threshold([np.concatenate(v) for v in scores.values()],
                                      [np.concatenate(v) for v in matches.values()], sum(n_pos.values()))
    return MapResult(map=mean, per_class_ap=per_class_ap, num_gt={k: n_pos[k] for k in sorted(n_pos)},
                     iou_threshold=float(iou_threshold), best_f1_threshold=threshold, best_f1=f1)


def true_positives(detections: ImageDetections, ground_truth: ImageGroundTruth, iou_threshold: float = 0.5
                   ) -> tuple[int, int]:
    """(detections that find a non-difficult box, non-difficult boxes) on one image, matched as mAP
    matches them: a running recall over frames adds these up."""
    tp = 0
    for label in np.unique(ground_truth.class_ids):
        d = detections.class_ids == label
        g = ground_truth.class_ids == label
        _, m = _match_one_class(detections.boxes[d], detections.scores[d], ground_truth.boxes[g],
                                ground_truth.difficult[g], iou_threshold)
        tp += int(np.count_nonzero(m == 1))
    return tp, int(np.count_nonzero(~ground_truth.difficult))


def best_f1_threshold(scores: Sequence[np.ndarray], matches: Sequence[np.ndarray], num_positives: int
                      ) -> tuple[float, float]:
    """(score threshold, F1) where keeping the detections scored at least that gives the best F1, all
    classes pooled; detections matched to a difficult box (-1) are left out, as mAP leaves them out."""
    s = np.concatenate(list(scores)) if len(scores) else np.zeros(0, np.float32)
    m = np.concatenate(list(matches)) if len(matches) else np.zeros(0, np.int8)
    keep = m >= 0
    s, m = s[keep], m[keep]
    if len(s) == 0 or num_positives == 0:
        return math.nan, math.nan
    order = np.argsort(-s, kind="stable")
    s, m = s[order], m[order]
    tp = np.cumsum(m == 1)
    f1 = 2 * tp / (np.arange(1, len(s) + 1) + num_positives)
    # a threshold keeps every detection of an equal score: judge each at the last of its ties
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    f1 = np.where(last_of_tie, f1, -1.0)
    i = int(np.argmax(f1))
    return float(s[i]), float(f1[i])


def bootstrap_maps(detections: Sequence[ImageDetections], ground_truth: Sequence[ImageGroundTruth], *,
                   samples: int = 1000, seed: int = 0, iou_threshold: float = 0.5) -> np.ndarray:
    """mAP of `samples` resamplings of the images with replacement (the images drawn are the unit of noise).

    The same seed and image count draw the same resamplings, so two models scored on the same images can
    be compared resampling by resampling (a paired interval of their difference). Each image is matched
    once; a resampling only pools its images' matches again."""
    if len(detections) != len(ground_truth):
        raise ValueError(f"{len(detections)} detection lists but {len(ground_truth)} ground-truth lists")
    per_image = []  # per image: {class: (scores, matches, positives)}
    for det, gt in zip(detections, ground_truth):
        classes = {}
        for label in np.unique(np.concatenate((det.class_ids, gt.class_ids))):
            d, g = det.class_ids == label, gt.class_ids == label
            sc, m = _match_one_class(det.boxes[d], det.scores[d], gt.boxes[g], gt.difficult[g], iou_threshold)
            classes[int(label)] = (sc, m, int(np.count_nonzero(~gt.difficult[g])))
        per_image.append(classes)
    rng = np.random.default_rng(seed)
    n = len(per_image)
    out = np.full(samples, math.nan)
    for k in range(samples):
        pooled: dict[int, list] = defaultdict(lambda: [[], [], 0])
        for i in rng.integers(0, n, n):
            for label, (sc, m, pos) in per_image[i].items():
                entry = pooled[label]
                entry[0].append(sc)
                entry[1].append(m)
                entry[2] += pos
        aps = []
        for sc_list, m_list, pos in pooled.values():
            if pos == 0:
                continue
            aps.append(_pooled_ap(sc_list, m_list, pos))
        out[k] = float(np.mean(aps)) if aps else math.nan
    return out


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` percentile interval of bootstrap values (NaNs left out)."""
    v = np.asarray(values, float)
    v = v[~np.isnan(v)]
    if not len(v):
        return math.nan, math.nan
    tail = 100 * (1 - level) / 2
    return float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))
