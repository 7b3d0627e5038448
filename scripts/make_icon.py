"""Draw the app icon, resources/icons/os2d-studio.png (256x256 RGBA): a shelf of products, one found by a
detection box. Reproduce: `python scripts/make_icon.py`. PyInstaller turns the PNG into the Windows .ico /
macOS .icns itself (with Pillow installed), so only the PNG is kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

SIZE = 256


def draw(size: int = SIZE) -> np.ndarray:
    s = 4  # drawn at 4x and scaled down: smooth edges
    n = size * s
    img = np.zeros((n, n, 4), np.uint8)
    r = 44 * s  # rounded-square background
    bg = (40, 58, 92, 255)
    cv2.rectangle(img, (r, 0), (n - r, n), bg, -1)
    cv2.rectangle(img, (0, r), (n, n - r), bg, -1)
    for cx, cy in ((r, r), (n - r, r), (r, n - r), (n - r, n - r)):
        cv2.circle(img, (cx, cy), r, bg, -1, cv2.LINE_AA)
    shelf_y = 178 * s
    cv2.rectangle(img, (28 * s, shelf_y), (228 * s, shelf_y + 12 * s), (170, 140, 105, 255), -1)
    products = [(36, 92, 78, (225, 85, 70)), (84, 70, 56, (245, 190, 60)), (146, 102, 46, (90, 170, 230)),
                (198, 76, 28, (150, 205, 110))]  # (x, top, width, RGB)
    for x, top, w, rgb in products:
        cv2.rectangle(img, (x * s, top * s), ((x + w - 4) * s, shelf_y - 2 * s), (*rgb, 255), -1)
        cv2.rectangle(img, ((x + 6) * s, (top + 18) * s), ((x + w - 10) * s, (top + 34) * s), (255, 255, 255, 255), -1)
    # the detection: a bright box with a score tab around the second product
    x0, y0, x1, y1 = 78 * s, 60 * s, 146 * s, 182 * s
    cv2.rectangle(img, (x0, y0), (x1, y1), (80, 255, 120, 255), 7 * s, cv2.LINE_AA)
    cv2.rectangle(img, (x0 - 3 * s, y0 - 26 * s), (x0 + 52 * s, y0), (80, 255, 120, 255), -1)
    cv2.putText(img, "0.9", (x0 + 4 * s, y0 - 6 * s), cv2.FONT_HERSHEY_SIMPLEX, 0.75 * s, (20, 40, 30, 255),
                2 * s, cv2.LINE_AA)
    cv2.putText(img, "OS2D", (70 * s, 236 * s), cv2.FONT_HERSHEY_SIMPLEX, 1.35 * s, (235, 240, 250, 255), 3 * s,
                cv2.LINE_AA)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def main(out: str = "resources/icons/os2d-studio.png") -> None:
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    rgba = draw()
    if not cv2.imwrite(str(p), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)):
        raise SystemExit(f"could not write {p}")
    print(f"wrote {p} ({rgba.shape[1]}x{rgba.shape[0]})")


if __name__ == "__main__":
    main(*sys.argv[1:])
