"""The printed front of a package: backgrounds, stripes, logos, photo windows and the layout styles."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.data.synth.colors import Color, _hsv, _ink_for, _luma, _scale, _vivid
from core.data.synth.config import _rng
from core.data.synth.design import ProductDesign
from core.data.synth.draw import _blend_mask, _poly, _rounded_rect, _star
from core.data.synth.text import _CLAIMS, _SIZES, _draw_text


@dataclass(frozen=True, eq=False)
class Assets:
    """Bundled scikit-image pictures used as package art and shelf surroundings (no network needed).

    Loaded once per `generate` call and passed around, so the module holds no global state."""

    photos: tuple[np.ndarray, ...]  # BGR uint8 colour photos
    textures: tuple[np.ndarray, ...]  # gray float32 in [0, 1]


def load_assets() -> Assets:
    """scikit-image's bundled sample pictures (shipped inside the wheel, so no network is needed).

    A picture that fails to load is replaced by a seeded noise texture, so a broken install changes
    the art but never makes generation fail or depend on which picture is missing."""
    import skimage.data as skd

    def load(name: str):
        try:
            img = getattr(skd, name)()
            if isinstance(img, tuple):
                img = img[0]
            return np.asarray(img)
        except Exception:  # noqa: BLE001 - any loading failure means "use the fallback"
            return None

    photos = []
    for i, name in enumerate(("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                              "immunohistochemistry", "retina", "stereo_motorcycle", "colorwheel", "cat")):
        img = load(name)
        if img is None or img.ndim != 3:
            r = _rng(0, 99, i)
            img = cv2.resize(r.integers(0, 256, (8, 8, 3), dtype=np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
        else:
            img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]).astype(np.uint8), cv2.COLOR_RGB2BGR)
        photos.append(img)
    textures = []
    for i, name in enumerate(("brick", "grass", "gravel", "camera", "coins", "moon", "page", "text", "clock", "cell")):
        img = load(name)
        if img is None or img.ndim != 2:
            r = _rng(0, 98, i)
            img = cv2.resize(r.integers(0, 256, (32, 32), dtype=np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)
        textures.append(img.astype(np.float32) / 255.0)
    return Assets(photos=tuple(photos), textures=tuple(textures))


def _photo(rng: np.random.Generator, assets: Assets, w: int, h: int) -> np.ndarray:
    """A crop of a bundled photo (or a tinted texture) resized to w x h, as product art."""
    w, h = max(w, 1), max(h, 1)
    if rng.random() < 0.8:
        src = assets.photos[int(rng.integers(len(assets.photos)))]
    else:
        tex = assets.textures[int(rng.integers(len(assets.textures)))]
        c0, c1 = np.array(_vivid(rng), np.float32), np.array(_vivid(rng), np.float32)
        src = (c0 + (c1 - c0) * tex[..., None]).astype(np.uint8)
    sh, sw = src.shape[:2]
    a = w / h
    ch = rng.uniform(0.3, 0.9) * sh
    cw = ch * a
    if cw > sw * 0.95:
        cw = sw * 0.95
        ch = cw / a
    x0, y0 = int(rng.uniform(0, sw - cw)), int(rng.uniform(0, sh - ch))
    crop = src[y0:y0 + max(int(ch), 1), x0:x0 + max(int(cw), 1)]
    out = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.35:  # recolour so the same photo gives different-looking packages
        hsv = cv2.cvtColor(np.ascontiguousarray(out), cv2.COLOR_BGR2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(rng.integers(20, 160))) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    return np.ascontiguousarray(out)


def _photo_window(img: np.ndarray, rng: np.random.Generator, assets: Assets, box, shape: int,
                  border: Color | None) -> None:
    x, y, w, h = (int(round(v)) for v in box)
    if w < 6 or h < 6:
        return
    patch = _photo(rng, assets, w, h)
    mask = np.zeros((h, w), np.uint8)
    if shape == 0:
        mask[:] = 255
    elif shape == 1:
        cv2.ellipse(mask, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1, cv2.LINE_AA)
    elif shape == 2:
        _poly(mask, _rounded_rect(0, 0, w - 1, h - 1, 0.18 * min(w, h)), 255)
    else:
        r = min(w, h) // 2 - 1
        cv2.circle(mask, (w // 2, h // 2), r, 255, -1, cv2.LINE_AA)
    _blend_mask(img, mask, x, y, patch)
    if border is not None:
        t = max(2, int(round(0.03 * min(w, h))))
        if shape == 0:
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), border, t, cv2.LINE_AA)
        elif shape == 1:
            cv2.ellipse(img, (x + w // 2, y + h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360, border, t, cv2.LINE_AA)
        elif shape == 2:
            cv2.polylines(img, [_rounded_rect(x, y, x + w - 1, y + h - 1, 0.18 * min(w, h))], True, border, t, cv2.LINE_AA)
        else:
            cv2.circle(img, (x + w // 2, y + h // 2), min(w, h) // 2 - 1, border, t, cv2.LINE_AA)


def _draw_logo(img: np.ndarray, rng: np.random.Generator, cx: float, cy: float, r: float,
               c1: Color, c2: Color, c3: Color, letter: str, font: int) -> None:
    """A simple geometric brand mark; the same rng state draws the same logo for the whole family."""
    if r < 4:
        return
    kind = int(rng.integers(8))
    icx, icy, ir = int(round(cx)), int(round(cy)), int(round(r))
    if kind == 0:
        cv2.circle(img, (icx, icy), ir, c1, -1, cv2.LINE_AA)
        cv2.circle(img, (icx, icy), int(ir * 0.78), c2, -1, cv2.LINE_AA)
        _draw_text(img, letter, (cx - r * 0.5, cy - r * 0.5, r, r), c1, font, 0.16)
    elif kind == 1:
        _poly(img, _rounded_rect(cx - r, cy - r * 0.8, cx + r, cy + r * 0.8, r * 0.3), c1)
        _draw_text(img, letter, (cx - r * 0.6, cy - r * 0.55, r * 1.2, r * 1.1), c2, font, 0.16)
    elif kind == 2:
        _poly(img, [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], c1)
        _poly(img, [(cx, cy - r * 0.55), (cx + r * 0.55, cy), (cx, cy + r * 0.55), (cx - r * 0.55, cy)], c2)
    elif kind == 3:
        n = int(rng.integers(5, 9))
        _poly(img, _star(cx, cy, r, r * rng.uniform(0.45, 0.7), n), c1)
        cv2.circle(img, (icx, icy), int(ir * 0.35), c2, -1, cv2.LINE_AA)
    elif kind == 4:
        hexa = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.arange(6) * math.pi / 3]
        _poly(img, hexa, c1)
        _poly(img, [(cx, cy - r * 0.55), (cx + r * 0.5, cy + r * 0.4), (cx - r * 0.5, cy + r * 0.4)], c2)
    elif kind == 5:
        for k, c in enumerate((c1, c2, c3)):
            a = k * 2 * math.pi / 3 - math.pi / 2
            cv2.circle(img, (int(cx + r * 0.42 * math.cos(a)), int(cy + r * 0.42 * math.sin(a))), int(r * 0.55), c, -1, cv2.LINE_AA)
    elif kind == 6:
        cv2.ellipse(img, (icx, icy), (ir, int(ir * 0.65)), 0, 0, 360, c1, -1, cv2.LINE_AA)
        cv2.ellipse(img, (icx, icy), (ir, int(ir * 0.65)), 0, 0, 360, c2, max(1, ir // 8), cv2.LINE_AA)
        _draw_text(img, letter, (cx - r * 0.45, cy - r * 0.4, r * 0.9, r * 0.8), c2, font, 0.16)
    else:
        t = max(2, ir // 3)
        for k in range(3):
            off = (k - 1) * r * 0.55
            cv2.line(img, (int(cx - r * 0.7), int(cy + off + r * 0.3)), (icx, int(cy + off - r * 0.2)), (c1, c2, c3)[k], t, cv2.LINE_AA)
            cv2.line(img, (icx, int(cy + off - r * 0.2)), (int(cx + r * 0.7), int(cy + off + r * 0.3)), (c1, c2, c3)[k], t, cv2.LINE_AA)


def _fill_base(img: np.ndarray, rng: np.random.Generator, c1: Color, c2: Color) -> None:
    h, w = img.shape[:2]
    kind = int(rng.choice(4, p=[0.4, 0.25, 0.15, 0.2]))
    a, b = np.array(c1, np.float32), np.array(c2 if rng.random() < 0.5 else _scale(c1, rng.uniform(0.55, 0.8)), np.float32)
    if kind == 0:
        img[:] = c1
        return
    if kind == 1:
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None] ** rng.uniform(0.6, 1.6)
    elif kind == 2:
        t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None] ** rng.uniform(0.6, 1.6)
    else:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = np.sqrt(((xx - w * 0.5) / w) ** 2 + ((yy - h * 0.4) / h) ** 2)[..., None] * 1.6
        t = np.minimum(t, 1.0)
    img[:] = (a + (b - a) * t).astype(np.uint8)


def _stripes(img: np.ndarray, color: Color, orient: int, period: float, duty: float) -> None:
    """Anti-aliased stripes over the whole image: vertical, horizontal or either diagonal."""
    sub = img
    sh, sw = sub.shape[:2]
    if sh < 2 or sw < 2:
        return
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    coord = (xx, yy, xx + yy, xx - yy)[orient]
    phase = (coord / max(period, 2.0)) % 1.0
    m = (np.clip((duty - phase) * period * 0.7, 0, 1) * np.clip(phase * period * 0.7, 0, 1) * 255).astype(np.uint8)
    _blend_mask(sub, m, 0, 0, color)


def _render_face(design: ProductDesign, w: int, h: int, assets: Assets) -> np.ndarray:
    """The printed front of a package (w x h, BGR): brand layout from the family, details from the variant."""
    b = design.brand
    rb = np.random.default_rng([*b.seed, 11])  # the family's layout: identical for every variant
    rv = np.random.default_rng([*design.seed, 11])  # what makes this variant different
    img = np.empty((h, w, 3), np.uint8)
    _fill_base(img, rb, b.primary, b.secondary)
    acc, ink, sec, pri = design.accent, b.ink, b.secondary, b.primary
    tall = h > 1.3 * w
    wide = w > 1.2 * h
    stretch = float(rb.uniform(0.75, 1.3))
    logo_rng = np.random.default_rng([*b.seed, 12])
    letter = b.name[0].upper()
    outline = _scale(pri, 0.4) if rb.random() < 0.3 else None

    def brand_text(box, vertical=False):
        _draw_text(img, b.name, box, ink, b.font, 0.12, outline=outline, vertical=vertical, stretch=stretch)

    style = b.style
    if style == 0:  # horizontal band with the flavour, picture above or below
        by0, bh = rb.uniform(0.42, 0.6), rb.uniform(0.12, 0.2)
        cv2.rectangle(img, (0, int(by0 * h)), (w, int((by0 + bh) * h)), sec, -1)
        t = max(2, int(0.015 * h))
        cv2.rectangle(img, (0, int(by0 * h) - t), (w, int(by0 * h)), acc, -1)
        cv2.rectangle(img, (0, int((by0 + bh) * h)), (w, int((by0 + bh) * h) + t), acc, -1)
        _draw_text(img, design.flavour, (0.1 * w, (by0 + 0.02) * h, 0.8 * w, (bh - 0.04) * h), _ink_for(rb, sec), b.font, 0.1)
        upper, lower = (0.05 * h, (by0 - 0.04) * h), ((by0 + bh + 0.04) * h, 0.95 * h)
        text_reg, pic_reg = (upper, lower) if rb.random() < 0.6 else (lower, upper)
        brand_text((0.08 * w, text_reg[0], 0.84 * w, (text_reg[1] - text_reg[0]) * 0.8))
        ph = pic_reg[1] - pic_reg[0]
        pw = min(0.8 * w, ph * rv.uniform(1.0, 1.6))
        _photo_window(img, rv, assets, ((w - pw) / 2, pic_reg[0], pw, ph), int(rb.integers(4)), acc if rb.random() < 0.5 else None)
    elif style == 1:  # diagonal split, round picture
        ya, yb = rb.uniform(0.25, 0.55), rb.uniform(0.25, 0.55)
        _poly(img, [(0, ya * h), (w, yb * h), (w, h), (0, h)], sec)
        cv2.line(img, (0, int(ya * h)), (w, int(yb * h)), acc, max(3, int(0.03 * h)), cv2.LINE_AA)
        r = 0.3 * min(w, h * 0.7)
        cy = (max(ya, yb) * h + h) / 2
        _photo_window(img, rv, assets, (w / 2 - r, cy - r, 2 * r, 2 * r), 3, (250, 250, 250))
        if tall and rb.random() < 0.5:
            brand_text((0.05 * w, 0.03 * h, 0.3 * w, min(ya, yb) * h * 0.9), vertical=True)
            _draw_text(img, design.flavour, (0.4 * w, 0.05 * h, 0.55 * w, min(ya, yb) * h * 0.5), ink, b.font, 0.1)
        else:
            brand_text((0.08 * w, 0.04 * h, 0.84 * w, min(ya, yb) * h * 0.6))
            _draw_text(img, design.flavour, (0.15 * w, min(ya, yb) * h * 0.66, 0.7 * w, min(ya, yb) * h * 0.28), ink, b.font, 0.1)
    elif style == 2:  # full-bleed picture, brand panel, flavour strip
        img[:] = _photo(rv, assets, w, h)
        tint = rb.uniform(0.0, 0.45)
        img[:] = (img.astype(np.float32) * (1 - tint) + np.array(pri, np.float32) * tint).astype(np.uint8)
        py = rb.uniform(0.05, 0.2) * h
        ph = rb.uniform(0.18, 0.28) * h
        _poly(img, _rounded_rect(0.06 * w, py, 0.94 * w, py + ph, 0.2 * ph), pri)
        brand_text((0.1 * w, py + 0.1 * ph, 0.8 * w, 0.8 * ph))
        sy = h * rb.uniform(0.78, 0.86)
        cv2.rectangle(img, (0, int(sy)), (w, h), acc, -1)
        _draw_text(img, design.flavour, (0.08 * w, sy + 0.02 * h, 0.84 * w, h - sy - 0.04 * h), _ink_for(rv, acc), b.font, 0.1)
    elif style == 3:  # stripes with a central badge
        _stripes(img, sec, int(rb.integers(4)), rb.uniform(0.08, 0.25) * w, rb.uniform(0.3, 0.6))
        bw, bh = 0.84 * w, min(0.36 * h, 0.6 * w if tall else 0.5 * h)
        cy = rb.uniform(0.3, 0.45) * h
        fill = (245, 245, 245) if rb.random() < 0.5 else pri
        cv2.ellipse(img, (w // 2, int(cy)), (int(bw / 2), int(bh / 2)), 0, 0, 360, fill, -1, cv2.LINE_AA)
        cv2.ellipse(img, (w // 2, int(cy)), (int(bw / 2), int(bh / 2)), 0, 0, 360, acc, max(2, int(0.02 * h)), cv2.LINE_AA)
        _draw_text(img, b.name, (w / 2 - bw * 0.36, cy - bh * 0.3, bw * 0.72, bh * 0.6), _ink_for(rb, fill), b.font,
                   0.12, stretch=stretch)
        ry = cy + bh / 2 + 0.04 * h
        cv2.rectangle(img, (int(0.1 * w), int(ry)), (int(0.9 * w), int(ry + 0.12 * h)), acc, -1)
        _draw_text(img, design.flavour, (0.14 * w, ry + 0.01 * h, 0.72 * w, 0.1 * h), _ink_for(rv, acc), b.font, 0.1)
        if h - (ry + 0.14 * h) > 0.15 * h:
            pr = min(0.3 * w, (h - ry - 0.16 * h) / 2)
            _photo_window(img, rv, assets, (w / 2 - pr, ry + 0.14 * h, 2 * pr, 2 * pr), 3, acc)
    elif style == 4:  # big logo, name under it
        r = min(0.32 * w, 0.2 * h)
        cy = rb.uniform(0.2, 0.3) * h
        _draw_logo(img, logo_rng, w / 2, cy, r, sec, acc, ink, letter, b.font)
        brand_text((0.08 * w, cy + r * 1.15, 0.84 * w, 0.16 * h))
        cv2.rectangle(img, (0, int(0.8 * h)), (w, int(0.86 * h)), acc, -1)
        fy = cy + r * 1.15 + 0.18 * h
        _draw_text(img, design.flavour, (0.12 * w, fy, 0.76 * w, 0.1 * h), ink, b.font, 0.1)
        room = 0.79 * h - (fy + 0.11 * h)
        if rv.random() < 0.8 and room > 0.08 * h:
            pr = min(0.3 * w, room / 2)
            _photo_window(img, rv, assets, (w / 2 - pr, fy + 0.11 * h + room / 2 - pr, 2 * pr, 2 * pr), 3, (250, 250, 250))
    elif style == 5:  # sine wave band
        x = np.linspace(0, w, 40)
        freq, amp, y0 = rb.uniform(0.5, 2.0), rb.uniform(0.03, 0.08) * h, rb.uniform(0.45, 0.6) * h
        yt = y0 + amp * np.sin(2 * math.pi * freq * x / w + rb.uniform(0, 6.3))
        _poly(img, np.concatenate([np.stack([x, yt], 1), [[w, h], [0, h]]]), sec)
        cv2.polylines(img, [np.stack([x, yt], 1).astype(np.int32)], False, acc, max(3, int(0.025 * h)), cv2.LINE_AA)
        brand_text((0.08 * w, 0.06 * h, 0.84 * w, (y0 - amp) * 0.5))
        _draw_text(img, design.flavour, (0.15 * w, (y0 - amp) * 0.6, 0.7 * w, (y0 - amp) * 0.25), ink, b.font, 0.1)
        top = y0 + amp + 0.04 * h
        ph = 0.92 * h - top
        pw = min(0.84 * w, ph * 1.5)
        _photo_window(img, rv, assets, ((w - pw) / 2, top, pw, ph), int(rb.integers(3)), None)
    elif style == 6:  # thick frame around a picture
        img[:] = pri
        t = int(rb.uniform(0.06, 0.1) * min(w, h))
        top = int(rb.uniform(0.2, 0.28) * h)
        bottom = int(rb.uniform(0.16, 0.22) * h)
        inner = (t, top, w - 2 * t, h - top - bottom)
        _photo_window(img, rv, assets, inner, 0, acc)
        brand_text((t, 0.03 * h, w - 2 * t, top - 0.05 * h))
        _draw_text(img, design.flavour, (t, h - bottom + 0.02 * h, w - 2 * t, bottom - 0.05 * h), ink, b.font, 0.1)
    else:  # pattern with a white label panel
        _stripes(img, sec, int(rb.integers(4)), rb.uniform(0.06, 0.14) * w, rb.uniform(0.2, 0.5))
        _stripes(img, acc, int(rb.integers(4)), rb.uniform(0.1, 0.3) * w, rb.uniform(0.1, 0.2))
        px0, py0, px1, py1 = 0.1 * w, rb.uniform(0.15, 0.3) * h, 0.9 * w, rb.uniform(0.55, 0.7) * h
        _poly(img, _rounded_rect(px0, py0, px1, py1, 0.08 * w), (246, 246, 242))
        cv2.polylines(img, [_rounded_rect(px0, py0, px1, py1, 0.08 * w)], True, acc, max(2, int(0.015 * h)), cv2.LINE_AA)
        _draw_text(img, b.name, (px0 + 0.05 * w, py0 + 0.05 * (py1 - py0), px1 - px0 - 0.1 * w, 0.45 * (py1 - py0)),
                   pri if _luma(pri) < 170 else _scale(pri, 0.4), b.font, 0.12, stretch=stretch)
        _draw_text(img, design.flavour, (px0 + 0.1 * w, py0 + 0.55 * (py1 - py0), px1 - px0 - 0.2 * w, 0.3 * (py1 - py0)),
                   _scale(acc, 0.7), b.font, 0.1)
        pr = min(0.25 * w, (h - py1) * 0.4)
        if pr > 8:
            _photo_window(img, rv, assets, (w / 2 - pr, (py1 + h) / 2 - pr, 2 * pr, 2 * pr), 3, None)
    # variant decorations
    if style != 4 and rb.random() < 0.6:
        r = 0.09 * min(w, h * 0.8)
        corner = int(rb.integers(4))
        cx = 0.08 * w + r if corner % 2 == 0 else 0.92 * w - r
        cy = 0.05 * h + r if corner < 2 else 0.95 * h - r
        _draw_logo(img, logo_rng, cx, cy, r, sec, acc, ink, letter, b.font)
    if rv.random() < 0.3:
        r = 0.11 * min(w, h)
        cx, cy = rv.uniform(0.78, 0.86) * w, rv.uniform(0.25, 0.6) * h
        _poly(img, _star(cx, cy, r, r * 0.78, int(rv.integers(10, 18))), _hsv(rv.uniform(0.0, 0.15), 0.9, 1.0))
        _draw_text(img, str(rv.choice(_CLAIMS)), (cx - r * 0.62, cy - r * 0.4, r * 1.24, r * 0.8), (255, 255, 255),
                   cv2.FONT_HERSHEY_DUPLEX, 0.14)
    if rv.random() < 0.6:
        sz = str(rv.choice(_SIZES))
        _draw_text(img, sz, (0.05 * w, 0.955 * h - 0.06 * h, 0.3 * w, 0.05 * h), ink, cv2.FONT_HERSHEY_SIMPLEX, 0.1, align="left")
    if wide and rv.random() < 0.5:
        _draw_text(img, str(rv.choice(_CLAIMS)), (0.65 * w, 0.04 * h, 0.3 * w, 0.1 * h), acc, cv2.FONT_HERSHEY_DUPLEX, 0.12)
    return img
