"""The OS2D training objective, a GIoU term, and the distillation terms used for fine-tuning.

OS2D trains recognition with a margin loss on correlation scores (RLL: ranked list loss, where
negatives are weighted by a softmax of their own loss so the hardest dominate) and localization with
smooth-L1 on box codes of positive anchors. Anchor labels come from IoU of the default boxes with
ground truth; with target remapping the classification labels come from the IoU of the *predicted*
boxes instead, which is what makes OS2D's scores localization-aware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou, generalized_box_iou_loss, roi_align

from core.model import box_coder
from core.model.os2d import GRID, class_pool_mask
from core.model.transform_net import l2_normalize_channels


@dataclass(frozen=True)
class LossConfig:
    class_loss: str = "RLL"  # or "ContrastiveLoss"
    neg_margin: float = 0.5
    pos_margin: float = 0.6
    loc_weight: float = 0.2
    positive_iou: float = 0.5
    negative_iou: float = 0.1
    remap_targets: bool = True
    remap_positive_iou: float = 0.8
    remap_negative_iou: float = 0.4
    neg_to_pos_ratio: float = 3.0  # hard-negative ratio for ContrastiveLoss (RLL weighs all negatives)
    rll_neg_weight_ratio: float = 0.001
    class_neg_weight: float = 1.0
    giou_weight: float = 0.0  # extra GIoU term on positives (fine-tuning)
    match_weight: float = 0.0  # aligned-matching term on ground-truth boxes (training from scratch)
    match_temperature: float = 0.1


def _match(ious: torch.Tensor, difficult: torch.Tensor, pos_iou: float, neg_iou: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ious [G, A] → (labels [A]: 1 pos, 0 neg, -1 ignore; matched gt index [A])."""
    if ious.numel() == 0:
        a = ious.size(1)
        return torch.zeros(a, dtype=torch.long, device=ious.device), torch.zeros(a, dtype=torch.long, device=ious.device)
    best, idx = ious.max(dim=0)
    labels = torch.full_like(idx, -1)
    labels[best < neg_iou] = 0
    pos = best >= pos_iou
    labels[pos] = 1
    labels[pos & difficult[idx]] = -1  # matched to a difficult box: neither positive nor negative
    return labels, idx


@dataclass
class Targets:
    loc: torch.Tensor  # [B, C, 4, A]
    cls: torch.Tensor  # [B, C, A] in {1, 0, -1}
    gt_boxes: torch.Tensor  # [B, C, A, 4] matched gt box per anchor (for GIoU)


def build_targets(gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor], gt_difficult: list[torch.Tensor],
                  num_classes: int, default_boxes: torch.Tensor, cfg: LossConfig) -> Targets:
    """Anchor labels and box codes for each (image, class) pair; labels index the class batch."""
    b, a = len(gt_boxes), default_boxes.size(0)
    device = default_boxes.device
    loc = torch.zeros(b, num_classes, 4, a, device=device)
    cls = torch.zeros(b, num_classes, a, dtype=torch.long, device=device)
    matched = default_boxes.expand(b, num_classes, a, 4).clone()
    for i in range(b):
        for c in range(num_classes):
            sel = gt_labels[i] == c
            if not bool(sel.any()):
                continue
            boxes = gt_boxes[i][sel]
            labels, idx = _match(box_iou(boxes, default_boxes), gt_difficult[i][sel], cfg.positive_iou, cfg.negative_iou)
            cls[i, c] = labels
            matched[i, c] = boxes[idx]
            loc[i, c] = box_coder.encode(boxes[idx], default_boxes).t()
    return Targets(loc, cls, matched)


def remap_targets(pred_boxes: torch.Tensor, gt_boxes: list[torch.Tensor], gt_labels: list[torch.Tensor],
                  gt_difficult: list[torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    """Classification labels from the IoU of predicted boxes [B, C, A, 4] with ground truth."""
    b, c, a, _ = pred_boxes.shape
    cls = torch.zeros(b, c, a, dtype=torch.long, device=pred_boxes.device)
    for i in range(b):
        for j in range(c):
            sel = gt_labels[i] == j
            if bool(sel.any()):
                cls[i, j], _ = _match(box_iou(gt_boxes[i][sel], pred_boxes[i, j]), gt_difficult[i][sel],
                                      cfg.remap_positive_iou, cfg.remap_negative_iou)
    return cls


def detection_loss(loc_pred: torch.Tensor, cls_pred: torch.Tensor, cls_pred_for_neg: torch.Tensor,
                   targets: Targets, default_boxes: torch.Tensor, cfg: LossConfig,
                   cls_remapped: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """OS2D loss: margin-based recognition (RLL or contrastive) + smooth-L1 localization (+ GIoU).

    loc_pred [B, C, 4, A], cls_pred [B, C, A]; negatives use `cls_pred_for_neg`, the scores with the
    transform detached, so negatives do not train the transformation net.
    """
    pos_reg = targets.cls > 0
    cls_t = cls_remapped if (cfg.remap_targets and cls_remapped is not None) else targets.cls
    pos, neg = cls_t > 0, cls_t == 0
    num_pos = int(pos.sum())
    num_pos_reg = max(int(pos_reg.sum()), 1)

    scores = torch.where(pos, cls_pred, torch.where(neg, cls_pred_for_neg, torch.zeros_like(cls_pred)))
    loc_el = F.smooth_l1_loss(loc_pred, targets.loc, reduction="none").sum(2)
    loc_loss = torch.where(pos_reg, loc_el, torch.zeros_like(loc_el)).sum() / num_pos_reg

    loss_neg = 0.5 * (scores - cfg.neg_margin).clamp(min=0)
    loss_pos = 0.5 * (cfg.pos_margin - scores).clamp(min=0)
    loss_neg = torch.where(neg, loss_neg, torch.zeros_like(loss_neg))
    loss_pos = torch.where(pos, loss_pos, torch.zeros_like(loss_pos))
    if cfg.class_loss == "ContrastiveLoss":
        cls_el = loss_neg.pow(2) + loss_pos.pow(2)
        neg_sel = _hard_negatives(cls_el.detach(), neg, num_pos, cfg.neg_to_pos_ratio)
    elif cfg.class_loss == "RLL":
        nontrivial_pos = (loss_pos > 0) & pos
        n_nt = int(nontrivial_pos.sum())
        loss_pos = loss_pos * (num_pos / n_nt) if n_nt > 0 else torch.zeros_like(loss_pos)
        # weight negatives per class by exp(temperature * loss): the hardest ones count most
        det = loss_neg.detach()
        max_per_label = det.amax(dim=2, keepdim=True).amax(dim=0, keepdim=True)  # [1, C, 1]
        active = max_per_label > 1e-5
        temp = torch.where(active, -math.log(cfg.rll_neg_weight_ratio) / max_per_label.clamp(min=1e-5),
                           torch.zeros_like(max_per_label))
        w = torch.exp((det - max_per_label) * temp) * ((det > 0) & neg).float()
        norm = w.sum(dim=2, keepdim=True).sum(dim=0, keepdim=True) * active.sum()
        norm = torch.where(active & (norm > 0), 1.0 / norm.clamp(min=1e-12), torch.zeros_like(norm))
        norm = torch.where(norm <= 1e-8, torch.zeros_like(norm), norm)
        w = w * norm * (num_pos if num_pos > 0 else 1)
        loss_neg = torch.where(w > 1e-8, loss_neg, torch.zeros_like(loss_neg)) * w
        cls_el = loss_neg + loss_pos
        neg_sel = neg
    else:
        raise ValueError(f"unknown class loss '{cfg.class_loss}' (use RLL or ContrastiveLoss)")
    denom = max(num_pos, 1)
    cls_pos = cls_el[pos].sum() / denom
    cls_neg = cls_el[neg_sel].sum() / denom
    total = cls_pos + cfg.class_neg_weight * cls_neg + cfg.loc_weight * loc_loss
    out = {"cls_pos": cls_pos.detach(), "cls_neg": cls_neg.detach(), "loc": loc_loss.detach()}
    if cfg.giou_weight > 0 and bool(pos_reg.any()):
        b, c, _, a = loc_pred.shape
        codes = loc_pred.permute(0, 1, 3, 2)[pos_reg]  # [P, 4]
        anchors = default_boxes.expand(b, c, a, 4)[pos_reg]
        giou = generalized_box_iou_loss(box_coder.decode(codes, anchors), targets.gt_boxes[pos_reg], reduction="mean")
        total = total + cfg.giou_weight * giou
        out["giou"] = giou.detach()
    out["loss"] = total
    out["num_pos"] = torch.tensor(float(num_pos))
    return out


def _hard_negatives(cls_el: torch.Tensor, neg: torch.Tensor, num_pos: int, ratio: float) -> torch.Tensor:
    k = int(ratio * max(num_pos, 1))
    flat = torch.where(neg, cls_el, torch.full_like(cls_el, -1.0)).flatten()
    k = min(k, int(neg.sum()))
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        mask[flat.topk(k).indices] = True
    return mask.view_as(neg) & neg


# -- aligned matching ----------------------------------------------------------------------------
def matching_loss(feats: torch.Tensor, class_feats: torch.Tensor, boxes: list[torch.Tensor],
                  labels: list[torch.Tensor], difficult: list[torch.Tensor], stride: int,
                  temperature: float) -> torch.Tensor | None:
    """Cross-entropy over the class batch of OS2D's score at the *ideal* alignment of every object.

    OS2D's own loss only reaches the trunk through anchors whose default box overlaps an object by
    IoU 0.5, a few per batch when training from scratch. Here each ground-truth box is RoI-aligned
    onto the 15x15 grid the class features live on and scored against every class image with the
    same pooled cosine correlation the head uses, so every object teaches the trunk which class it
    is and which it is not. feats [B, D, H, W]; class_feats [C, D, 15, 15]; boxes in image pixels.
    """
    keep = [~d for d in difficult]
    rois = [b[k].to(feats.dtype) for b, k in zip(boxes, keep)]
    target = torch.cat([lab[k] for lab, k in zip(labels, keep)])
    if target.numel() == 0 or class_feats.size(0) < 2:
        return None
    pooled = roi_align(feats, rois, output_size=(GRID, GRID), spatial_scale=1.0 / stride, sampling_ratio=2,
                       aligned=True)  # [N, D, 15, 15]
    obj = l2_normalize_channels(pooled, 1e-5)
    cls = l2_normalize_channels(class_feats.to(obj.dtype), 1e-5)
    mask = class_pool_mask(1, obj.device).view(GRID, GRID)
    scores = torch.einsum("ndyx,cdyx,yx->nc", obj, cls, mask)  # mask sums to 1
    return F.cross_entropy(scores / temperature, target.to(scores.device))


# -- distillation ---------------------------------------------------------------------------------
def score_distillation(student_cls: torch.Tensor, teacher_cls: torch.Tensor) -> torch.Tensor:
    """Match the teacher's recognition score maps (MSE on correlations in [-1, 1])."""
    return F.mse_loss(student_cls, teacher_cls.detach())


def box_distillation(student_loc: torch.Tensor, teacher_loc: torch.Tensor, teacher_cls: torch.Tensor,
                     anchors: torch.Tensor, top_k: int = 16) -> torch.Tensor:
    """1 − GIoU between the student's and the teacher's decoded boxes at the teacher's `top_k` most
    confident locations per image and class. Why: a cut model's scores recover faster than its boxes (too
    wide on narrow products), and where the teacher is confident its box is the one to copy; GIoU keeps
    the term bounded and scale-free where raw box codes of far-off boxes are not.
    loc: [B, C, 4, A] codes; cls: [B, C, A]; anchors: [A, 4]."""
    k = min(top_k, teacher_cls.shape[-1])
    idx = teacher_cls.detach().topk(k, dim=-1).indices  # [B, C, k]
    codes = idx.unsqueeze(2).expand(-1, -1, student_loc.shape[2], -1)
    pick = lambda loc: loc.gather(3, codes).permute(0, 1, 3, 2).reshape(-1, 4)  # noqa: E731
    where = anchors[idx.reshape(-1)]
    student = box_coder.decode(pick(student_loc), where)
    teacher = box_coder.decode(pick(teacher_loc.detach()), where)
    return generalized_box_iou_loss(student, teacher, reduction="mean")


def spatial_attention(features: torch.Tensor) -> torch.Tensor:
    """Channel-pooled energy map, L2-normalised per image: where the trunk "looks", independent of width."""
    att = features.pow(2).mean(dim=1).flatten(1)
    return F.normalize(att, dim=1)


def attention_distillation(student_feats: torch.Tensor, teacher_feats: torch.Tensor) -> torch.Tensor:
    """Spatial-attention distillation: works across different channel counts (pruned student)."""
    return (spatial_attention(student_feats) - spatial_attention(teacher_feats.detach())).pow(2).sum(1).mean()
