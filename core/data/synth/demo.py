"""The demo video: a camera panning along one large val shelf at the model's native scale, with the
val classes it shows and its per-frame ground truth."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from core.data.synth.catalog import _Library, _scene
from core.data.synth.config import (CUT_DIFFICULT, DEMO_FPS, DEMO_FRAMES, DEMO_OBJECT_PX, DEMO_SHELF_CLASSES,
                                    DEMO_SHELF_SIZE, DEMO_SIZE, MIN_VISIBLE, _rng, _T_DEMO)
from core.data.video_gt import VIDEO_GT_FORMAT
from core.jobs import CancelToken


def write_demo(root: Path, lib: _Library, val_ids: Sequence[int], *, cancel: CancelToken) -> dict[str, str]:
    """Write demo.mp4, demo_classes.json (the val classes seen) and demo_gt.json into `root`; returns
    the dataset.json keys that name them."""
    ids, gt = _write_demo_video(root / "demo.mp4", lib, val_ids, cancel=cancel)
    (root / "demo_classes.json").write_text(json.dumps(
        {"class_ids": ids, "split": "val", "frames": DEMO_FRAMES, "fps": DEMO_FPS,
         "size": list(DEMO_SIZE)}, indent=2) + "\n", encoding="utf-8")
    (root / "demo_gt.json").write_text(json.dumps(gt, separators=(",", ":")) + "\n", encoding="utf-8")
    return {"demo_video": "demo.mp4", "demo_classes": "demo_classes.json", "demo_ground_truth": "demo_gt.json"}


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
