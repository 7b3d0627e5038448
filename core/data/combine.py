"""Several OS2D-format datasets as one training set.

One-shot detectors generalise to unseen classes through the variety of classes they train on, so a
user adds datasets (another `synth --seed`, a shop's own photos) to a benchmark's train split without
touching the benchmark's held-out split. Class and image ids of each added part are shifted past the
ones before it, so classes of different datasets never merge by accident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from core.data.grozi import DatasetError, OS2DDataset


def concat_datasets(parts: Sequence[OS2DDataset], name: str | None = None) -> OS2DDataset:
    """One dataset holding every part's classes and images; the first part keeps its ids and scale."""
    if not parts:
        raise ValueError("concat_datasets needs at least one dataset")
    if len(parts) == 1:
        return parts[0]
    classes, images = {}, []
    class_offset = image_offset = 0
    for part in parts:
        for cid, path in part.classes.items():
            classes[cid + class_offset] = path
        for im in part.images:
            cids = im.class_ids + class_offset
            cids.setflags(write=False)
            images.append(replace(im, imageid=im.imageid + image_offset, class_ids=cids))
        class_offset = max(classes) + 1
        image_offset = max(im.imageid for im in images) + 1 if images else image_offset
    first = parts[0]
    return OS2DDataset(name=name or "+".join(p.name for p in parts), root=first.root, eval_scale=first.eval_scale,
                       classes=classes, images=tuple(images), split=first.split, csv_path=first.csv_path,
                       image_size=first.image_size)


def check_disjoint_classes(train: OS2DDataset, held_out: OS2DDataset) -> None:
    """Refuse training data that shows a held-out class image: it would make one-shot mAP meaningless."""
    held = {p.resolve(): cid for cid, p in held_out.classes.items()}
    leaked = sorted({str(p) for p in train.classes.values() if p.resolve() in held})
    if leaked:
        shown = ", ".join(leaked[:3]) + (f" and {len(leaked) - 3} more" if len(leaked) > 3 else "")
        raise DatasetError(held_out.csv_path or held_out.root,
                           f"{len(leaked)} class image(s) of the '{held_out.split}' split are also in the training "
                           f"data ({shown}); held-out classes must not be trained on")
