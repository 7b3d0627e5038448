"""Copy the bundled sample media out of a generated benchmark (held-out classes only): a shelf image with
its classes and boxes, and the demo video with its per-frame ground truth and class images.

Reproduce: `os2d-studio synth --out data/synth-0 --seed 0 && python scripts/make_samples.py data/synth-0`
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

SHELF_IMAGE_ID = "604"  # a val shelf with three held-out classes, several facings each
DEMO_CLASSES = 4  # class images of the demo video


def main(src: str, dst: str = "resources/samples") -> None:
    src_p, dst_p = Path(src), Path(dst)
    dst_p.mkdir(parents=True, exist_ok=True)
    rows = [r for r in csv.DictReader(open(src_p / "classes" / "synth.csv")) if r["imageid"] == SHELF_IMAGE_ID]
    classes = sorted({int(r["classid"]) for r in rows})
    shutil.copy(src_p / "src" / "images" / rows[0]["imagefilename"], dst_p / "shelf.jpg")
    names = []
    for c in classes:
        name = f"class_{c}.png"
        shutil.copy(src_p / "classes" / "images" / f"{c}.png", dst_p / name)
        names.append(name)
    demo = json.loads((src_p / "demo_classes.json").read_text())
    shutil.copy(src_p / "demo.mp4", dst_p / "demo.mp4")
    shutil.copy(src_p / "demo_gt.json", dst_p / "demo_gt.json")
    # the demo's class images: the classes with the most clearly visible instances; the shelf's other
    # classes stay in the video as look-alikes and products outside the class set
    gt = json.loads((src_p / "demo_gt.json").read_text())
    counts = {c: sum(1 for b in gt["boxes"] if b[1] == c and not b[6]) for c in demo["class_ids"]}
    chosen = sorted(sorted(counts, key=lambda c: -counts[c])[:DEMO_CLASSES])
    demo_names = []
    for c in chosen:
        name = f"class_{c}.png"
        shutil.copy(src_p / "classes" / "images" / f"{c}.png", dst_p / name)
        demo_names.append(name)
    boxes = [{"class_image": f"class_{r['classid']}.png", "difficult": int(r["difficult"]),
              "box_relative_xyxy": [float(r[k]) for k in ("lx", "ty", "rx", "by")]} for r in rows]
    manifest = {"source": f"{src_p.name} (os2d-studio synth, held-out val classes)", "shelf_image": "shelf.jpg",
                "class_images": names, "ground_truth": boxes, "demo_video": "demo.mp4",
                "demo_ground_truth": "demo_gt.json", "demo_class_images": demo_names, "min_score": 0.75}
    (dst_p / "samples.json").write_text(json.dumps(manifest, indent=1))
    print(f"wrote {dst_p}: {len(names)} class images, shelf image, demo video")


if __name__ == "__main__":
    main(*sys.argv[1:])
