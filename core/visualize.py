"""Drawing detections on images (OpenCV), shared by the CLI, video comparison and tests."""

from __future__ import annotations

import colorsys
from typing import Sequence

import cv2
import numpy as np


def class_color(label: int) -> tuple[int, int, int]:
    """A stable, well-separated RGB colour per class id (golden-ratio hue steps)."""
    h = (label * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(
    rgb: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str] | None = None,
    *,
    thickness: int | None = None,
    highlight: np.ndarray | None = None,
) -> np.ndarray:
    """Return a copy of `rgb` with boxes and "name score" tags; `highlight` marks boxes drawn dashed-thick."""
    out = np.ascontiguousarray(rgb.copy())
    h, w = out.shape[:2]
    t = thickness or max(1, round(min(h, w) / 300))
    font_scale = max(0.4, min(h, w) / 1000)
    for i, (box, score, label) in enumerate(zip(boxes, scores, labels)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = class_color(int(label))
        thick = t * 2 if highlight is not None and highlight[i] else t
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick, cv2.LINE_AA)
        name = class_names[int(label)] if class_names is not None and 0 <= int(label) < len(class_names) else str(int(label))
        text = f"{name} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        ty = max(y1, th + base + 2)
        cv2.rectangle(out, (x1, ty - th - base - 2), (x1 + tw + 4, ty), color, -1)
        cv2.putText(out, text, (x1 + 2, ty - base - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def put_label(rgb: np.ndarray, text: str, org: tuple[int, int] = (8, 24), scale: float = 0.6) -> None:
    """Write a white-on-black caption in place (FPS overlays, pane titles)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(rgb, (x - 4, y - th - 4), (x + tw + 4, y + base + 2), (0, 0, 0), -1)
    cv2.putText(rgb, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def save_rgb(path, rgb: np.ndarray) -> None:
    """Write an RGB image atomically (format from the suffix)."""
    from pathlib import Path

    from core.io import atomic_write_bytes

    from core.errors import InputError

    suffix = Path(path).suffix.lower() or ".png"
    try:
        ok, buf = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:  # OpenCV has no writer for the suffix
        ok = False
    if not ok:
        raise InputError(path, f"cannot write an image with suffix '{suffix}' (use .png or .jpg)")
    atomic_write_bytes(path, buf.tobytes())
