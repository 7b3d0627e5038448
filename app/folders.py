"""Where the app suggests saving what it makes when no project folder says otherwise.

Never inside the installed app (its `resources/` may be read-only, and an update would replace it), never
a temporary folder (the user would lose the file) and never the current directory (a desktop app's is
arbitrary): `Documents/os2d-studio/` (Qt's documents location), created on first use.
`OS2D_STUDIO_DOCUMENTS` overrides it (tests, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QStandardPaths


def documents_dir() -> Path:
    env = os.environ.get("OS2D_STUDIO_DOCUMENTS")
    if env:
        root = Path(env)
    else:
        docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        root = Path(docs or Path.home()) / "os2d-studio"
    root.mkdir(parents=True, exist_ok=True)
    return root


def save_folder(kind: str) -> Path:
    """`Documents/os2d-studio/<kind>` (models, projects, benchmarks, videos), created on first use."""
    p = documents_dir() / kind
    p.mkdir(parents=True, exist_ok=True)
    return p
