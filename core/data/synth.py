"""A deterministic, GroZi-3.2k-like one-shot detection benchmark: retail products on shelves.

Why: GroZi-3.2k is large and not redistributable with the app, but pruning and evaluation need a
benchmark with the same structure -- one clean "in vitro" class image per product, "in situ" shelf
photos, held-out classes -- that anyone can regenerate in a couple of minutes, byte for byte.

What: products are designed procedurally (packaging shapes, colours, stripes, bands, logos, printed
brand words, art cut from scikit-image's bundled sample photos); look-alike families share a brand.
Scenes are shelves (2-4 rows, several facings of the same product side by side, unannotated
distractor products, price rails, hanging promo cards, foreground occluders) seen through a slightly
rotated/keystoned camera, with lighting gradients, blur, noise and JPEG artefacts.

Output (read by `core.data.grozi.load_dataset_dir`):
    DIR/dataset.json
    DIR/classes/synth.csv              one row per ground-truth box, relative xyxy, split train/val
    DIR/classes/images/<classid>.png   class images
    DIR/src/images/<imageid>.jpg       scene images
    DIR/demo.mp4, DIR/demo_classes.json  optional demo video over a large val shelf

Determinism: every random choice comes from a `numpy.random.Generator` seeded with
`[seed, <kind tag>, <index>...]`, so a class, distractor or scene looks the same whatever order
(or thread) renders it, and the same seed gives byte-identical CSV and image files.
"""

from __future__ import annotations

import colorsys
import csv
import json
import math
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from core.data.video_gt import VIDEO_GT_FORMAT
from core.jobs import CancelToken, Progress, no_progress

GENERATOR_VERSION = 2  # 2: the demo video at native scale, with per-frame ground truth
CSV_NAME = "synth.csv"
CSV_COLUMNS = ("imageid", "imagefilename", "classid", "classfilename", "gtbboxid", "difficult",
               "lx", "ty", "rx", "by", "split")

# A box is "difficult" (ignored by the official mAP) when more than half of the product is hidden
# by other things, or a noticeable part of it lies outside the image.
OCCLUDED_DIFFICULT = 0.5  # visible fraction below this -> difficult
CUT_DIFFICULT = 0.8  # fraction of the product inside the image below this -> difficult
MIN_VISIBLE = 0.06  # below this (visible x inside) a product is practically not there: not annotated
OBJECT_HEIGHT = (0.22, 0.45)  # product height as a fraction of image height: at the eval scale products
# are 140-280 px, the range OS2D's 240-px anchors and transformations cover (GroZi at 1280 is similar)
CLASS_IMAGE_SIDE = (160, 320)  # longer side of a class image in pixels
SPRITE_SIDE = 400  # products are drawn once at this longer side, then resized per placement
DISTRACTOR_POOL = 150  # designs of products that have no class image (never annotated)
DEMO_FRAMES, DEMO_FPS, DEMO_SIZE = 192, 24, (640, 480)
DEMO_SHELF_SIZE = (3600, 1280)
DEMO_SHELF_CLASSES = 8  # val classes on the demo shelf; the sample manifest uses some as class images
DEMO_OBJECT_PX = 230.0  # median product height in a demo frame: what the model sees at its own scale

# seed tags: the second element of every seed sequence, so streams never collide
_T_FAMILY, _T_CLASS, _T_DISTRACTOR, _T_SCENE, _T_PLAN, _T_DEMO, _T_CLASSIMG = 1, 2, 3, 4, 5, 6, 7

Color = tuple[int, int, int]  # BGR, as OpenCV draws and writes


# -- public data types -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SynthConfig:
    """Size and seed of a generated benchmark; the defaults mimic GroZi-3.2k at a laptop budget."""

    num_train_classes: int = 80
    num_val_classes: int = 20
    num_train_images: int = 600
    num_val_images: int = 100
    image_size: tuple[int, int] = (960, 720)  # (width, height)
    eval_scale: int = 720
    seed: int = 0
    demo_video: bool = True

    def __post_init__(self) -> None:
        for name in ("num_train_classes", "num_val_classes", "num_train_images", "num_val_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SynthConfig.{name} must be a positive integer, got {value!r}")
        size = tuple(self.image_size)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 96 for v in size):
            raise ValueError(f"SynthConfig.image_size must be (width, height) of at least 96 px, got {self.image_size!r}")
        object.__setattr__(self, "image_size", size)  # a list from JSON would make the config unhashable
        if isinstance(self.eval_scale, bool) or not isinstance(self.eval_scale, int) or self.eval_scale <= 0:
            raise ValueError(f"SynthConfig.eval_scale must be a positive integer, got {self.eval_scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"SynthConfig.seed must be a non-negative integer, got {self.seed!r}")


@dataclass(frozen=True)
class SynthResult:
    """Where the benchmark went, what it holds, and how long it took."""

    out_dir: Path
    counts: Mapping[str, int]
    seconds: float


@dataclass(frozen=True, eq=False)
class Assets:
    """Bundled scikit-image pictures used as package art and shelf surroundings (no network needed).

    Loaded once per `generate` call and passed around, so the module holds no global state."""

    photos: tuple[np.ndarray, ...]  # BGR uint8 colour photos
    textures: tuple[np.ndarray, ...]  # gray float32 in [0, 1]


@dataclass(frozen=True)
class Brand:
    """What a family of look-alike products shares: name, package shape, palette, layout, logo."""

    seed: tuple[int, ...]
    name: str
    shape: str  # box, can, bottle, jar, pouch, carton
    aspect: float  # width / height of the package
    rel_height: float  # height relative to the tallest products of a shelf row
    style: int  # layout of the front
    font: int
    primary: Color
    secondary: Color
    ink: Color  # text colour that reads on `primary`
    material: Color  # bottle contents / lid colour


@dataclass(frozen=True)
class ProductDesign:
    """One product: its brand plus what the variant changes (flavour word, accent colour, art)."""

    seed: tuple[int, ...]
    brand: Brand
    flavour: str
    accent: Color
    aspect: float
    rel_height: float


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


# -- small helpers ---------------------------------------------------------------------------------

def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (int(round(b * 255)), int(round(g * 255)), int(round(r * 255)))


def _luma(c: Color) -> float:
    return 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]


def _scale(c: Color, f: float) -> Color:
    return tuple(int(min(max(round(v * f), 0), 255)) for v in c)  # type: ignore[return-value]


def _ink_for(rng: np.random.Generator, bg: Color) -> Color:
    """A text colour readable on `bg`: dark on light packaging, light on dark."""
    if _luma(bg) > 145:
        return _hsv(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.05, 0.35)) if rng.random() < 0.6 else (20, 20, 20)
    choices = [(250, 250, 250), (235, 245, 250), _hsv(rng.uniform(0.1, 0.17), rng.uniform(0.6, 1), 1.0)]
    return choices[int(rng.choice(3, p=[0.6, 0.2, 0.2]))]


def _vivid(rng: np.random.Generator) -> Color:
    kind = rng.random()
    if kind < 0.08:
        return _hsv(rng.random(), rng.uniform(0, 0.08), rng.uniform(0.9, 1.0))  # white packaging
    if kind < 0.15:
        return _hsv(rng.random(), rng.uniform(0, 0.5), rng.uniform(0.05, 0.2))  # black packaging
    return _hsv(rng.random(), rng.uniform(0.45, 1.0), rng.uniform(0.45, 1.0))


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


# -- text ------------------------------------------------------------------------------------------

_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
          cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
          cv2.FONT_HERSHEY_COMPLEX_SMALL)
_ONSETS = ("b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "cr", "fl", "gr",
           "kr", "pl", "st", "tr", "sn", "ch", "sh", "qu", "x", "j", "h", "w", "dr", "sp")
_VOWELS = ("a", "e", "i", "o", "u", "a", "o", "ia", "io", "ea", "ou", "y", "ae", "ee")
_ENDINGS = ("", "", "", "x", "n", "s", "r", "lla", "tto", "ix", "ex", "on", "ia", "ly", "os", "in", "o", "a")
_SECOND_WORDS = ("Foods", "Farm", "& Co", "Bros", "Mix", "Bay", "Fit", "Joy", "Land", "Bio", "Kitchen", "Valley")
_FLAVOURS = ("Original", "Classic", "Light", "Extra", "Lemon", "Cocoa", "Berry", "Mint", "Vanilla", "Spicy", "Zero",
             "Organic", "Crispy", "Honey", "Mango", "Apple", "Cheese", "Tomato", "Coconut", "Cherry", "Orange",
             "Caramel", "Sea Salt", "Hazelnut", "Peach", "Lime", "BBQ", "Chili", "Coffee", "Green Tea", "Strawberry",
             "Banana", "Garlic", "Pepper", "Onion", "Almond", "Oat", "Rice", "Whole Grain", "Family", "Kids", "Max",
             "Fresh", "Gold", "Plus", "Mild", "Hot", "Sweet", "Dark", "White", "Milk", "Wild", "Forest", "Tropic",
             "Fruity", "Diet", "Premium", "Select", "Nature", "Power", "Sport", "Classic Red", "Blue Label")
_CLAIMS = ("NEW!", "50% MORE", "BIO", "100% NATURAL", "NO SUGAR", "FAMILY PACK", "LIMITED", "VEGAN", "EXTRA",
           "PREMIUM", "GLUTEN FREE", "2x", "-30% FAT", "BEST", "XXL")
_SIZES = ("500 g", "250 g", "1 kg", "330 ml", "1.5 L", "750 ml", "200 g", "400 g", "125 g", "1 L", "6 x 40 g",
          "300 g", "0.5 L", "180 g", "12 pcs", "2 kg", "90 g")
_PROMOS = ("SALE", "-25%", "NEW", "2 FOR 1", "PROMO", "-50%", "BEST", "TOP", "HOT", "-10%", "1+1", "DEAL")
_AISLES = ("SNACKS", "BEVERAGES", "BREAKFAST", "DAIRY", "PASTA & RICE", "SWEETS", "HOUSEHOLD", "COFFEE & TEA",
           "CANNED FOOD", "SAUCES", "ORGANIC", "BAKERY")


def _brand_name(rng: np.random.Generator) -> str:
    n = int(rng.choice([1, 2, 2, 2, 3]))
    s = "".join(str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) for _ in range(n)) + str(rng.choice(_ENDINGS))
    while len(s) < 4:
        s += str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS))
    s = s[:10]
    case = rng.random()
    s = s.upper() if case < 0.45 else s.capitalize() if case < 0.9 else s
    if rng.random() < 0.15:
        s += " " + str(rng.choice(_SECOND_WORDS))
    return s


def _text_mask(text: str, font: int, weight: float, target_h: float) -> np.ndarray:
    """White-on-black uint8 mask of `text`, drawn at about `target_h` px so strokes stay crisp."""
    unit = max(cv2.getTextSize("H", font, 1.0, 1)[0][1], 1)
    scale = max(0.3, target_h / unit)
    thick = max(1, int(round(weight * scale)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    pad = thick + 4
    m = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(m, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(m)
    return m[y:y + h, x:x + w] if w > 0 and h > 0 else m


def _draw_text(img: np.ndarray, text: str, box, color: Color, font: int, weight: float = 0.12, *,
               outline: Color | None = None, vertical: bool = False, align: str = "center",
               stretch: float = 1.0) -> None:
    """Fit `text` into box (x, y, w, h), optionally condensed/expanded (`stretch`), rotated, outlined."""
    x, y, w, h = (int(round(v)) for v in box)
    if w < 4 or h < 4 or not text.strip():
        return
    m = _text_mask(text, font, weight, (w if vertical else h) * 1.2)
    if vertical:
        m = np.ascontiguousarray(np.rot90(m))
    mh, mw = m.shape
    sx_unit = stretch if not vertical else 1.0
    sy_unit = 1.0 if not vertical else stretch
    s = min(w / (mw * sx_unit), h / (mh * sy_unit))
    tw, th = max(1, int(mw * s * sx_unit)), max(1, int(mh * s * sy_unit))
    mm = cv2.resize(m, (tw, th), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    ox = x + {"left": 0, "right": w - tw}.get(align, (w - tw) // 2)
    oy = y + (h - th) // 2
    if outline is not None:
        k = max(1, int(round(min(tw, th) * 0.06)))
        padded = cv2.copyMakeBorder(mm, k, k, k, k, cv2.BORDER_CONSTANT, value=0)
        om = cv2.dilate(padded, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
        _blend_mask(img, om, ox - k, oy - k, outline)
    _blend_mask(img, mm, ox, oy, color)


# -- package art -----------------------------------------------------------------------------------

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


# -- packages --------------------------------------------------------------------------------------

_SHAPES = ("box", "bottle", "can", "jar", "pouch", "carton")
_SHAPE_P = (0.4, 0.17, 0.15, 0.1, 0.1, 0.08)


def _shape_size(rng: np.random.Generator, shape: str) -> tuple[float, float]:
    """(aspect, relative height) typical of a package shape."""
    if shape == "box":
        kind = rng.random()
        if kind < 0.6:
            return rng.uniform(0.55, 0.85), rng.uniform(0.75, 1.0)
        if kind < 0.85:
            return rng.uniform(1.15, 1.7), rng.uniform(0.45, 0.65)
        return rng.uniform(0.85, 1.15), rng.uniform(0.55, 0.8)
    if shape == "bottle":
        return rng.uniform(0.28, 0.45), rng.uniform(0.85, 1.0)
    if shape == "can":
        if rng.random() < 0.3:
            return rng.uniform(1.2, 1.7), rng.uniform(0.35, 0.5)
        return rng.uniform(0.5, 0.8), rng.uniform(0.5, 0.75)
    if shape == "jar":
        return rng.uniform(0.65, 1.0), rng.uniform(0.5, 0.7)
    if shape == "pouch":
        return rng.uniform(0.6, 0.85), rng.uniform(0.65, 0.9)
    return rng.uniform(0.38, 0.5), rng.uniform(0.85, 1.0)  # carton


def make_brand(seed: tuple[int, ...]) -> Brand:
    """A product family drawn from `seed`: shape, palette, layout style, font and name."""
    rng = np.random.default_rng(list(seed))
    shape = str(rng.choice(_SHAPES, p=_SHAPE_P))
    aspect, rel_h = _shape_size(rng, shape)
    primary = _vivid(rng)
    h0 = colorsys.rgb_to_hsv(*(c / 255 for c in primary[::-1]))[0]
    scheme = rng.random()
    if scheme < 0.35:
        secondary = _hsv(h0 + rng.uniform(0.4, 0.6), rng.uniform(0.5, 1), rng.uniform(0.5, 1))
    elif scheme < 0.7:
        secondary = _hsv(h0 + rng.uniform(-0.12, 0.12), rng.uniform(0.4, 1), rng.uniform(0.3, 0.9))
    else:
        secondary = (245, 245, 245) if _luma(primary) < 150 else _hsv(rng.random(), rng.uniform(0.6, 1), rng.uniform(0.2, 0.5))
    font = int(rng.choice(_FONTS, p=[0.2, 0.2, 0.14, 0.14, 0.08, 0.08, 0.08, 0.08]))
    if rng.random() < 0.2:
        font |= cv2.FONT_ITALIC
    material = _vivid(rng) if rng.random() < 0.6 else _hsv(rng.uniform(0.05, 0.4), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
    return Brand(seed=tuple(int(s) for s in seed), name=_brand_name(rng), shape=shape, aspect=float(aspect),
                 rel_height=float(rel_h), style=int(rng.integers(8)), font=font, primary=primary,
                 secondary=secondary, ink=_ink_for(rng, primary), material=material)


def make_design(seed: tuple[int, ...], brand: Brand, member: int = 0) -> ProductDesign:
    """Variant number `member` of a brand: a slightly different size, and its own flavour word and
    accent colour, both taken from a family-wide sequence so that siblings never share them."""
    rng = np.random.default_rng(list(seed))
    fam = np.random.default_rng([*brand.seed, 21])
    flavours = fam.permutation(len(_FLAVOURS))
    hue = fam.random() + 0.382 * member  # golden-angle steps keep sibling accents apart
    accent = _hsv(hue, rng.uniform(0.6, 1.0), rng.uniform(0.65, 1.0))
    return ProductDesign(seed=tuple(int(s) for s in seed), brand=brand,
                         flavour=_FLAVOURS[int(flavours[member % len(_FLAVOURS)])], accent=accent, aspect=float(brand.aspect * rng.uniform(0.93, 1.07)),
                         rel_height=float(min(1.0, brand.rel_height * rng.uniform(0.92, 1.08))))


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
        body_top = cap_h + neck_h + sh_h
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


# -- shelves ---------------------------------------------------------------------------------------

@dataclass
class _Row:
    baseline: float  # y where products stand (top of the board)
    top: float  # y of the board above (products must stay below)
    height: float  # height of the tallest products in this row
    board: float  # board thickness
    eligible: bool = False  # may hold annotated products


@dataclass
class _Item:
    sprite: Sprite
    class_id: int  # -1 for distractors
    x: float
    row: int
    height: float


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


def _layout(rng: np.random.Generator, classes: Sequence[tuple[int, Sprite]], distractors: Sequence[Sprite],
            W: int, H: int, mx: int, my: int, Wc: int, Hc: int, instances: tuple[int, int],
            rows_range: tuple[int, int]):
    """Plan rows, shelf segments and which package stands where (annotated runs fit inside the view)."""
    R = int(rng.integers(rows_range[0], rows_range[1] + 1))
    P = H * rng.uniform(0.88, 1.08) / R
    t = max(3.0, P * rng.uniform(0.07, 0.11))
    first = my + rng.uniform(0.5, 1.0) * P
    rows: list[_Row] = []
    lo, hi = OBJECT_HEIGHT[0] * H, OBJECT_HEIGHT[1] * H
    for k in range(-2, R + 3):
        base = first + k * P
        top = base - P + t
        if base + t < 0 or top > Hc:
            continue
        height = float(np.clip(P * rng.uniform(0.68, 0.86), lo, min(hi, P - t - 2)))
        vis = (min(base, my + H) - max(base - height, my)) / height
        rows.append(_Row(baseline=base, top=top, height=height, board=t,
                         eligible=vis >= 0.92 or (vis >= 0.55 and rng.random() < 0.2)))
    unit_top = 0.0
    if rng.random() < 0.3:  # the top of the shelf unit is in view: nothing above its first row
        tops = [i for i, r in enumerate(rows) if my + 0.08 * H <= r.top <= my + 0.45 * H]
        if tops:
            rows = rows[tops[0]:]
            unit_top = rows[0].top
    if not any(r.eligible for r in rows):  # tiny images: take the most visible row
        best = max(rows, key=lambda r: min(r.baseline, my + H) - max(r.baseline - r.height, my))
        best.eligible = True
    # shelf unit extent and uprights splitting it into sections
    ux0, ux1 = 0.0, float(Wc)
    end_side = rng.random()
    if end_side < 0.12:
        ux0 = mx + rng.uniform(0.05, 0.25) * W
    elif end_side < 0.24:
        ux1 = mx + W - rng.uniform(0.05, 0.25) * W
    uw = max(4.0, W * rng.uniform(0.015, 0.03))
    uprights = []
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        ux = rng.uniform(ux0 + 0.25 * W, ux1 - 0.25 * W) if ux1 - ux0 > 0.6 * W else None
        if ux is not None and all(abs(ux - u) > 0.3 * W for u in uprights):
            uprights.append(ux)
    uprights.sort()
    edges = [ux0] + [e for u in uprights for e in (u, u + uw)] + [ux1]
    segments = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]

    def size(sprite: Sprite, row: _Row) -> tuple[float, float]:
        # shelves are spaced for what stands on them, so heights within a row differ less than sizes do
        h = float(np.clip(row.height * sprite.rel_height ** 0.6, lo, row.height))
        return h, h * sprite.aspect

    # annotated runs: every given class at least once (in order), then more facings up to the target
    target = int(rng.integers(instances[0], instances[1] + 1))
    runs: list[list] = []
    left = target
    for i in range(10 * target):
        if left <= 0 or not classes:
            break
        c = classes[i] if i < len(classes) else classes[int(rng.integers(len(classes)))]
        n = min(left, int(rng.choice([1, 1, 2, 2, 3, 3, 4])))
        runs.append([c, n])
        left -= n
    slots = [(ri, si) for ri, r in enumerate(rows) if r.eligible for si in range(len(segments))]
    cap, view = {}, {}
    for ri, si in slots:
        a, b = segments[si]
        # sometimes annotated products may stand partly outside the view (cut by the border)
        ext = rows[ri].height * 0.5 if rng.random() < 0.3 else 0.0
        view[(ri, si)] = (max(a, mx - ext), min(b, mx + W + ext))
        cap[(ri, si)] = (view[(ri, si)][1] - view[(ri, si)][0]) * 0.9
    assigned: dict[tuple[int, int], list] = {s: [] for s in slots}
    for c, n in runs:
        while n > 0:
            fits = []
            for s in slots:
                h, w = size(c[1], rows[s[0]])
                if n * w * 1.04 <= cap[s]:
                    fits.append((s, n * w * 1.04))
            if fits:
                weights = np.array([cap[s] for s, _ in fits])
                s, need = fits[int(rng.choice(len(fits), p=weights / weights.sum()))]
                cap[s] -= need
                assigned[s].append((c, n))
                break
            n -= 1
    items: list[_Item] = []
    tags: list[tuple[int, float, float]] = []  # (row, x, run width)
    for ri, row in enumerate(rows):
        for si, (a, b) in enumerate(segments):
            mine = list(assigned.get((ri, si), []))
            order = rng.permutation(len(mine))
            mine = [mine[i] for i in order]
            vx0, vx1 = view.get((ri, si), (max(a, mx), min(b, mx + W)))
            x = a + rng.uniform(0.0, 0.02) * W
            at_edge_right = b >= Wc - 1
            need = sum(n * size(c[1], row)[1] * 1.04 for c, n in mine)
            for _ in range(200):
                if mine:
                    free = vx1 - max(x, vx0) - need
                    d = distractors[int(rng.integers(len(distractors)))] if distractors else None
                    dw = size(d, row)[1] if d is not None else 0.0
                    if d is not None and (x < vx0 - 0.2 * dw or (free > dw * 1.05 and rng.random() < min(0.85, free / (free + need + 1e-6)))):
                        n = int(rng.choice([1, 1, 2, 2, 3]))
                        if x >= vx0 - 0.2 * dw:
                            n = max(1, min(n, int(free // (dw * 1.05))))
                        sprite, cid = d, -1
                    else:
                        (cid, sprite), n = mine.pop(0)
                        need -= n * size(sprite, row)[1] * 1.04
                else:
                    if x >= b - 2 or not distractors:
                        break
                    d = distractors[int(rng.integers(len(distractors)))]
                    dw = size(d, row)[1]
                    n = int(rng.choice([1, 1, 2, 2, 3, 4]))
                    if not at_edge_right:
                        n = min(n, int((b - x) // (dw * 1.03)))
                        if n <= 0:
                            if b - x > 0.25 * W:  # try a narrower package once
                                continue
                            break
                    sprite, cid = d, -1
                h, w = size(sprite, row)
                run_x = x
                for _k in range(n):
                    items.append(_Item(sprite=sprite, class_id=cid, x=x, row=ri, height=h))
                    x += w * (1 + rng.uniform(0.0, 0.04))
                if rng.random() < 0.8:
                    tags.append((ri, run_x + rng.uniform(0, 0.3) * w, w))
                x += w * rng.uniform(0.02, 0.1) + (rng.uniform(0.3, 1.0) * w if rng.random() < 0.04 else 0.0)
    return rows, unit_top, segments, (ux0, ux1), uprights, uw, items, tags


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
    rows, unit_top, segments, (ux0, ux1), uprights, uw, items, tags = _layout(
        rng, classes, distractors, W, H, mx, my, Wc, Hc, instances, rows_range)

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


# -- the benchmark ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """Which class is in which split and which family; cheap, computed up front from the seed."""

    train_ids: tuple[int, ...]
    val_ids: tuple[int, ...]
    family_of: tuple[int, ...]
    member_of: tuple[int, ...]  # position of a class within its family
    coverage_train: tuple[int, ...]  # permutation: scene i always shows class coverage[i % n]
    coverage_val: tuple[int, ...]


def _plan(config: SynthConfig) -> _Plan:
    rng = _rng(config.seed, _T_PLAN)
    n = config.num_train_classes + config.num_val_classes
    family_of: list[int] = []
    member_of: list[int] = []
    fam = 0
    while len(family_of) < n:
        size = int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
        family_of += [fam] * size
        member_of += list(range(size))
        fam += 1
    train = tuple(range(config.num_train_classes))
    val = tuple(range(config.num_train_classes, n))
    return _Plan(train_ids=train, val_ids=val, family_of=tuple(family_of[:n]), member_of=tuple(member_of[:n]),
                 coverage_train=tuple(int(i) for i in rng.permutation(train)),
                 coverage_val=tuple(int(i) for i in rng.permutation(val)))


class _Library:
    """Lazily rendered class and distractor sprites for one generate() call (thread-safe, deterministic)."""

    def __init__(self, config: SynthConfig, plan: _Plan, assets: Assets) -> None:
        self.config, self.plan, self.assets = config, plan, assets
        self._cache: dict[tuple[str, int], Sprite] = {}
        self._lock = threading.Lock()

    def design(self, cid: int) -> ProductDesign:
        s = self.config.seed
        brand = make_brand((s, _T_FAMILY, self.plan.family_of[cid]))
        return make_design((s, _T_CLASS, cid), brand, self.plan.member_of[cid])

    def _get(self, key: tuple[str, int], make: Callable[[], Sprite]) -> Sprite:
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            hit = make()  # rendering twice in a race gives the same sprite
            with self._lock:
                hit = self._cache.setdefault(key, hit)
        return hit

    def sprite(self, cid: int) -> Sprite:
        return self._get(("c", cid), lambda: render_product(self.design(cid), self.assets))

    def distractor(self, j: int) -> Sprite:
        s = self.config.seed

        def make() -> Sprite:
            brand = make_brand((s, _T_DISTRACTOR, j, 0))
            return render_product(make_design((s, _T_DISTRACTOR, j, 1), brand), self.assets)
        return self._get(("d", j), make)


def _scene(lib: _Library, imageid: int, split_ids: Sequence[int], coverage: Sequence[int], index: int,
           size: tuple[int, int], *, instances=(3, 10), rows=(2, 4), n_classes: int | None = None) -> ShelfScene:
    rng = _rng(lib.config.seed, _T_SCENE, imageid)
    first = coverage[index % len(coverage)]
    k = n_classes or int(rng.choice([1, 2, 2, 3, 3, 4]))
    k = max(1, min(k, len(split_ids)))
    others = [c for c in split_ids if c != first]
    chosen = [first] + [int(c) for c in rng.choice(others, size=min(k - 1, len(others)), replace=False)]
    nd = int(rng.integers(3, 9))
    dis = [lib.distractor(int(j)) for j in rng.choice(DISTRACTOR_POOL, size=nd, replace=False)]
    return render_shelf(rng, [(c, lib.sprite(c)) for c in chosen], dis, size, lib.assets,
                        instances=instances, rows=rows)


def _fmt(v: float) -> str:
    return f"{min(max(v, 0.0), 1.0):.6f}"


def _is_nonempty_dir(p: Path) -> bool:
    return p.exists() and (not p.is_dir() or any(p.iterdir()))


def generate(out_dir: str | os.PathLike, config: SynthConfig = SynthConfig(), *, progress: Progress = no_progress,
             cancel: CancelToken | None = None, workers: int | None = None) -> SynthResult:
    """Write the benchmark to `out_dir` (which must not exist or be empty).

    Everything goes to a hidden sibling folder first and is renamed into place at the end, so a
    cancelled or failed run leaves nothing behind. `workers` threads render scenes (OpenCV and
    NumPy release the GIL); the output does not depend on it."""
    out_dir = Path(out_dir).expanduser().absolute()
    cancel = cancel or CancelToken()
    if _is_nonempty_dir(out_dir):
        raise ValueError(f"{out_dir}: refusing to overwrite, the folder exists and is not empty")
    start = time.monotonic()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        counts = _generate_into(tmp, config, progress, cancel, workers)
        cancel.raise_if_cancelled()
        if _is_nonempty_dir(out_dir):
            raise ValueError(f"{out_dir}: refusing to overwrite, the folder was filled while generating")
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SynthResult(out_dir=out_dir, counts=counts, seconds=time.monotonic() - start)


def _generate_into(root: Path, config: SynthConfig, progress: Progress, cancel: CancelToken,
                   workers: int | None) -> dict[str, int]:
    plan = _plan(config)
    assets = load_assets()
    lib = _Library(config, plan, assets)
    cls_dir, img_dir = root / "classes" / "images", root / "src" / "images"
    cls_dir.mkdir(parents=True)
    img_dir.mkdir(parents=True)
    n_cls = config.num_train_classes + config.num_val_classes
    n_img = config.num_train_images + config.num_val_images
    total = n_cls + n_img + (1 if config.demo_video else 0)
    done = 0
    workers = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))

    def run_all(tasks: list[Callable[[], object]], message: str) -> list:
        """Run tasks on a small thread pool, in bounded batches so cancel is noticed quickly."""
        nonlocal done
        results: list = [None] * len(tasks)
        if workers == 1:
            for i, task in enumerate(tasks):
                cancel.raise_if_cancelled()
                results[i] = task()
                done += 1
                progress(done, total, message)
            return results
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth") as pool:
            pending: dict[Future, int] = {}
            it = iter(enumerate(tasks))
            try:
                while True:
                    while len(pending) < 2 * workers:
                        nxt = next(it, None)
                        if nxt is None:
                            break
                        cancel.raise_if_cancelled()
                        pending[pool.submit(nxt[1])] = nxt[0]
                    if not pending:
                        break
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        results[pending.pop(f)] = f.result()
                        done += 1
                        progress(done, total, message)
                    cancel.raise_if_cancelled()
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
        return results

    def make_class(cid: int):
        def task():
            img = class_image(lib.sprite(cid), _rng(config.seed, _T_CLASSIMG, cid))
            cv2.imwrite(str(cls_dir / f"{cid}.png"), img)
        return task

    progress(0, total, "class images")
    run_all([make_class(c) for c in range(n_cls)], "class images")

    def make_scene(imageid: int, split: str, index: int):
        ids = plan.train_ids if split == "train" else plan.val_ids
        cov = plan.coverage_train if split == "train" else plan.coverage_val

        def task():
            scene = _scene(lib, imageid, ids, cov, index, config.image_size)
            ok = cv2.imwrite(str(img_dir / f"{imageid}.jpg"), scene.image, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
            if not ok:
                raise OSError(f"{img_dir / f'{imageid}.jpg'}: could not write the image")
            return split, imageid, scene.objects
        return task

    tasks = [make_scene(i, "train", i) for i in range(config.num_train_images)]
    tasks += [make_scene(config.num_train_images + i, "val", i) for i in range(config.num_val_images)]
    scenes = run_all(tasks, "shelf images")

    W, H = config.image_size
    rows_out = []
    counts = {"train_classes": config.num_train_classes, "val_classes": config.num_val_classes,
              "train_images": config.num_train_images, "val_images": config.num_val_images,
              "train_boxes": 0, "val_boxes": 0, "difficult_boxes": 0}
    gtbboxid = 0
    for split, imageid, objects in scenes:
        for o in objects:
            x0, y0, x1, y1 = o.box
            rows_out.append((imageid, f"{imageid}.jpg", o.class_id, f"{o.class_id}.png", gtbboxid, int(o.difficult),
                             _fmt(x0 / W), _fmt(y0 / H), _fmt(x1 / W), _fmt(y1 / H), split))
            gtbboxid += 1
            counts[f"{split}_boxes"] += 1
            counts["difficult_boxes"] += int(o.difficult)
    with open(root / "classes" / CSV_NAME, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        w.writerows(rows_out)

    meta = {"name": f"synth-{config.seed}", "format": "os2d-csv", "csv": f"classes/{CSV_NAME}",
            "class_image_dir": "classes/images", "image_dir": "src/images", "eval_scale": config.eval_scale,
            "seed": config.seed, "generator_version": GENERATOR_VERSION,
            "num_classes": {"train": config.num_train_classes, "val": config.num_val_classes},
            "num_images": {"train": config.num_train_images, "val": config.num_val_images},
            "num_boxes": {"train": counts["train_boxes"], "val": counts["val_boxes"]},
            "scene_size": list(config.image_size)}
    if config.demo_video:
        cancel.raise_if_cancelled()
        progress(done, total, "demo video")
        ids, gt = _write_demo_video(root / "demo.mp4", lib, plan.val_ids, cancel=cancel)
        (root / "demo_classes.json").write_text(json.dumps(
            {"class_ids": ids, "split": "val", "frames": DEMO_FRAMES, "fps": DEMO_FPS,
             "size": list(DEMO_SIZE)}, indent=2) + "\n", encoding="utf-8")
        (root / "demo_gt.json").write_text(json.dumps(gt, separators=(",", ":")) + "\n", encoding="utf-8")
        meta["demo_video"] = "demo.mp4"
        meta["demo_classes"] = "demo_classes.json"
        meta["demo_ground_truth"] = "demo_gt.json"
        counts["demo_frames"] = DEMO_FRAMES
        done += 1
        progress(done, total, "demo video")
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return counts


def _write_demo_video(path: Path, lib: _Library, val_ids: Sequence[int], *, cancel: CancelToken,
                      frames: int = DEMO_FRAMES, size: tuple[int, int] = DEMO_SIZE) -> tuple[list[int], dict]:
    """A camera panning close along one large val shelf at the model's native scale; returns the class ids
    seen in it and the per-frame ground truth (`VIDEO_GT_FORMAT`).

    Native scale: the crop is chosen so that products appear in the frame at DEMO_OBJECT_PX, the size an
    OS2D model sees them at its evaluation scale, so a viewer runs the model at the frame's own size
    (h·w ≈ size²) without upscaling. The shelf holds DEMO_SHELF_CLASSES val classes among unannotated
    distractors; the sample manifest picks some of them as class images, so the others are look-alikes
    and products outside the class set. A class counts as seen when one of its non-difficult instances
    is fully inside some frame. Ground truth per frame: every annotated instance overlapping the frame,
    clipped, difficult when it was difficult on the shelf or less than CUT_DIFFICULT of it is in frame."""
    rng = _rng(lib.config.seed, _T_DEMO)
    big_w, big_h = DEMO_SHELF_SIZE
    k = min(len(val_ids), DEMO_SHELF_CLASSES)
    scene = _scene(lib, 10**9, val_ids, list(rng.permutation(val_ids)), 0, (big_w, big_h),
                   instances=(max(3, k + 4), max(3, k + 14)), rows=(3, 4), n_classes=k)
    big = scene.image
    fw, fh = size
    heights = [o.box[3] - o.box[1] for o in scene.objects if not o.difficult] or [big_h / 4]
    base_ch = min(float(big_h), max(float(fh), fh * float(np.median(heights)) / DEMO_OBJECT_PX))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), DEMO_FPS, (fw, fh))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write mp4v video here")
    seen: set[int] = set()
    gt_boxes: list[list] = []
    shake = rng.normal(0, 1, (frames, 2)).cumsum(0) * 1.5
    try:
        for i in range(frames):
            if i % 8 == 0:
                cancel.raise_if_cancelled()
            t = i / max(frames - 1, 1)
            ch = base_ch * (1.0 - 0.06 * math.sin(2 * math.pi * t))  # a gentle zoom in and out
            cw = ch * fw / fh
            s = 0.5 - 0.5 * math.cos(math.pi * t)  # pan left to right, easing in and out
            cx = cw / 2 + s * (big_w - cw) + shake[i, 0]
            cy = big_h / 2 + 0.5 * max(big_h - ch, 0.0) * math.sin(3 * math.pi * t) + shake[i, 1]  # up and down the rows
            cx = min(max(cx, cw / 2), big_w - cw / 2)
            cy = min(max(cy, ch / 2), big_h - ch / 2)
            x0, y0 = int(round(cx - cw / 2)), int(round(cy - ch / 2))
            x1, y1 = min(x0 + int(round(cw)), big_w), min(y0 + int(round(ch)), big_h)
            frame = cv2.resize(big[y0:y1, x0:x1], (fw, fh), interpolation=cv2.INTER_AREA)
            writer.write(frame)
            sx, sy = fw / (x1 - x0), fh / (y1 - y0)
            for o in scene.objects:
                bx0, by0, bx1, by1 = o.box
                ix0, iy0, ix1, iy1 = max(bx0, x0), max(by0, y0), min(bx1, x1), min(by1, y1)
                if ix1 <= ix0 or iy1 <= iy0:
                    continue
                inside = (ix1 - ix0) * (iy1 - iy0) / max((bx1 - bx0) * (by1 - by0), 1e-6)
                if inside * o.visible < MIN_VISIBLE:
                    continue
                difficult = o.difficult or inside < CUT_DIFFICULT
                if not difficult:
                    seen.add(o.class_id)
                gt_boxes.append([i, int(o.class_id), round((ix0 - x0) * sx, 1), round((iy0 - y0) * sy, 1),
                                 round((ix1 - x0) * sx, 1), round((iy1 - y0) * sy, 1), int(difficult)])
    finally:
        writer.release()
    gt = {"format": VIDEO_GT_FORMAT, "video": path.name, "frames": frames, "size": [fw, fh],
          "columns": ["frame", "class_id", "x0", "y0", "x1", "y1", "difficult"], "boxes": gt_boxes}
    return sorted(seen), gt
