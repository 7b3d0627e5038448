"""What a product looks like, decided from its seed alone: the family (brand) and the variant."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from core.data.synth.colors import Color, _hsv, _ink_for, _luma, _vivid
from core.data.synth.text import _FLAVOURS, _FONTS, _brand_name


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
