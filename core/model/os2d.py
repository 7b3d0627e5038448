"""The OS2D detector: one trunk for target and class images, dense correlation, transformation net.

Attribute names follow the official implementation (`net_feature_maps`, `net_label_features.
net_class_features`, `os2d_head_creator.aligner.parameter_regressor`) so official state dicts load
as they are. With `merge_branch_parameters` both branches are the same module, so pruning the trunk
keeps the class and target branches consistent by construction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.model import box_coder
from core.model.backbone import ARCHITECTURES, ResNetTrunk
from core.model.transform_net import TransformationNet, l2_normalize_channels

GRID = 15  # correlation grid / transform output grid size of the released models (weakalign's 15x15)
POOL_BORDER = 2  # border of the class feature map ignored when pooling resampled correlations


@dataclass(frozen=True)
class ModelConfig:
    """What defines an OS2D architecture (channel counts of pruned models are stored separately)."""

    backbone: str = "resnet50"
    simplified_affine: bool = False  # v1: scale + translation (4 params); v2: full affine (6)
    inverse_geom: bool = True  # v2 inverts the regressed transform before sampling
    merge_branch_parameters: bool = True  # one trunk shared by target and class branches
    class_image_size: int = 240

    def __post_init__(self) -> None:
        if self.backbone not in ARCHITECTURES:
            raise ValueError(f"unknown backbone '{self.backbone}', expected one of {', '.join(ARCHITECTURES)}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ModelConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def describe(self) -> str:
        variant = "v1 (simplified affine)" if self.simplified_affine else "v2 (affine)"
        return f"OS2D {variant}, {self.backbone} trunk, {'inverse' if self.inverse_geom else 'direct'} geometry"


# The official presets (see shared/os2d/README.md).
OS2D_V2 = ModelConfig("resnet50", simplified_affine=False, inverse_geom=True)
OS2D_V1 = ModelConfig("resnet101", simplified_affine=True, inverse_geom=False)


class OS2DOutput(NamedTuple):
    loc: torch.Tensor  # [B, C, 4, A] box codes w.r.t. the default boxes
    cls: torch.Tensor  # [B, C, A] recognition scores in [-1, 1]
    cls_transform_detached: torch.Tensor  # [B, C, A] same, with no gradient into the transform
    fm_hw: tuple[int, int]
    corners: torch.Tensor  # [B, C, 8, A] corners of the transformed grid, image pixels


class LabelFeatureExtractor(nn.Module):
    """Holds the class-branch trunk under the official name."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.net_class_features = trunk

    def forward(self, class_images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [self.net_class_features(img.unsqueeze(0)) for img in class_images]


class Aligner(nn.Module):
    def __init__(self, simplified_affine: bool, inverse_geom: bool) -> None:
        super().__init__()
        self.simplified_affine = simplified_affine
        self.inverse_geom = inverse_geom
        self.parameter_regressor = TransformationNet(output_dim=4 if simplified_affine else 6, input_dim=GRID * GRID)

    def affine_matrices(self, params: torch.Tensor) -> torch.Tensor:
        """[N, P, H, W] regressed parameters → [N*H*W, 2, 3] sampling matrices."""
        p = params.permute(0, 2, 3, 1).reshape(-1, params.size(1))
        if self.simplified_affine:
            zero = torch.zeros_like(p[:, 0])
            p = torch.stack([p[:, 0], zero, p[:, 1], zero, p[:, 2], p[:, 3]], dim=1)
        theta = p.view(-1, 2, 3)
        if self.inverse_geom:
            theta = invert_affine(theta)
        return theta

    def forward(self, corr_maps: torch.Tensor) -> torch.Tensor:
        """[N, 225, H, W] correlations → affine maps [N*H*W, 2, 3] of each anchor's local [-1, 1] frame."""
        return self.affine_matrices(self.parameter_regressor(corr_maps))


def invert_affine(theta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Inverse of each 2x3 affine map [N, 2, 3] (as the 3x3 matrix with bottom row 0 0 1), in closed form.

    Closed form rather than `torch.linalg.inv`: it exports to ONNX and has no data-dependent branch.
    A singular map is regularized as OS2D does (inverse of M + eps * I), element by element."""
    a, b, tx = theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2]
    c, d, ty = theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2]
    singular = (a * d - b * c) == 0
    reg = torch.where(singular, torch.full_like(a, eps), torch.zeros_like(a))
    a, d, s = a + reg, d + reg, 1 + reg
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    itx = -(ia * tx + ib * ty) / s
    ity = -(ic * tx + id_ * ty) / s
    return torch.stack([ia, ib, itx, ic, id_, ity], dim=1).view(-1, 2, 3)


class HeadCreator(nn.Module):
    """Holds the trainable head parts under the official name `os2d_head_creator`."""

    def __init__(self, simplified_affine: bool, inverse_geom: bool, stride: int, receptive_field: int) -> None:
        super().__init__()
        self.aligner = Aligner(simplified_affine, inverse_geom)
        # a 15-cell grid on a stride-16 map with 16-pixel cells spans 16*14+16 = 240 pixels
        self.box_size = stride * (GRID - 1) + receptive_field
        self.stride = stride


def _anchor_affine(theta: torch.Tensor, h: int, w: int, size: float, stride: float, offset: float = 0.5,
                   scale_xy: tuple[float, float] = (1.0, 1.0), shift_xy: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Compose local maps [B*C*H*W, 2, 3] with each anchor's box (size, centre (i + offset) * stride),
    then with x ↦ x * scale + shift. Composing the 2x3 maps avoids transforming 225 points per anchor."""
    ys, xs = torch.meshgrid(torch.arange(h, dtype=theta.dtype, device=theta.device),
                            torch.arange(w, dtype=theta.dtype, device=theta.device), indexing="ij")
    cx = ((xs.reshape(-1) + offset) * stride).repeat(theta.size(0) // (h * w))
    cy = ((ys.reshape(-1) + offset) * stride).repeat(theta.size(0) // (h * w))
    half = size / 2
    out = theta * half
    out = torch.stack([out[:, 0] * scale_xy[0], out[:, 1] * scale_xy[1]], dim=1)
    shift = torch.stack([cx * scale_xy[0] + shift_xy[0], cy * scale_xy[1] + shift_xy[1]], dim=1)
    return torch.cat([out[:, :, :2], (out[:, :, 2] + shift).unsqueeze(-1)], dim=2)


def _at_least_one(n):
    """max(n, 1) for a size that is an int in eager mode and a traced tensor while exporting."""
    return n.clamp(min=1) if isinstance(n, torch.Tensor) else max(n, 1)


def affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """`F.affine_grid(theta, [N, 1, size, size], align_corners=True)` as one matmul: the same arithmetic,
    and it exports to ONNX opsets before 20."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size, dtype=theta.dtype, device=theta.device),
                            torch.linspace(-1, 1, size, dtype=theta.dtype, device=theta.device), indexing="ij")
    base = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).view(size * size, 3)
    return torch.matmul(base, theta.transpose(1, 2)).view(-1, size, size, 2)


# the four corners of the [-1, 1] grid in OS2D's order: (top-left, top-right, bottom-left, bottom-right)
_CORNERS = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])


def resample_correlations(corr: torch.Tensor, grids_unit: torch.Tensor, pool_mask: torch.Tensor,
                          dtype: torch.dtype = torch.double) -> torch.Tensor:
    """Sample each template cell's correlation channel at its transformed position and pool.

    corr: [B, C, 225, H, W] with channel index x*15 + y (weakalign's transposed order);
    grids_unit: [B*C*H*W, 15, 15, 2] in [-1, 1] feature-map coordinates; pool_mask: [C, 225] or [1, 225].
    The 225 channels are stacked along y into one tall single-channel image so a single
    `grid_sample` call does all lookups; double precision keeps the merged coordinate exact.
    """
    b, c, k, h, w = corr.shape
    stacked = corr.reshape(b * c, 1, k * h, w).to(dtype)
    ty, tx = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
    channel = (ty + tx * GRID).to(device=corr.device, dtype=dtype).view(GRID, GRID)
    # y in [-1, 1] of one channel → row in the stacked image → [-1, 1] of the stacked image:
    # y' = ((y + 1) * a + channel * b) - 1, while x passes unchanged (+0, *1, +0, -0 are exact). Written
    # as rows of 450 constants broadcast over the anchors rather than slicing x and y apart and stacking
    # them again: an exported graph then runs one vectorised elementwise pass where the slice-and-concat
    # took ~12 ms a frame.
    zero, one = torch.zeros_like(channel), torch.ones_like(channel)
    a = (h - 1) / (h * k - 1)
    add1 = torch.stack([zero, one], dim=-1).view(-1)
    scale = torch.stack([one, one * a], dim=-1).view(-1)
    shift = torch.stack([zero, channel * (2 * h / (h * k - 1))], dim=-1).view(-1)
    g = grids_unit.clamp(-1, 1).to(dtype).reshape(-1, GRID * GRID * 2)
    coords = ((g + add1) * scale + shift - add1).view(b * c, -1, 1, 2)
    sampled = F.grid_sample(stacked, coords, mode="bilinear", padding_mode="border", align_corners=True)
    sampled = sampled.view(b, c, h * w, GRID * GRID).to(corr.dtype)
    return (sampled * pool_mask.view(1, -1, 1, GRID * GRID)).sum(-1)  # [B, C, H*W]


def class_pool_mask(num_classes: int, device=None) -> torch.Tensor:
    """Uniform weights over the 11x11 interior of the 15x15 class grid (borders are padding-dominated)."""
    m = torch.zeros(GRID, GRID, device=device)
    m[POOL_BORDER:GRID - POOL_BORDER, POOL_BORDER:GRID - POOL_BORDER] = 1
    m = m / m.sum()
    return m.view(1, -1).expand(num_classes, -1)


class OS2DModel(nn.Module):
    """OS2D. `forward(images, class_images)` mirrors the official call; see `OS2DOutput`."""

    def __init__(self, config: ModelConfig = OS2D_V2) -> None:
        super().__init__()
        self.config = config
        self.net_feature_maps = ResNetTrunk(config.backbone)
        class_trunk = self.net_feature_maps if config.merge_branch_parameters else ResNetTrunk(config.backbone)
        self.net_label_features = LabelFeatureExtractor(class_trunk)
        self.os2d_head_creator = HeadCreator(
            config.simplified_affine, config.inverse_geom,
            self.net_feature_maps.feature_map_stride, self.net_feature_maps.feature_map_receptive_field,
        )
        # float64 reproduces the official sampling bit for bit; training may use float32 for speed
        self.resample_dtype = torch.double
        self.eval()

    # -- geometry --------------------------------------------------------------------------------
    @property
    def box_size(self) -> int:
        return self.os2d_head_creator.box_size

    @property
    def stride(self) -> int:
        return self.os2d_head_creator.stride

    @property
    def feature_dim(self) -> int:
        return self.net_feature_maps.out_channels

    # -- branches --------------------------------------------------------------------------------
    def class_features(self, class_images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Class images (each [3, h, w]) → features resized to the 15x15 grid, [C, D, 15, 15]."""
        maps = self.net_label_features(class_images)
        return torch.cat([F.interpolate(m, size=(GRID, GRID), mode="bilinear", align_corners=True) for m in maps])

    def target_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net_feature_maps(images)

    # -- head ------------------------------------------------------------------------------------
    def head(self, feature_maps: torch.Tensor, class_feats: torch.Tensor, *, with_detached: bool = False) -> OS2DOutput:
        b, d, h, w = feature_maps.shape
        c = class_feats.size(0)
        if not torch.jit.is_tracing() and class_feats.size(1) != d:
            raise ValueError(f"class features have {class_feats.size(1)} channels, target features {d}")
        cf = l2_normalize_channels(class_feats, 1e-5)
        tf = l2_normalize_channels(feature_maps, 1e-5)
        # [C, D, 15(y), 15(x)] → rows ordered (x, y) as in weakalign's FeatureCorrelation
        cmat = cf.permute(0, 3, 2, 1).reshape(c * GRID * GRID, d)
        corr = torch.matmul(cmat, tf.reshape(b, d, h * w)).view(b * c, GRID * GRID, h, w)

        theta = self.os2d_head_creator.aligner(corr)  # [B*C*H*W, 2, 3]
        corr = corr.view(b, c, GRID * GRID, h, w)

        # sampling positions: anchors of 15 feature-map cells at stride 1, mapped to grid_sample's [-1, 1]
        sx, sy = 2.0 / _at_least_one(w - 1), 2.0 / _at_least_one(h - 1)
        theta_unit = _anchor_affine(theta, h, w, GRID, 1.0, scale_xy=(sx, sy), shift_xy=(-1.0, -1.0))
        grids_unit = affine_grid(theta_unit, GRID)
        mask = class_pool_mask(1, corr.device)
        cls = resample_correlations(corr, grids_unit, mask, self.resample_dtype)
        if with_detached and cls.requires_grad:
            cls_detached = resample_correlations(corr, grids_unit.detach(), mask, self.resample_dtype)
        else:
            cls_detached = cls

        # boxes in image pixels: anchors of the head's receptive field at the trunk's stride; an affine
        # image of the grid has its extremes at the grid's corners
        theta_img = _anchor_affine(theta, h, w, self.box_size, self.stride)
        corners = torch.matmul(theta_img, _CORNERS.to(theta_img).t()).transpose(1, 2)  # [N, 4, 2]
        boxes = torch.cat([corners.min(dim=1).values, corners.max(dim=1).values], dim=1)
        img_boxes = box_coder.anchor_boxes(h, w, self.box_size, self.stride, device=corr.device)
        defaults = img_boxes.repeat(b * c, 1)
        loc = box_coder.encode(boxes, defaults).view(b, c, h * w, 4)
        corners = corners.detach().reshape(b, c, h * w, 8)
        return OS2DOutput(
            loc=loc.transpose(2, 3).contiguous(),
            cls=cls,
            cls_transform_detached=cls_detached,
            fm_hw=(h, w),
            corners=corners.transpose(2, 3).contiguous(),
        )

    def forward(
        self,
        images: torch.Tensor,
        class_images: Sequence[torch.Tensor] | None = None,
        *,
        class_feats: torch.Tensor | None = None,
        with_detached: bool = False,
    ) -> OS2DOutput:
        if class_feats is None:
            if class_images is None:
                raise ValueError("pass class_images or precomputed class_feats")
            class_feats = self.class_features(class_images)
        return self.head(self.target_features(images), class_feats, with_detached=with_detached)

    # -- bookkeeping -----------------------------------------------------------------------------
    def num_parameters(self) -> int:
        """Parameters counted once even when the trunk is shared by both branches."""
        return sum(p.numel() for p in self.parameters())

    def freeze_bn(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()


def describe_config(config: ModelConfig) -> str:
    return json.dumps(config.to_json(), sort_keys=True)
