"""Loading datasets in the OS2D CSV format: our dataset.json folders and the GroZi-3.2k layout."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.grozi import (
    CSV_COLUMNS,
    GROZI_EVAL_SCALE,
    GROZI_IMAGE_SIZE,
    DatasetError,
    GroundTruthBox,
    OS2DDataset,
    SceneImage,
    open_dataset,
    write_dataset,
)

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_os2d"
TINY_CSV = "classes/tiny.csv"


# -- helpers ---------------------------------------------------------------------------------------

def copy_tiny(tmp_path: Path) -> Path:
    dst = tmp_path / "tiny"
    shutil.copytree(TINY, dst)
    return dst


def read_rows(csv_path: Path) -> tuple[list[str], list[dict]]:
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def write_rows(csv_path: Path, fields: list[str], rows: list[dict]) -> None:
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def edit_tiny(tmp_path: Path, row: int, **values) -> Path:
    """Copy of the tiny dataset with some fields of one CSV row (0-based, line row + 2) replaced."""
    root = copy_tiny(tmp_path)
    fields, rows = read_rows(root / TINY_CSV)
    rows[row].update({k: str(v) for k, v in values.items()})
    write_rows(root / TINY_CSV, fields, rows)
    return root


def tiny_png(path: Path, size=(8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 60, 30)).save(path)


# -- our format --------------------------------------------------------------------------------------

def test_tiny_all_splits_load():
    ds = open_dataset(TINY)
    assert isinstance(ds, OS2DDataset)
    assert ds.name == "tiny_os2d" and ds.split == "all" and ds.eval_scale == 64.0
    assert ds.root == TINY and ds.csv_path == TINY / TINY_CSV and ds.image_size is None
    assert len(ds) == 3 and ds.num_boxes == 6
    assert ds.class_ids() == [0, 1, 2]
    assert ds.classes[2] == TINY / "classes/images/class_2.png"
    assert [im.imageid for im in ds.images] == [0, 1, 2]
    im1 = ds.images[1]
    assert isinstance(im1, SceneImage)
    assert im1.path == TINY / "src/images/scene_1.png"
    assert im1.boxes.dtype == np.float32 and im1.class_ids.dtype == np.int64 and im1.difficult.dtype == bool
    np.testing.assert_allclose(im1.boxes, [[40 / 64, 24 / 48, 56 / 64, 40 / 48], [8 / 64, 28 / 48, 24 / 64, 44 / 48]],
                               rtol=0, atol=1e-7)
    assert im1.class_ids.tolist() == [0, 2] and im1.difficult.tolist() == [False, True]
    np.testing.assert_allclose(im1.boxes_in_pixels(64, 48), [[40, 24, 56, 40], [8, 28, 24, 44]], atol=1e-4)
    with pytest.raises(ValueError):
        im1.boxes[0, 0] = 0.0  # read-only: a dataset is shared by workers


def test_tiny_split_selection_and_helpers():
    train = open_dataset(str(TINY), "train")
    assert train.name == "tiny_os2d-train"
    assert [im.imageid for im in train.images] == [0] and train.class_ids() == [0, 1]
    val = open_dataset(TINY / "dataset.json", "val")
    assert [im.imageid for im in val.images] == [1, 2] and val.class_ids() == [0, 1, 2]
    assert [im.imageid for im in val.images_with_class(2)] == [1, 2]  # difficult counts as present
    assert [im.imageid for im in val.images_with_class(0)] == [1]
    assert val.images_with_class(7) == []


def test_defaults_when_dataset_json_is_minimal(tmp_path):
    root = copy_tiny(tmp_path)
    (root / "dataset.json").write_text(json.dumps({"csv": TINY_CSV}))
    ds = open_dataset(root)
    assert ds.name == "tiny" and ds.eval_scale == 1280.0 and len(ds) == 3


def test_filename_columns_default_to_id_jpg(tmp_path):
    """The released grozi.csv has no file name columns; the official reader uses '<id>.jpg'."""
    root = copy_tiny(tmp_path)
    fields, rows = read_rows(root / TINY_CSV)
    write_rows(root / TINY_CSV, [f for f in fields if f not in ("imagefilename", "classfilename")], rows)
    for cid in range(3):
        tiny_png(root / f"classes/images/{cid}.jpg")
    for iid in range(3):
        tiny_png(root / f"src/images/{iid}.jpg")
    ds = open_dataset(root)
    assert ds.classes[1].name == "1.jpg" and ds.images[2].path.name == "2.jpg"


# -- errors (each names the file) -----------------------------------------------------------------

def test_error_missing_csv(tmp_path):
    root = copy_tiny(tmp_path)
    (root / TINY_CSV).unlink()
    with pytest.raises(DatasetError, match="tiny.csv: annotation CSV not found") as e:
        open_dataset(root)
    assert e.value.path == str(root / TINY_CSV)


def test_error_csv_that_is_a_directory_or_no_text(tmp_path):
    root = copy_tiny(tmp_path)
    (root / TINY_CSV).unlink()
    (root / TINY_CSV).mkdir()
    with pytest.raises(DatasetError, match=r"tiny\.csv: is a directory, expected the annotation CSV file$"):
        open_dataset(root)
    (root / TINY_CSV).rmdir()
    (root / TINY_CSV).write_bytes(b"imageid,classid\n\xff\xfe\xfa,1\n")
    with pytest.raises(DatasetError, match=r"tiny\.csv: not a CSV file \(not UTF-8 text\)$"):
        open_dataset(root)
    (root / TINY_CSV).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DatasetError, match=r"tiny\.csv: not a CSV file \(it looks like a PNG image\)$"):
        open_dataset(root)


def test_error_missing_columns_lists_them(tmp_path):
    root = copy_tiny(tmp_path)
    fields, rows = read_rows(root / TINY_CSV)
    write_rows(root / TINY_CSV, [f for f in fields if f not in ("lx", "difficult")], rows)
    with pytest.raises(DatasetError, match=r"tiny\.csv: missing required column\(s\): difficult, lx"):
        open_dataset(root)


def test_error_missing_scene_images_names_first_few_and_count(tmp_path):
    root = copy_tiny(tmp_path)
    fields, rows = read_rows(root / TINY_CSV)
    extra = [dict(rows[0], gtbboxid=str(10 + i), imageid=str(10 + i), imagefilename=f"gone_{i}.png")
             for i in range(6)]
    write_rows(root / TINY_CSV, fields, rows + extra)
    with pytest.raises(DatasetError) as e:
        open_dataset(root)
    msg = str(e.value)
    assert msg.startswith(str(root / "src/images"))
    assert "6 of 9 scene images listed in tiny.csv are missing" in msg
    assert "gone_0.png, gone_1.png, gone_2.png, gone_3.png, gone_4.png and 1 more" in msg


def test_error_missing_class_image(tmp_path):
    root = copy_tiny(tmp_path)
    (root / "classes/images/class_1.png").unlink()
    with pytest.raises(DatasetError, match=r"classes/images: 1 of 3 class images listed in tiny\.csv are missing: "
                                           r"class_1\.png$"):
        open_dataset(root)
    # a split that does not use the class does not need its image
    (root / "classes/images/class_2.png").unlink()
    with pytest.raises(DatasetError, match="class_1.png"):
        open_dataset(root, "train")


@pytest.mark.parametrize("field, value", [("lx", -0.01), ("rx", 1.002), ("by", 1.5), ("ty", -1.0)])
def test_error_box_outside_image(tmp_path, field, value):
    root = edit_tiny(tmp_path, 3, **{field: value})
    with pytest.raises(DatasetError, match=r"tiny\.csv: row at line 5 \(gtbboxid 3\): box .* lies outside the image"):
        open_dataset(root)


def test_box_within_tolerance_is_accepted(tmp_path):
    root = edit_tiny(tmp_path, 3, lx=-0.0009, by=1.0009)
    ds = open_dataset(root)
    assert ds.images[1].boxes[1, 0] == np.float32(-0.0009)


@pytest.mark.parametrize("values", [{"lx": 0.5, "rx": 0.5}, {"lx": 0.6, "rx": 0.4}, {"ty": 0.9, "by": 0.2}])
def test_error_empty_box(tmp_path, values):
    root = edit_tiny(tmp_path, 1, **values)
    with pytest.raises(DatasetError, match=r"tiny\.csv: row at line 3 \(gtbboxid 1\): empty box"):
        open_dataset(root)


def test_error_empty_split_names_available_ones(tmp_path):
    with pytest.raises(DatasetError, match=r"tiny\.csv: split 'test' is empty; available splits: all, train, val"):
        open_dataset(TINY, "test")
    root = copy_tiny(tmp_path)
    fields, rows = read_rows(root / TINY_CSV)
    write_rows(root / TINY_CSV, [f for f in fields if f != "split"], rows)
    assert len(open_dataset(root)) == 3
    with pytest.raises(DatasetError, match=r"split 'val' has no 'split' column; available splits: all"):
        open_dataset(root, "val")
    write_rows(root / TINY_CSV, fields, [])
    with pytest.raises(DatasetError, match=r"tiny\.csv: split 'all' is empty; available splits: none"):
        open_dataset(root)


@pytest.mark.parametrize("field, value, what", [
    ("lx", "abc", "column 'lx' is not a finite number: 'abc'"),
    ("by", "nan", "column 'by' is not a finite number: 'nan'"),
    ("classid", "1.5", "column 'classid' is not an integer: '1.5'"),
    ("imageid", "", "column 'imageid' is not an integer: ''"),
    ("difficult", "2", "column 'difficult' must be 0 or 1, got '2'"),
])
def test_error_malformed_number_names_row(tmp_path, field, value, what):
    root = edit_tiny(tmp_path, 4, **{field: value})
    with pytest.raises(DatasetError, match=r"tiny\.csv: row at line 6: " + what.replace("(", r"\(")):
        open_dataset(root)


def test_integral_floats_are_accepted_as_ids(tmp_path):
    root = edit_tiny(tmp_path, 4, classid="1.0", difficult="1.0")
    ds = open_dataset(root)
    assert ds.images[2].class_ids.tolist() == [1, 2] and ds.images[2].difficult.tolist() == [True, False]


def test_error_conflicting_file_for_one_id(tmp_path):
    root = edit_tiny(tmp_path, 2, classfilename="class_2.png")
    with pytest.raises(DatasetError, match=r"tiny\.csv: row at line 4: classid 0 is 'class_2.png' but 'class_0.png'"):
        open_dataset(root)


def test_error_dataset_json_problems(tmp_path):
    with pytest.raises(DatasetError, match="dataset not found"):
        open_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"no dataset\.json here"):
        open_dataset(tmp_path)
    root = copy_tiny(tmp_path)
    meta = root / "dataset.json"
    meta.write_text("{not json")
    with pytest.raises(DatasetError, match=r"dataset\.json: not a readable JSON file \(invalid at line 1, column 2\)$"):
        open_dataset(root)
    meta.write_bytes(b"\xff\xfe{}")
    with pytest.raises(DatasetError, match=r"dataset\.json: not a JSON file \(not UTF-8 text\)$"):
        open_dataset(root)
    meta.write_text(json.dumps({"csv": 3}))
    with pytest.raises(DatasetError, match=r"dataset\.json: 'csv' must be the path of the annotation CSV \(a string\), "
                                           r"got a number: 3$"):
        open_dataset(root)
    meta.write_text(json.dumps({"format": "coco", "csv": TINY_CSV}))
    with pytest.raises(DatasetError, match=r"dataset\.json: unsupported format 'coco'"):
        open_dataset(root)
    meta.write_text(json.dumps({"format": "os2d-csv"}))
    with pytest.raises(DatasetError, match=r"dataset\.json: missing 'csv'"):
        open_dataset(root)
    meta.write_text(json.dumps({"csv": TINY_CSV, "eval_scale": -3}))
    with pytest.raises(DatasetError, match=r"dataset\.json: 'eval_scale' must be a positive number"):
        open_dataset(root)


# -- GroZi-3.2k layout -------------------------------------------------------------------------------

def make_fake_grozi(data_root: Path, with_filename_columns: bool = False) -> Path:
    """grozi.csv as released (no file name columns): image 0 train; images 1-2 val, classes 2-3 old, 4 new."""
    base = data_root / "grozi"
    rows = [  # gtbboxid, classid, imageid, lx, rx, ty, by, difficult, split
        (0, 0, 0, 0.1, 0.3, 0.1, 0.5, 0, "train"),
        (1, 2, 0, 0.4, 0.6, 0.1, 0.5, 0, "train"),
        (2, 2, 1, 0.05, 0.25, 0.2, 0.6, 0, "val-old-cl"),
        (3, 3, 1, 0.3, 0.5, 0.2, 0.6, 1, "val-old-cl"),
        (4, 4, 2, 0.6, 0.9, 0.2, 0.7, 0, "val-new-cl"),
        (5, 3, 2, 0.1, 0.3, 0.2, 0.7, 0, "val-old-cl"),
        (6, 4, 2, 0.3, 0.5, 0.2, 0.7, 1, "val-new-cl"),
    ]
    fields = ["gtbboxid", "classid", "imageid", "lx", "rx", "ty", "by", "difficult", "split"]
    dicts = [dict(zip(fields, map(str, r))) for r in rows]
    if with_filename_columns:
        fields = fields + ["imagefilename", "classfilename"]
        for d in dicts:
            d.update(imagefilename=f"img_{d['imageid']}.jpg", classfilename=f"cls_{d['classid']}.jpg")
    (base / "classes").mkdir(parents=True)
    write_rows(base / "classes" / "grozi.csv", fields, dicts)
    for d in dicts:
        tiny_png(base / "classes" / "images" / d.get("classfilename", f"{d['classid']}.jpg"))
        tiny_png(base / "src" / "3264" / d.get("imagefilename", f"{d['imageid']}.jpg"), size=(16, 12))
    return data_root


def test_grozi_train(tmp_path):
    root = make_fake_grozi(tmp_path / "data")
    ds = open_dataset(f"grozi:{root}", "train")
    assert ds.name == "grozi-train" and ds.split == "train"
    assert ds.eval_scale == GROZI_EVAL_SCALE == 1280.0 and ds.image_size == GROZI_IMAGE_SIZE == 3264
    assert ds.root == root and ds.csv_path == root / "grozi/classes/grozi.csv"
    assert [im.imageid for im in ds.images] == [0] and ds.class_ids() == [0, 2]
    assert ds.images[0].path == root / "grozi/src/3264/0.jpg"
    assert ds.classes[2] == root / "grozi/classes/images/2.jpg"
    np.testing.assert_allclose(ds.images[0].boxes[0], [0.1, 0.1, 0.3, 0.5], atol=1e-7)


def test_grozi_val_subsets_keep_all_val_images(tmp_path):
    """As build_grozi_dataset: every val image is searched, only the subset's boxes count."""
    root = make_fake_grozi(tmp_path / "data")
    new = open_dataset(f"grozi:{root}")  # default: the README benchmark
    assert new.name == "grozi-val-new-cl" and new.split == "val-new-cl"
    assert [im.imageid for im in new.images] == [1, 2] and new.class_ids() == [4]
    assert new.images[0].num_boxes == 0 and new.images[0].boxes.shape == (0, 4)
    assert new.images[1].class_ids.tolist() == [4, 4] and new.images[1].difficult.tolist() == [False, True]

    assert open_dataset(f"grozi:{root}", "val").name == "grozi-val-new-cl"
    assert open_dataset(f"grozi:{root}", "grozi-val-new-cl").name == "grozi-val-new-cl"

    old = open_dataset(f"grozi:{root}", "val-old-cl")
    assert [im.imageid for im in old.images] == [1, 2] and old.class_ids() == [2, 3]
    assert old.images[1].class_ids.tolist() == [3]

    both = open_dataset(f"grozi-val-all:{root}")
    assert both.name == "grozi-val-all" and both.class_ids() == [2, 3, 4] and both.num_boxes == 5
    assert both.images[1].class_ids.tolist() == [4, 3, 4]  # CSV order


def test_grozi_with_filename_columns(tmp_path):
    root = make_fake_grozi(tmp_path / "data", with_filename_columns=True)
    ds = open_dataset(f"grozi:{root}", "val-all")
    assert ds.images[0].path.name == "img_1.jpg" and ds.classes[4].name == "cls_4.jpg"


def test_grozi_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"grozi: GroZi folder not found"):
        open_dataset(f"grozi:{tmp_path}")
    root = make_fake_grozi(tmp_path / "data")
    csv_path = root / "grozi/classes/grozi.csv"
    with pytest.raises(DatasetError, match=r"grozi\.csv: unknown GroZi split 'test'"):
        open_dataset(f"grozi:{root}", "test")
    with pytest.raises(DatasetError, match="contradicts"):
        open_dataset(f"grozi-train:{root}", "val-all")
    (root / "grozi/src/3264/2.jpg").unlink()
    with pytest.raises(DatasetError, match=r"3264: 1 of 2 scene images listed in grozi\.csv are missing: 2\.jpg"):
        open_dataset(f"grozi:{root}")
    assert len(open_dataset(f"grozi:{root}", "train")) == 1  # train does not need the val image

    fields, rows = read_rows(csv_path)
    write_rows(csv_path, fields, [r for r in rows if r["split"] != "val-new-cl"])
    with pytest.raises(DatasetError, match=r"grozi\.csv: split 'val-new-cl' is empty; available splits: "
                                           r"train, val-old-cl, val-all"):
        open_dataset(f"grozi:{root}")
    write_rows(csv_path, [f for f in fields if f != "split"], rows)
    with pytest.raises(DatasetError, match=r"grozi\.csv: missing required column\(s\): split"):
        open_dataset(f"grozi:{root}", "train")
    csv_path.unlink()
    with pytest.raises(DatasetError, match=r"grozi\.csv: annotation CSV not found"):
        open_dataset(f"grozi:{root}", "train")


def test_error_truncated_row(tmp_path):
    root = copy_tiny(tmp_path)
    with open(root / TINY_CSV, "a") as f:
        f.write("6,0,0,0.1,0.2\n")
    with pytest.raises(DatasetError, match=r"tiny\.csv: row at line 8: expected 11 fields"):
        open_dataset(root)


# -- writing our layout -------------------------------------------------------------------------------

def written(tmp_path: Path, boxes, **kw) -> Path:
    """A dataset of two 8x6 scenes and two classes written by write_dataset."""
    root = tmp_path / "written"
    for cid in (0, 1):
        tiny_png(root / f"classes/images/c{cid}.png")
    for iid in (5, 6):
        tiny_png(root / f"src/images/s{iid}.png")
    return write_dataset(root, boxes, class_images={0: "c0.png", 1: "c1.png"},
                         scene_images={5: "s5.png", 6: "s6.png"}, name="written", **kw)


def test_written_dataset_loads_with_its_splits_and_flags(tmp_path):
    boxes = [GroundTruthBox(5, 0, (0.1, 0.2, 0.5, 0.6), "train"),
             GroundTruthBox(6, 1, (0.0, 0.0, 1.0, 1.0), "val", difficult=True),
             GroundTruthBox(6, 0, (-0.01, 0.5, 0.25, 1.02), "val")]  # clamped into the image
    root = written(tmp_path, boxes, eval_scale=320, meta={"seed": 3})
    meta = json.loads((root / "dataset.json").read_text())
    assert list(meta) == ["name", "format", "csv", "class_image_dir", "image_dir", "eval_scale", "seed"]
    fields, rows = read_rows(root / meta["csv"])
    assert tuple(fields) == CSV_COLUMNS
    assert [r["gtbboxid"] for r in rows] == ["0", "1", "2"] and rows[2]["lx"] == "0.000000" and rows[2]["by"] == "1.000000"
    ds = open_dataset(root)
    assert ds.name == "written" and ds.eval_scale == 320.0 and [im.imageid for im in ds.images] == [5, 6]
    assert ds.images[1].difficult.tolist() == [True, False] and ds.images[1].class_ids.tolist() == [1, 0]
    val = open_dataset(root, "val")
    assert [im.imageid for im in val.images] == [6] and val.classes[1] == root / "classes/images/c1.png"


def test_written_coordinates_exact_or_rounded(tmp_path):
    box = GroundTruthBox(5, 0, (1 / 12, 1 / 3, 0.5, 2 / 3), "train")
    exact = written(tmp_path / "a", [box], decimals=None)
    rounded = written(tmp_path / "b", [box], decimals=3)
    np.testing.assert_array_equal(open_dataset(exact).images[0].boxes, np.array([box.box], np.float32))
    assert read_rows(rounded / "classes/annotations.csv")[1][0]["lx"] == "0.083"


def test_write_refuses_what_the_loader_would(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        written(tmp_path / "a", [GroundTruthBox(5, 0, (0.5, 0.1, 0.5, 0.2), "train")])
    with pytest.raises(ValueError, match="class 7"):
        written(tmp_path / "b", [GroundTruthBox(5, 7, (0.1, 0.1, 0.5, 0.2), "train")])
    root = tmp_path / "c"
    with pytest.raises(ValueError, match="s5.png"):
        write_dataset(root, [GroundTruthBox(5, 0, (0.1, 0.1, 0.5, 0.2), "train")], class_images={0: "c0.png"},
                      scene_images={5: "s5.png"}, name="c")
    assert not (root / "dataset.json").exists()
