"""What `make run` does: one-shot detection with the embedded default model on the bundled samples.

(The desktop app takes this over once it exists; without a display it stays headless and says so.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core.resources import require_default_model, sample_manifest, samples_dir


def headless_demo(out_dir: str | os.PathLike = "out") -> Path:
    from core.data.images import load_image
    from core.detect import Detector
    from core.model.checkpoint import load_model
    from core.visualize import draw_detections, save_rgb

    samples = samples_dir()
    manifest = sample_manifest()
    if manifest is None:
        raise FileNotFoundError(f"{samples / 'samples.json'}: the bundled sample media are missing or unreadable")
    loaded = load_model(require_default_model())
    det = Detector(loaded.model, target_size=loaded.eval_scale)
    classes = [samples / c for c in manifest["class_images"]]
    bank = det.prepare_classes(classes)
    target = load_image(samples / manifest["shelf_image"])
    dets = det.detect(target, bank).top(20, min_score=float(manifest.get("min_score", 0.5)))
    out = Path(out_dir) / "annotated.png"
    save_rgb(out, draw_detections(target, dets.boxes, dets.scores, dets.labels, bank.names))
    for b, s, l in zip(dets.boxes, dets.scores, dets.labels):
        print(f"  {bank.names[l]:<16} score {s:.3f} at [{b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f}]")
    print(f"found {len(dets)} objects of {len(classes)} classes in {manifest['shelf_image']} "
          f"({dets.seconds:.2f}s on {det.device}); wrote {out}")
    return out


def main() -> int:
    try:
        headless_demo()
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
