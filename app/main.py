"""Entry point: `python -m app [CKPT] [--self-test] [--screenshot PATH]`.

`--self-test` drives the real window offscreen through a list of named steps (later features append
theirs to `SELF_TEST_STEPS`) and exits non-zero naming the first step that failed; `--screenshot` renders
the window to a PNG once startup work is done (for docs). pyqtgraph's global options are set here, once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

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


# -- self-test ------------------------------------------------------------------------------------------
class SelfTestError(RuntimeError):
    """A step's check failed; the message says what was expected."""


@dataclass
class SelfTestContext:
    model_path: Path
    workdir: Path
    timeout_s: float
    window: object = None  # app.main_window.MainWindow
    notes: dict = field(default_factory=dict)

    def wait(self) -> None:
        if not wait_until_idle(self.window.runner, self.timeout_s):
            raise SelfTestError(f"'{self.window.runner.current_name}' did not finish within {self.timeout_s:.0f} s")
        errors = [m for m in self.window.dialogs.messages if m[0] == "error"]
        if errors:
            raise SelfTestError(f"{errors[-1][1]}: {errors[-1][2]}")


def _step_window(ctx: SelfTestContext) -> str:
    from PySide6.QtCore import QSettings

    from app.dialogs import HeadlessDialogs
    from app.main_window import MainWindow
    from app.state import Session

    settings = QSettings(str(ctx.workdir / "settings.ini"), QSettings.Format.IniFormat)
    ctx.window = MainWindow(Session(settings), HeadlessDialogs())
    ctx.window.show()
    tabs = ctx.window.tabs
    return f"main window, tabs: {', '.join(tabs.tabText(i) for i in range(tabs.count()))}"


def _step_load_model(ctx: SelfTestContext) -> str:
    if not ctx.window.controller.open_model(ctx.model_path):
        raise SelfTestError("the worker refused the job")
    ctx.wait()
    info = ctx.window.session.model_info
    if info is None:
        raise SelfTestError("the session has no model after loading")
    return f"{info.summary.description}; {info.summary.parameters:,} parameters, {info.summary.fp32_mb:.2f} MB fp32"


def _step_model_panel(ctx: SelfTestContext) -> str:
    rows = ctx.window.model_panel.layer_model.rowCount()
    if rows == 0:
        raise SelfTestError("the layer table is empty")
    return f"{rows} layers in the table"


def _synthetic_scene(workdir: Path) -> tuple[Path, list[tuple[int, int, int, int]]]:
    """A 640x480 target with two textured patches pasted twice each; returns it and the patch boxes."""
    from core.visualize import save_rgb

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    img = np.stack([90 + 60 * np.sin(xx / 97.0), 110 + 50 * np.cos(yy / 71.0), 120 + 40 * np.sin((xx + yy) / 53.0)], -1)
    img = (img + rng.normal(0, 6, img.shape)).clip(0, 255).astype(np.uint8)
    boxes = []
    for k, (w, h) in enumerate(((96, 72), (72, 96))):
        patch = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        for x, y in (((60, 60), (380, 300)) if k == 0 else ((420, 70), (120, 320))):
            img[y:y + h, x:x + w] = patch
            boxes.append((x, y, x + w, y + h))
    path = workdir / "synthetic_target.png"
    save_rgb(path, img)
    return path, boxes


def _step_detect(ctx: SelfTestContext) -> str:
    import json

    from core.resources import samples_dir

    view = ctx.window.detection_view
    manifest = samples_dir() / "samples.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        view.set_target_file(str(samples_dir() / m["shelf_image"]))
        view.add_class_image_files([str(samples_dir() / c) for c in m["class_images"]])
        source = f"bundled sample {m['shelf_image']}"
    else:
        target, boxes = _synthetic_scene(ctx.workdir)
        view.set_target_file(str(target))
        for box in (boxes[0], boxes[2]):
            view.crop_class_image(*box)  # the crop path a drag in crop mode takes
        source = "synthetic scene (no bundled samples)"
    ctx.wait()
    if not view.run_detection():
        raise SelfTestError("the Detect button's action did not start a job")
    ctx.wait()
    run = ctx.window.session.detections
    if run is None or "original" not in run.detections:
        raise SelfTestError("no detections in the session after the run")
    d = run.detections["original"]
    shown = sum(len(v) for v in view.shown().values())
    return f"{source}: {len(d)} detections after NMS, {shown} shown, {d.seconds:.2f} s"


def _sleepy_job(steps: int, *, progress, cancel) -> int:
    for i in range(steps):
        time.sleep(0.02)
        cancel.raise_if_cancelled()
        progress(i + 1, steps, f"step {i + 1}")
    return steps


def _step_cancel(ctx: SelfTestContext) -> str:
    from PySide6.QtCore import QTimer

    runner = ctx.window.runner
    outcome = []
    runner.start("Self-test job", _sleepy_job, 500, on_result=lambda r: outcome.append("result"),
                 on_cancelled=lambda: outcome.append("cancelled"))
    QTimer.singleShot(100, ctx.window.job_status.cancel_button.click)
    ctx.wait()
    if outcome != ["cancelled"] or runner.busy or ctx.window.job_status.isVisible():
        raise SelfTestError(f"expected a cancelled job and an idle status bar, got {outcome}")
    return "job cancelled from the status bar, app idle"


def _step_plan_and_prune(ctx: SelfTestContext) -> str:
    """Pruning tab: a global ratio predicts a smaller model; Prune (data-free weight_l1) builds exactly that."""
    w = ctx.window
    panel = w.pruning_view.ratio_panel
    if not w.session.model_info.units:
        raise SelfTestError("the model has no prunable units")
    panel.criterion.setCurrentText("weight_l1")
    panel.global_slider.setValue(0.3)
    predicted = panel.prediction
    if predicted is None or predicted.parameters >= predicted.base_parameters:
        raise SelfTestError(f"a 30 % plan should predict fewer parameters, got {predicted}")
    if not w.workbench.prune():
        raise SelfTestError("the Prune action did not start a job")
    ctx.wait()
    pruned = w.session.pruned_info
    if pruned is None or pruned.summary.parameters != predicted.parameters:
        raise SelfTestError(f"pruned model has {pruned.summary.parameters if pruned else None} parameters, "
                            f"the plan predicted {predicted.parameters}")
    return (f"30 % by weight_l1: {predicted.base_parameters:,} → {pruned.summary.parameters:,} parameters "
            f"(as predicted), {predicted.size_mb:.2f} MB")


SELF_TEST_STEPS: list[tuple[str, Callable[[SelfTestContext], str]]] = [
    ("start window", _step_window),
    ("load model", _step_load_model),
    ("model panel", _step_model_panel),
    ("detect", _step_detect),
    ("cancel job", _step_cancel),
    ("plan + prune", _step_plan_and_prune),
]


def run_self_test(model_path: str | None, timeout_s: float = 600.0) -> int:
    from core.resources import default_model_path

    path = Path(model_path) if model_path else default_model_path()
    print(f"os2d-studio self-test with {path}")
    if not path.is_file():
        print(f"self-test FAILED at step 'load model': {path}: model file not found "
              "(pass a checkpoint: python -m app CKPT --self-test)")
        return 1
    with tempfile.TemporaryDirectory(prefix="os2d-selftest-") as tmp:
        ctx = SelfTestContext(path, Path(tmp), timeout_s)
        try:
            for name, step in SELF_TEST_STEPS:
                t0 = time.monotonic()
                try:
                    detail = step(ctx)
                except Exception as e:  # report the failing step by name, whatever went wrong
                    print(f"  [FAIL] {name:<14} {time.monotonic() - t0:6.1f} s  {type(e).__name__}: {e}")
                    print(f"self-test FAILED at step '{name}': {e}")
                    return 1
                print(f"  [ok]   {name:<14} {time.monotonic() - t0:6.1f} s  {detail}")
        finally:
            if ctx.window is not None:
                ctx.window.close()
                ctx.window.deleteLater()
    print(f"self-test passed ({len(SELF_TEST_STEPS)} steps)")
    return 0


# -- normal start ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    headless = args.self_test or (args.screenshot and not os.environ.get("DISPLAY"))
    app = _application(offscreen=bool(headless))
    if args.self_test:
        return run_self_test(args.ckpt, args.timeout)

    from app.controller import default_model_problem
    from app.dialogs import HeadlessDialogs
    from app.main_window import MainWindow
    from core.resources import default_model_path

    window = MainWindow(dialogs=HeadlessDialogs() if args.screenshot else None)
    window.tabs.setCurrentIndex(TABS.index(args.tab))
    window.show()
    if args.project:
        window.controller.open_project(args.project)
    elif args.ckpt:
        window.controller.open_model(args.ckpt)
    elif default_model_problem() is None:
        window.controller.open_model(default_model_path())
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
