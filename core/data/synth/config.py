"""What a synthetic benchmark is: its size and seed, the constants that shape every scene, and how random
streams are keyed (change any constant here and GENERATOR_VERSION must change: the output does)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

GENERATOR_VERSION = 2  # 2: the demo video at native scale, with per-frame ground truth
CSV_NAME = "synth.csv"

# A box is "difficult" (ignored by the official mAP) when more than half of the product is hidden
# by other things, or a noticeable part of it lies outside the image.
OCCLUDED_DIFFICULT = 0.5  # visible fraction below this -> difficult
CUT_DIFFICULT = 0.8  # fraction of the product inside the image below this -> difficult
MIN_VISIBLE = 0.06  # below this (visible x inside) a product is practically not there: not annotated
OBJECT_HEIGHT = (0.22, 0.45)  # product height as a fraction of image height: at the eval scale products
# are 140-280 px, the range OS2D's 240-px anchors and transformations cover (GroZi at 1280 is similar)
CLASS_IMAGE_SIDE = (160, 320)  # longer side of a class image in pixels
SPRITE_SIDE = 400  # products are drawn once at this longer side, then resized per placement
DISTRACTOR_POOL = 150  # designs of products that have no class image (never annotated)
DEMO_FRAMES, DEMO_FPS, DEMO_SIZE = 192, 24, (640, 480)
DEMO_SHELF_SIZE = (3600, 1280)
DEMO_SHELF_CLASSES = 8  # val classes on the demo shelf; the sample manifest uses some as class images
DEMO_OBJECT_PX = 230.0  # median product height in a demo frame: what the model sees at its own scale

# seed tags: the second element of every seed sequence, so streams never collide
_T_FAMILY, _T_CLASS, _T_DISTRACTOR, _T_SCENE, _T_PLAN, _T_DEMO, _T_CLASSIMG = 1, 2, 3, 4, 5, 6, 7


@dataclass(frozen=True)
class SynthConfig:
    """Size and seed of a generated benchmark; the defaults mimic GroZi-3.2k at a laptop budget."""

    num_train_classes: int = 80
    num_val_classes: int = 20
    num_train_images: int = 600
    num_val_images: int = 100
    image_size: tuple[int, int] = (960, 720)  # (width, height)
    eval_scale: int = 720
    seed: int = 0
    demo_video: bool = True

    def __post_init__(self) -> None:
        for name in ("num_train_classes", "num_val_classes", "num_train_images", "num_val_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SynthConfig.{name} must be a positive integer, got {value!r}")
        size = tuple(self.image_size)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 96 for v in size):
            raise ValueError(f"SynthConfig.image_size must be (width, height) of at least 96 px, got {self.image_size!r}")
        object.__setattr__(self, "image_size", size)  # a list from JSON would make the config unhashable
        if isinstance(self.eval_scale, bool) or not isinstance(self.eval_scale, int) or self.eval_scale <= 0:
            raise ValueError(f"SynthConfig.eval_scale must be a positive integer, got {self.eval_scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"SynthConfig.seed must be a non-negative integer, got {self.seed!r}")


@dataclass(frozen=True)
class SynthResult:
    """Where the benchmark went, what it holds, and how long it took."""

    out_dir: Path
    counts: Mapping[str, int]
    seconds: float


def _rng(*key: int) -> np.random.Generator:
    """The random stream for one thing (a class, a scene...): keyed, so it never depends on render order."""
    return np.random.default_rng([int(k) for k in key])
