"""The synthetic shelf benchmark: deterministic, well-formed, split-disjoint, cancellable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.data.grozi import load_dataset_dir
from core.data.synth import CSV_COLUMNS, DEMO_FRAMES, GENERATOR_VERSION, SynthConfig, generate
from core.data.video_gt import labels_for, load_video_ground_truth
from core.jobs import CancelToken, Cancelled

TINY = SynthConfig(num_train_classes=6, num_val_classes=3, num_train_images=6, num_val_images=3,
                   image_size=(240, 180), demo_video=False)
TRAIN_IDS, VAL_IDS = set(range(6)), set(range(6, 9))


def read_csv(root: Path) -> tuple[list[str], list[dict]]:
    with open(root / "classes" / "synth.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    result = generate(out, TINY)
    assert result.out_dir == out.absolute()
    return out


# -- determinism -----------------------------------------------------------------------------------

def test_same_seed_gives_identical_files_whatever_the_thread_count(tiny, tmp_path):
    again = generate(tmp_path / "again", TINY, workers=1).out_dir
    a, b = files(tiny), files(again)
    assert a.keys() == b.keys()
    assert a["classes/synth.csv"] == b["classes/synth.csv"]
    assert [k for k in a if a[k] != b[k]] == []


def test_other_seed_gives_other_dataset(tiny, tmp_path):
    other = generate(tmp_path / "other", SynthConfig(**{**TINY.__dict__, "seed": 1})).out_dir
    a, b = files(tiny), files(other)
    assert a["classes/synth.csv"] != b["classes/synth.csv"]
    for name in ("classes/images/0.png", "src/images/0.jpg"):
        assert a[name] != b[name]


# -- format ----------------------------------------------------------------------------------------

def test_csv_columns_and_values(tiny):
    fields, rows = read_csv(tiny)
    assert tuple(fields) == CSV_COLUMNS
    assert rows
    ids = [int(r["gtbboxid"]) for r in rows]
    assert len(set(ids)) == len(ids)
    for r in rows:
        int(r["imageid"]), int(r["classid"])
        assert r["imagefilename"] == f"{r['imageid']}.jpg"
        assert r["classfilename"] == f"{r['classid']}.png"
        assert r["difficult"] in ("0", "1")
        assert r["split"] in ("train", "val")
        lx, ty, rx, by = (float(r[k]) for k in ("lx", "ty", "rx", "by"))
        assert all(len(r[k].split(".")[1]) == 6 for k in ("lx", "ty", "rx", "by"))
        assert 0.0 <= lx < rx <= 1.0 and 0.0 <= ty < by <= 1.0


def test_every_scene_has_3_to_10_boxes_and_every_class_is_shown(tiny):
    _, rows = read_csv(tiny)
    per_image: dict[str, int] = {}
    for r in rows:
        per_image[r["imageid"]] = per_image.get(r["imageid"], 0) + 1
    assert len(per_image) == TINY.num_train_images + TINY.num_val_images
    assert all(3 <= n <= 10 for n in per_image.values()), per_image
    assert {int(r["classid"]) for r in rows} == TRAIN_IDS | VAL_IDS


def test_splits_are_disjoint_in_classes_and_images(tiny):
    _, rows = read_csv(tiny)
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert {int(r["classid"]) for r in train} <= TRAIN_IDS
    assert {int(r["classid"]) for r in val} <= VAL_IDS
    assert not {r["imageid"] for r in train} & {r["imageid"] for r in val}


def test_all_images_exist_and_load(tiny):
    _, rows = read_csv(tiny)
    for cid in TRAIN_IDS | VAL_IDS:
        img = cv2.imread(str(tiny / "classes" / "images" / f"{cid}.png"))
        assert img is not None and img.ndim == 3
        assert 160 <= max(img.shape[:2]) <= 320
    for name in {r["imagefilename"] for r in rows}:
        img = cv2.imread(str(tiny / "src" / "images" / name))
        assert img is not None and img.shape == (TINY.image_size[1], TINY.image_size[0], 3)


def test_dataset_json_is_read_by_the_loader(tiny):
    meta = json.loads((tiny / "dataset.json").read_text())
    assert meta["format"] == "os2d-csv" and meta["csv"] == "classes/synth.csv"
    assert meta["class_image_dir"] == "classes/images" and meta["image_dir"] == "src/images"
    assert meta["eval_scale"] == TINY.eval_scale and meta["seed"] == TINY.seed
    assert meta["generator_version"] == GENERATOR_VERSION
    assert meta["num_classes"] == {"train": 6, "val": 3} and meta["num_images"] == {"train": 6, "val": 3}
    train, val = load_dataset_dir(tiny, "train"), load_dataset_dir(tiny, "val")
    assert set(train.classes) == TRAIN_IDS and set(val.classes) == VAL_IDS
    assert len(train) == 6 and len(val) == 3


# -- output folder handling ------------------------------------------------------------------------

def test_cancel_leaves_nothing(tmp_path):
    token = CancelToken()
    seen = []

    def progress(done, total, message=""):
        seen.append(done)
        if done >= 4:
            token.cancel()

    with pytest.raises(Cancelled):
        generate(tmp_path / "out", TINY, progress=progress, cancel=token)
    assert seen and max(seen) < 9 + 9
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_empty_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=str(out)):
        generate(out, TINY)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_config_is_validated():
    with pytest.raises(ValueError, match="num_train_classes"):
        SynthConfig(num_train_classes=0)
    with pytest.raises(ValueError, match="image_size"):
        SynthConfig(image_size=(10, 10))
    with pytest.raises(ValueError, match="seed"):
        SynthConfig(seed=-1)


# -- demo video ------------------------------------------------------------------------------------

def test_demo_video_has_all_frames_and_lists_val_classes(tmp_path):
    cfg = SynthConfig(num_train_classes=2, num_val_classes=3, num_train_images=1, num_val_images=1,
                      image_size=(160, 120), demo_video=True)
    root = generate(tmp_path / "demo", cfg).out_dir
    cap = cv2.VideoCapture(str(root / "demo.mp4"))
    frames = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (480, 640, 3)
        frames += 1
    cap.release()
    assert frames == DEMO_FRAMES
    demo = json.loads((root / "demo_classes.json").read_text())
    assert demo["class_ids"] and set(demo["class_ids"]) <= {2, 3, 4}
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["demo_video"] == "demo.mp4" and meta["demo_ground_truth"] == "demo_gt.json"
    # per-frame ground truth: boxes inside the frame, at the model's native scale, the seen classes
    gt = load_video_ground_truth(root / "demo_gt.json")
    assert gt.frames == DEMO_FRAMES and gt.size == (640, 480)
    assert set(np.unique(gt.frame_index)) <= set(range(DEMO_FRAMES)) and len(np.unique(gt.frame_index)) > frames // 2
    assert (gt.boxes[:, [0, 1]] >= 0).all() and (gt.boxes[:, 2] <= 640).all() and (gt.boxes[:, 3] <= 480).all()
    clear = ~gt.difficult
    assert set(gt.class_ids[clear].tolist()) == set(demo["class_ids"])
    heights = gt.boxes[clear, 3] - gt.boxes[clear, 1]
    assert 150 <= np.median(heights) <= 330  # what OS2D's 240-px boxes fit, with no upscaling of the frame
    boxes, labels, difficult = gt.for_frame(int(gt.frame_index[0]), labels_for(["class_2", "x", "3"]), (320, 240))
    assert set(labels.tolist()) <= {0, 2} and (boxes[:, 2] <= 320).all()
