"""Entry script of the packaged app (PyInstaller freezes this file): the same `main` as `python -m app`.

`import app` comes first, before any other Qt use (it pins the PySide6 singletons, see app/qt_compat.py).
`freeze_support` lets a frozen build on Windows/macOS start multiprocessing children (spawn) correctly.
"""

import multiprocessing
import sys

import app  # noqa: F401  (first: PySide6 workaround)
from app.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
