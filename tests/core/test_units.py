"""Our prunable units agree with Torch-Pruning's dependency graph on the trunk."""

import pytest
import torch
from torch import nn

from core.model.os2d import ModelConfig, OS2DModel
from core.prune.units import TRUNK, find_units

tp = pytest.importorskip("torch_pruning")


def _tp_groups(trunk: nn.Module) -> list[dict[str, frozenset[str]]]:
    dg = tp.DependencyGraph().build_dependency(trunk, example_inputs=torch.randn(1, 3, 64, 64))
    names = {m: f"{TRUNK}.{n}" for n, m in trunk.named_modules()}
    groups = []
    for group in dg.get_all_groups(root_module_types=[nn.Conv2d]):
        prods, norms, cons = set(), set(), set()
        for dep, _ in group:
            m, handler = dep.target.module, getattr(dep.handler, "__name__", "")
            if isinstance(m, nn.Conv2d) and handler == "prune_out_channels":
                prods.add(names[m])
            elif isinstance(m, nn.Conv2d) and handler == "prune_in_channels":
                cons.add(names[m])
            elif isinstance(m, nn.BatchNorm2d):
                norms.add(names[m])
        groups.append({"producers": frozenset(prods), "norms": frozenset(norms), "consumers": frozenset(cons)})
    return groups


@pytest.mark.parametrize("arch", ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
def test_units_match_torch_pruning_dependency_graph(arch):
    model = OS2DModel(ModelConfig(backbone=arch))
    ours = [u for u in find_units(model) if u.name.startswith(TRUNK + ".")]
    theirs = _tp_groups(model.net_feature_maps)
    assert len(theirs) == len(ours)
    for g in theirs:
        matches = [u for u in ours if frozenset(u.producers) == g["producers"]]
        assert len(matches) == 1, f"TP group with producers {sorted(g['producers'])} matches {len(matches)} units"
        u = matches[0]
        assert frozenset(u.norms) == g["norms"], u.name
        assert frozenset(u.consumers) == g["consumers"], u.name
    # and every unit of ours is one of TP's groups
    assert {frozenset(u.producers) for u in ours} == {g["producers"] for g in theirs}


def test_trunk_output_unit_feeds_the_shared_correlation():
    model = OS2DModel(ModelConfig(backbone="resnet18"))
    out = [u for u in find_units(model) if u.feeds_correlation]
    assert len(out) == 1 and out[0].group == "layer3" and out[0].channels == model.feature_dim
    assert model.net_label_features.net_class_features is model.net_feature_maps
