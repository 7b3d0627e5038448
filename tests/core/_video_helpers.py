"""A tiny synthetic video shared by the video and comparison tests."""

from pathlib import Path

import cv2
import numpy as np

W, H, N, FPS = 160, 120, 12, 10.0


def frame_rgb(i: int) -> np.ndarray:
    """Frame i: a flat colour that encodes i and a white patch moving right."""
    f = np.zeros((H, W, 3), np.uint8)
    f[:, :] = (min(255, 20 * i), 60, 120)
    f[30:60, 8 * i:8 * i + 30] = 255
    return f


def write_cv2(path: Path, fourcc: str, n: int = N) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
    assert w.isOpened()
    for i in range(n):
        w.write(cv2.cvtColor(frame_rgb(i), cv2.COLOR_RGB2BGR))
    w.release()
    return path
