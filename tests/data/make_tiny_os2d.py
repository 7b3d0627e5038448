"""Regenerate tests/data/tiny_os2d: a 3-image dataset in the official OS2D CSV format.

Deterministic (no randomness), so rerunning it reproduces the committed files. Three 16x16 class
patches are pasted into 64x48 scenes at the annotated boxes; box coordinates are whole pixels
divided by the image size, so tests can check them exactly.

    python tests/data/make_tiny_os2d.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.data.grozi import GroundTruthBox, write_dataset

W, H = 64, 48
PATCH = 16
CLASS_COLORS = {0: (220, 40, 40), 1: (40, 200, 60), 2: (40, 80, 230)}
# imageid -> (split, [(classid, difficult, (x1, y1, x2, y2) in pixels)])
SCENES = {
    0: ("train", [(0, 0, (4, 4, 20, 20)), (1, 0, (30, 10, 46, 26))]),
    1: ("val", [(0, 0, (40, 24, 56, 40)), (2, 1, (8, 28, 24, 44))]),
    2: ("val", [(1, 0, (2, 2, 18, 18)), (2, 0, (24, 16, 56, 40))]),
}


def class_patch(cid: int) -> np.ndarray:
    """A coloured square with a class-specific pattern so patches differ in more than colour."""
    img = np.full((PATCH, PATCH, 3), CLASS_COLORS[cid], dtype=np.uint8)
    yy, xx = np.mgrid[0:PATCH, 0:PATCH]
    mask = [(xx // 4 + yy // 4) % 2 == 0, (xx // 4) % 2 == 0, (yy // 4) % 2 == 0][cid]
    img[mask] = img[mask] // 3
    return img


def scene(iid: int, objects) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    base = (96 + 40 * np.sin(xx / 7.0 + iid) * np.cos(yy / 5.0)).astype(np.uint8)
    img = np.repeat(base[:, :, None], 3, axis=2)
    for cid, _, (x1, y1, x2, y2) in objects:
        patch = np.asarray(Image.fromarray(class_patch(cid)).resize((x2 - x1, y2 - y1), Image.NEAREST))
        img[y1:y2, x1:x2] = patch
    return img


def main(root: Path) -> None:
    (root / "classes" / "images").mkdir(parents=True, exist_ok=True)
    (root / "src" / "images").mkdir(parents=True, exist_ok=True)
    for cid in CLASS_COLORS:
        Image.fromarray(class_patch(cid)).save(root / "classes" / "images" / f"class_{cid}.png")
    boxes = []
    for iid, (split, objects) in SCENES.items():
        Image.fromarray(scene(iid, objects)).save(root / "src" / "images" / f"scene_{iid}.png")
        for cid, difficult, (x1, y1, x2, y2) in objects:
            boxes.append(GroundTruthBox(imageid=iid, classid=cid, box=(x1 / W, y1 / H, x2 / W, y2 / H), split=split,
                                        difficult=bool(difficult)))
    write_dataset(root, boxes, class_images={cid: f"class_{cid}.png" for cid in CLASS_COLORS},
                  scene_images={iid: f"scene_{iid}.png" for iid in SCENES}, name="tiny_os2d",
                  csv_name="classes/tiny.csv", eval_scale=64, decimals=None)


if __name__ == "__main__":
    main(Path(__file__).resolve().parent / "tiny_os2d")
