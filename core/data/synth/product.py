"""A package as an object: its silhouette and shading per shape (sprite with alpha), and the class image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.data.synth.art import Assets, _render_face
from core.data.synth.colors import _hsv, _luma, _scale
from core.data.synth.config import CLASS_IMAGE_SIDE, SPRITE_SIDE
from core.data.synth.design import ProductDesign
from core.data.synth.draw import _blend_mask, _poly, _rounded_rect
from core.data.synth.text import _draw_text


@dataclass(frozen=True, eq=False)
class Sprite:
    """A rendered product front: colour and coverage (alpha), drawn once and resized per placement."""

    bgr: np.ndarray  # uint8 [H, W, 3], zero where alpha is zero
    alpha: np.ndarray  # uint8 [H, W]
    rel_height: float
    hull: np.ndarray  # float32 [N, 2] convex hull of the package in pixel-edge coordinates ([0, W] x [0, H])

    @property
    def aspect(self) -> float:
        return self.bgr.shape[1] / self.bgr.shape[0]


def _cylinder(img: np.ndarray, rng: np.random.Generator) -> None:
    """Shade a package as a cylinder lit from the front-left, with a specular stripe."""
    w = img.shape[1]
    u = np.clip(np.arange(w, dtype=np.float32) / max(w - 1, 1) * 2 - 1, -1, 1)
    prof = 0.62 + 0.38 * np.sqrt(1 - u ** 2)
    hc, hw = rng.uniform(-0.55, -0.25), rng.uniform(0.06, 0.14)
    spec = rng.uniform(0.15, 0.4) * np.exp(-((u - hc) / hw) ** 2)
    f = img.astype(np.float32) * prof[None, :, None] + 255 * spec[None, :, None]
    img[:] = np.clip(f, 0, 255).astype(np.uint8)


def render_product(design: ProductDesign, assets: Assets, long_side: int = SPRITE_SIDE) -> Sprite:
    """Draw a package front (colour + alpha) of the design's shape with its longer side `long_side`."""
    a = design.aspect
    if a >= 1:
        W, H = long_side, max(8, int(round(long_side / a)))
    else:
        W, H = max(8, int(round(long_side * a))), long_side
    rng = np.random.default_rng([*design.seed, 13])
    rb = np.random.default_rng([*design.brand.seed, 13])
    b = design.brand
    img = np.zeros((H, W, 3), np.uint8)
    alpha = np.zeros((H, W), np.uint8)
    shape = b.shape
    if shape == "box":
        img[:] = _render_face(design, W, H, assets)
        _poly(alpha, _rounded_rect(0, 0, W - 1, H - 1, 0.015 * min(W, H)), 255)
        if rb.random() < 0.6:  # lid flap fold
            y = int(rb.uniform(0.02, 0.05) * H)
            cv2.line(img, (0, y), (W, y), _scale(b.primary, 0.6), max(1, H // 150), cv2.LINE_AA)
        light = np.linspace(rng.uniform(1.0, 1.06), rng.uniform(0.88, 0.97), W, dtype=np.float32)
        img[:] = np.clip(img.astype(np.float32) * light[None, :, None], 0, 255).astype(np.uint8)
    elif shape == "can":
        rim = max(2, int(round(0.05 * H)))
        img[rim:H - rim] = _render_face(design, W, H - 2 * rim, assets)
        metal = (rb.uniform(150, 200),) * 3 if rb.random() < 0.7 else _hsv(0.12, 0.5, 0.75)
        for y0, y1 in ((0, rim), (H - rim, H)):
            img[y0:y1] = metal
            for k in range(y0, y1, 2):
                img[k] = _scale(tuple(int(v) for v in metal), 0.8)
        _poly(alpha, _rounded_rect(0, 0, W - 1, H - 1, min(rim * 1.2, 0.08 * W)), 255)
        _cylinder(img, rng)
    elif shape in ("bottle", "jar"):
        if shape == "bottle":
            cap_h, neck_h, sh_h = rb.uniform(0.06, 0.09) * H, rb.uniform(0.06, 0.12) * H, rb.uniform(0.1, 0.16) * H
            neck_w = rb.uniform(0.32, 0.45) * W
            cap_w = min(W * 0.6, neck_w * 1.15)
            label = (cap_h + neck_h + sh_h + rb.uniform(0.03, 0.08) * H, H - rb.uniform(0.06, 0.14) * H)
        else:
            cap_h, neck_h, sh_h = rb.uniform(0.1, 0.16) * H, 0.02 * H, rb.uniform(0.04, 0.08) * H
            neck_w = rb.uniform(0.8, 0.9) * W
            cap_w = neck_w * 1.03
            label = (cap_h + neck_h + sh_h + 0.04 * H, H - 0.06 * H)
        rb_r = 0.08 * W
        left = [((W - cap_w) / 2, 0), ((W - cap_w) / 2, cap_h), ((W - neck_w) / 2, cap_h), ((W - neck_w) / 2, cap_h + neck_h)]
        for t in np.linspace(0, 1, 10):  # shoulder: smooth from the neck to the body width
            s = 0.5 - 0.5 * math.cos(math.pi * t)
            left.append(((W - neck_w) / 2 * (1 - s), cap_h + neck_h + sh_h * t))
        left += [(0, H - rb_r), (rb_r * 0.3, H - rb_r * 0.3), (rb_r, H)]
        right = [(W - 1 - x, y) for x, y in reversed(left)]
        sil = np.array(left + right, np.float32)
        _poly(alpha, sil, 255)
        fill = b.material
        img[:] = fill
        grad = np.linspace(1.1, 0.8, H, dtype=np.float32)[:, None, None]
        img[:] = np.clip(img.astype(np.float32) * grad, 0, 255).astype(np.uint8)
        cap_col = b.primary if rb.random() < 0.6 else (rb.uniform(160, 220),) * 3
        cv2.rectangle(img, (0, 0), (W, int(cap_h)), tuple(int(c) for c in cap_col), -1)
        for xk in np.arange((W - cap_w) / 2, (W + cap_w) / 2, max(3.0, cap_w / 14)):
            cv2.line(img, (int(xk), 0), (int(xk), int(cap_h)), _scale(tuple(int(c) for c in cap_col), 0.8), 1)
        ly0, ly1 = int(label[0]), int(label[1])
        if ly1 - ly0 > 10:
            img[ly0:ly1] = _render_face(design, W, ly1 - ly0, assets)
        if shape == "bottle" and rb.random() < 0.5:  # neck label
            y = int(cap_h + neck_h * 0.2)
            cv2.rectangle(img, (0, y), (W, int(y + neck_h * 0.6)), b.secondary, -1)
        _cylinder(img, rng)
    elif shape == "pouch":
        img[:] = _render_face(design, W, H, assets)
        crimp = max(3, int(0.06 * H))
        inset = rb.uniform(0.02, 0.06) * W
        teeth = int(rb.integers(12, 30))
        xs = np.linspace(inset, W - 1 - inset, teeth * 2 + 1)
        top = [(x, (k % 2) * crimp * 0.25) for k, x in enumerate(xs)]
        sil = top + [(W - 1 - inset, crimp), (W - 1, H * 0.3), (W - 1, H - 0.05 * W), (W - 1 - 0.05 * W, H - 1),
                     (0.05 * W, H - 1), (0, H - 0.05 * W), (0, H * 0.3), (inset, crimp)]
        _poly(alpha, sil, 255)
        for y in range(1, crimp, 3):
            cv2.line(img, (0, y), (W, y), _scale(b.primary, 0.75), 1)
        xx = np.arange(W, dtype=np.float32)
        wrinkle = 1 + 0.06 * np.sin(xx / W * rb.uniform(6, 14) + rb.uniform(0, 6)) * np.sin(xx / W * 3.1)
        img[:] = np.clip(img.astype(np.float32) * wrinkle[None, :, None], 0, 255).astype(np.uint8)
    else:  # carton with a gable top
        gable = int(rb.uniform(0.14, 0.2) * H)
        fin = max(2, int(0.025 * H))
        img[gable:] = _render_face(design, W, H - gable, assets)
        roof = _scale(b.primary, 1.15) if _luma(b.primary) < 200 else _scale(b.primary, 0.92)
        img[:gable] = roof
        img[:fin] = _scale(b.primary, 0.8)
        cv2.line(img, (0, gable), (W, gable), _scale(b.primary, 0.6), max(1, H // 200), cv2.LINE_AA)
        _draw_text(img, b.name, (0.15 * W, fin + 0.15 * (gable - fin), 0.7 * W, 0.7 * (gable - fin)), b.ink, b.font, 0.12)
        sil = [(0.04 * W, 0), (0.96 * W, 0), (0.96 * W, fin), (W - 1, fin + 2), (W - 1, H - 1), (0, H - 1), (0, fin + 2),
               (0.04 * W, fin)]
        _poly(alpha, sil, 255)
        light = np.linspace(1.04, 0.92, W, dtype=np.float32)
        img[:] = np.clip(img.astype(np.float32) * light[None, :, None], 0, 255).astype(np.uint8)
    # a thin dark rim where the package edge meets the background reads as a real object
    edge = cv2.morphologyEx(alpha, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    _blend_mask(img, (edge // 3).astype(np.uint8), 0, 0, (30, 30, 30))
    img[alpha == 0] = 0
    return Sprite(bgr=img, alpha=alpha, rel_height=design.rel_height, hull=_alpha_hull(alpha))


def _alpha_hull(alpha: np.ndarray) -> np.ndarray:
    """Convex hull of the covered pixels' squares: warped by a homography it bounds the warped package."""
    cnts, _ = cv2.findContours((alpha > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    pts = np.concatenate([c.reshape(-1, 2) for c in cnts]) if cnts else np.zeros((1, 2), np.int32)
    pts = np.concatenate([pts + d for d in ((0, 0), (1, 0), (0, 1), (1, 1))]).astype(np.float32)
    return cv2.convexHull(pts).reshape(-1, 2).astype(np.float32)


def class_image(sprite: Sprite, rng: np.random.Generator) -> np.ndarray:
    """The "in vitro" class image: the package on a plain light background, tightly cropped."""
    x, y, w, h = cv2.boundingRect(sprite.alpha)
    m = int(rng.integers(0, max(1, int(0.025 * max(w, h))) + 1))
    bgr = cv2.copyMakeBorder(sprite.bgr[y:y + h, x:x + w], m, m, m, m, cv2.BORDER_CONSTANT, value=0)
    a = cv2.copyMakeBorder(sprite.alpha[y:y + h, x:x + w], m, m, m, m, cv2.BORDER_CONSTANT, value=0)
    base = np.array([rng.uniform(236, 255)] * 3, np.float32) + rng.uniform(-4, 4, 3).astype(np.float32)
    bg = np.broadcast_to(np.clip(base, 0, 255), bgr.shape)
    af = a.astype(np.float32)[..., None] / 255
    out = bgr.astype(np.float32) * af + bg * (1 - af)
    L = int(rng.integers(CLASS_IMAGE_SIDE[0], CLASS_IMAGE_SIDE[1] + 1))
    hh, ww = out.shape[:2]
    s = L / max(hh, ww)
    size = (max(1, int(round(ww * s))), max(1, int(round(hh * s))))
    out = cv2.resize(np.clip(out + 0.5, 0, 255).astype(np.uint8), size,
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return out
