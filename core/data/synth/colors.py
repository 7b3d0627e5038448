"""Packaging colours: readable ink, vivid and black/white packaging, HSV helpers (BGR, as OpenCV draws)."""

from __future__ import annotations

import colorsys

import numpy as np

Color = tuple[int, int, int]  # BGR, as OpenCV draws and writes


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
