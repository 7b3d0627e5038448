"""Vendor usage telemetry off by default.

NNCF and OpenVINO's converter report usage through `openvino_telemetry` when it can be imported, and
NNCF's import alone writes a client id under `~/intel/` unless a consent file says no. A desktop tool
must not do either without asking, so before the deploy code imports them we make `openvino_telemetry`
unimportable for this process: both libraries then fall back to their own no-op stubs. Nothing is
written to the user's home and no consent file is created on their behalf. A user who wants to send
Intel usage data sets `OS2D_STUDIO_INTEL_TELEMETRY=1`; the library's own consent rules apply then.
"""

from __future__ import annotations

import os
import sys

OPT_IN_ENV = "OS2D_STUDIO_INTEL_TELEMETRY"
_PACKAGE = "openvino_telemetry"


def telemetry_allowed() -> bool:
    return os.environ.get(OPT_IN_ENV, "").strip() == "1"


def disable_vendor_telemetry() -> bool:
    """Block `openvino_telemetry` (idempotent); True when telemetry is off for this process."""
    if telemetry_allowed():
        return False
    if sys.modules.get(_PACKAGE, False) is not None:
        # `None` in sys.modules makes `import openvino_telemetry` raise ImportError
        sys.modules[_PACKAGE] = None  # type: ignore[assignment]
    _silence_loaded_nncf()
    return True


def _silence_loaded_nncf() -> None:
    """NNCF imported before us (by the user's own code) holds a live client: swap in its stub."""
    wrapper = sys.modules.get("nncf.telemetry.wrapper")
    if wrapper is None:
        return
    stub_cls = getattr(wrapper, "NNCFTelemetryStub", None)
    if stub_cls is None or isinstance(getattr(wrapper, "telemetry", None), stub_cls):
        return
    stub = stub_cls()
    for name in ("nncf.telemetry.wrapper", "nncf.telemetry.decorator", "nncf.telemetry"):
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "telemetry"):
            setattr(mod, "telemetry", stub)
