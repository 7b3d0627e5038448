"""A corpus of bad inputs for every loader: each must raise an InputError whose message starts with the
file's path, is one line, and shows no traceback.

The corpus is generated at test time from small real files (a pruned model saved here, the sample
images and video, the tiny dataset, an importance result and a plan saved here) with a fixed seed:
truncated at several points, bytes flipped or zeroed, random bytes, empty files, directories in place
of files, foreign files under the right extension, and files with fields missing or of the wrong type.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from core.data.grozi import open_dataset
from core.data.images import load_image
from core.data.video import VideoFileSource
from core.errors import InputError
from core.importance.result import ImportanceResult
from core.model.checkpoint import CHECKSUM_KEY, load_model
from core.prune.plan import PlanError, PruningPlan
from core.resources import samples_dir

from _file_helpers import save_small_model, small_importance  # noqa: E402

SEED = 20251202
TINY = Path(__file__).resolve().parent.parent / "data" / "tiny_os2d"
CUTS = (0.0005, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)  # truncation points, as fractions of the size

# text that comes from a library rather than from us: a message with any of it has passed a library's
# complaint through instead of saying what is wrong with the file
LIBRARY_TEXT = ("codec can't decode", "Expecting value", "Expecting property name", "Unterminated string",
                "Extra data", "delimiter: line", "(char ", "[Errno", "Traceback", "moov atom", "BadZipFile",
                "invalid load key", "PytorchStreamReader", "_pickle", "cv2.error")


# -- the source files -----------------------------------------------------------------------------------
@dataclass
class Sources:
    dir: Path
    model: bytes
    png: bytes
    jpg: bytes
    mp4: bytes
    plan: bytes
    imp_json: bytes
    imp_npz: bytes

    def payload(self) -> dict:
        """The small model's payload as torch.load returns it (a fresh copy each time)."""
        return torch.load(self.dir / "small.pt", weights_only=True)


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Sources:
    d = tmp_path_factory.mktemp("sources")
    model = save_small_model(d / "small.pt")
    npz, js = small_importance().save(d / "r")  # the json names r.npz
    plan = PruningPlan(ratio=0.3, unit_ratios={"net_feature_maps.layer1.0.conv1": 0.5}).save(d / "plan.json")
    return Sources(d, model.read_bytes(), (samples_dir() / "class_83.png").read_bytes(),
                   (samples_dir() / "shelf.jpg").read_bytes(), (samples_dir() / "demo.mp4").read_bytes(),
                   plan.read_bytes(), js.read_bytes(), npz.read_bytes())


# -- damage -----------------------------------------------------------------------------------------------
def cut(data: bytes, frac: float) -> bytes:
    return data[:max(1, int(len(data) * frac))]


def flipped(data: bytes, *positions: int) -> bytes:
    b = bytearray(data)
    for p in positions:
        b[p] ^= 0xFF
    return bytes(b)


def zeroed(data: bytes, start: int, length: int) -> bytes:
    b = bytearray(data)
    b[start:start + length] = bytes(min(length, len(b) - start))
    return bytes(b)


def rng_for(case_id: str) -> np.random.Generator:
    return np.random.default_rng([SEED, *case_id.encode()])


def zip_regions(data: bytes) -> dict[str, list[tuple[int, int]]]:
    """(start, length) of each entry's bytes by kind ("tensor", "pickle", "other"), plus the central
    directory's CRC and name fields, for damage that lands where it matters."""
    import io

    out: dict[str, list[tuple[int, int]]] = {"tensor": [], "pickle": [], "other": [], "crc": [], "name": []}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            kind = "tensor" if "/data/" in info.filename else "pickle" if info.filename.endswith(".pkl") else "other"
            if info.file_size:
                out[kind].append((start, info.file_size))
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack("<H", data[at + 28:at + 30])[0]
        out["crc"].append((at + 16, 4))
        out["name"].append((at + 46, name_len))
        at = data.find(b"PK\x01\x02", at + 46 + name_len)
    return out


def pick(rng: np.random.Generator, regions: list[tuple[int, int]], big: bool = False) -> int:
    """A byte inside one of the regions (the largest when `big`)."""
    start, length = max(regions, key=lambda r: r[1]) if big else regions[int(rng.integers(len(regions)))]
    return start + int(rng.integers(length))


# -- the cases --------------------------------------------------------------------------------------------
# make(src, tmp, rng) -> (what to pass the loader, the path its message must start with)
Make = Callable[[Sources, Path, np.random.Generator], tuple[Path, Path]]


@dataclass(frozen=True)
class Case:
    id: str
    loader: str
    make: Make
    xfail: str = ""


CASES: list[Case] = []


def add(loader: str, name: str, make: Make, xfail: str = "") -> None:
    CASES.append(Case(f"{loader}-{name}", loader, make, xfail))


def write(tmp: Path, name: str, data: bytes) -> tuple[Path, Path]:
    p = tmp / name
    p.write_bytes(data)
    return p, p


def directory(tmp: Path, name: str) -> tuple[Path, Path]:
    p = tmp / name
    p.mkdir()
    return p, p


def _common(loader: str, ext: str, original: Callable[[Sources], bytes], foreign: dict[str, Callable[[Sources], bytes]],
            xfail: dict[str, str] | None = None) -> None:
    """Truncations, random bytes, empty, directory, missing and foreign files: the same for every loader."""
    xfail = xfail or {}
    name = f"file{ext}"
    for frac in CUTS:
        add(loader, f"cut{frac}", lambda s, t, r, frac=frac: write(t, name, cut(original(s), frac)),
            xfail.get(f"cut{frac}", ""))
    for n in (1, 7, 100, 5000, 200_000):
        add(loader, f"random{n}", lambda s, t, r, n=n: write(t, name, r.bytes(n)))
    add(loader, "zeros", lambda s, t, r: write(t, name, bytes(len(original(s)))))
    add(loader, "zeroed-head", lambda s, t, r: write(t, name, zeroed(original(s), 0, 64)))
    add(loader, "empty", lambda s, t, r: write(t, name, b""))
    add(loader, "directory", lambda s, t, r: directory(t, name))
    add(loader, "missing", lambda s, t, r: (t / name, t / name))
    for kind, data in foreign.items():
        add(loader, f"foreign-{kind}", lambda s, t, r, data=data: write(t, name, data(s)), xfail.get(f"foreign-{kind}", ""))


FOREIGN = {
    "png": lambda s: s.png, "jpg": lambda s: s.jpg, "mp4": lambda s: s.mp4[:300_000], "model": lambda s: s.model,
    "json": lambda s: s.plan, "npz": lambda s: s.imp_npz, "text": lambda s: b"gtbboxid,classid\n0,1\n" * 20,
}


def _others(own: str) -> dict[str, Callable[[Sources], bytes]]:
    return {k: v for k, v in FOREIGN.items() if k != own}


# model files ------------------------------------------------------------------------------------------
_common("model", ".pt", lambda s: s.model, _others("model"))


def in_model(s: Sources, r: np.random.Generator, kind: str, big: bool = False) -> int:
    return pick(r, zip_regions(s.model)[kind], big)


for kind, count in (("tensor", 12), ("pickle", 6), ("crc", 4), ("name", 4)):
    for i in range(count):
        add("model", f"flip-{kind}{i}", lambda s, t, r, kind=kind: write(t, "m.pt", flipped(s.model, in_model(s, r, kind))))
for i in range(3):
    add("model", f"flip-big-tensor{i}", lambda s, t, r: write(t, "m.pt", flipped(s.model, in_model(s, r, "tensor", True))))
add("model", "flip-local-header", lambda s, t, r: write(t, "m.pt", flipped(s.model, 1)))
add("model", "flip-many", lambda s, t, r: write(t, "m.pt", flipped(s.model, *set(int(x) for x in r.integers(0, len(s.model), 50)))))
for i in range(5):
    add("model", f"zero-tensor{i}", lambda s, t, r: write(t, "m.pt", zeroed(s.model, in_model(s, r, "tensor", True), 256)))
for i in range(3):
    add("model", f"zero-pickle{i}", lambda s, t, r: write(t, "m.pt", zeroed(s.model, in_model(s, r, "pickle"), 16)))
add("model", "zero-tail", lambda s, t, r: write(t, "m.pt", zeroed(s.model, len(s.model) - 100, 100)))
add("model", "random-with-zip-magic", lambda s, t, r: write(t, "m.pt", b"PK\x03\x04" + r.bytes(20_000)))
add("model", "random-with-legacy-magic", lambda s, t, r: write(t, "m.pt", b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + r.bytes(2000)))
add("model", "plain-pickle", lambda s, t, r: write(t, "m.pt", __import__("pickle").dumps({"net": {"a": 1}})))


def _torch_file(t: Path, obj) -> tuple[Path, Path]:
    p = t / "m.pt"
    torch.save(obj, p)
    return p, p


def _payload_case(name: str, change: Callable[[dict], object], keep_checksum: bool = False) -> None:
    def make(s, t, r):
        d = s.payload()
        if not keep_checksum:
            d.pop(CHECKSUM_KEY)
        change(d)
        return _torch_file(t, d)
    add("model", name, make)


_payload_case("no-config", lambda d: d.pop("config"))
_payload_case("no-state-dict", lambda d: d.pop("state_dict"))
_payload_case("config-list", lambda d: d.update(config=[1, 2]))
_payload_case("config-unknown-backbone", lambda d: d["config"].update(backbone="resnet9"))
_payload_case("meta-number", lambda d: d.update(meta=5))
_payload_case("state-dict-list", lambda d: d.update(state_dict=[torch.zeros(1)]))
_payload_case("state-dict-string-value", lambda d: d["state_dict"].update({"net_feature_maps.conv1.weight": "w"}))
_payload_case("newer-version", lambda d: d.update(version=99))
_payload_case("version-string", lambda d: d.update(version="1"))
_payload_case("missing-tensor", lambda d: d["state_dict"].pop("net_feature_maps.layer2.0.conv1.weight"))
_payload_case("missing-tensor-checksum-kept", lambda d: d["state_dict"].pop("net_feature_maps.layer2.0.conv1.weight"),
              keep_checksum=True)
_payload_case("wrong-shape", lambda d: d["state_dict"].update({"net_feature_maps.layer2.0.bn1.weight": torch.ones(3)}))
_payload_case("nan-weight", lambda d: d["state_dict"]["net_feature_maps.layer1.0.conv1.weight"].view(-1).__setitem__(0, float("nan")))
_payload_case("negative-variance", lambda d: d["state_dict"]["net_feature_maps.layer1.0.bn1.running_var"].__setitem__(0, -1.0))
_payload_case("inf-meta-changed", lambda d: d["meta"].update(eval_scale=float("inf")), keep_checksum=True)
_payload_case("unexpected-tensor", lambda d: d["state_dict"].update({"net_feature_maps.extra.weight": torch.zeros(2)}))
add("model", "top-level-list", lambda s, t, r: _torch_file(t, [torch.zeros(2)]))
add("model", "bare-tensor", lambda s, t, r: _torch_file(t, torch.zeros(2)))
add("model", "unknown-layout", lambda s, t, r: _torch_file(t, {"weights": torch.zeros(2)}))
add("model", "official-empty-net", lambda s, t, r: _torch_file(t, {"net": {}}))
add("model", "official-int-keys", lambda s, t, r: _torch_file(t, {"net": {1: torch.zeros(1)}, 2: 3}))
add("model", "official-nan", lambda s, t, r: _torch_file(t, {"net": {k: v.fill_(float("nan")) if k.endswith("bn1.weight") else v
                                                                    for k, v in s.payload()["state_dict"].items()}}))
add("model", "imagenet-state-dict", lambda s, t, r: _torch_file(t, {"conv1.weight": torch.zeros(64, 3, 7, 7)}))

# images -----------------------------------------------------------------------------------------------
IMAGES = ("png", "jpg")  # decoders go by content: a JPEG named .png is an image all the same
_common("png", ".png", lambda s: s.png, {k: v for k, v in FOREIGN.items() if k not in IMAGES})
_common("jpg", ".jpg", lambda s: s.jpg, {k: v for k, v in FOREIGN.items() if k not in IMAGES})
for i in range(8):
    add("png", f"flip{i}", lambda s, t, r: write(t, "i.png", flipped(s.png, int(r.integers(100, len(s.png))))))
for i in range(3):
    add("png", f"zero{i}", lambda s, t, r: write(t, "i.png", zeroed(s.png, int(r.integers(100, len(s.png) - 64)), 64)))
add("png", "one-pixel", lambda s, t, r: write(t, "i.png", __import__("cv2").imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes()))

# video ------------------------------------------------------------------------------------------------
_common("video", ".mp4", lambda s: s.mp4, _others("mp4"))
def _still_gif() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 120, np.uint8)).save(buf, format="GIF")
    return buf.getvalue()


add("video", "foreign-still-gif", lambda s, t, r: write(t, "v.mp4", _still_gif()))
add("video", "zeroed-index", lambda s, t, r: write(t, "v.mp4", zeroed(s.mp4, s.mp4.rfind(b"moov") - 4, 4096)))
add("video", "no-index", lambda s, t, r: write(t, "v.mp4", s.mp4[:s.mp4.rfind(b"moov") - 4]))

# importance results -----------------------------------------------------------------------------------
def _imp(t: Path, js: bytes, npz: bytes | None, damaged: str) -> tuple[Path, Path]:
    (t / "r.json").write_bytes(js)
    if npz is not None:
        (t / "r.npz").write_bytes(npz)
    return t / "r.json", t / damaged


for frac in CUTS:
    add("importance", f"json-cut{frac}", lambda s, t, r, frac=frac: _imp(t, cut(s.imp_json, frac), s.imp_npz, "r.json"))
    add("importance", f"npz-cut{frac}", lambda s, t, r, frac=frac: _imp(t, s.imp_json, cut(s.imp_npz, frac), "r.npz"))
for i in range(6):
    add("importance", f"npz-flip{i}", lambda s, t, r: _imp(t, s.imp_json, flipped(s.imp_npz, pick(r, zip_regions(s.imp_npz)["other"])), "r.npz"))
for i in range(3):
    add("importance", f"npz-zero{i}", lambda s, t, r: _imp(t, s.imp_json, zeroed(s.imp_npz, pick(r, zip_regions(s.imp_npz)["other"]), 32), "r.npz"))
for what, data in (("empty", lambda s, r: b""), ("random", lambda s, r: r.bytes(3000)), ("png", lambda s, r: s.png),
                   ("model", lambda s, r: s.model), ("binary-zeros", lambda s, r: bytes(500))):
    add("importance", f"json-{what}", lambda s, t, r, data=data: _imp(t, data(s, r), s.imp_npz, "r.json"))
    add("importance", f"npz-{what}", lambda s, t, r, data=data: _imp(t, s.imp_json, data(s, r), "r.npz"))
add("importance", "npz-missing", lambda s, t, r: _imp(t, s.imp_json, None, "r.npz"))
add("importance", "json-missing", lambda s, t, r: (t / "r.json", t / "r.json"))
add("importance", "json-directory", lambda s, t, r: (directory(t, "r.json")[0], t / "r.json"))
add("importance", "npz-directory", lambda s, t, r: (_imp(t, s.imp_json, None, "r.npz"), (t / "r.npz").mkdir())[0])
add("importance", "npz-of-another-result", lambda s, t, r: _imp(
    t, s.imp_json, _resaved_npz(s, lambda a: {k: v[::-1].copy() if k.startswith("score") else v for k, v in a.items()}), "r.npz"))
add("importance", "npz-missing-array", lambda s, t, r: _imp(t, s.imp_json, _resaved_npz(s, lambda a: dict(list(a.items())[1:])), "r.npz"))


def _resaved_npz(s: Sources, change) -> bytes:
    import io

    with np.load(io.BytesIO(s.imp_npz)) as z:
        arrays = change({k: z[k] for k in z.files})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _imp_field(name: str, change: Callable[[dict], object], named: str = "r.json") -> None:
    """The json edited; `named`: the file the message names (a json that disagrees with its arrays
    is reported on the arrays file)."""
    def make(s, t, r):
        meta = json.loads(s.imp_json)
        change(meta)
        return _imp(t, json.dumps(meta).encode(), s.imp_npz, named)
    add("importance", name, make)


for field in ("format", "version", "units", "criteria", "calibration"):
    _imp_field(f"no-{field}", lambda m, field=field: m.pop(field))
_imp_field("units-string", lambda m: m.update(units="abc"))
_imp_field("unit-without-channels", lambda m: m["units"][0].pop("channels"))
_imp_field("channels-not-a-number", lambda m: m["units"][0].update(channels="many"))
_imp_field("channels-wrong", lambda m: m["units"][0].update(channels=17), "r.npz")
_imp_field("unknown-criterion", lambda m: m["criteria"].append("taylor"), "r.npz")
_imp_field("calibration-list", lambda m: m.update(calibration=[1, 2]))
_imp_field("timings-list", lambda m: m.update(timings=[1]))
_imp_field("timing-missing-field", lambda m: m.update(timings={"statistics": {"seconds": 1.0}}))
_imp_field("npz-name-path", lambda m: m.update(npz="../elsewhere/r.npz"))
_imp_field("npz-name-number", lambda m: m.update(npz=5))
_imp_field("newer-version", lambda m: m.update(version=99))
_imp_field("empty-object", lambda m: m.clear())
_imp_field("arrays-checksum-wrong", lambda m: m.update(arrays_sha256="0" * 64), "r.npz")

# datasets ---------------------------------------------------------------------------------------------
def _dataset(t: Path, file: str, data: bytes | None) -> tuple[Path, Path]:
    root = t / "ds"
    shutil.copytree(TINY, root)
    target = root / file
    if data is None:
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    else:
        target.write_bytes(data)
    return root, target


def _csv() -> bytes:
    return (TINY / "classes" / "tiny.csv").read_bytes()


def _dataset_json(change: Callable[[dict], object]) -> bytes:
    meta = json.loads((TINY / "dataset.json").read_text())
    change(meta)
    return json.dumps(meta).encode()


def _csv_edit(line: int, column: str, value: str) -> bytes:
    rows = _csv().decode().splitlines()
    header = rows[0].split(",")
    cells = rows[line].split(",")
    cells[header.index(column)] = value
    rows[line] = ",".join(cells)
    return ("\n".join(rows) + "\n").encode()


DATASET_JSON = "dataset.json"
CSV = "classes/tiny.csv"
for frac in (0.01, 0.1, 0.5, 0.9):
    add("dataset", f"json-cut{frac}", lambda s, t, r, frac=frac: _dataset(t, DATASET_JSON, cut((TINY / DATASET_JSON).read_bytes(), frac)))
for what, data in (("empty", lambda s, r: b""), ("random", lambda s, r: r.bytes(500)), ("png", lambda s, r: s.png),
                   ("list", lambda s, r: b"[1, 2]")):
    add("dataset", f"json-{what}", lambda s, t, r, data=data: _dataset(t, DATASET_JSON, data(s, r)))
add("dataset", "json-directory", lambda s, t, r: (_dataset(t, DATASET_JSON, None)[0], (t / "ds" / DATASET_JSON).mkdir()
                                                   or t / "ds" / DATASET_JSON))
add("dataset", "json-missing", lambda s, t, r: (_dataset(t, DATASET_JSON, None)[0],) * 2)
add("dataset", "folder-missing", lambda s, t, r: (t / "nowhere", t / "nowhere"))
for name, change in (("no-csv", lambda m: m.pop("csv")), ("csv-number", lambda m: m.update(csv=3)),
                     ("format-other", lambda m: m.update(format="coco")), ("eval-scale-negative", lambda m: m.update(eval_scale=-5)),
                     ("eval-scale-string", lambda m: m.update(eval_scale="big")), ("image-size-float", lambda m: m.update(image_size=2.5)),
                     ("image-dir-number", lambda m: m.update(image_dir=1))):
    add("dataset", f"json-{name}", lambda s, t, r, change=change: _dataset(t, DATASET_JSON, _dataset_json(change)))
add("dataset", "json-csv-elsewhere", lambda s, t, r: (
    _dataset(t, DATASET_JSON, _dataset_json(lambda m: m.update(csv="classes/none.csv")))[0], t / "ds/classes/none.csv"))
for frac in (0.005, 0.05, 0.2):
    add("dataset", f"csv-cut{frac}", lambda s, t, r, frac=frac: _dataset(t, CSV, cut(_csv(), frac)))
for what, data in (("empty", lambda s, r: b""), ("random", lambda s, r: r.bytes(2000)), ("png", lambda s, r: s.png),
                   ("zeros", lambda s, r: bytes(300)), ("semicolons", lambda s, r: _csv().replace(b",", b";")),
                   ("header-only-wrong", lambda s, r: b"a,b,c\n1,2,3\n")):
    add("dataset", f"csv-{what}", lambda s, t, r, data=data: _dataset(t, CSV, data(s, r)))
add("dataset", "csv-missing", lambda s, t, r: (_dataset(t, CSV, None)[0], t / "ds" / CSV))
add("dataset", "csv-directory", lambda s, t, r: (_dataset(t, CSV, None)[0], (t / "ds" / CSV).mkdir() or t / "ds" / CSV))
for name, (line, column, value) in {
    "imageid-text": (1, "imageid", "zero"), "box-nan": (2, "lx", "nan"), "box-outside": (3, "rx", "1.7"),
    "box-empty": (4, "ty", "0.99"), "difficult-2": (5, "difficult", "2"), "classfile-empty": (1, "classfilename", ""),
    "image-renamed": (3, "imagefilename", "scene_0.png"), "class-renamed": (4, "classfilename", "class_1.png"),
    "extra-field": (3, "split", "val,extra"), "classid-dash": (1, "classid", "-"),
}.items():
    add("dataset", f"csv-{name}", lambda s, t, r, line=line, column=column, value=value:
        (_dataset(t, CSV, _csv_edit(line, column, value))[0], t / "ds" / CSV))
add("dataset", "image-file-missing", lambda s, t, r: (_dataset(t, "src/images/scene_1.png", None)[0], t / "ds/src/images"))
add("dataset", "class-image-file-missing", lambda s, t, r: (_dataset(t, "classes/images/class_2.png", None)[0],
                                                            t / "ds/classes/images"))
def _drop_column(csv: bytes, name: bytes) -> bytes:
    rows = csv.splitlines()
    k = rows[0].split(b",").index(name)
    return b"\n".join(b",".join(c for i, c in enumerate(row.split(b",")) if i != k) for row in rows) + b"\n"


add("dataset", "csv-drop-column", lambda s, t, r: _dataset(t, CSV, _drop_column(_csv(), b"lx")))
add("dataset", "class-images-missing", lambda s, t, r: (_dataset(t, "classes/images", None)[0], t / "ds/classes/images"))

# plans ------------------------------------------------------------------------------------------------
_common("plan", ".json", lambda s: s.plan, {"png": lambda s: s.png, "model": lambda s: s.model})


def _plan_field(name: str, change: Callable[[dict], object]) -> None:
    def make(s, t, r):
        d = json.loads(s.plan)
        change(d)
        return write(t, "plan.json", json.dumps(d).encode())
    add("plan", name, make)


for name, change in (("format-other", lambda d: d.update(format="os2d-studio-importance")),
                     ("newer-version", lambda d: d.update(version=99)), ("unknown-field", lambda d: d.update(speed=3)),
                     ("ratio-text", lambda d: d.update(ratio="abc")), ("ratio-too-big", lambda d: d.update(ratio=2.0)),
                     ("min-channels-zero", lambda d: d.update(min_channels=0)),
                     ("unit-ratios-list", lambda d: d.update(unit_ratios=[0.3])),
                     ("group-unknown", lambda d: d.update(group_ratios={"layer9": 0.2})),
                     ("not-an-object", lambda d: d.clear() or d.update(x=None) or None)):
    _plan_field(name, change)
add("plan", "json-list", lambda s, t, r: write(t, "plan.json", b"[0.3, 0.5]"))

# the corpus's size, as the README may state it: every case above, and those still expected to fail
CORPUS_SIZE = len(CASES)
CORPUS_XFAIL = sum(1 for c in CASES if c.xfail)


# -- the loaders and the test -----------------------------------------------------------------------------
def _read_video(path: Path) -> None:
    with VideoFileSource(path) as v:
        while v.read(decode=False) is not None:
            pass


LOADERS: dict[str, Callable[[Path], object]] = {
    "model": load_model, "png": load_image, "jpg": load_image, "video": _read_video,
    "importance": ImportanceResult.load, "dataset": open_dataset, "plan": PruningPlan.load,
}


def _params():
    for c in CASES:
        marks = []
        if c.xfail:
            marks.append(pytest.mark.xfail(reason=c.xfail, strict=True))
        yield pytest.param(c, id=c.id, marks=marks)


def test_corpus_is_large_enough():
    assert CORPUS_SIZE == len(CASES) >= 200 and len({c.id for c in CASES}) == CORPUS_SIZE
    assert CORPUS_XFAIL == sum(1 for c in CASES if c.xfail) < CORPUS_SIZE


def test_plan_errors_are_input_errors():
    assert issubclass(PlanError, InputError) and issubclass(PlanError, ValueError)


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input_gives_one_line_naming_the_file(case: Case, src: Sources, tmp_path: Path):
    arg, expected = case.make(src, tmp_path, rng_for(case.id))
    try:
        result = LOADERS[case.loader](arg)
    except Exception as e:  # the assertions below say what was wrong with it
        error = e
    else:
        pytest.fail(f"{case.id}: the loader accepted it and returned {type(result).__name__}")
    msg = str(error)
    assert isinstance(error, InputError), f"{type(error).__name__} is not an InputError: {msg}"
    assert msg.startswith(f"{expected}: "), msg
    assert "\n" not in msg and "Traceback" not in msg, msg
    leaked = [t for t in LIBRARY_TEXT if t in msg]
    assert not leaked, f"library text {leaked} in: {msg}"


def test_readme_states_the_corpus_size():
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"generates (\d+) damaged or foreign inputs", readme)
    assert stated and int(stated.group(1)) == CORPUS_SIZE
