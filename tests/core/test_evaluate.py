"""Which images an evaluation uses: spread subsets, and leaving out the ones a checkpoint was selected on."""

from pathlib import Path

import numpy as np

from core.data.grozi import open_dataset
from core.detect import ClassBank, Detections
from core.eval.evaluate import EvalConfig, evaluate, select_images, spread_indices

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_os2d"


class RecordingDetector:
    """Finds nothing; remembers which images it was shown."""

    device = "cpu"

    def __init__(self, target_size=None):
        self.seen = []
        self.sizes = []
        self.target_size = target_size

    def prepare_classes(self, images, class_ids=None, names=None):
        return ClassBank(features=None, class_ids=list(class_ids or []), names=list(names or []))

    def detect(self, img, bank, **kw):
        self.seen.append(img.shape)
        self.sizes.append(kw.get("target_size"))
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                          image_size=(img.shape[1], img.shape[0]))


def test_spread_indices():
    assert spread_indices(100, 30)[:3] == [0, 3, 7] and len(spread_indices(100, 30)) == 30
    assert spread_indices(5, 5) == [0, 1, 2, 3, 4]


def test_excluded_images_are_not_evaluated():
    ds = open_dataset(TINY)
    n = len(ds.images)
    det = RecordingDetector()
    assert evaluate(det, ds, config=EvalConfig()).num_images == n
    det.seen.clear()
    report = evaluate(det, ds, config=EvalConfig(exclude_spread=(2,)))
    assert report.num_images == len(det.seen) == n - len(spread_indices(n, 2)) > 0


def test_exclusions_apply_in_turn():
    """Leaving out two spread subsets in turn keeps exactly the images neither picked, and nothing repeats."""
    images = list(range(100))
    first = select_images(images, EvalConfig(exclude_spread=(30,)))
    both = select_images(images, EvalConfig(exclude_spread=(30, 30)))
    second = select_images(first, EvalConfig(max_images=30))
    assert len(first) == 70 and len(second) == 30 and len(both) == 40
    assert set(both) == set(first) - set(second)
    assert select_images(images, EvalConfig(exclude_spread=(30,), max_images=30)) == second


def test_a_model_is_evaluated_at_its_own_scale_unless_told_otherwise():
    """A model trained at 1100 judged at a dataset's 720 loses most of its anchors (the bug this pins)."""
    ds = open_dataset(TINY)
    for chosen, config_size, expected in ((1100.0, 0.0, 1100.0), (1100.0, 500.0, 500.0), (None, 0.0, ds.eval_scale)):
        det = RecordingDetector(chosen)
        report = evaluate(det, ds, config=EvalConfig(target_size=config_size))
        assert set(det.sizes) == {expected} and report.config["target_size"] == expected
