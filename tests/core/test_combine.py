"""Training on several datasets: ids never collide, and a held-out class can never be trained on."""

from pathlib import Path

import numpy as np
import pytest

from core.data.combine import check_disjoint_classes, concat_datasets
from core.data.grozi import DatasetError, open_dataset

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_os2d"


def test_parts_keep_their_boxes_under_shifted_ids():
    a, b = open_dataset(TINY), open_dataset(TINY)
    both = concat_datasets([a, b])
    n_cls = max(a.classes) + 1
    assert sorted(both.classes) == sorted(a.classes) + [c + n_cls for c in sorted(a.classes)]
    assert len(both.images) == 2 * len(a.images)
    assert len({im.imageid for im in both.images}) == len(both.images)
    for im, orig in zip(both.images[len(a.images):], b.images):
        np.testing.assert_array_equal(im.class_ids, orig.class_ids + n_cls)
        np.testing.assert_array_equal(im.boxes, orig.boxes)
        assert im.path == orig.path
        for cid in im.class_ids:  # every box still points at its own class image
            assert both.classes[int(cid)] == b.classes[int(cid) - n_cls]
    assert both.eval_scale == a.eval_scale and both.num_boxes == 2 * a.num_boxes
    assert concat_datasets([a]) is a


def test_training_data_holding_a_held_out_class_is_refused():
    ds = open_dataset(TINY)
    with pytest.raises(DatasetError, match="held-out classes must not be trained on") as e:
        check_disjoint_classes(concat_datasets([ds, ds]), ds)
    assert str(ds.csv_path) in str(e.value)
    other = concat_datasets([ds])
    check_disjoint_classes(other, type(ds)(name="x", root=ds.root, eval_scale=1.0, classes={}, images=()))
