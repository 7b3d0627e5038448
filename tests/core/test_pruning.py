"""Plans, physical surgery and pruned-model files: exact where exactness is provable."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import InputError
from core.eval.profile import compare_profiles, count_macs_by_hooks, profile_model
from core.importance.result import data_free_importance
from core.jobs import CancelToken, Cancelled
from core.model.checkpoint import CheckpointError, file_sha256, load_model, save_model
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.job import prune, save_pruned
from core.prune.plan import (
    PlanCostModel, PlanError, PruningPlan, keep_count, plan_counts, resolve,
)
from core.prune.surgery import SurgeryError, consistency_problems, prune_model
from core.prune.units import find_units

SIZE = (128, 160)
CLASS = 96


def _small(backbone="resnet18", seed=0, **kw) -> OS2DModel:
    torch.manual_seed(seed)
    m = OS2DModel(ModelConfig(backbone=backbone, **kw))
    with torch.no_grad():  # non-trivial BN and a non-identity transform: outputs depend on every tensor
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
        m.os2d_head_creator.aligner.parameter_regressor.linear.weight.normal_(0, 1e-2)
    return m.eval()


@pytest.fixture(scope="module")
def model() -> OS2DModel:
    return _small()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, *SIZE, generator=g), [torch.randn(3, 96, 80, generator=g), torch.randn(3, 80, 96, generator=g)]


def _run(m):
    x, c = _inputs()
    with torch.no_grad():
        out = m(x, c)
    return out.cls, out.loc


@dataclass
class FakeImportance:
    """Stand-in for core.importance's result: criteria + scores[criterion][unit] -> array."""

    criteria: tuple
    scores: dict


def _importance(m: OS2DModel, seed: int = 0) -> FakeImportance:
    rng = np.random.default_rng(seed)
    units = find_units(m)
    return FakeImportance(("random", "weight_l1"),
                          {"random": {u.name: rng.random(u.channels) for u in units},
                           "weight_l1": data_free_importance(m, ["weight_l1"], units=units).scores["weight_l1"]})


PLANS = [
    PruningPlan(ratio=0.5, criterion="random"),
    PruningPlan(ratio=0.3, criterion="weight_l1", round_to=8),
    PruningPlan(ratio=0.2, group_ratios={"layer1": 0.6, "layer3": 0.1, "transform": 0.7}, criterion="random"),
    PruningPlan(ratio=0.4, unit_ratios={"net_feature_maps.layer2.0.conv1": 0.9,
                                        "net_feature_maps.layer3.0.conv2": 0.75}, min_channels=16, criterion="random"),
    PruningPlan(ratio=0.5, prune_trunk_output=False, prune_head=False, round_to=8, criterion="random"),
]


# -- exactness --------------------------------------------------------------------------------------
def test_ratio_zero_gives_identical_outputs(model):
    res = prune(model, PruningPlan(ratio=0.0), None)
    assert res.model is not model and res.kept.pruned_units() == []
    for a, b in zip(_run(model), _run(res.model)):
        assert torch.equal(a, b)


def _zero_dropped(m: OS2DModel, kept) -> OS2DModel:
    """Zero the outgoing contribution of every channel the surgery will drop: BN weight and bias 0 in
    all of the unit's norms, so after ReLU (and after the residual sums, whose terms are all zero) the
    channel is exactly 0 everywhere it is read."""
    import copy

    z = copy.deepcopy(m)
    with torch.no_grad():
        for u in find_units(z):
            drop = np.setdiff1d(np.arange(u.channels), kept.indices[u.name])
            if drop.size == 0:
                continue
            idx = torch.from_numpy(drop)
            for n in u.norms:
                bn = z.get_submodule(n)
                bn.weight[idx] = 0
                bn.bias[idx] = 0
    return z


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"r{p.ratio}-{p.criterion}-rt{p.round_to}")
def test_pruning_zeroed_channels_keeps_outputs(model, plan):
    kept = resolve(plan, find_units(model), _importance(model))
    zeroed = _zero_dropped(model, kept)
    pruned = prune_model(zeroed, kept)
    assert pruned.num_parameters() < model.num_parameters()
    ref, out = _run(zeroed), _run(pruned)
    for a, b in zip(ref, out):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (a - b).abs().max()
    # the test is not vacuous: the zeroed channels mattered in the unmodified model
    assert not torch.allclose(_run(model)[0], ref[0], atol=1e-4)
    corr_unit = next(u for u in find_units(model) if u.feeds_correlation)
    assert pruned.feature_dim == len(kept.indices[corr_unit.name])
    assert pruned.net_label_features.net_class_features is pruned.net_feature_maps


def test_separate_branch_trunks_are_pruned_alike():
    m = _small(merge_branch_parameters=False)
    plan = PruningPlan(ratio=0.5, criterion="random")
    kept = resolve(plan, find_units(m), _importance(m))
    zeroed = _zero_dropped(m, kept)
    with torch.no_grad():  # the class trunk's copy of the dropped channels must be zero too
        for u in find_units(zeroed):
            drop = torch.from_numpy(np.setdiff1d(np.arange(u.channels), kept.indices[u.name]))
            for n in u.norms:
                bn = zeroed.get_submodule(n.replace("net_feature_maps", "net_label_features.net_class_features"))
                bn.weight[drop] = 0
                bn.bias[drop] = 0
    pruned = prune_model(zeroed, kept)
    assert consistency_problems(pruned) == []
    assert PlanCostModel.from_model(m).predict(kept).parameters == pruned.num_parameters()
    for a, b in zip(_run(zeroed), _run(pruned)):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)


# -- predictions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"r{p.ratio}-{p.criterion}-rt{p.round_to}")
def test_predicted_parameters_and_macs_are_exact(model, plan):
    units = find_units(model)
    cost = PlanCostModel.from_model(model, units, input_size=SIZE, num_classes=2, class_image_size=CLASS)
    res = prune(model, plan, _importance(model), cost_model=cost)
    assert res.predicted.parameters == res.measured_parameters == res.model.num_parameters()
    assert res.predicted.size_mb == pytest.approx(res.measured_size_mb)
    # the same prediction from counts alone (the slider path), before any channel is chosen
    assert cost.predict(plan_counts(plan, units)) == res.predicted
    hooks = count_macs_by_hooks(res.model, input_size=SIZE, num_classes=2, class_image_size=CLASS)
    assert {k: getattr(res.predicted, k) for k in hooks} == hooks
    assert all(len(res.kept.indices[u.name]) % plan.round_to == 0 or len(res.kept.indices[u.name]) == u.channels
               for u in units)


@pytest.mark.slow
def test_predicted_parameters_exact_for_resnet50():
    m = OS2DModel(ModelConfig(backbone="resnet50"))
    plan = PruningPlan(ratio=0.3, group_ratios={"stem": 0.5, "layer3": 0.4}, round_to=8)
    res = prune(m, plan, data_free_importance(m, ["weight_l1"]))
    assert res.predicted.parameters == res.model.num_parameters()
    assert consistency_problems(res.model) == []


def test_plan_switches_keep_trunk_output_and_head(model):
    units = find_units(model)
    counts = plan_counts(PruningPlan(ratio=0.5, prune_trunk_output=False, prune_head=False), units)
    for u in units:
        whole = u.feeds_correlation or u.kind == "head"
        assert (counts[u.name] == u.channels) == whole, u.name


def test_keep_count_rules():
    assert keep_count(64, 0.0) == 64
    assert keep_count(64, 0.3) == 44  # floor(44.8), as Torch-Pruning counts
    assert keep_count(64, 0.3, round_to=8) == 48  # rounded up
    assert keep_count(64, 0.95, min_channels=8) == 8
    assert keep_count(6, 0.95, min_channels=8) == 6  # never more than the unit has
    assert keep_count(60, 0.1, round_to=16) == 60  # rounding past the size keeps it whole


def test_resolve_keeps_highest_scores_ties_by_index(model):
    units = find_units(model)
    u = units[1]
    scores = np.zeros(u.channels)
    scores[[5, 9, 40]] = [3.0, 2.0, 2.0]
    scores[[7]] = 2.0
    imp = FakeImportance(("s",), {"s": {v.name: np.ones(v.channels) for v in units} | {u.name: scores}})
    assert u.channels == 64  # 0.95 keeps floor(3.2) = 3
    plan = PruningPlan(unit_ratios={u.name: 0.95}, min_channels=1, criterion="s")
    kept = resolve(plan, units, imp)
    assert kept.indices[u.name].tolist() == [5, 7, 9]  # 5 (3.0), then the 2.0 tie broken by index: 7, 9 (not 40)
    # equal scores everywhere: the lowest indices are kept
    kept = resolve(PruningPlan(ratio=0.5, criterion="s"), units, imp)
    assert kept.indices[units[0].name].tolist() == list(range(units[0].channels // 2))
    # NaN counts as least important (core.importance's channel_order does the same)
    nan = FakeImportance(("s",), {"s": {v.name: np.r_[np.nan, np.ones(v.channels - 1)] for v in units}})
    kept = resolve(PruningPlan(ratio=0.5, criterion="s"), units, nan)
    assert kept.indices[units[0].name].tolist() == list(range(1, units[0].channels // 2 + 1))


# -- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"ratio": 1.0}, "outside"), ({"ratio": -0.1}, "outside"), ({"ratio": "half"}, "number"),
    ({"group_ratios": {"layer9": 0.2}}, "unknown group"), ({"group_ratios": {"layer1": 0.99}}, "layer1"),
    ({"min_channels": 0}, "pruned to nothing"), ({"round_to": 0}, "round_to"), ({"criterion": ""}, "criterion"),
])
def test_plan_validation_errors(kwargs, match):
    with pytest.raises(PlanError, match=match):
        PruningPlan(**kwargs)


def test_plan_validation_against_model_and_importance(model):
    units = find_units(model)
    with pytest.raises(PlanError, match="did you mean 'net_feature_maps.layer2.0.conv1'"):
        PruningPlan(unit_ratios={"net_feature_map.layer2.0.conv1": 0.3}).validate(units)
    with pytest.raises(PlanError, match="prune_head"):
        PruningPlan(unit_ratios={units[-1].name: 0.3}, prune_head=False).validate(units)
    with pytest.raises(PlanError, match="unknown criterion 'taylor'.*random, weight_l1"):
        resolve(PruningPlan(ratio=0.3, criterion="taylor"), units, _importance(model))
    with pytest.raises(PlanError, match="no importance"):
        resolve(PruningPlan(ratio=0.3), units, None)
    short = FakeImportance(("s",), {"s": {u.name: np.ones(3) for u in units}})
    with pytest.raises(PlanError, match="3 scores"):
        resolve(PruningPlan(ratio=0.3, criterion="s"), units, short)


def test_plan_json_roundtrip_and_file_errors(tmp_path):
    plan = PruningPlan(ratio=0.3, group_ratios={"layer3": 0.5}, unit_ratios={"x.y": 0.1}, round_to=8,
                       criterion="random", prune_trunk_output=False)
    p = plan.save(tmp_path / "plan.json")
    assert PruningPlan.load(p) == plan
    assert PruningPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    (tmp_path / "bad.json").write_text('{"ratio": 0.3, "ratios": {}}')
    with pytest.raises(PlanError, match=r"bad\.json: unknown plan field\(s\) ratios"):
        PruningPlan.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text('{\n  "ratio": 0.3,,\n}')
    with pytest.raises(PlanError, match=r"broken\.json: not a readable JSON file \(invalid at line 2, column 16\)$"):
        PruningPlan.load(tmp_path / "broken.json")
    with pytest.raises(PlanError, match="missing.json: plan file not found"):
        PruningPlan.load(tmp_path / "missing.json")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(PlanError, match=r"folder\.json: is a directory, expected a plan file$"):
        PruningPlan.load(tmp_path / "folder.json")
    (tmp_path / "image.json").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(PlanError, match=r"image\.json: not a JSON file \(it looks like a PNG image\)$") as e:
        PruningPlan.load(tmp_path / "image.json")
    assert isinstance(e.value, InputError) and e.value.path == str(tmp_path / "image.json")
    assert str(PlanError("no file")) == "no file"  # a plan from sliders: the caller names the source


def test_surgery_rejects_bad_kept_channels(model):
    name = find_units(model)[1].name
    for kept, match in [({name: []}, "disconnect"), ({name: [1, 1, 2]}, "duplicates"),
                        ({name: [0, 999]}, "out of range"), ({"nope": [0]}, "unknown unit")]:
        with pytest.raises(SurgeryError, match=match):
            prune_model(model, kept)


# -- the input model, cancellation -----------------------------------------------------------------
def test_input_model_is_unchanged(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules = dict(model.named_modules())
    prune(model, PLANS[0], _importance(model))
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(model.get_submodule(n) is m for n, m in modules.items())


def test_cancelled_prune_raises_and_writes_nothing(model, tmp_path):
    token = CancelToken()
    seen = []

    def progress(done, total, message=""):
        seen.append(done)
        if done >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        prune(model, PLANS[0], _importance(model), progress=progress, cancel=token)
    assert 0 < max(seen) < 5
    res = prune(model, PLANS[0], _importance(model))
    with pytest.raises(Cancelled):
        save_pruned(res, tmp_path / "p.pt", cancel=token)
    assert list(tmp_path.iterdir()) == []


# -- files -------------------------------------------------------------------------------------------
def test_save_load_roundtrip_without_parent(model, tmp_path):
    parent = save_model(model, tmp_path / "parent.pt", meta={"eval_scale": 640})
    digest = file_sha256(parent)
    plan = PLANS[2]
    res = prune(model, plan, _importance(model))
    out = save_pruned(res, tmp_path / "pruned.pt", parent, extra_meta={"eval_scale": 640})
    parent.unlink()  # the pruned file must rebuild without its parent
    loaded = load_model(out)
    for a, b in zip(_run(res.model), _run(loaded.model)):
        assert torch.equal(a, b)
    meta = loaded.meta["pruning"]
    assert loaded.meta["eval_scale"] == 640
    assert PruningPlan.from_json(meta["plan"]) == plan and meta["criterion"] == "random"
    assert meta["parent"] == {"path": str(parent), "sha256": digest}
    assert meta["channels"] == res.kept.counts()
    assert meta["predicted"]["parameters"] == meta["measured_parameters"] == loaded.model.num_parameters()
    assert consistency_problems(loaded.model) == []


def test_save_never_overwrites_parent_or_existing(model, tmp_path):
    parent = save_model(model, tmp_path / "parent.pt")
    res = prune(model, PLANS[0], _importance(model))
    with pytest.raises(CheckpointError, match="input model"):
        save_pruned(res, parent, parent)
    save_pruned(res, tmp_path / "p.pt", parent)
    with pytest.raises(CheckpointError, match="exists"):
        save_pruned(res, tmp_path / "p.pt", parent)


def test_pruned_weights_in_a_mismatched_architecture_fail_clearly(model, tmp_path):
    res = prune(model, PLANS[0], _importance(model))
    official = tmp_path / "pruned_official.pth"
    torch.save({"net": res.model.state_dict()}, official)
    loaded = load_model(official)  # the official layout of a pruned model loads by its shapes
    assert torch.equal(_run(loaded.model)[0], _run(res.model)[0])
    with pytest.raises(CheckpointError, match="pruned_official.pth: weights do not match"):
        load_model(official, config=ModelConfig(backbone="resnet34"))
    sd = res.model.state_dict()
    key = "net_feature_maps.layer2.0.bn1.running_mean"
    sd[key] = sd[key][:-1]  # a tensor inconsistent with its layer
    torch.save({"net": sd}, tmp_path / "tampered.pth")
    with pytest.raises(CheckpointError, match="tampered.pth.*layer2.0.bn1.running_mean"):
        load_model(tmp_path / "tampered.pth")
    with pytest.raises(RuntimeError):  # torch itself refuses the pruned dict in the unpruned model
        _small().load_state_dict(res.model.state_dict())


# -- profile -------------------------------------------------------------------------------------------
def test_profile_counts_and_comparison(model):
    res = prune(model, PLANS[0], _importance(model))
    a = profile_model(model, name="original", input_size=SIZE, class_image_size=CLASS, repeats=1, warmup=0, device="cpu")
    b = profile_model(res.model, name="pruned", input_size=SIZE, class_image_size=CLASS, repeats=1, warmup=0, device="cpu")
    assert a.parameters == model.num_parameters() and b.parameters == res.model.num_parameters()
    assert b.macs == count_macs_by_hooks(res.model, input_size=SIZE, class_image_size=CLASS)["macs"]
    assert a.cpu_latency_ms > 0 and b.cpu_latency_ms > 0
    cmp = compare_profiles(a, b)
    assert cmp.cpu_speedup == pytest.approx(a.cpu_latency_ms / b.cpu_latency_ms)
    assert "| parameters |" in cmp.to_markdown()
