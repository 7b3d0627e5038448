"""`generate`: the benchmark folder, written atomically, with scenes rendered on a small thread pool."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable

import cv2

from core.data.grozi import GroundTruthBox, write_dataset
from core.data.synth.art import load_assets
from core.data.synth.catalog import _Library, _plan, _scene
from core.data.synth.config import (CSV_NAME, DEMO_FRAMES, GENERATOR_VERSION, SynthConfig, SynthResult, _rng,
                                    _T_CLASSIMG)
from core.data.synth.demo import write_demo
from core.data.synth.product import class_image
from core.jobs import CancelToken, Progress, no_progress


def _is_nonempty_dir(p: Path) -> bool:
    return p.exists() and (not p.is_dir() or any(p.iterdir()))


def generate(out_dir: str | os.PathLike, config: SynthConfig = SynthConfig(), *, progress: Progress = no_progress,
             cancel: CancelToken | None = None, workers: int | None = None) -> SynthResult:
    """Write the benchmark to `out_dir` (which must not exist or be empty).

    Everything goes to a hidden sibling folder first and is renamed into place at the end, so a
    cancelled or failed run leaves nothing behind. `workers` threads render scenes (OpenCV and
    NumPy release the GIL); the output does not depend on it."""
    out_dir = Path(out_dir).expanduser().absolute()
    cancel = cancel or CancelToken()
    if _is_nonempty_dir(out_dir):
        raise ValueError(f"{out_dir}: refusing to overwrite, the folder exists and is not empty")
    start = time.monotonic()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        counts = _generate_into(tmp, config, progress, cancel, workers)
        cancel.raise_if_cancelled()
        if _is_nonempty_dir(out_dir):
            raise ValueError(f"{out_dir}: refusing to overwrite, the folder was filled while generating")
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SynthResult(out_dir=out_dir, counts=counts, seconds=time.monotonic() - start)


def _generate_into(root: Path, config: SynthConfig, progress: Progress, cancel: CancelToken,
                   workers: int | None) -> dict[str, int]:
    plan = _plan(config)
    assets = load_assets()
    lib = _Library(config, plan, assets)
    cls_dir, img_dir = root / "classes" / "images", root / "src" / "images"
    cls_dir.mkdir(parents=True)
    img_dir.mkdir(parents=True)
    n_cls = config.num_train_classes + config.num_val_classes
    n_img = config.num_train_images + config.num_val_images
    total = n_cls + n_img + (1 if config.demo_video else 0)
    done = 0
    workers = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))

    def run_all(tasks: list[Callable[[], object]], message: str) -> list:
        """Run tasks on a small thread pool, in bounded batches so cancel is noticed quickly."""
        nonlocal done
        results: list = [None] * len(tasks)
        if workers == 1:
            for i, task in enumerate(tasks):
                cancel.raise_if_cancelled()
                results[i] = task()
                done += 1
                progress(done, total, message)
            return results
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth") as pool:
            pending: dict[Future, int] = {}
            it = iter(enumerate(tasks))
            try:
                while True:
                    while len(pending) < 2 * workers:
                        nxt = next(it, None)
                        if nxt is None:
                            break
                        cancel.raise_if_cancelled()
                        pending[pool.submit(nxt[1])] = nxt[0]
                    if not pending:
                        break
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        results[pending.pop(f)] = f.result()
                        done += 1
                        progress(done, total, message)
                    cancel.raise_if_cancelled()
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
        return results

    def make_class(cid: int):
        def task():
            img = class_image(lib.sprite(cid), _rng(config.seed, _T_CLASSIMG, cid))
            cv2.imwrite(str(cls_dir / f"{cid}.png"), img)
        return task

    progress(0, total, "class images")
    run_all([make_class(c) for c in range(n_cls)], "class images")

    def make_scene(imageid: int, split: str, index: int):
        ids = plan.train_ids if split == "train" else plan.val_ids
        cov = plan.coverage_train if split == "train" else plan.coverage_val

        def task():
            scene = _scene(lib, imageid, ids, cov, index, config.image_size)
            ok = cv2.imwrite(str(img_dir / f"{imageid}.jpg"), scene.image, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
            if not ok:
                raise OSError(f"{img_dir / f'{imageid}.jpg'}: could not write the image")
            return split, imageid, scene.objects
        return task

    tasks = [make_scene(i, "train", i) for i in range(config.num_train_images)]
    tasks += [make_scene(config.num_train_images + i, "val", i) for i in range(config.num_val_images)]
    scenes = run_all(tasks, "shelf images")

    W, H = config.image_size
    boxes = []
    counts = {"train_classes": config.num_train_classes, "val_classes": config.num_val_classes,
              "train_images": config.num_train_images, "val_images": config.num_val_images,
              "train_boxes": 0, "val_boxes": 0, "difficult_boxes": 0}
    for split, imageid, objects in scenes:
        for o in objects:
            x0, y0, x1, y1 = o.box
            boxes.append(GroundTruthBox(imageid=imageid, classid=o.class_id, box=(x0 / W, y0 / H, x1 / W, y1 / H),
                                        split=split, difficult=o.difficult))
            counts[f"{split}_boxes"] += 1
            counts["difficult_boxes"] += int(o.difficult)

    meta = {"seed": config.seed, "generator_version": GENERATOR_VERSION,
            "num_classes": {"train": config.num_train_classes, "val": config.num_val_classes},
            "num_images": {"train": config.num_train_images, "val": config.num_val_images},
            "num_boxes": {"train": counts["train_boxes"], "val": counts["val_boxes"]},
            "scene_size": list(config.image_size)}
    if config.demo_video:
        cancel.raise_if_cancelled()
        progress(done, total, "demo video")
        meta.update(write_demo(root, lib, plan.val_ids, cancel=cancel))
        counts["demo_frames"] = DEMO_FRAMES
        done += 1
        progress(done, total, "demo video")
    write_dataset(root, boxes, class_images={c: f"{c}.png" for c in range(n_cls)},
                  scene_images={i: f"{i}.jpg" for i in range(n_img)}, name=f"synth-{config.seed}",
                  csv_name=f"classes/{CSV_NAME}", eval_scale=config.eval_scale, meta=meta)
    return counts
