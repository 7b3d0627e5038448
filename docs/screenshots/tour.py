"""What the screenshot tours share: the real main window on a throwaway settings file, waiting for
jobs as a user would, and capturing what X drew (the whole screen, through Qt)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


class Tour:
    def __init__(self, size: str, prefix: str) -> None:
        import app  # noqa: F401 - before any Qt use (app/qt_compat.py)
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from app.dialogs import HeadlessDialogs
        from app.main import configure_pyqtgraph
        from app.main_window import MainWindow
        from app.state import Session

        self.qapp = QApplication.instance() or QApplication([sys.argv[0]])
        configure_pyqtgraph()
        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        settings = QSettings(str(self.tmp / "settings.ini"), QSettings.Format.IniFormat)
        self.window = w = MainWindow(Session(settings), HeadlessDialogs())
        width, height = (int(v) for v in size.split("x"))
        w.setGeometry(0, 0, width, height)
        w.show()

    def settle(self, seconds: float = 0.6) -> None:
        t = time.monotonic()
        while time.monotonic() - t < seconds:
            self.qapp.processEvents()
            time.sleep(0.02)

    def click(self, button) -> None:
        """A real mouse click; a disabled button stops the tour with the reason its tooltip gives."""
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        if not button.isEnabled():
            raise SystemExit(f"'{button.text()}' is disabled: {button.toolTip()}")
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)

    def wait_for(self, what: str, ready, limit: float = 3600, stop_on: tuple[str, ...] = ("error",)) -> None:
        """Keep the event loop running until `ready()`; stop the tour on a dialog of a kind in `stop_on`."""
        t = time.monotonic()
        while not ready():
            if time.monotonic() - t > limit:
                raise SystemExit(f"{what}: still waiting after {limit:.0f} s")
            self.qapp.processEvents()
            time.sleep(0.02)
        problems = [m for m in self.window.dialogs.messages if m[0] in stop_on]
        if problems:
            raise SystemExit(f"{what}: {problems[-1]}")
        print(f"{what}: {time.monotonic() - t:.1f} s", flush=True)

    def run(self, step: str, started: bool) -> None:
        """Wait for the job a click started; stop the tour on a refusal or an error dialog."""
        from app.main import wait_until_idle

        w = self.window
        if not started:
            raise SystemExit(f"{step}: did not start ({w.dialogs.messages[-1:]})")
        t = time.monotonic()
        if not wait_until_idle(w.runner, 3600):
            raise SystemExit(f"{step}: still running")
        errors = [m for m in w.dialogs.messages if m[0] == "error"]
        if errors:
            raise SystemExit(f"{step}: {errors[-1]}")
        print(f"{step}: {time.monotonic() - t:.1f} s", flush=True)

    def capture(self, path: Path) -> None:
        self.window.raise_()
        self.window.activateWindow()
        self.settle(1.0)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The whole X screen (window frame, open dialogs) through Qt, so no screenshot tool is needed.
        from PySide6.QtGui import QGuiApplication

        if not QGuiApplication.primaryScreen().grabWindow(0).save(str(path)):
            raise SystemExit(f"could not write the screenshot {path}")
        print(f"wrote {path}", flush=True)

    def close(self) -> None:
        self.window.session.dirty = False
        self.window.close()
