"""A shelf photo: surroundings, boards and price rails, the packages composited with shadows and
occluders, light and camera, and the ground-truth boxes of the annotated products."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from core.data.synth.art import Assets, _photo
from core.data.synth.colors import _hsv, _ink_for
from core.data.synth.config import CUT_DIFFICULT, MIN_VISIBLE, OCCLUDED_DIFFICULT
from core.data.synth.draw import _blend_mask, _clear_label, _poly, _rounded_rect, _star
from core.data.synth.layout import _layout
from core.data.synth.product import Sprite
from core.data.synth.text import _AISLES, _PROMOS, _draw_text


@dataclass(frozen=True)
class ShelfObject:
    """One annotated product instance in a rendered shelf image (pixel xyxy in the output image)."""

    class_id: int
    box: tuple[float, float, float, float]
    difficult: bool
    visible: float  # fraction not hidden by other things
    inside: float  # fraction inside the image


@dataclass(frozen=True, eq=False)
class ShelfScene:
    """A rendered shelf image (BGR uint8), its annotations and the JPEG quality to store it with."""

    image: np.ndarray
    objects: tuple[ShelfObject, ...]
    jpeg_quality: int


def _premult(sprite: Sprite, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Sprite resized to w x h as float32 BGRA in [0, 1]-alpha / 0-255 colour, and its scaled hull.

    Colour is zero outside the package, so it behaves as premultiplied at the anti-aliased rim."""
    rgba = cv2.resize(np.dstack([sprite.bgr, sprite.alpha]), (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    rgba[..., 3] *= 1 / 255
    sh, sw = sprite.alpha.shape
    return rgba, sprite.hull * np.array([w / sw, h / sh], np.float32)


def _place(layer: np.ndarray, cover: np.ndarray, label: np.ndarray, rgba: np.ndarray, hull: np.ndarray,
           x_left: float, baseline: float, rng: np.random.Generator, obj: int, gain: float):
    """Warp (slight yaw, lean, jitter) and composite one package; returns its hull, area and right edge."""
    h, w = rgba.shape[:2]
    k = float(np.clip(rng.normal(0, 0.03), -0.08, 0.08))  # turned a little: one side looks taller
    ww = w * (1 - 0.6 * abs(k))
    dst = np.array([[0, -h / 2 * (1 + k)], [ww, -h / 2 * (1 - k)], [ww, h / 2 * (1 - k)], [0, h / 2 * (1 + k)]])
    th = math.radians(float(np.clip(rng.normal(0, 1.2), -3, 3)))
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    dst = dst @ rot.T + rng.normal(0, 0.004 * h, (4, 2))
    dst[:, 0] += x_left - dst[:, 0].min()
    dst[:, 1] += baseline - dst[:, 1].max() + rng.uniform(0, 1.5)
    x0, y0 = int(math.floor(dst[:, 0].min())), int(math.floor(dst[:, 1].min()))
    x1, y1 = int(math.ceil(dst[:, 0].max())) + 1, int(math.ceil(dst[:, 1].max())) + 1
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    M = cv2.getPerspectiveTransform(src, (dst - [x0, y0]).astype(np.float32))
    warped = cv2.warpPerspective(rgba, M, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = warped[..., 3]
    mask = a > 0.5
    hull = cv2.perspectiveTransform(hull.reshape(-1, 1, 2), M).reshape(-1, 2).astype(np.float64) + [x0, y0]
    H, W = label.shape
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    area = 0
    if cx1 > cx0 and cy1 > cy0:
        sl = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        ac = a[sl]
        roi = (slice(cy0, cy1), slice(cx0, cx1))
        layer[roi] = warped[sl][..., :3] * gain + layer[roi] * (1 - ac[..., None])
        cover[roi] = ac + cover[roi] * (1 - ac)
        mc = mask[sl]
        label[roi][mc] = obj
        area = int(mc.sum())
    return hull, area, float(dst[:, 0].max())


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: tuple[int, int]) -> np.ndarray:
    small = rng.standard_normal((max(cells[1], 2), max(cells[0], 2))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _ambience(rng: np.random.Generator, assets: Assets, w: int, h: int) -> np.ndarray:
    """What lies beyond the shelf: a blurred store photo, a tinted texture, or a plain wall."""
    kind = rng.random()
    if kind < 0.45:
        p = _photo(rng, assets, max(w // 6, 8), max(h // 6, 8)).astype(np.float32)
        p = cv2.GaussianBlur(p, (0, 0), rng.uniform(1.5, 3))
        g = p.mean(axis=2, keepdims=True)
        p = g + (p - g) * rng.uniform(0.3, 0.7)
        out = cv2.resize(p, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(0.6, 1.0)
    elif kind < 0.75:
        tex = assets.textures[int(rng.integers(3))]  # brick, grass, gravel
        tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
        tex = cv2.GaussianBlur(tex, (0, 0), rng.uniform(0.5, 2.5))
        c = np.array(_hsv(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.5, 0.9)), np.float32)
        out = tex[..., None] * c * 0.6 + c * 0.4
    else:
        c = np.array(_hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.5, 0.95)), np.float32)
        out = np.broadcast_to(c, (h, w, 3)) * np.linspace(1.05, 0.8, h, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray(out, dtype=np.float32)


def _board_strip(rng: np.random.Generator, w: int, t: int, material: int, color: np.ndarray) -> np.ndarray:
    """A shelf board's front edge (t x w): wood grain or brushed metal with a highlight."""
    t = max(t, 1)
    if material == 0:  # wood
        grain = _smooth_noise(rng, w, t, (w // 3, max(t // 2, 2))) * 0.05
        grain += _smooth_noise(rng, w, t, (6, max(t // 3, 2))) * 0.06
        strip = color * (1 + grain[..., None])
    else:
        strip = np.broadcast_to(color, (t, w, 3)) * (1 + _smooth_noise(rng, w, t, (w // 40 + 2, 2))[..., None] * 0.02)
    shade = np.linspace(1.2, 0.8, t, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray(strip * shade, dtype=np.float32)


def _price_tag(canvas: np.ndarray, rng: np.random.Generator, x: float, y: float, w: float, h: float, yellow: bool) -> None:
    x0, y0, x1, y1 = int(x), int(y), int(x + w), int(y + h)
    if x1 - x0 < 4 or y1 - y0 < 3:
        return
    col = (40.0, 215.0, 245.0) if yellow else (245.0, 245.0, 242.0)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), col, -1)
    price = f"{int(rng.integers(0, 20))}.{int(rng.integers(0, 100)):02d}"
    sub = canvas[max(y0, 0):y1, max(x0, 0):x1]
    if sub.size == 0:
        return
    tmp = np.clip(sub, 0, 255).astype(np.uint8)
    _draw_text(tmp, price, (tmp.shape[1] * 0.35, tmp.shape[0] * 0.1, tmp.shape[1] * 0.6, tmp.shape[0] * 0.8),
               (20, 20, 20), cv2.FONT_HERSHEY_DUPLEX, 0.14)
    cv2.rectangle(tmp, (2, int(tmp.shape[0] * 0.3)), (int(tmp.shape[1] * 0.28), int(tmp.shape[0] * 0.45)), (60, 60, 60), -1)
    sub[:] = tmp


def render_shelf(rng: np.random.Generator, classes: Sequence[tuple[int, Sprite]], distractors: Sequence[Sprite],
                 size: tuple[int, int], assets: Assets, *, instances: tuple[int, int] = (3, 10),
                 rows: tuple[int, int] = (2, 4)) -> ShelfScene:
    """One shelf photo (BGR) with annotations for every placed instance of `classes` (id, sprite).

    Every class appears at least once when it fits; other facings repeat them up to `instances`;
    `distractors` fill the remaining shelf space and are never annotated. Tries a few layouts
    (continuing the same rng) if too few annotated products end up visible."""
    needed = instances[0] if classes else 0
    best = None
    for _attempt in range(6):
        scene = _render_shelf_once(rng, classes, distractors, size, assets, instances, rows)
        if len(scene.objects) >= needed:
            return scene
        if best is None or len(scene.objects) > len(best.objects):
            best = scene
    return best



def _render_shelf_once(rng, classes, distractors, size, assets, instances, rows_range) -> ShelfScene:
    W, H = int(size[0]), int(size[1])
    mx, my = int(round(0.07 * W)), int(round(0.07 * H))
    Wc, Hc = W + 2 * mx, H + 2 * my
    plan = _layout(rng, classes, distractors, W, H, mx, my, Wc, Hc, instances, rows_range)
    rows, unit_top, items, tags = plan.rows, plan.unit_top, plan.items, plan.tags
    (ux0, ux1), uprights, uw = plan.unit_span, plan.uprights, plan.upright_width

    # -- background: ambience, back panel, boards, price rails, uprights
    canvas = _ambience(rng, assets, Wc, Hc)
    panel = np.array(_hsv(rng.random(), rng.uniform(0, 0.35), float(rng.choice([0.95, 0.85, 0.7, 0.35, 0.15]))), np.float32)
    if rng.random() < 0.15:
        panel = np.array(_hsv(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.7)), np.float32)
    material = int(rng.integers(2))
    board_col = (np.array(_hsv(rng.uniform(0.05, 0.1), rng.uniform(0.35, 0.7), rng.uniform(0.45, 0.85)), np.float32)
                 if material == 0 else np.array(
                     _hsv(rng.random(), rng.uniform(0, 0.25) if rng.random() < 0.7 else 0.8,
                          float(rng.choice([0.92, 0.75, 0.55, 0.2]))), np.float32))
    pegboard = rng.random() < 0.3
    ix0, ix1 = int(max(ux0, 0)), int(min(ux1, Wc))
    panel_img = np.broadcast_to(panel, (Hc, ix1 - ix0, 3)) * (1 + _smooth_noise(rng, ix1 - ix0, Hc, (12, 9))[..., None] * 0.03)
    if pegboard:
        step = max(6, int(W * rng.uniform(0.015, 0.025)))
        hole = np.zeros((step, step), np.float32)
        cv2.circle(hole, (step // 2, step // 2), max(1, step // 6), 1.0, -1, cv2.LINE_AA)
        tile = np.tile(hole, (Hc // step + 1, (ix1 - ix0) // step + 1))[:Hc, :ix1 - ix0]
        panel_img = panel_img * (1 - 0.55 * tile[..., None])
    shade = np.ones(Hc, np.float32)
    yy = np.arange(Hc, dtype=np.float32)
    for r in rows:  # under each board the back panel is in shadow
        d = yy - (r.top)
        shade *= np.where((d >= 0) & (yy <= r.baseline), 1 - rng.uniform(0.25, 0.5) * np.exp(-d / (0.35 * (r.baseline - r.top))), 1)
    ut = int(unit_top)
    canvas[ut:, ix0:ix1] = (panel_img * shade[:, None, None])[ut:]
    if ux0 > 0 or ux1 < Wc:  # the end of the shelf unit: a side panel
        sw = int(W * rng.uniform(0.025, 0.05))
        sx = int(ux0) - sw if ux0 > 0 else int(ux1)
        canvas[ut:, max(sx, 0):max(sx + sw, 0)] = board_col * 0.85
    if ut > 0:  # a header sign on top of the unit
        hh = int(min(ut, rng.uniform(0.05, 0.09) * H))
        col = _hsv(rng.random(), rng.uniform(0.5, 1), rng.uniform(0.4, 0.9))
        sign = np.empty((hh, ix1 - ix0, 3), np.uint8)
        sign[:] = col
        ink = _ink_for(rng, col)
        for cx in np.arange(sign.shape[1] * rng.uniform(0.05, 0.3), sign.shape[1], W * 0.6):
            _draw_text(sign, str(rng.choice(_AISLES)), (cx, hh * 0.15, W * 0.3, hh * 0.7), ink,
                       cv2.FONT_HERSHEY_DUPLEX, 0.12)
        canvas[ut - hh:ut, ix0:ix1] = sign
    rail_yellow = rng.random() < 0.4
    for ri, r in enumerate(rows):
        y0, t = int(round(r.baseline)), int(round(r.board))
        top_strip = max(1, int(t * 0.3))
        ys0, ys1 = max(y0 - top_strip, 0), min(y0, Hc)
        if ys1 > ys0:
            canvas[ys0:ys1, ix0:ix1] = board_col * 1.15
        strip = _board_strip(rng, ix1 - ix0, t, material, board_col)
        b0, b1 = max(y0, 0), min(y0 + t, Hc)
        if b1 > b0:
            canvas[b0:b1, ix0:ix1] = strip[b0 - y0:b1 - y0]
        rail_h = max(2, int(t * 0.7))
        for tri, tx, tw in tags:
            if tri == ri:
                _price_tag(canvas, rng, tx, y0 + (t - rail_h) / 2, min(max(tw * 0.6, 0.05 * W), 0.09 * W), rail_h, rail_yellow)
    up_col = np.array((rng.uniform(80, 200),) * 3, np.float32)
    for u in uprights:
        u0, u1 = int(u), int(u + uw)
        prof = np.linspace(1.15, 0.75, u1 - u0, dtype=np.float32)
        canvas[:, u0:u1] = up_col * prof[None, :, None]
        for yk in range(0, Hc, max(6, int(uw * 1.5))):
            cv2.rectangle(canvas, (u0 + (u1 - u0) // 3, yk), (u0 + 2 * (u1 - u0) // 3, yk + max(2, int(uw * 0.5))),
                          tuple(float(v) * 0.3 for v in up_col), -1)

    # -- products into their own layer, so shadows fall on the shelf but not on other products
    layer = np.zeros((Hc, Wc, 3), np.float32)
    cover = np.zeros((Hc, Wc), np.float32)
    label = np.zeros((Hc, Wc), np.int32)
    gain0 = rng.uniform(0.9, 1.08)
    resized: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    annotated: list[tuple[int, np.ndarray, int]] = []  # (class id, hull, area)
    for it in items:
        row = rows[it.row]
        h = it.height
        w = h * it.sprite.aspect
        key = (id(it.sprite), int(round(w)), int(round(h)))
        if key not in resized:
            resized[key] = _premult(it.sprite, max(2, key[1]), max(2, key[2]))
        obj = len(annotated) + 1 if it.class_id >= 0 else 0
        hull, area, _right = _place(layer, cover, label, *resized[key], it.x, row.baseline, rng, obj,
                                    gain0 * float(rng.normal(1, 0.035)))
        if it.class_id >= 0:
            annotated.append((it.class_id, hull, area))
            if hull is not None and rng.random() < 0.08:  # a price sticker on the package
                x0, y0 = hull.min(0)
                x1, y1 = hull.max(0)
                r = max(2, int(0.12 * (x1 - x0)))
                cx = int(rng.uniform(x0 + r, max(x1 - r, x0 + r + 1)))
                cy = int(rng.uniform(y0 + 0.2 * (y1 - y0), max(y1 - r, y0 + 0.2 * (y1 - y0) + 1)))
                col = np.array((0.0, 140.0, 255.0) if rng.random() < 0.5 else (60.0, 230.0, 250.0), np.float32)
                sx0, sy0 = max(cx - r - 1, 0), max(cy - r - 1, 0)
                sx1, sy1 = min(cx + r + 2, Wc), min(cy + r + 2, Hc)
                if sx1 > sx0 and sy1 > sy0:
                    disc = np.zeros((sy1 - sy0, sx1 - sx0), np.uint8)
                    cv2.circle(disc, (cx - sx0, cy - sy0), r, 255, -1, cv2.LINE_AA)
                    a = disc.astype(np.float32) / 255
                    roi = (slice(sy0, sy1), slice(sx0, sx1))
                    layer[roi] = layer[roi] * (1 - a[..., None]) + col * a[..., None]
                    cover[roi] = np.maximum(cover[roi], a)
                    label[roi][disc > 127] = 0
    if distractors and rng.random() < 0.3:  # small packages left at the front edge hide others' bottoms
        for _ in range(int(rng.integers(1, 3))):
            row = rows[int(rng.integers(len(rows)))]
            sp = distractors[int(rng.integers(len(distractors)))]
            h = row.height * rng.uniform(0.4, 0.65)
            w = h * sp.aspect
            rgba, hull = _premult(sp, max(2, int(round(w))), max(2, int(round(h))))
            _place(layer, cover, label, rgba, hull, rng.uniform(mx - 0.5 * w, mx + W - 0.5 * w),
                   row.baseline + row.board * rng.uniform(0.5, 0.9), rng, 0, gain0 * 1.05)
    dx, dy = rng.uniform(-0.01, 0.02) * W, rng.uniform(0.0, 0.015) * H
    shadow = cv2.warpAffine(cover, np.float32([[1, 0, dx], [0, 1, dy]]), (Wc, Hc))
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, 0.008 * W))
    canvas *= (1 - rng.uniform(0.3, 0.55) * shadow)[..., None]
    canvas = layer + canvas * (1 - cover[..., None])

    # -- occluders: promo cards hanging off the boards, a pillar or a basket in front
    for _ in range(int(min(rng.poisson(0.9), 3))):
        r = rows[int(rng.integers(len(rows)))]
        cw = r.height * rng.uniform(0.25, 0.45)
        cx = rng.uniform(mx, mx + W)
        cy = r.baseline + r.board + cw * rng.uniform(0.3, 0.7)
        col = _hsv(float(rng.choice([0.0, 0.02, 0.14, 0.33, 0.6])), rng.uniform(0.7, 1), rng.uniform(0.8, 1))
        sz = int(cw) + 4
        card = np.zeros((sz, sz), np.uint8)
        shape = int(rng.integers(3))
        if shape == 0:
            cv2.circle(card, (sz // 2, sz // 2), int(cw / 2), 255, -1, cv2.LINE_AA)
        elif shape == 1:
            _poly(card, _rounded_rect(sz / 2 - cw / 2, sz / 2 - cw * 0.4, sz / 2 + cw / 2, sz / 2 + cw * 0.4, cw * 0.1), 255)
        else:
            _poly(card, _star(sz / 2, sz / 2, cw / 2, cw * 0.4, 14), 255)
        face = np.empty((sz, sz, 3), np.uint8)
        face[:] = col
        _draw_text(face, str(rng.choice(_PROMOS)), (sz * 0.18, sz * 0.3, sz * 0.64, sz * 0.4), _ink_for(rng, col),
                   cv2.FONT_HERSHEY_DUPLEX, 0.16)
        cv2.line(canvas, (int(cx), int(r.baseline + r.board * 0.5)), (int(cx), int(cy)), (200, 200, 200),
                 max(1, int(cw * 0.04)))
        x0, y0 = int(cx) - sz // 2, int(cy) - sz // 2
        _blend_mask(canvas, card, x0, y0, face)
        _clear_label(label, card > 127, x0, y0)
    fg = rng.random()
    if fg < 0.12:  # pillar, out of focus
        pw = rng.uniform(0.05, 0.12) * W
        px = rng.uniform(mx, mx + W - pw)
        m = np.zeros((Hc, Wc), np.float32)
        m[:, int(px):int(px + pw)] = 1
        m = cv2.GaussianBlur(m, (0, 0), 3)
        col = np.array(_hsv(rng.random(), rng.uniform(0, 0.12), rng.uniform(0.3, 0.9)), np.float32)
        xx = np.clip((np.arange(Wc, dtype=np.float32) - px) / pw, 0, 1)
        colimg = col[None, None, :] * (0.75 + 0.4 * np.sin(xx * math.pi))[None, :, None]
        canvas = canvas * (1 - m[..., None]) + colimg * m[..., None]
        label[m > 0.5] = 0
    elif fg < 0.22:  # shopping basket edge at the bottom
        bh = rng.uniform(0.15, 0.35) * H
        bx0, bx1 = rng.uniform(-0.2, 0.4) * W + mx, rng.uniform(0.6, 1.2) * W + mx
        m = np.zeros((Hc, Wc), np.uint8)
        _poly(m, _rounded_rect(bx0, my + H - bh, bx1, Hc + 50, 0.06 * W), 255)
        grid = np.zeros((Hc, Wc), np.uint8)
        step = max(6, int(0.02 * W))
        grid[:, ::step] = 255
        grid[::step, :] = 255
        col = np.array(_hsv(float(rng.choice([0.0, 0.6, 0.33])), rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.7)), np.float32)
        m = cv2.GaussianBlur(m, (0, 0), 2.0).astype(np.float32) / 255
        holes = (1 - 0.75 * (1 - cv2.GaussianBlur(grid, (0, 0), 1.0).astype(np.float32) / 255))
        top_band = np.zeros((Hc, Wc), np.float32)
        top_band[int(my + H - bh):int(my + H - bh + 0.04 * H)] = 1
        a = m * np.maximum(holes, top_band)
        canvas = canvas * (1 - a[..., None]) + col * a[..., None]
        label[a > 0.5] = 0

    # -- light: gradient, vignette, hot spot, colour cast
    gy, gx = np.mgrid[0:24, 0:32].astype(np.float32)
    gx, gy = gx / 31 - 0.5, gy / 23 - 0.5
    field_ = (rng.uniform(0.85, 1.1) + rng.uniform(-0.25, 0.25) * gx + rng.uniform(-0.25, 0.25) * gy
              - rng.uniform(0.0, 0.4) * (gx ** 2 + gy ** 2))
    if rng.random() < 0.4:
        hx, hy = rng.uniform(-0.4, 0.4), rng.uniform(-0.5, 0.2)
        field_ += rng.uniform(0.1, 0.3) * np.exp(-((gx - hx) ** 2 + (gy - hy) ** 2) / 0.05)
    gain = cv2.resize(field_, (Wc, Hc), interpolation=cv2.INTER_CUBIC)
    cast = np.array([1 + rng.normal(0, 0.04), 1 + rng.normal(0, 0.02), 1 + rng.normal(0, 0.04)], np.float32)
    canvas *= gain[..., None] * cast

    # -- camera: slight roll and keystone, cropping the margin away
    corners = np.array([[mx, my], [mx + W, my], [mx + W, my + H], [mx, my + H]], np.float64)
    roll = math.radians(float(np.clip(rng.normal(0, 1.5), -4, 4)))
    c = corners.mean(0)
    rot = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
    corners = (corners - c) @ rot.T + c
    kx, ky = rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)  # keystone
    corners += 0.5 * np.array([[kx * W, ky * H], [-kx * W, -ky * H], [kx * W, ky * H], [-kx * W, -ky * H]])
    corners += rng.normal(0, 0.004 * W, (4, 2))
    corners[:, 0] = np.clip(corners[:, 0], 0, Wc - 1)
    corners[:, 1] = np.clip(corners[:, 1], 0, Hc - 1)
    out_pts = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
    Hg = cv2.getPerspectiveTransform(corners.astype(np.float32), out_pts)
    img = cv2.warpPerspective(canvas, Hg, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    # -- sensor: blur, noise
    if rng.random() < 0.6:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.1))
    if rng.random() < 0.1:
        L = int(rng.integers(3, 8))
        kern = np.zeros((L, L), np.float32)
        kern[L // 2, :] = 1 / L
        M = cv2.getRotationMatrix2D(((L - 1) / 2, (L - 1) / 2), rng.uniform(0, 180), 1.0)
        kern = cv2.warpAffine(kern, M, (L, L))
        img = cv2.filter2D(img, -1, kern / max(kern.sum(), 1e-6))
    img += rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(1.0, 5.0)
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)

    # -- annotations: visibility on the canvas, tight boxes through the camera warp
    counts = np.bincount(label.ravel(), minlength=len(annotated) + 1)
    rect = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
    objects = []
    for i, (cid, hull, area) in enumerate(annotated, start=1):
        if hull is None:
            continue
        pts = cv2.perspectiveTransform(hull.reshape(-1, 1, 2).astype(np.float32), Hg).reshape(-1, 2)
        poly = cv2.convexHull(pts).reshape(-1, 2)
        total = float(cv2.contourArea(poly))
        if total <= 1:
            continue
        inter, _ = cv2.intersectConvexConvex(poly.astype(np.float32), rect)
        inside = float(inter) / total
        visible = counts[i] / area if area > 0 else 0.0
        x0, y0 = np.clip(pts.min(0), 0, [W, H])
        x1, y1 = np.clip(pts.max(0), 0, [W, H])
        if x1 - x0 < 2 or y1 - y0 < 2 or visible * inside < MIN_VISIBLE:
            continue
        difficult = visible < OCCLUDED_DIFFICULT or inside < CUT_DIFFICULT
        objects.append(ShelfObject(class_id=int(cid), box=(float(x0), float(y0), float(x1), float(y1)),
                                   difficult=bool(difficult), visible=float(visible), inside=float(inside)))
    return ShelfScene(image=img, objects=tuple(objects), jpeg_quality=int(rng.integers(60, 96)))
