"""The weight digest importance results and projects store: its values are pinned, so files written
earlier still recognise their weights."""

import pytest
import torch

from core.model.digest import weights_digest
from core.model.os2d import ModelConfig, OS2DModel

# computed when these files were first written; a change here breaks every stored result
PINNED = {
    True: "f2d418ea89db1b0357d8304493545a9ca7690a1c23a4d7d400c555a2fd5da5fb",
    False: "8a5a10d92967e62b924267d66d080bbb110b62b517cc1e6482864ca51d5084e2",
}


def _patterned(merged: bool) -> OS2DModel:
    """Weights independent of torch's random generator: the digest is comparable across versions."""
    m = OS2DModel(ModelConfig("resnet18", merge_branch_parameters=merged))
    with torch.no_grad():
        for i, (_, t) in enumerate(sorted(m.state_dict().items())):
            if t.is_floating_point():
                t.copy_(torch.linspace(-1.0, 1.0, t.numel()).reshape(t.shape) * (i % 7 + 1))
            else:
                t.fill_(i)
    return m


@pytest.mark.parametrize("merged", [True, False])
def test_digest_values_are_pinned(merged):
    assert weights_digest(_patterned(merged)) == PINNED[merged]


def test_digest_sees_every_weight_and_not_the_shared_trunk_twice():
    m = _patterned(True)
    before = weights_digest(m)
    with torch.no_grad():
        m.os2d_head_creator.aligner.parameter_regressor.linear.bias[0] += 1e-6
    assert weights_digest(m) != before
    with torch.no_grad():
        m.os2d_head_creator.aligner.parameter_regressor.linear.bias[0] -= 1e-6
    assert m.net_label_features.net_class_features is m.net_feature_maps
    assert weights_digest(m) == before
