"""Datasets in the OS2D CSV annotation format: our `dataset.json` folders and the GroZi-3.2k layout,
and `write_dataset`, the one writer of our layout (the synthetic benchmark, the self-test, test data).

One CSV row is one ground-truth box: `imageid, imagefilename, classid, classfilename, gtbboxid,
difficult, lx, ty, rx, by` (+ optional `split`), boxes relative to the image size. Like the official
`read_annotation_file`, missing `imagefilename` / `classfilename` columns default to `<id>.jpg`
(the released `grozi.csv` has neither). Loading checks that every file exists but reads no image,
so opening GroZi (thousands of 3264-px photos) is cheap. Every problem raises `DatasetError`, whose
message names the file and says what is wrong.
"""

from __future__ import annotations

from core.errors import InputError

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from core.io import SNIFF_BYTES, atomic_write_text, looks_like, read_head, read_json

REQUIRED_COLUMNS = ("imageid", "imagefilename", "classid", "classfilename", "gtbboxid", "difficult",
                    "lx", "ty", "rx", "by")
DEFAULTED_COLUMNS = ("imagefilename", "classfilename")  # official read_annotation_file fills these
CSV_COLUMNS = REQUIRED_COLUMNS + ("split",)  # what `write_dataset` writes
BOX_TOLERANCE = 1e-3  # relative coordinates may stray this far outside [0, 1]
DEFAULT_EVAL_SCALE = 1280.0  # cfg.eval.dataset_scales in the official config

GROZI_EVAL_SCALE = 1280.0
GROZI_IMAGE_SIZE = 3264  # official loader resizes scene images to this longer side; gt pixels live there
GROZI_SUBSETS = ("train", "val-old-cl", "val-new-cl", "val-all")
GROZI_DEFAULT_SUBSET = "val-new-cl"  # the benchmark the README reports
_GROZI_SPEC = re.compile(r"^grozi(?P<subset>-[A-Za-z-]+)?:(?P<path>.*)$", re.IGNORECASE)
_MAX_NAMED_FILES = 5


class DatasetError(InputError):
    """A dataset that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, eq=False)
class SceneImage:
    """One scene image and its ground truth; boxes are relative xyxy so no image must be read to load."""

    imageid: int
    path: Path
    boxes: np.ndarray  # [N, 4] float32, relative xyxy
    class_ids: np.ndarray  # [N] int64
    difficult: np.ndarray  # [N] bool

    @property
    def num_boxes(self) -> int:  # not __len__: an image without boxes must stay truthy
        return int(self.boxes.shape[0])

    def boxes_in_pixels(self, width: int, height: int) -> np.ndarray:
        """Boxes in pixels of an image of this size, as the official loader scales them (float32)."""
        scale = np.array([width, height, width, height], dtype=np.float64)
        return (self.boxes.astype(np.float64) * scale).astype(np.float32)


@dataclass(frozen=True, eq=False)
class OS2DDataset:
    """A loaded split: class images by class id and scene images with their boxes."""

    name: str
    root: Path
    eval_scale: float
    classes: dict[int, Path]
    images: tuple[SceneImage, ...]
    split: str = "all"
    csv_path: Path | None = None
    # longer side OS2D resizes scene images to before evaluating (GroZi: 3264); None = as stored.
    # The +1-pixel IoU of the official mAP is not scale invariant, so gt pixels must use this frame.
    image_size: int | None = None

    def __len__(self) -> int:
        return len(self.images)

    def class_ids(self) -> list[int]:
        return sorted(self.classes)

    def images_with_class(self, cid: int) -> list[SceneImage]:
        """Scene images holding at least one box (difficult included) of class `cid`."""
        return [im for im in self.images if bool(np.any(im.class_ids == cid))]

    @property
    def num_boxes(self) -> int:
        return sum(im.num_boxes for im in self.images)


@dataclass(frozen=True)
class _Row:
    line: int
    imageid: int
    imagefilename: str
    classid: int
    classfilename: str
    gtbboxid: str
    difficult: bool
    box: tuple[float, float, float, float]
    split: str | None


# -- CSV -------------------------------------------------------------------------------------------

def _parse_int(text: str, column: str, line: int, csv_path: Path) -> int:
    s = text.strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)  # pandas writes integer columns with a gap as floats ("3.0")
    except ValueError:
        f = math.nan
    if math.isfinite(f) and f.is_integer():
        return int(f)
    raise DatasetError(csv_path, f"row at line {line}: column '{column}' is not an integer: {text!r}")


def _parse_float(text: str, column: str, line: int, csv_path: Path) -> float:
    try:
        f = float(text.strip())
    except ValueError:
        f = math.nan
    if not math.isfinite(f):
        raise DatasetError(csv_path, f"row at line {line}: column '{column}' is not a finite number: {text!r}")
    return f


def _parse_difficult(text: str, line: int, csv_path: Path) -> bool:
    s = text.strip().lower()
    if s in ("1", "1.0", "true"):
        return True
    if s in ("0", "0.0", "false", ""):
        return False
    raise DatasetError(csv_path, f"row at line {line}: column 'difficult' must be 0 or 1, got {text!r}")


def _csv_problem(csv_path: Path) -> str:
    """Why a file cannot be an annotation CSV before parsing it ("" when it may be one): a foreign or binary
    file is named by its content, not by the CSV reader's complaint."""
    try:
        _, head = read_head(csv_path)
    except OSError as e:
        return f"cannot read the file ({e.strerror or type(e).__name__})"
    seen = looks_like(head)
    if seen and seen != "a text file":
        return f"not a CSV file (it looks like {seen})"
    if b"\x00" in head:
        return "not a CSV file (it holds binary data)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if not (len(head) == SNIFF_BYTES and e.start >= SNIFF_BYTES - 3):  # a character cut at the end is fine
            return "not a CSV file (not UTF-8 text)"
    return ""


def _found_columns(columns: list[str]) -> str:
    """The header as found, short enough for one line."""
    if len(columns) == 1 and ";" in columns[0]:
        return "its columns are separated by ';', the format uses ','"
    shown = ", ".join(c[:40] for c in columns[:12]) + (f" and {len(columns) - 12} more" if len(columns) > 12 else "")
    return f"found: {shown or 'none'}"


def read_annotation_csv(csv_path: str | os.PathLike) -> list[_Row]:
    """Parse and validate every row; boxes must lie in the image (±1e-3) and have positive size."""
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        raise DatasetError(csv_path, "is a directory, expected the annotation CSV file")
    if not csv_path.is_file():
        raise DatasetError(csv_path, "annotation CSV not found")
    problem = _csv_problem(csv_path)
    if problem:
        raise DatasetError(csv_path, problem)
    reader = None
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns and c not in DEFAULTED_COLUMNS]
            if missing:
                raise DatasetError(csv_path, f"missing required column(s): {', '.join(missing)} "
                                             f"({_found_columns(columns)})")
            reader.fieldnames = columns
            has_split = "split" in columns
            rows = []
            for raw in reader:
                line = reader.line_num
                if all(v is None or not str(v).strip() for v in raw.values()):
                    continue  # blank line
                if None in raw or any(raw.get(c) is None for c in columns):
                    raise DatasetError(csv_path, f"row at line {line}: expected {len(columns)} fields")
                imageid = _parse_int(raw["imageid"], "imageid", line, csv_path)
                classid = _parse_int(raw["classid"], "classid", line, csv_path)
                lx, ty, rx, by = (_parse_float(raw[c], c, line, csv_path) for c in ("lx", "ty", "rx", "by"))
                gtbboxid = raw["gtbboxid"].strip()
                where = f"row at line {line} (gtbboxid {gtbboxid})"
                if min(lx, ty, rx, by) < -BOX_TOLERANCE or max(lx, ty, rx, by) > 1 + BOX_TOLERANCE:
                    raise DatasetError(csv_path, f"{where}: box lx={lx}, ty={ty}, rx={rx}, by={by} lies outside "
                                                 f"the image (relative coordinates must be in [0, 1])")
                if lx >= rx or ty >= by:
                    raise DatasetError(csv_path, f"{where}: empty box lx={lx}, ty={ty}, rx={rx}, by={by} "
                                                 f"(need lx < rx and ty < by)")
                imagefilename = (raw["imagefilename"].strip() if "imagefilename" in columns
                                 else f"{imageid}.jpg")
                classfilename = (raw["classfilename"].strip() if "classfilename" in columns
                                 else f"{classid}.jpg")
                if not imagefilename or not classfilename:
                    raise DatasetError(csv_path, f"{where}: empty imagefilename or classfilename")
                rows.append(_Row(
                    line=line, imageid=imageid, imagefilename=imagefilename, classid=classid,
                    classfilename=classfilename, gtbboxid=gtbboxid,
                    difficult=_parse_difficult(raw["difficult"], line, csv_path),
                    box=(lx, ty, rx, by), split=raw["split"].strip() if has_split else None,
                ))
    except UnicodeDecodeError:
        raise DatasetError(csv_path, "not a CSV file (not UTF-8 text)") from None
    except csv.Error as e:
        what = "a field is too long" if "field limit" in str(e) else "malformed quoting or line breaks"
        raise DatasetError(csv_path, f"cannot parse CSV near line {reader.line_num if reader else 1} ({what})") from None
    except OSError as e:
        raise DatasetError(csv_path, f"cannot read the file ({e.strerror or type(e).__name__})") from None
    return rows


# -- assembling a split ---------------------------------------------------------------------------

def _check_consistent(rows: list[_Row], csv_path: Path) -> None:
    """One file per image id and per class id; otherwise boxes would attach to the wrong picture."""
    image_file: dict[int, tuple[str, int]] = {}
    class_file: dict[int, tuple[str, int]] = {}
    for r in rows:
        seen = image_file.setdefault(r.imageid, (r.imagefilename, r.line))
        if seen[0] != r.imagefilename:
            raise DatasetError(csv_path, f"row at line {r.line}: imageid {r.imageid} is '{r.imagefilename}' "
                                         f"but '{seen[0]}' at line {seen[1]}")
        seen = class_file.setdefault(r.classid, (r.classfilename, r.line))
        if seen[0] != r.classfilename:
            raise DatasetError(csv_path, f"row at line {r.line}: classid {r.classid} is '{r.classfilename}' "
                                         f"but '{seen[0]}' at line {seen[1]}")


def _require_files(paths: list[Path], what: str, folder: Path, csv_path: Path) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        named = ", ".join(str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p)
                          for p in missing[:_MAX_NAMED_FILES])
        more = f" and {len(missing) - _MAX_NAMED_FILES} more" if len(missing) > _MAX_NAMED_FILES else ""
        raise DatasetError(folder, f"{len(missing)} of {len(paths)} {what} listed in {csv_path.name} "
                                   f"are missing: {named}{more}")


def _assemble(*, name: str, root: Path, csv_path: Path, eval_scale: float, split: str,
              image_rows: list[_Row], box_rows: list[_Row], class_dir: Path, image_dir: Path,
              image_size: int | None) -> OS2DDataset:
    """Images come from `image_rows` (first-appearance order, as pandas drop_duplicates), boxes and
    classes from `box_rows`; they differ for GroZi val-old-cl / val-new-cl, which keep every val image."""
    image_order: dict[int, str] = {}
    for r in image_rows:
        image_order.setdefault(r.imageid, r.imagefilename)
    classes_files: dict[int, str] = {}
    for r in box_rows:
        classes_files.setdefault(r.classid, r.classfilename)

    image_paths = {iid: image_dir / fn for iid, fn in image_order.items()}
    class_paths = {cid: class_dir / fn for cid, fn in classes_files.items()}
    _require_files(list(class_paths.values()), "class images", class_dir, csv_path)
    _require_files(list(image_paths.values()), "scene images", image_dir, csv_path)

    per_image: dict[int, list[_Row]] = {iid: [] for iid in image_order}
    for r in box_rows:
        per_image[r.imageid].append(r)
    images = []
    for iid, rs in per_image.items():
        boxes = np.array([r.box for r in rs], dtype=np.float32).reshape(-1, 4)
        cids = np.array([r.classid for r in rs], dtype=np.int64)
        diff = np.array([r.difficult for r in rs], dtype=bool)
        for a in (boxes, cids, diff):
            a.setflags(write=False)
        images.append(SceneImage(imageid=iid, path=image_paths[iid], boxes=boxes, class_ids=cids, difficult=diff))
    return OS2DDataset(name=name, root=root, eval_scale=float(eval_scale), classes=dict(sorted(class_paths.items())),
                       images=tuple(images), split=split, csv_path=csv_path, image_size=image_size)


def _select_split(rows: list[_Row], split: str, csv_path: Path) -> list[_Row]:
    present = sorted({r.split for r in rows if r.split})
    available = ["all"] + present if rows else []
    if split == "all":
        selected = rows
    else:
        selected = [r for r in rows if r.split == split]
    if not selected:
        why = "has no 'split' column" if rows and rows[0].split is None and split != "all" else "is empty"
        raise DatasetError(csv_path, f"split '{split}' {why}; available splits: {', '.join(available) or 'none'}")
    return selected


# -- the two layouts --------------------------------------------------------------------------------

def _json_type(value) -> str:
    """A JSON value's kind in JSON's words ("a number", "a list")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _short(value) -> str:
    """A value for a one-line message: repr, cut at 40 characters."""
    r = repr(value)
    return r if len(r) <= 40 else r[:37] + "..."


def load_dataset_dir(root: str | os.PathLike, split: str | None = None) -> OS2DDataset:
    """Our layout: a folder with dataset.json naming the CSV and the image folders (relative to it).

    `root` may also be the json file itself (any name); paths in it are relative to its folder."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".json":
        root, meta_path = root.parent, root
    else:
        meta_path = root / "dataset.json"
    if not meta_path.exists():
        raise DatasetError(root, "no dataset.json here (for the GroZi-3.2k layout use 'grozi:PATH')")
    desc = read_json(meta_path, DatasetError, "dataset description (dataset.json)")
    if not isinstance(desc, dict):
        raise DatasetError(meta_path, f"a dataset description is a JSON object, got {_json_type(desc)}")
    fmt = desc.get("format", "os2d-csv")
    if fmt != "os2d-csv":
        raise DatasetError(meta_path, f"unsupported format {_short(fmt)} (expected 'os2d-csv')")
    if "csv" not in desc:
        raise DatasetError(meta_path, "missing 'csv' (path of the annotation CSV)")
    if not isinstance(desc["csv"], str) or not desc["csv"].strip():
        raise DatasetError(meta_path, f"'csv' must be the path of the annotation CSV (a string), "
                                      f"got {_json_type(desc['csv'])}: {_short(desc['csv'])}")
    eval_scale = desc.get("eval_scale", DEFAULT_EVAL_SCALE)
    if (isinstance(eval_scale, bool) or not isinstance(eval_scale, (int, float)) or not eval_scale > 0
            or not math.isfinite(eval_scale)):
        raise DatasetError(meta_path, f"'eval_scale' must be a positive number, got {_short(eval_scale)}")
    image_size = desc.get("image_size")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size <= 0):
        raise DatasetError(meta_path, f"'image_size' must be a positive integer or null, got {_short(image_size)}")
    for key in ("class_image_dir", "image_dir", "name"):
        if key in desc and not isinstance(desc[key], str):
            raise DatasetError(meta_path, f"'{key}' must be a string, got {_json_type(desc[key])}: {_short(desc[key])}")

    csv_path = root / desc["csv"]
    split = split or "all"
    rows = read_annotation_csv(csv_path)
    selected = _select_split(rows, split, csv_path)
    _check_consistent(rows, csv_path)
    name = desc.get("name") or root.name
    return _assemble(name=name if split == "all" else f"{name}-{split}", root=root, csv_path=csv_path,
                     eval_scale=eval_scale, split=split, image_rows=selected, box_rows=selected,
                     class_dir=root / desc.get("class_image_dir", "classes/images"),
                     image_dir=root / desc.get("image_dir", "src/images"), image_size=image_size)


def _grozi_subset(split: str | None) -> str:
    s = (split or GROZI_DEFAULT_SUBSET).lower()
    s = s[len("grozi-"):] if s.startswith("grozi-") else s
    return GROZI_DEFAULT_SUBSET if s == "val" else s


def load_grozi(data_root: str | os.PathLike, split: str | None = None) -> OS2DDataset:
    """GroZi-3.2k as the official build_grozi_dataset: val-old-cl / val-new-cl keep *all* val images
    (so the other half's images still count for false positives) but only their own boxes and classes."""
    data_root = Path(data_root)
    base = data_root / "grozi"
    csv_path = base / "classes" / "grozi.csv"
    subset = _grozi_subset(split)
    if subset not in GROZI_SUBSETS:
        raise DatasetError(csv_path, f"unknown GroZi split '{split}'; available splits: "
                                     f"{', '.join(GROZI_SUBSETS)} (and 'val' = val-new-cl)")
    if not base.is_dir():
        raise DatasetError(base, f"GroZi folder not found (expected {data_root}/grozi/classes/grozi.csv)")
    rows = read_annotation_csv(csv_path)
    if rows and rows[0].split is None:
        raise DatasetError(csv_path, "missing required column(s): split (GroZi subsets are defined by it)")
    if subset == "train":
        image_rows = box_rows = [r for r in rows if r.split == "train"]
    else:
        image_rows = [r for r in rows if r.split in ("val-old-cl", "val-new-cl")]
        box_rows = image_rows if subset == "val-all" else [r for r in image_rows if r.split == subset]
    if not box_rows:
        present = {r.split for r in rows}
        available = [s for s in GROZI_SUBSETS
                     if s in present or (s == "val-all" and present & {"val-old-cl", "val-new-cl"})]
        raise DatasetError(csv_path, f"split '{subset}' is empty; available splits: {', '.join(available) or 'none'}")
    _check_consistent(rows, csv_path)
    return _assemble(name=f"grozi-{subset}", root=data_root, csv_path=csv_path, eval_scale=GROZI_EVAL_SCALE,
                     split=subset, image_rows=image_rows, box_rows=box_rows,
                     class_dir=base / "classes" / "images", image_dir=base / "src" / str(GROZI_IMAGE_SIZE),
                     image_size=GROZI_IMAGE_SIZE)


def open_dataset(spec: str | os.PathLike, split: str | None = None) -> OS2DDataset:
    """Open `grozi:PATH` (also `grozi-val-all:PATH`), a folder with dataset.json, or that json file.

    split: for dataset.json folders `all` (default) or any value of the CSV's split column
    (`train`, `val`); for GroZi `train`, `val-old-cl`, `val-new-cl` (default; `val` too), `val-all`.
    """
    if isinstance(spec, str):
        m = _GROZI_SPEC.match(spec)
        if m:
            spec_subset = m.group("subset")
            if spec_subset and split and _grozi_subset(split) != _grozi_subset(spec_subset[1:]):
                raise DatasetError(m.group("path"), f"split '{split}' contradicts the spec '{spec}'")
            return load_grozi(Path(m.group("path")).expanduser(), split or (spec_subset[1:] if spec_subset else None))
    path = Path(spec).expanduser()
    if not path.exists():
        raise DatasetError(path, "dataset not found")
    return load_dataset_dir(path, split)


# -- writing our layout -----------------------------------------------------------------------------

@dataclass(frozen=True)
class GroundTruthBox:
    """One annotation row to write: a box of class `classid` in scene `imageid`, relative xyxy in [0, 1]."""

    imageid: int
    classid: int
    box: tuple[float, float, float, float]
    split: str
    difficult: bool = False


def _coordinate(v: float, decimals: int | None) -> str:
    v = min(max(float(v), 0.0), 1.0)
    return repr(v) if decimals is None else f"{v:.{decimals}f}"


def write_dataset(root: str | os.PathLike, boxes: Iterable[GroundTruthBox], *, class_images: Mapping[int, str],
                  scene_images: Mapping[int, str], name: str, csv_name: str = "classes/annotations.csv",
                  class_image_dir: str = "classes/images", image_dir: str = "src/images",
                  eval_scale: float | None = None, meta: Mapping[str, Any] | None = None,
                  decimals: int | None = 6) -> Path:
    """Write the annotation CSV and `dataset.json` of a dataset whose image files are already in place.

    Images stay with the caller because each writes its own kind (parallel JPEGs of chosen quality, PNGs
    from arrays or PIL); this writes what makes a folder a dataset, in the one format `load_dataset_dir`
    reads. `class_images` / `scene_images` map ids to file names inside `class_image_dir` / `image_dir`
    (one file per id, as the loader requires); a scene without boxes is not listed (the format has no row
    for it). Boxes are numbered (`gtbboxid`) in the given order and clamped to [0, 1]; `decimals` rounds
    them (None: exact, for tests that compare coordinates). `meta` adds keys to dataset.json after the
    layout's own. Each file is replaced atomically and dataset.json is written last, so a folder that has
    one is complete. Returns `root`.

    Raises ValueError for an empty box, an id without a file name or a listed file that is missing.
    """
    root = Path(root)
    rows = []
    for i, b in enumerate(boxes):
        lx, ty, rx, by = (min(max(float(v), 0.0), 1.0) for v in b.box)
        if not (lx < rx and ty < by):
            raise ValueError(f"box {i} (image {b.imageid}, class {b.classid}) is empty: {b.box}")
        if b.imageid not in scene_images or b.classid not in class_images:
            raise ValueError(f"box {i}: no file name for image {b.imageid} or class {b.classid}")
        rows.append((b.imageid, scene_images[b.imageid], b.classid, class_images[b.classid], i, int(b.difficult),
                     *(_coordinate(v, decimals) for v in b.box), b.split))
    listed = ({root / class_image_dir / class_images[r[2]] for r in rows}
              | {root / image_dir / scene_images[r[0]] for r in rows})
    missing = sorted(str(p.relative_to(root)) for p in listed if not p.is_file())
    if missing:
        more = f" and {len(missing) - _MAX_NAMED_FILES} more" if len(missing) > _MAX_NAMED_FILES else ""
        raise ValueError(f"{root}: listed images are missing: {', '.join(missing[:_MAX_NAMED_FILES])}{more}")
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    atomic_write_text(root / csv_name, text.getvalue())
    description = {"name": name, "format": "os2d-csv", "csv": csv_name, "class_image_dir": class_image_dir,
                   "image_dir": image_dir}
    if eval_scale is not None:
        description["eval_scale"] = eval_scale
    description.update(meta or {})
    atomic_write_text(root / "dataset.json", json.dumps(description, indent=2) + "\n")
    return root
