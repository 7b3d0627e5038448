"""Drawing primitives shared by package art and shelves: masked blending, polygons, label clearing."""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.data.synth.colors import Color


def _blend_mask(img: np.ndarray, mask: np.ndarray, x: int, y: int, color) -> None:
    """Paint `color` (BGR tuple or same-size image) into img through an uint8 mask placed at (x, y)."""
    h, w = mask.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, img.shape[1]), min(y + h, img.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    a = mask[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)[..., None] * (1 / 255)
    roi = img[y0:y1, x0:x1].astype(np.float32)
    if isinstance(color, np.ndarray):
        src = color[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
    else:
        src = np.asarray(color, np.float32)
    res = roi + (src - roi) * a
    img[y0:y1, x0:x1] = np.clip(res + 0.5, 0, 255).astype(np.uint8) if img.dtype == np.uint8 else res


def _clear_label(label: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Mark pixels covered by an occluder (bool mask placed at x, y) as showing no product."""
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, label.shape[1]), min(y + h, label.shape[0])
    if x1 > x0 and y1 > y0:
        label[y0:y1, x0:x1][mask[y0 - y:y1 - y, x0 - x:x1 - x]] = 0


def _rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    if r < 1:
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.int32)
    pts = []
    for cx, cy, a0 in ((x1 - r, y0 + r, 270), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)):
        pts.append(cv2.ellipse2Poly((int(round(cx)), int(round(cy))), (int(round(r)), int(round(r))), 0, a0, a0 + 90, 15))
    return np.concatenate(pts).astype(np.int32)


def _star(cx: float, cy: float, r_out: float, r_in: float, n: int, rot: float = 0.0) -> np.ndarray:
    ang = rot + np.arange(2 * n) * math.pi / n
    rad = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return np.stack([cx + rad * np.sin(ang), cy - rad * np.cos(ang)], 1).round().astype(np.int32)


def _poly(img: np.ndarray, pts, color: Color) -> None:
    cv2.fillPoly(img, [np.asarray(pts, np.int32)], color, cv2.LINE_AA)
