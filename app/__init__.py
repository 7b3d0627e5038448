"""os2d-studio desktop app: PySide6 + pyqtgraph views over the Qt-free `core` engine.

Everything long (loading, detection, later importance/pruning/training) runs as a `core` job in the one
generic worker (`app.worker`); views read and write the `Session` (`app.state`) and never talk to each other.
"""

from app.qt_compat import pin_singletons

__all__ = ["__version__"]

__version__ = "0.1.0"

# Before any other Qt use: PySide6 6.12.0 on CPython 3.11 would otherwise abort the process after some
# tens of thousands of Qt calls (see app/qt_compat.py).
pin_singletons()
