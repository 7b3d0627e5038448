"""Where the bundled default model, sample media and app icon live.

Looked up in order: `OS2D_STUDIO_RESOURCES` (a folder laid out like `resources/`), the PyInstaller bundle
(`sys._MEIPASS`: `_internal/` beside the executable of a one-folder build, which holds `resources/`;
see packaging/os2d-studio.spec), else the source tree (`resources/` beside `core/`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    env = os.environ.get("OS2D_STUDIO_RESOURCES")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)  # PyInstaller one-folder build
    if bundle and (Path(bundle) / "resources").is_dir():
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def default_model_path() -> Path:
    return resources_dir() / "models" / "default.pt"


def companion_model_path() -> Path:
    """The default model pruned 50 % and fine-tuned (resources/models/README-pruned.md): what the app
    opens beside the original, so a comparison is worth looking at from the first start."""
    return resources_dir() / "models" / "default-pruned50.pt"


def samples_dir() -> Path:
    return resources_dir() / "samples"


def sample_manifest() -> dict | None:
    """`samples/samples.json` (which files are the sample shelf, its classes, the demo video and its
    ground truth), or None when the samples are not installed or the manifest is unreadable."""
    import json

    try:
        data = json.loads((samples_dir() / "samples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def benchmark_dir() -> Path:
    """The small benchmark bundled with the app (OS2D CSV format): a train split for calibration and
    fine-tuning, a val split of classes the default model never trained on (scripts/make_benchmark.py)."""
    return samples_dir() / "benchmark"


def icon_path() -> Path:
    """The app icon (PNG, 256x256; scripts/make_icon.py draws it)."""
    return resources_dir() / "icons" / "os2d-studio.png"


def require_default_model() -> Path:
    """The embedded default model, or a message that says how to get one."""
    p = default_model_path()
    if not p.exists():
        raise FileNotFoundError(
            f"{p}: the embedded default model is missing; pass --model CKPT (an OS2D checkpoint or an "
            "os2d-studio model), or train one with `os2d-studio train` (see resources/models/README.md)")
    return p
