"""Drawing detections on images (OpenCV), shared by the CLI, video comparison and tests."""

from __future__ import annotations

import colorsys
from typing import TYPE_CHECKING, Protocol, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:
    from core.detect import Detections

ONLY_COLOR = (255, 0, 255)  # magenta: a box the other side of a comparison did not find


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


# -- comparison panes ------------------------------------------------------------------------------
class PaneResult(Protocol):
    """One side of a comparison on one frame (`core.compare.SideResult`)."""

    detections: Detections
    only_here: np.ndarray  # bool per detection: the other side has no partner for it
    seconds: float
    fps: float


def _dashed_rect(img: np.ndarray, p1, p2, color, thickness: int, dash: int = 8) -> None:
    x1, y1 = p1
    x2, y2 = p2
    for (a, b) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for s in range(0, max(length, 1), dash * 2):
            e = min(s + dash, length)
            t0, t1 = s / max(length, 1), e / max(length, 1)
            q0 = (int(round(a[0] + (b[0] - a[0]) * t0)), int(round(a[1] + (b[1] - a[1]) * t0)))
            q1 = (int(round(a[0] + (b[0] - a[0]) * t1)), int(round(a[1] + (b[1] - a[1]) * t1)))
            cv2.line(img, q0, q1, color, thickness, cv2.LINE_AA)


def boxes_text(n: int) -> str:
    """'1 box', '3 boxes'."""
    return f"{n} box" if n == 1 else f"{n} boxes"


def _pane_parts(res: PaneResult | Detections) -> tuple[Detections, np.ndarray, float, float]:
    """(detections, only-here flags, seconds, fps); plain Detections flag nothing."""
    if hasattr(res, "only_here"):
        return res.detections, np.asarray(res.only_here, bool), res.seconds, res.fps
    return res, np.zeros(len(res), bool), res.seconds, 1.0 / res.seconds if res.seconds > 0 else 0.0


def render_pane(frame: np.ndarray, res: PaneResult | Detections, names: Sequence[str], fps: float | None = None,
                title: str = "", footer: bool = True) -> np.ndarray:
    """One pane: boxes with scores, boxes only this side found thick and dashed-magenta with an "only" tag,
    a title at the top and (with `footer`) "FPS | latency | boxes" at the bottom. A GUI that prints those
    numbers beside a scaled-down pane leaves the footer out: drawn into the pixels it shrinks unreadably."""
    d, only, seconds, side_fps = _pane_parts(res)
    h, w = frame.shape[:2]
    pane = draw_detections(frame, d.boxes, d.scores, d.labels, list(names), highlight=only)
    t = max(1, round(min(h, w) / 300))
    scale = max(0.35, min(0.6, min(h, w) / 800))
    for box in d.boxes[only]:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        _dashed_rect(pane, (x1 - 2 * t, y1 - 2 * t), (x2 + 2 * t, y2 + 2 * t), ONLY_COLOR, t)
        (tw, th), base = cv2.getTextSize("only", cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, 1)
        yb = min(h - 1, y2 + 2 * t + th + base + 2)
        cv2.rectangle(pane, (x1 - 2 * t, yb - th - base - 2), (x1 - 2 * t + tw + 4, yb), ONLY_COLOR, -1)
        cv2.putText(pane, "only", (x1 - 2 * t + 2, yb - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8,
                    (255, 255, 255), 1, cv2.LINE_AA)
    lh = int(30 * scale / 0.6)
    if title:
        put_label(pane, title, (8, lh), scale)
    if footer:
        fps = side_fps if fps is None else fps
        n_only = int(only.sum())
        put_label(pane, f"{fps:.1f} FPS | {seconds * 1e3:.0f} ms | {boxes_text(len(d))}"
                  + (f", {n_only} only here" if n_only else ""), (8, h - max(6, lh // 3)), scale)
    return pane


def render_side_by_side(frame: np.ndarray, res_orig: PaneResult | Detections, res_pruned: PaneResult | Detections,
                        names: Sequence[str], fps_orig: float | None = None, fps_pruned: float | None = None, *,
                        titles: tuple[str, str] = ("original", "pruned"), gap: int = 4) -> np.ndarray:
    """Two panes, original | pruned, separated by a dark bar: RGB uint8 [H, 2W + gap, 3]."""
    left = render_pane(frame, res_orig, names, fps_orig, titles[0])
    right = render_pane(frame, res_pruned, names, fps_pruned, titles[1])
    bar = np.full((frame.shape[0], gap, 3), 32, np.uint8)
    return np.ascontiguousarray(np.concatenate([left, bar, right], axis=1))
