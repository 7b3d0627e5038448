"""Anchor grids, box encoding and decoding with NMS, as OS2D does them.

Every location of the stride-16 feature map has one default box of the head's receptive field
(240x240 pixels for the released models), centred on the location. The network predicts a box per
location from the transformed grid; `decode_detections` turns scores and box codes into detections.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import torch
from torchvision.models.detection._utils import BoxCoder, encode_boxes
from torchvision.ops import batched_nms, clip_boxes_to_image

BOX_ENCODING_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_BOX_CODER = BoxCoder(BOX_ENCODING_WEIGHTS)
_WEIGHTS = torch.tensor(BOX_ENCODING_WEIGHTS)


def anchor_boxes(fm_h, fm_w, box_size: float, stride: float, device=None) -> torch.Tensor:
    """Default boxes [fm_h*fm_w, 4] (xyxy), computed afresh; sizes may be traced tensors (ONNX export)."""
    cy = (torch.arange(fm_h, dtype=torch.float, device=device) + 0.5) * stride
    cx = (torch.arange(fm_w, dtype=torch.float, device=device) + 0.5) * stride
    cy, cx = torch.meshgrid(cy, cx, indexing="ij")  # row-major anchors: index = y * fm_w + x
    cx, cy = cx.reshape(-1), cy.reshape(-1)
    half = box_size / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], dim=1)


@lru_cache(maxsize=64)
def _strided_boxes_cpu(fm_h: int, fm_w: int, box_size: float, stride: float) -> torch.Tensor:
    return anchor_boxes(fm_h, fm_w, box_size, stride)


def strided_boxes(fm_h: int, fm_w: int, box_size: float, stride: float, device=None) -> torch.Tensor:
    """Default boxes [fm_h*fm_w, 4] (xyxy) of one size, centred on each feature-map cell."""
    boxes = _strided_boxes_cpu(int(fm_h), int(fm_w), float(box_size), float(stride))
    return boxes.to(device) if device is not None else boxes.clone()


def clip_to_min_size(boxes: torch.Tensor, min_size: float = 1.0) -> torch.Tensor:
    """Widen degenerate boxes to `min_size` (the log in the encoding needs positive sizes)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    narrow, flat = x1 + min_size > x2, y1 + min_size > y2
    x1 = torch.where(narrow, x1.detach(), x1)
    x2 = torch.where(narrow, x1 + min_size, x2)
    y1 = torch.where(flat, y1.detach(), y1)
    y2 = torch.where(flat, y1 + min_size, y2)
    return torch.stack([x1, y1, x2, y2], dim=-1)


def encode(boxes: torch.Tensor, default_boxes: torch.Tensor) -> torch.Tensor:
    """Box codes [N, 4] of `boxes` relative to `default_boxes` (torchvision's (10, 10, 5, 5) encoding)."""
    weights = _WEIGHTS.to(dtype=boxes.dtype, device=boxes.device)  # a constant, also when traced for export
    return encode_boxes(clip_to_min_size(boxes), clip_to_min_size(default_boxes), weights)


def decode(codes: torch.Tensor, default_boxes: torch.Tensor) -> torch.Tensor:
    """Inverse of `encode`: boxes [N, 4] xyxy."""
    return _BOX_CODER.decode_single(codes, default_boxes.to(codes.dtype))


@dataclass(frozen=True)
class RawDetections:
    """Detections in the pixels of the image given to `decode_detections` (before any rescaling)."""

    boxes: torch.Tensor  # [N, 4] xyxy
    scores: torch.Tensor  # [N]
    labels: torch.Tensor  # [N] class ids as given in `class_ids`
    default_boxes: torch.Tensor  # [N, 4] the anchor each detection came from
    transform_corners: torch.Tensor | None  # [N, 8] corners of the transformed grid (x, y) * 4


@dataclass(frozen=True)
class PyramidLevel:
    """Network outputs of one image at one scale, and the factor back to original pixels."""

    loc: torch.Tensor  # [C, 4, A]
    cls: torch.Tensor  # [C, A]
    image_hw: tuple[int, int]  # size of the resized image the net saw
    fm_hw: tuple[int, int]
    box_size: float
    stride: float
    scale_to_original: tuple[float, float] = (1.0, 1.0)  # (sx, sy) multiply x, y to get original pixels
    corners: torch.Tensor | None = None  # [C, 8, A]


def decode_detections(
    levels: Sequence[PyramidLevel],
    class_ids: Sequence[int],
    *,
    score_threshold: float = float("-inf"),
    nms_iou_threshold: float = 0.3,
    nms_across_classes: bool = False,
) -> RawDetections:
    """Decode every pyramid level, threshold, map to original pixels, NMS per class across levels.

    Several class images may share a class id: their detections are merged before NMS, as OS2D does.
    """
    all_boxes, all_scores, all_labels, all_defaults, all_corners = [], [], [], [], []
    have_corners = all(lvl.corners is not None for lvl in levels)
    for lvl in levels:
        h, w = lvl.image_hw
        defaults = strided_boxes(lvl.fm_hw[0], lvl.fm_hw[1], lvl.box_size, lvl.stride, device=lvl.cls.device)
        sx, sy = lvl.scale_to_original
        scale = torch.tensor([sx, sy, sx, sy], dtype=torch.float, device=lvl.cls.device)
        for i_label, cid in enumerate(class_ids):
            boxes = decode(lvl.loc[i_label].transpose(0, 1), defaults)
            boxes = clip_boxes_to_image(boxes, (h, w))
            scores = lvl.cls[i_label].float()
            empty = (boxes[:, 3] <= boxes[:, 1]) | (boxes[:, 2] <= boxes[:, 0])
            keep = (scores > score_threshold) & ~empty
            if not bool(keep.any()):
                continue
            all_boxes.append(boxes[keep] * scale)
            all_scores.append(scores[keep])
            all_labels.append(torch.full((int(keep.sum()),), int(cid), dtype=torch.long, device=scores.device))
            all_defaults.append(defaults[keep] * scale)
            if have_corners:
                all_corners.append(lvl.corners[i_label].transpose(0, 1)[keep] * scale.repeat(2))
    device = levels[0].cls.device if levels else torch.device("cpu")
    if not all_boxes:
        z4 = torch.zeros(0, 4, device=device)
        return RawDetections(z4, torch.zeros(0, device=device), torch.zeros(0, dtype=torch.long, device=device), z4,
                             torch.zeros(0, 8, device=device) if have_corners else None)
    boxes, scores, labels = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
    groups = torch.zeros_like(labels) if nms_across_classes else labels
    keep = batched_nms(boxes, scores, groups, nms_iou_threshold)  # sorted by decreasing score
    return RawDetections(
        boxes[keep], scores[keep], labels[keep], torch.cat(all_defaults)[keep],
        torch.cat(all_corners)[keep] if have_corners else None,
    )
