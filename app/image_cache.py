"""Decoded images shared by the views: the target and the class sources are decoded once, not at every
preview or class-list refresh. Qt-free."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from core.data.images import load_image


class ImageCache:
    """The last `capacity` images used, by resolved path (least recently used dropped first)."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, path: str | os.PathLike) -> np.ndarray:
        """RGB uint8 [H, W, 3]; raises core's `ImageError` with the file and the problem."""
        key = str(Path(path).resolve())
        if key in self._images:
            self._images.move_to_end(key)
            return self._images[key]
        img = load_image(key)
        self._images[key] = img
        while len(self._images) > self.capacity:
            self._images.popitem(last=False)
        return img

    def region(self, path: str | os.PathLike, crop: Sequence[int] | None = None) -> np.ndarray:
        """The image, or its (x0, y0, x1, y1) crop as a contiguous array."""
        img = self.get(path)
        if crop is None:
            return img
        x0, y0, x1, y1 = crop
        return np.ascontiguousarray(img[y0:y1, x0:x1])
