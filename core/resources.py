"""Where the bundled default model and sample media live (source tree, installed, or PyInstaller bundle)."""

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


def samples_dir() -> Path:
    return resources_dir() / "samples"


def require_default_model() -> Path:
    """The embedded default model, or a message that says how to get one."""
    p = default_model_path()
    if not p.exists():
        raise FileNotFoundError(
            f"{p}: the embedded default model is missing; pass --model CKPT (an OS2D checkpoint or an "
            "os2d-studio model), or train one with `os2d-studio train` (see resources/models/README.md)")
    return p
