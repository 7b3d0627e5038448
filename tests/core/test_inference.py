"""The inference copy (BN folded, channels-last, float32 resampling) computes what the model computes."""

import numpy as np
import torch
from torch import nn

from core.detect import Detector
from core.importance.result import data_free_importance
from core.model.checkpoint import load_model
from core.model.inference import fold_batch_norms, inference_model
from core.model.os2d import OS2DModel
from core.prune.job import prune
from core.prune.plan import PruningPlan
from test_pruning import _small


def _random_model(**kw) -> OS2DModel:
    return _small(**kw)  # non-trivial BN statistics: a wrong fold changes the outputs


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, 160, 192, generator=g), [torch.randn(3, 96, 80, generator=g), torch.randn(3, 80, 96, generator=g)]


def _outputs(m, channels_last=False):
    x, c = _inputs()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return m(x, c)


def _bns(m) -> int:
    return sum(isinstance(x, nn.BatchNorm2d) for x in m.modules())


def test_folded_copy_matches_and_leaves_the_model_alone():
    m = _random_model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    ref = _outputs(m)
    fast = inference_model(m)
    assert _bns(fast) == 0 and _bns(m) == 17  # stem, 6 basic blocks x 2, 2 downsamples, transform net x 2
    assert m.resample_dtype == torch.double and fast.resample_dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    # one trunk for both branches in the model, still one in the copy
    assert fast.net_feature_maps is fast.net_label_features.net_class_features
    out = _outputs(fast, channels_last=True)
    torch.testing.assert_close(out.cls, ref.cls, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.corners, ref.corners, rtol=1e-4, atol=1e-2)


def test_separate_branch_trunks_are_both_folded():
    m = _random_model(merge_branch_parameters=False)
    ref = _outputs(m)
    fast = inference_model(m)
    assert _bns(fast) == 0
    torch.testing.assert_close(_outputs(fast).cls, ref.cls, rtol=1e-4, atol=1e-4)


def test_fold_counts_and_skips_bn_that_follows_no_conv():
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    assert fold_batch_norms(seq) == 1
    assert isinstance(seq[1], nn.Identity) and isinstance(seq[3], nn.BatchNorm2d)


def test_pruned_model_folds_and_matches():
    m = _random_model()
    pruned = prune(m, PruningPlan(ratio=0.5, criterion="weight_l1"), data_free_importance(m, ["weight_l1"])).model
    ref = _outputs(pruned)
    torch.testing.assert_close(_outputs(inference_model(pruned), channels_last=True).cls, ref.cls, rtol=1e-4, atol=1e-4)


def test_optimized_detector_matches_the_exact_one(ref_dir):
    loaded = load_model(ref_dir / "checkpoint.pth")
    classes = [ref_dir / "class_0.png", ref_dir / "class_1.png"]
    exact = Detector(loaded.model, "cpu", target_size=1000, optimize=False).detect(ref_dir / "target.png", classes)
    fast = Detector(loaded.model, "cpu", target_size=1000).detect(ref_dir / "target.png", classes)
    assert len(fast) == len(exact) == 109
    np.testing.assert_allclose(fast.scores, exact.scores, atol=1e-4)
    np.testing.assert_array_equal(fast.labels, exact.labels)
    np.testing.assert_allclose(fast.boxes, exact.boxes, atol=0.5)
    assert _bns(loaded.model) > 0  # the user's model is not folded in place
