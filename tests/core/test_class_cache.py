"""Class features reused between jobs: only for the same model, runtime and images, and the same features."""

import gc

import numpy as np
import torch

from _file_helpers import small_model
from core.detect import CachingDetector, ClassBank, ClassBankCache, Detector, class_images_key


class Model:  # a weak-referenceable stand-in
    pass


def test_cache_never_serves_another_model_and_keeps_the_recent_entries():
    cache, a, b = ClassBankCache(size=2), Model(), Model()
    bank = ClassBank(torch.zeros(1, 2, 15, 15), [0], ["x"])
    cache.put(("k",), a, bank)
    assert cache.get(("k",), a) is bank and cache.get(("k",), b) is None
    for i in range(2):
        cache.put((i,), a, bank)
    assert cache.get(("k",), a) is None  # the oldest entry went
    assert cache.hits == 1


def test_a_collected_model_is_never_served_again():
    cache, a = ClassBankCache(), Model()
    cache.put(("k",), a, ClassBank(torch.zeros(1, 2, 15, 15), [0]))
    del a
    gc.collect()
    assert cache.get(("k",), Model()) is None


def test_images_are_keyed_by_content_and_files_by_path():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    assert class_images_key([img, "a.png"]) == class_images_key([img.copy(), "a.png"])
    changed = img.copy()
    changed[0, 0, 0] += 1
    assert class_images_key([changed]) != class_images_key([img])
    assert class_images_key([img.reshape(3, 2, 3)]) != class_images_key([img])


def test_caching_detector_reuses_features_only_for_the_same_model_and_images():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8) for _ in range(2)]
    model, other = small_model(0), small_model(1)
    cache = ClassBankCache()
    det = CachingDetector(model, "cpu", target_size=128, cache=cache)
    first = det.prepare_classes(images)
    assert torch.equal(first.features, Detector(model, "cpu").prepare_classes(images).features)
    assert det.prepare_classes([im.copy() for im in images]) is first and cache.hits == 1
    assert det.prepare_classes(images[:1]) is not first  # other images
    assert det.prepare_classes(images, names=["a", "b"]) is not first  # other names
    assert CachingDetector(other, "cpu", cache=cache).prepare_classes(images) is not first
    assert CachingDetector(model, "cpu", cache=cache).prepare_classes(images) is first  # same model, new detector
