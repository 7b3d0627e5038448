"""Image loading and OS2D preprocessing.

OS2D feeds PIL images converted to RGB, resized with PIL's default (antialiased bicubic) so that
h*w ≈ S², then ToTensor and ImageNet normalisation. We read with OpenCV (EXIF rotation applied,
grayscale/RGBA/16-bit handled) and resize with Pillow exactly as OS2D does.
"""

from __future__ import annotations

from core.errors import InputError

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EVAL_PYRAMID_SCALES = (0.5, 0.625, 0.8, 1.0, 1.2, 1.4, 1.6)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageError(InputError):
    """An image that cannot be used; the message names the file and the problem."""


def to_rgb_uint8(img: np.ndarray, source="<array>") -> np.ndarray:
    """Any OpenCV-decoded array (gray, BGR, BGRA, 16-bit, float) → RGB uint8, alpha dropped as PIL does."""
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageError(source, f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ImageError(source, f"unsupported image shape {img.shape}")
    if img.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    return np.ascontiguousarray(img[:, :, 2::-1])  # BGR(A) → RGB


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 [H, W, 3], applying EXIF orientation."""
    path = Path(path)
    if not path.exists():
        raise ImageError(path, "file not found")
    if path.is_dir():
        raise ImageError(path, "is a directory, expected an image file")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ImageError(path, "file is empty")
    # IMREAD_ANYDEPTH|ANYCOLOR keeps 16-bit and gray; unlike IMREAD_UNCHANGED it honours EXIF orientation
    img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None:
        raise ImageError(path, "cannot decode image (corrupt file or unsupported format)")
    if img.shape[0] < 2 or img.shape[1] < 2:
        raise ImageError(path, f"image is too small ({img.shape[1]}x{img.shape[0]} pixels)")
    return to_rgb_uint8(img, path)


def size_preserving_aspect(h: int, w: int, target_size: float) -> tuple[int, int]:
    """OS2D's resize rule: keep the aspect ratio and make h*w ≈ target_size²."""
    ratio = float(h) / w
    new_w = int(target_size / math.sqrt(ratio))
    new_h = int(target_size * math.sqrt(ratio))
    return max(new_h, 1), max(new_w, 1)


def resize_rgb(img: np.ndarray, hw: tuple[int, int]) -> torch.Tensor:
    """uint8 RGB [H, W, 3] → uint8-valued float tensor [3, h, w].

    Pillow's own bicubic resize (OS2D's `Image.resize` default) gives pixel-identical inputs;
    OpenCV's or torch's bicubic differ by a few grey levels at edges.
    """
    if (img.shape[0], img.shape[1]) != tuple(hw):
        img = np.array(Image.fromarray(img).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))
    # planar uint8 first, then float: the float passes after it run on contiguous memory (3x faster
    # on a video frame than on the interleaved view), and exported graphs take planar input
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).contiguous().float()


def normalize(t255: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=t255.dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=t255.dtype).view(3, 1, 1)
    return (t255 / 255.0).sub_(mean).div_(std)  # in place after the first pass: the same arithmetic


def denormalize(t: torch.Tensor) -> np.ndarray:
    """Normalised [3, h, w] tensor → RGB uint8 array (for drawing and debugging)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (t.detach().cpu() * std + mean).mul(255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def preprocess(img: np.ndarray, target_size: float) -> torch.Tensor:
    """RGB uint8 → normalised [3, h, w] tensor with h*w ≈ target_size²."""
    hw = size_preserving_aspect(img.shape[0], img.shape[1], target_size)
    return normalize(resize_rgb(img, hw))


def preprocess_class_image(img: np.ndarray, class_image_size: int = 240) -> torch.Tensor:
    return preprocess(img, class_image_size)


@dataclass(frozen=True)
class PyramidLevelImage:
    tensor: torch.Tensor  # [3, h, w] normalised
    scale_to_original: tuple[float, float]  # (sx, sy): resized pixels → original pixels


def pyramid(img: np.ndarray, target_size: float, scales: Sequence[float] = (1.0,)) -> list[PyramidLevelImage]:
    """The evaluation pyramid: one resized copy per scale of `target_size`."""
    h0, w0 = img.shape[:2]
    out = []
    for s in scales:
        t = preprocess(img, target_size * s)
        out.append(PyramidLevelImage(t, (w0 / t.shape[-1], h0 / t.shape[-2])))
    return out


def list_images(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(folder, "not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
