"""The app's self-test: `python -m app --self-test` (and the packaged executable's smoke test).

It drives the real window offscreen through a list of named steps and exits non-zero naming the first
step that failed: it loads the model (default: the bundled one), computes importance (gradient-free
`combined`) on three calibration images made from the bundled samples, prunes 30 %, detects on the
sample shelf with both models, quantizes the pruned one to int8 and detects with it through OpenVINO,
and compares both models on a few frames of the sample video; then it prints a
summary (`make test-package` runs it in the built bundle).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from app.main import wait_until_idle
from core.resources import sample_manifest


class SelfTestError(RuntimeError):
    """A step's check failed; the message says what was expected."""


@dataclass
class SelfTestContext:
    model_path: Path
    workdir: Path
    timeout_s: float
    window: object = None  # app.main_window.MainWindow
    notes: dict = field(default_factory=dict)  # summary line per topic, printed after the last step

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


CALIBRATION_SPANS = ((0.0, 1.0), (0.0, 0.6), (0.4, 1.0))  # horizontal slices of the scene: 3 calibration images
PRUNE_RATIO = 0.3
VIDEO_FRAMES = 4  # frames of the sample video compared side by side
VIDEO_TARGET_SIZE = 384.0  # small, to keep the self-test quick on a CPU


def _calibration_dataset(workdir: Path) -> tuple[Path, str]:
    """A dataset in the app's OS2D CSV format (`dataset.json`, split `train`) with three calibration
    images: the sample shelf and its left and right 60 %, each with the manifest's boxes that lie inside
    it. Without bundled samples, the same from the synthetic scene and crops of its patches."""
    from core.data.grozi import GroundTruthBox, write_dataset
    from core.data.images import load_image
    from core.resources import samples_dir
    from core.visualize import save_rgb

    root = workdir / "calibration"
    (root / "images").mkdir(parents=True)
    (root / "classes").mkdir()
    m = sample_manifest()
    if m is not None:
        scene = load_image(samples_dir() / m["shelf_image"])
        names = sorted({g["class_image"] for g in m["ground_truth"]})
        for n in names:
            save_rgb(root / "classes" / f"{Path(n).stem}.png", load_image(samples_dir() / n))
        gt = [(names.index(g["class_image"]), g["box_relative_xyxy"], int(g.get("difficult", 0)))
              for g in m["ground_truth"]]
        source = f"bundled sample {m['shelf_image']}"
    else:
        target, boxes = _synthetic_scene(workdir)
        scene = load_image(target)
        h, w = scene.shape[:2]
        names = ["patch_a.png", "patch_b.png"]
        for n, (x0, y0, x1, y1) in zip(names, (boxes[0], boxes[2])):
            save_rgb(root / "classes" / n, scene[y0:y1, x0:x1])
        gt = [(0 if i < 2 else 1, (x0 / w, y0 / h, x1 / w, y1 / h), 0) for i, (x0, y0, x1, y1) in enumerate(boxes)]
        source = "synthetic scene (no bundled samples)"
    h, w = scene.shape[:2]
    rows = []
    for k, (a, b) in enumerate(CALIBRATION_SPANS):
        px0, px1 = round(a * w), round(b * w)
        save_rgb(root / "images" / f"{k}.png", np.ascontiguousarray(scene[:, px0:px1]))
        for cid, (lx, ty, rx, by), difficult in gt:
            if lx * w >= px0 and rx * w <= px1:  # boxes wholly inside this slice
                x0, x1 = ((v * w - px0) / (px1 - px0) for v in (lx, rx))
                rows.append(GroundTruthBox(imageid=k, classid=cid, box=(x0, ty, x1, by), split="train",
                                           difficult=bool(difficult)))
    write_dataset(root, rows, class_images={cid: f"{Path(n).stem}.png" for cid, n in enumerate(names)},
                  scene_images={k: f"{k}.png" for k in range(len(CALIBRATION_SPANS))}, name="self-test calibration",
                  csv_name="annotations.csv", class_image_dir="classes", image_dir="images")
    return root, f"{source}, {len(rows)} boxes"


def _step_importance(ctx: SelfTestContext) -> str:
    """Importance tab: the gradient-free combined criterion on three calibration images (core.importance)."""
    w = ctx.window
    root, source = _calibration_dataset(ctx.workdir)
    w.session.set_dataset(str(root))
    view = w.importance_view
    for name, box in view.criteria_boxes.items():
        box.setChecked(name == "combined")
    view.num_images.setValue(len(CALIBRATION_SPANS))
    if not view.compute():
        raise SelfTestError("the Compute importance action did not start a job")
    ctx.wait()
    imp = w.session.importance
    if imp is None or "combined" not in imp.criteria:
        raise SelfTestError("no combined importance in the session after the run")
    units = [u.name for u in w.session.model_info.units]
    if list(imp.units) != units:
        raise SelfTestError(f"importance scores {len(imp.units)} units, the model has {len(units)}")
    bad = [u for u in imp.units if not np.all(np.isfinite(imp.scores["combined"][u]))]
    if bad:
        raise SelfTestError(f"non-finite combined scores in {', '.join(bad[:3])}")
    n = len(imp.calibration.image_ids)
    detail = f"combined on {n} calibration images ({source}): {len(units)} units scored"
    ctx.notes["importance"] = f"combined criterion, {n} calibration images, {len(units)} units"
    return detail


def _step_detect(ctx: SelfTestContext) -> str:
    """Detection tab: the sample shelf and class images, detected with the original and (once pruned) the
    pruned model side by side."""
    from core.resources import samples_dir

    view = ctx.window.detection_view
    m = sample_manifest()
    if m is not None:
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
    variants = ["original", "pruned"] if ctx.window.session.pruned is not None else ["original"]
    view.compare.setCurrentText("both" if len(variants) == 2 else "original")
    if view.variants() != variants:
        raise SelfTestError(f"the detection view compares {view.variants()}, expected {variants}")
    if not view.run_detection():
        raise SelfTestError("the Detect button's action did not start a job")
    ctx.wait()
    run = ctx.window.session.detections
    missing = [v for v in variants if run is None or v not in run.detections]
    if missing:
        raise SelfTestError(f"no detections of the {' and '.join(missing)} model in the session after the run")
    shown = {v: len(d) for v, d in view.shown().items()}
    counts = ", ".join(f"{v} {len(run.detections[v])} ({run.detections[v].seconds:.2f} s)" for v in variants)
    ctx.notes["detection"] = f"{source}: {counts} detections"
    return f"{source}: {counts} detections after NMS, {' / '.join(str(shown.get(v, 0)) for v in variants)} shown"


def _step_int8(ctx: SelfTestContext) -> str:
    """Pruning tab → Quantize int8 (NNCF on the calibration images), then the pruned side detects on the
    sample shelf through OpenVINO int8: the deployment runtime works in this build."""
    from core.deploy.runtime import availability

    w = ctx.window
    why = availability().get(("openvino", "int8"), "")
    if why:
        raise SelfTestError(f"OpenVINO int8 is not available: {why}")
    if not w.workbench.quantize_deploy(folder=ctx.workdir / "int8", num_images=len(CALIBRATION_SPANS)):
        raise SelfTestError("the Quantize int8 action did not start a job")
    ctx.wait()
    w.session.set_detection_settings(pruned_runtime="openvino:int8")
    view = w.detection_view
    view.compare.setCurrentText("both")
    if not view.run_detection():
        raise SelfTestError("the Detect button's action did not start a job")
    ctx.wait()
    run = w.session.detections
    if run is None or "pruned" not in run.detections:
        raise SelfTestError("no int8 detections of the pruned model in the session after the run")
    dets = run.detections["pruned"]
    ctx.notes["int8"] = f"OpenVINO int8 (pruned side): {len(dets)} detections in {dets.seconds:.2f} s"
    w.session.set_detection_settings(pruned_runtime="torch:fp32")
    return f"quantized on {len(CALIBRATION_SPANS)} images; pruned side on OpenVINO int8: {len(dets)} detections"


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
    """Pruning tab: a 30 % global ratio predicts a smaller model; Prune builds exactly that, ranking channels
    by the computed importance (combined), or by weight_l1 (data-free) when there is none."""
    w = ctx.window
    panel = w.pruning_view.ratio_panel
    if not w.session.model_info.units:
        raise SelfTestError("the model has no prunable units")
    imp = w.session.importance
    criterion = "combined" if imp is not None and "combined" in imp.criteria else "weight_l1"
    panel.criterion.setCurrentText(criterion)
    panel.global_slider.setValue(PRUNE_RATIO)
    if w.session.plan.criterion != criterion:
        raise SelfTestError(f"the plan ranks by '{w.session.plan.criterion}', expected '{criterion}'")
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
    ctx.notes["pruning"] = (f"{PRUNE_RATIO * 100:.0f} % by {criterion}: {predicted.base_parameters:,} → "
                            f"{pruned.summary.parameters:,} parameters, {predicted.size_mb:.2f} MB fp32")
    return (f"{PRUNE_RATIO * 100:.0f} % by {criterion}: {predicted.base_parameters:,} → {pruned.summary.parameters:,} "
            f"parameters (as predicted), {predicted.size_mb:.2f} MB")


def _video_sample(workdir: Path) -> tuple[str, list[str], float]:
    """The sample video with its class images and score threshold; without bundled samples, a few
    shifted copies of the synthetic scene as an image-folder source and crops of its patches."""
    from core.resources import samples_dir
    from core.visualize import save_rgb

    m = sample_manifest()
    if m is not None and m.get("demo_video"):
        classes = m.get("demo_class_images") or m["class_images"]
        return (str(samples_dir() / m["demo_video"]), [str(samples_dir() / c) for c in classes],
                float(m.get("min_score", 0.5)))
    from core.data.images import load_image

    target, boxes = _synthetic_scene(workdir)
    scene = load_image(target)
    frames = workdir / "frames"
    frames.mkdir(exist_ok=True)
    for i in range(VIDEO_FRAMES):
        save_rgb(frames / f"{i:03d}.png", np.roll(scene, 8 * i, axis=1))
    classes = []
    for k, (x0, y0, x1, y1) in enumerate((boxes[0], boxes[2])):
        classes.append(str(workdir / f"video_class_{k}.png"))
        save_rgb(classes[-1], scene[y0:y1, x0:x1])
    return str(frames), classes, 0.5


def _step_video(ctx: SelfTestContext) -> str:
    """The original and the pruned model over the first frames of the sample video (core.compare, as the
    Video tab and `os2d-studio compare` run it), written as a side-by-side video that is read back."""
    from core.compare import compare_video
    from core.data.video import open_source

    s = ctx.window.session
    if s.model is None or s.pruned is None:
        raise SelfTestError("needs the original and the pruned model (the prune step did not finish)")
    source, classes, threshold = _video_sample(ctx.workdir)
    results = []
    job = ctx.window.runner.start(
        "Self-test: comparing on video", compare_video, s.model, s.pruned, classes, source,
        out_video=ctx.workdir / "side_by_side.mp4", out_json=ctx.workdir / "compare.json",
        target_size=VIDEO_TARGET_SIZE, score_threshold=threshold, max_frames=VIDEO_FRAMES, on_result=results.append)
    if job is None:
        raise SelfTestError(f"the worker is busy with '{ctx.window.runner.current_name}'")
    ctx.wait()
    if not results:
        raise SelfTestError("the compare job ended without a result")
    r = results[0]
    if r.processed_count != VIDEO_FRAMES or min(r.original.mean_ms, r.pruned.mean_ms) <= 0:
        raise SelfTestError(f"expected {VIDEO_FRAMES} timed frames, got {r.processed_count}")
    if not r.out_video or not Path(r.out_video).is_file() or not Path(r.out_json or "").is_file():
        raise SelfTestError("the side-by-side video or its JSON report was not written")
    with open_source(source) as src:
        width = src.size[0]
    with open_source(r.out_video) as out:
        if out.frame_count != VIDEO_FRAMES or out.size[0] < 2 * width:
            raise SelfTestError(f"side-by-side video has {out.frame_count} frames of {out.size}, expected "
                                f"{VIDEO_FRAMES} frames at least {2 * width} wide")
        size = out.size
    speed = f", {r.speedup:.2f}x" if r.speedup else ""
    detail = (f"{Path(source).name}: {r.processed_count} frames at {r.target_size:.0f}, original "
              f"{r.original.mean_ms:.0f} ms, pruned {r.pruned.mean_ms:.0f} ms per frame{speed}, agreement "
              f"{r.agreement.rate:.2f}; side-by-side {size[0]}×{size[1]} video")
    ctx.notes["video"] = detail
    return detail


SELF_TEST_STEPS: list[tuple[str, Callable[[SelfTestContext], str]]] = [
    ("start window", _step_window),
    ("load model", _step_load_model),
    ("model panel", _step_model_panel),
    ("cancel job", _step_cancel),
    ("importance", _step_importance),
    ("plan + prune", _step_plan_and_prune),
    ("detect", _step_detect),
    ("int8 detect", _step_int8),
    ("video compare", _step_video),
]


def run_self_test(model_path: str | None, timeout_s: float = 600.0) -> int:
    from core.resources import default_model_path, resources_dir

    path = Path(model_path) if model_path else default_model_path()
    where = "packaged executable" if getattr(sys, "frozen", False) else f"Python {sys.version.split()[0]}"
    print(f"os2d-studio self-test with {path}")
    print(f"  ({where}; resources {resources_dir()})")
    if not path.is_file():
        print(f"self-test FAILED at step 'load model': {path}: model file not found "
              "(pass a checkpoint: python -m app CKPT --self-test)")
        return 1
    t_start = time.monotonic()
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
                if name == "load model":
                    ctx.notes.setdefault("model", f"{path.name}: {detail}")
        finally:
            if ctx.window is not None:
                ctx.window.close()
                ctx.window.deleteLater()
    print("summary:")
    for topic, line in ctx.notes.items():
        print(f"  {topic:<11} {line}")
    print(f"self-test passed ({len(SELF_TEST_STEPS)} steps) in {time.monotonic() - t_start:.1f} s")
    return 0
