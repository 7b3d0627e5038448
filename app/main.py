"""Entry point: `python -m app [CKPT] [--self-test] [--screenshot PATH]`.

`--self-test` runs `app.selftest`; `--screenshot` renders the window to a PNG once startup work is done
(for docs). pyqtgraph's global options are set here, once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("app")

TABS = ("importance", "pruning", "detection", "video", "metrics")


def configure_pyqtgraph() -> None:
    """Global pyqtgraph options: images are indexed [row, col] like numpy and OpenCV."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="os2d-studio-gui", description="os2d-studio desktop app")
    p.add_argument("ckpt", nargs="?", help="model to open: an official OS2D checkpoint or an os2d-studio model "
                                           "(default: the bundled default model, when installed)")
    p.add_argument("--project", help="open an os2d-studio project file (.os2d.json)")
    p.add_argument("--self-test", action="store_true",
                   help="run the app offscreen through its self-test steps and exit (0: all passed)")
    p.add_argument("--screenshot", metavar="PATH", help="render the window to PATH (PNG) after startup and exit")
    p.add_argument("--tab", choices=TABS, default="detection", help="tab to show first")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds to wait for startup jobs (self-test, screenshot)")
    return p.parse_args(argv)


def _application(offscreen: bool):
    if offscreen and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("os2d-studio")
    app.setApplicationName("os2d-studio")
    from PySide6.QtGui import QIcon

    from core.resources import icon_path

    if icon_path().is_file():
        app.setWindowIcon(QIcon(str(icon_path())))
    configure_pyqtgraph()
    return app


def wait_until_idle(runner, timeout_s: float) -> bool:
    """Spin the event loop until the runner has no job (startup work in scripted runs); True if idle."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout_s
    while runner.busy and time.monotonic() < deadline:
        loop = QEventLoop()
        runner.busyChanged.connect(loop.quit)
        QTimer.singleShot(int(min(1.0, max(deadline - time.monotonic(), 0.01)) * 1000), loop.quit)
        loop.exec()
        runner.busyChanged.disconnect(loop.quit)
    return not runner.busy


# -- normal start ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    headless = args.self_test or (args.screenshot and not os.environ.get("DISPLAY"))
    app = _application(offscreen=bool(headless))
    if args.self_test:
        from app.selftest import run_self_test

        return run_self_test(args.ckpt, args.timeout)

    from app.controller import default_model_problem
    from app.dialogs import HeadlessDialogs
    from app.main_window import MainWindow

    window = MainWindow(dialogs=HeadlessDialogs() if args.screenshot else None)
    window.tabs.setCurrentIndex(TABS.index(args.tab))
    window.show()
    if args.project:
        window.controller.open_project(args.project)
    elif args.ckpt:
        window.controller.open_model(args.ckpt)
    elif default_model_problem() is None:
        window.controller.open_startup(then=window.detection_view.run_detection)
    if args.screenshot:
        idle = wait_until_idle(window.runner, args.timeout)
        app.processEvents()
        out = Path(args.screenshot)
        out.parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(str(out))
        print(f"wrote {out}" if ok else f"could not write {out}")
        for level, title, message in window.dialogs.messages:
            print(f"{level}: {title}: {message}", file=sys.stderr)
        window.close()
        return 0 if ok and idle and not window.dialogs.messages else 1
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
