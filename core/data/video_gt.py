"""Per-frame ground truth of a video (the sample demo video's `demo_gt.json`, written by `synth`).

Why: a side-by-side demo that only shows boxes lets a pruned model look as good as its original while
finding other things; with ground truth each side gets a running recall and an mAP on the very frames
the user watches. Class images are matched to ground-truth classes by the class id their file name ends
with (`87.png`, `class_87.png`), the names the benchmark and the samples use.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import InputError

VIDEO_GT_FORMAT = "os2d-studio-video-gt"


class GroundTruthError(InputError):
    """A ground-truth file that cannot be used; the message names the file and the problem."""


def class_id_from_name(name: str) -> int | None:
    """87 for 'class_87', '87' or 'class_87.png'; None when the name ends with no number."""
    m = re.search(r"(\d+)$", Path(str(name)).stem)
    return int(m.group(1)) if m else None


@dataclass(frozen=True, eq=False)
class VideoGroundTruth:
    source: str
    frames: int
    size: tuple[int, int]  # (width, height) the boxes are in
    frame_index: np.ndarray  # [N] int
    class_ids: np.ndarray  # [N] int
    boxes: np.ndarray  # [N, 4] float32 xyxy pixels
    difficult: np.ndarray  # [N] bool

    def for_frame(self, index: int, labels_of: dict[int, int], image_size: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes, labels, difficult) of frame `index` for the classes in `labels_of` (class id → label
        of the class bank; other classes are not asked for and are left out), scaled to `image_size`."""
        keep = (self.frame_index == index) & np.isin(self.class_ids, list(labels_of))
        boxes = self.boxes[keep].copy()
        if image_size is not None and tuple(image_size) != tuple(self.size):
            sx, sy = image_size[0] / self.size[0], image_size[1] / self.size[1]
            boxes *= np.array([sx, sy, sx, sy], np.float32)
        labels = np.array([labels_of[int(c)] for c in self.class_ids[keep]], np.int64)
        return boxes, labels, self.difficult[keep].copy()


def labels_for(class_names: Sequence[str]) -> dict[int, int]:
    """class id → label index, for the class images whose names carry a class id."""
    out: dict[int, int] = {}
    for label, name in enumerate(class_names):
        cid = class_id_from_name(name)
        if cid is not None and cid not in out:
            out[cid] = label
    return out


def load_video_ground_truth(path: str | os.PathLike) -> VideoGroundTruth:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GroundTruthError(path, "file not found") from None
    except IsADirectoryError:
        raise GroundTruthError(path, "is a directory, expected a ground-truth JSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GroundTruthError(path, f"not a readable JSON file ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != VIDEO_GT_FORMAT:
        raise GroundTruthError(path, f"not a video ground-truth file (expected \"format\": \"{VIDEO_GT_FORMAT}\")")
    try:
        rows = np.asarray(data["boxes"], dtype=np.float64).reshape(-1, 7)
        size = (int(data["size"][0]), int(data["size"][1]))
        frames = int(data["frames"])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise GroundTruthError(path, f"bad ground-truth content ({type(e).__name__}: {e})") from None
    if not np.isfinite(rows).all() or (rows[:, 4] < rows[:, 2]).any() or (rows[:, 5] < rows[:, 3]).any():
        raise GroundTruthError(path, "boxes must be finite with x1 ≥ x0 and y1 ≥ y0")
    return VideoGroundTruth(str(path), frames, size, rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64),
                            rows[:, 2:6].astype(np.float32), rows[:, 6].astype(bool))
