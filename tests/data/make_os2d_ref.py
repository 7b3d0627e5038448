"""Regenerate tests/data/os2d_ref: the part of the official OS2D reference bundle the tests ship.

The bundle was made by the official implementation (random ResNet-50 weights, CPU): a checkpoint
(41 MB), the exact inputs the official net received (13 MB), its raw outputs and detections. Shipped:
the images, the outputs and `fixture.json`, which records the SHA-256 of every file, of the checkpoint
and of each input tensor. The inputs are not shipped: preprocessing the shipped images must reproduce
them bit for bit (the tests rebuild and check them). The checkpoint is too large to ship; the tests
read it from the bundle and fail, naming the path, when it is missing.

    python tests/data/make_os2d_ref.py BUNDLE_FOLDER
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent / "os2d_ref"
FILES = ("target.png", "class_0.png", "class_1.png", "outputs.pt", "meta.json")
CHECKPOINT = "checkpoint.pth"
TARGET_SIZE, CLASS_SIZE = 1000, 240  # the sizes the bundle's inputs were made at (its meta.json)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tensor_sha256(t: torch.Tensor) -> str:
    """Dtype, shape and raw bytes: equal digests mean bit-identical tensors."""
    h = hashlib.sha256(f"{t.dtype}:{list(t.shape)}\n".encode())
    h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def input_digests(inputs: dict) -> dict:
    return {"target_image": tensor_sha256(inputs["target_image"]),
            "class_images": [tensor_sha256(c) for c in inputs["class_images"]]}


def rebuild_inputs(folder: Path) -> dict:
    """The official net's inputs, made from the images by our preprocessing."""
    from core.data.images import load_image, preprocess

    return {"target_image": preprocess(load_image(folder / "target.png"), TARGET_SIZE).unsqueeze(0),
            "class_images": [preprocess(load_image(folder / f"class_{i}.png"), CLASS_SIZE) for i in range(2)]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path, help="the reference bundle's folder (checkpoint.pth, inputs.pt, ...)")
    args = p.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    for name in FILES:
        shutil.copyfile(args.bundle / name, OUT / name)
    official = torch.load(args.bundle / "inputs.pt", weights_only=True)
    ckpt = args.bundle / CHECKPOINT
    manifest = {
        "about": "official OS2D outputs on random weights; see tests/data/make_os2d_ref.py",
        "files": {name: file_sha256(OUT / name) for name in FILES},
        "checkpoint": {"file": CHECKPOINT, "bytes": ckpt.stat().st_size, "sha256": file_sha256(ckpt)},
        "inputs": {"target_size": TARGET_SIZE, "class_size": CLASS_SIZE, **input_digests(official)},
    }
    (OUT / "fixture.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if input_digests(rebuild_inputs(OUT)) != input_digests(official):
        print("warning: preprocessing the images does not reproduce the official inputs")
        return 1
    print(f"wrote {OUT} ({sum(f.stat().st_size for f in OUT.iterdir()) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
