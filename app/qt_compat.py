"""Keep the app alive on PySide6 6.12.0 (abi3 wheel) under CPython 3.11.

Why: that wheel drops one reference to `None` on every call of a void Qt method (`setText`, `setValue`,
`processEvents`, ...) and one to `True`/`False` on every `Signal.emit`. On 3.12+ these objects are
immortal and nothing happens; on 3.11 their counts reach zero after some tens of thousands of calls and
the interpreter aborts ("Fatal Python error: none_dealloc / bool_dealloc") -- minutes into a session with
a progress bar running. Measured here: 1000 `QLabel.setText` calls lower `sys.getrefcount(None)` by 1000.

What: if the leak is detected at startup, give None/True/False the huge reference count that CPython 3.12
gives immortal objects. These singletons are never freed anyway, so a larger count changes nothing else.
The check runs once; a fixed PySide6 (or Python >= 3.12) makes it a no-op.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

IMMORTAL_REFS = 1 << 40
_PROBE_CALLS = 256


def void_calls_leak_none() -> bool:
    """True when calling a void Qt method drops references to None (the PySide6 6.12.0 abi3 bug)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    return before - sys.getrefcount(None) >= _PROBE_CALLS // 2


def pin_singletons() -> bool:
    """Make None/True/False effectively immortal when the leak is present; returns whether it was applied."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal objects already
    if sys.getrefcount(None) > IMMORTAL_REFS // 2:
        return True  # applied earlier in this process
    if not void_calls_leak_none():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += IMMORTAL_REFS
    log.info("PySide6 drops references to None/True/False on this Python; pinned them as immortal")
    return True
