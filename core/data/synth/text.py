"""Printed words: fonts, the vocabularies of brands, flavours and signs, and text fitted into a box."""

from __future__ import annotations

import cv2
import numpy as np

from core.data.synth.colors import Color
from core.data.synth.draw import _blend_mask

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
