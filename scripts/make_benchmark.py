"""Write the small benchmark bundled with the app (resources/samples/benchmark).

It is `os2d-studio synth --seed 0` at a few dozen images: the same 80 train and 20 held-out val classes
as the benchmark the default model was trained on (so its val split holds only classes the model never
trained on), new val shelf images (scene ids past the full benchmark's train images, never seen in
training or checkpoint selection), and only the class images that some box uses.

Reproduce: `python scripts/make_benchmark.py` (about 30 s; refuses to overwrite an existing folder).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.data.synth import CSV_NAME, SynthConfig, generate  # noqa: E402
from core.jobs import ConsoleProgress  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "resources" / "samples" / "benchmark"))
    p.add_argument("--train-images", type=int, default=16)
    p.add_argument("--val-images", type=int, default=16)
    args = p.parse_args(argv)
    cfg = SynthConfig(num_train_images=args.train_images, num_val_images=args.val_images, seed=0, demo_video=False)
    res = generate(args.out, cfg, progress=ConsoleProgress("benchmark"))
    root = Path(res.out_dir)
    with open(root / "classes" / CSV_NAME, encoding="utf-8") as f:
        used = {row["classfilename"] for row in csv.DictReader(f)}
    for png in (root / "classes" / "images").glob("*.png"):
        if png.name not in used:
            png.unlink()
    meta = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    meta["name"] = "sample benchmark (synth-0 classes)"
    meta["note"] = ("Bundled with os2d-studio: train split for calibration and fine-tuning, val split of the 20 "
                    "classes the default model never trained on. scripts/make_benchmark.py writes it.")
    (root / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    print(f"wrote {root}: {len(used)} class images, {args.train_images}+{args.val_images} shelf images, "
          f"{size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
