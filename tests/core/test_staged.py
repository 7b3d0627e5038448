"""Layer-wise prune → fine-tune stages: the same channel counts as a one-shot cut, each stage ranked on
the model the previous stages left, a cancelled run resumes without redoing finished stages, and stages
by unit with LCP's reconstruction after each cut."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.data.synth import SynthConfig, generate
from core.jobs import CancelToken, Cancelled
from core.model.checkpoint import CheckpointError, load_model, save_model
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.job import prune
from core.prune.plan import KeptChannels, PlanError, PruningPlan
from core.prune.surgery import prune_model
from core.importance.result import data_free_importance
from core.prune.units import find_units
from core.train.batches import BatchConfig
from core.train.finetune import FinetuneConfig
from core.train.staged import STAGE_ORDER, StagedConfig, prune_in_stages, stage_plans

REPO = Path(__file__).resolve().parents[2]
L1 = "net_feature_maps.layer1.0.conv1"  # inner units: one consumer each (the block's conv2)
L3 = "net_feature_maps.layer3.0.conv1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("staged")
    generate(root / "ds", SynthConfig(num_train_classes=4, num_val_classes=2, num_train_images=4, num_val_images=2,
                                      image_size=(320, 240), eval_scale=240, demo_video=False))
    torch.manual_seed(0)
    original = save_model(OS2DModel(ModelConfig("resnet18")).eval(), root / "original.pt", meta={"eval_scale": 240.0})
    return root / "ds", Path(original)


def _cfg(ds, original, out, **kw):
    base = dict(model=str(original), dataset=str(ds), out=str(out),
                plan=PruningPlan(ratio=0.3, group_ratios={"layer3": 0.5}, criterion="weight_l1"),
                stages=("layer1", "layer3"), iterations_per_stage=2, calib_images=1, evaluate_before_after=False,
                finetune=FinetuneConfig(model="", dataset="", out="", checkpoint_every=1,
                                        batch=BatchConfig(batch_size=2, class_batch_size=2, crop_size=160)),
                device="cpu")
    base.update(kw)
    return StagedConfig(**base)


def test_stage_plans_split_the_plan_by_group():
    model = OS2DModel(ModelConfig("resnet18"))
    plan = PruningPlan(ratio=0.3, group_ratios={"layer2": 0.0, "layer3": 0.5}, criterion="combined")
    stages = stage_plans(plan, model, ("layer3", "layer2", "layer1"))
    assert [g for g, _ in stages] == ["layer3", "layer1"]  # layer2 is kept whole: no stage
    units = {u.name: u for u in find_units(model)}
    for group, p in stages:
        for u in units.values():
            assert p.ratio_for(u) == (plan.ratio_for(u) if u.group == group else 0.0)
    with pytest.raises(PlanError, match="unknown stage"):
        stage_plans(plan, model, ("layer4",))
    with pytest.raises(PlanError, match="nothing"):
        stage_plans(plan, model, ("layer2",))


def test_stages_end_with_the_one_shot_channel_counts(setup, tmp_path):
    ds, original = setup
    cfg = _cfg(ds, original, tmp_path / "staged.pt")
    res = prune_in_stages(cfg)
    assert [s.group for s in res.stages] == ["layer1", "layer3"]
    assert res.stages[0].parameters > res.stages[1].parameters
    staged = load_model(res.out)
    orig = load_model(original).model
    one_shot_plan = PruningPlan(ratio=0.0, group_ratios={"layer1": 0.3, "layer3": 0.5}, criterion="weight_l1")
    one_shot = prune(orig, one_shot_plan, data_free_importance(orig)).model
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(staged.model) == count(one_shot) == res.stages[-1].parameters
    assert [s["group"] for s in staged.meta["stages"]] == ["layer1", "layer3"]
    assert staged.meta["teacher"] == str(original) and staged.meta["eval_scale"] == 240.0
    # the second stage was ranked and cut on the first stage's fine-tuned model
    assert load_model(res.stages[1].pruned).meta["pruning"]["parent"]["path"] == res.stages[0].finetuned
    with pytest.raises(CheckpointError, match="overwrite"):
        prune_in_stages(cfg)


def test_cancelled_run_resumes_without_redoing_stages(setup, tmp_path):
    ds, original = setup
    out = tmp_path / "staged.pt"
    token = CancelToken()

    def progress(done, total, message=""):
        if "layer3" in message and "fine-tune" in message:
            token.cancel()

    with pytest.raises(Cancelled):
        prune_in_stages(_cfg(ds, original, out), progress=progress, cancel=token)
    assert not out.exists()
    first = out.with_suffix(".stages") / "1-layer1-ft.pt"
    stamp = first.stat().st_mtime_ns
    assert (out.with_suffix(".stages") / "2-layer3-ft.run" / "last.pt").exists()
    res = prune_in_stages(_cfg(ds, original, out))
    assert first.stat().st_mtime_ns == stamp and Path(res.out).is_file()


def test_cli_prune_stages(setup, tmp_path):
    ds, original = setup
    out = tmp_path / "cli.pt"
    cmd = [sys.executable, "-m", "core.cli", "prune-stages", "--model", str(original), "--dataset", str(ds),
           "--ratio", "0.3", "--stages", "layer1", "layer2", "--iterations-per-stage", "1",
           "--calib-images", "1", "--batch-size", "2", "--class-batch-size", "2", "--crop-size", "160",
           "--eval-images", "1", "--threads", "1", "--device", "cpu", "--out", str(out), "--json",
           str(tmp_path / "r.json")]
    done = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stage layer2" in done.stdout and out.is_file()
    assert load_model(out).meta["pruning"]["criterion"] == "combined"  # statistics on the stage-1 model
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["map_before"] is not None and report["map_after"] is not None
    assert [s["group"] for s in report["stages"]] == ["layer1", "layer2"]


def test_stage_plans_by_unit_run_layer_by_layer():
    model = OS2DModel(ModelConfig("resnet18"))
    plan = PruningPlan(ratio=0.3, group_ratios={"layer2": 0.0}, criterion="lcp")
    stages = stage_plans(plan, model, STAGE_ORDER, by="unit")
    units = {u.name: u for u in find_units(model)}
    pruned = [u for u in find_units(model) if plan.ratio_for(u) > 0]
    assert len(stages) == len(pruned) == 8  # 2 head units, 3 of layer1 (the stem's with it), 3 of layer3
    # the transformation net first, then the trunk shallow to deep: the group order, forward order within
    order = [STAGE_ORDER.index(units[name].group) for name, _ in stages]
    assert order == sorted(order) and units[stages[0][0]].kind == "head"
    trunk = [name for name, _ in stages if units[name].group != "transform"]
    assert trunk == [u.name for u in pruned if u.group != "transform"]
    for name, p in stages:
        assert dict(p.unit_ratios) == {name: plan.ratio_for(units[name])} and p.criterion == "lcp"
    with pytest.raises(PlanError, match="stage kind"):
        stage_plans(plan, model, STAGE_ORDER, by="block")


def _unit_cfg(ds, original, out, **kw):
    return _cfg(ds, original, out, plan=PruningPlan(unit_ratios={L1: 0.5, L3: 0.5}, criterion="lcp"),
                stage_by="unit", reconstruct=True, iterations_per_stage=1, **kw)


def test_reconstructing_run_by_unit_resumes_after_a_cancel(setup, tmp_path):
    ds, original = setup
    out = tmp_path / "staged.pt"
    work = out.with_suffix(".stages")
    token = CancelToken()
    messages = []

    def progress(done, total, message=""):
        messages.append(message)
        if message.startswith("stage 2 of 2") and "reconstructing consumer 1 of 1" in message:
            token.cancel()

    with pytest.raises(Cancelled):
        prune_in_stages(_unit_cfg(ds, original, out), progress=progress, cancel=token)
    assert f"stage 1 of 2 ({L1}): ranking channels" in messages
    assert f"stage 1 of 2 ({L1}): reconstructing consumer 1 of 1" in messages
    finished = [work / f"1-{L1}.pt", work / f"1-{L1}-ft.pt"]
    assert all(f.is_file() for f in finished) and not (work / f"2-{L3}.pt").exists() and not out.exists()
    stamps = [f.stat().st_mtime_ns for f in finished]
    # the stage file holds the reconstructed weights: the consumer differs from the plain cut, nothing else
    stage1 = load_model(finished[0])
    rec = stage1.meta["reconstruction"]
    assert rec["updated"] == 1 and rec["error_after"] < rec["error_before"] and rec["skipped"] == {}
    plain = prune_model(load_model(original).model, KeptChannels.from_json(
        {"kept": stage1.meta["pruning"]["kept_indices"], "channels": stage1.meta["pruning"]["original_channels"]}))
    plain_params = dict(plain.named_parameters())
    changed = {k for k, v in stage1.model.named_parameters() if not torch.equal(v, plain_params[k])}
    assert changed == {"net_feature_maps.layer1.0.conv2.weight"}
    # resuming with other settings would mix cuts made differently
    with pytest.raises(CheckpointError, match="with reconstruction"):
        prune_in_stages(replace(_unit_cfg(ds, original, out), reconstruct=False))
    res = prune_in_stages(_unit_cfg(ds, original, out))
    assert [f.stat().st_mtime_ns for f in finished] == stamps
    assert [(s.unit, s.group) for s in res.stages] == [(L1, "layer1"), (L3, "layer3")]
    assert all(s.reconstruction["updated"] == 1 for s in res.stages)
    # each stage's ranking cost survives the resume: one LCP backward per calibration image for its one unit
    assert all(s.cost["backward_passes"] == 1 and s.cost["rank_seconds"] > 0
               and s.cost["reconstruct_seconds"] > 0 for s in res.stages)
    final = load_model(res.out)
    assert [s["unit"] for s in final.meta["stages"]] == [L1, L3]
    assert load_model(work / f"2-{L3}.pt").meta["pruning"]["criterion"] == "lcp"


def test_cli_prune_stages_by_unit_with_reconstruction(setup, tmp_path):
    ds, original = setup
    out = tmp_path / "cli.pt"
    plan = PruningPlan(unit_ratios={L3: 0.5}).save(tmp_path / "plan.json")
    cmd = [sys.executable, "-m", "core.cli", "prune-stages", "--model", str(original), "--dataset", str(ds),
           "--plan", str(plan), "--criterion", "lcp", "--reconstruct", "--stage-by", "unit",
           "--iterations-per-stage", "1", "--calib-images", "1", "--batch-size", "2", "--class-batch-size", "2",
           "--crop-size", "160", "--no-eval", "--threads", "1", "--device", "cpu", "--out", str(out),
           "--json", str(tmp_path / "r.json")]
    done = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"stage {L3}" in done.stdout and "reconstruction error" in done.stdout
    [stage] = json.loads((tmp_path / "r.json").read_text())["stages"]
    assert stage["unit"] == L3 and stage["group"] == "layer3" and stage["reconstruction"]["updated"] == 1
    assert stage["pruned"] == str(out.with_suffix(".stages") / f"1-{L3}.pt")


def test_staged_ranking_is_one_ranking_of_the_original_kept_whole_on_resume(setup, tmp_path):
    import numpy as np

    from core.data.grozi import open_dataset
    from core.importance.calibration import build_calibration
    from core.importance.result import ImportanceResult, compute_importance
    from core.model.digest import weights_digest

    ds, original = setup
    out = tmp_path / "staged.pt"
    work = out.with_suffix(".stages")
    token = CancelToken()

    def progress(done, total, message=""):
        if message.startswith(f"stage 2 of 2 ({L3}): ranking"):
            token.cancel()  # stage 2 is cancelled while it ranks: the file holds stage 1's unit

    with pytest.raises(Cancelled):
        prune_in_stages(replace(_unit_cfg(ds, original, out), reconstruct=False), progress=progress, cancel=token)
    orig = load_model(original).model
    first = ImportanceResult.load(work / "lcp_staged.json")
    assert first.criteria == ("lcp_staged",) and first.units == (L1,)
    assert first.model["sha256"] == weights_digest(orig) and first.model["path"] == str(original)
    res = prune_in_stages(replace(_unit_cfg(ds, original, out), reconstruct=False))
    assert res.ranking == str(work / "lcp_staged.json")
    assert sorted(p.name for p in work.glob("lcp_staged*")) == ["lcp_staged.json", "lcp_staged.npz"]
    ranking = ImportanceResult.load(res.ranking)
    units = {u.name: u.channels for u in find_units(orig)}
    assert ranking.units == (L1, L3) and ranking.channels == (units[L1], units[L3])  # the original's widths
    assert ranking.model["sha256"] == weights_digest(orig)
    np.testing.assert_array_equal(ranking.scores["lcp_staged"][L1], first.scores["lcp_staged"][L1])
    # each unit as LCP ranks it on the model its stage started from: L1 on the original, L3 after stage 1
    calib = build_calibration(open_dataset(str(ds), "train"), 1, 240.0, 0,
                              class_image_size=orig.config.class_image_size)
    for unit, model in ((L1, orig), (L3, load_model(res.stages[0].finetuned).model)):
        ref = compute_importance(model.eval(), calib, ["lcp"], units=[u for u in find_units(model) if u.name == unit])
        np.testing.assert_allclose(ranking.scores["lcp_staged"][unit], ref.scores["lcp"][unit], rtol=1e-5, atol=1e-7)


def test_staged_progress_never_passes_its_total(setup, tmp_path):
    ds, original = setup
    seen = []
    prune_in_stages(_unit_cfg(ds, original, tmp_path / "s.pt"), progress=lambda d, t, m="": seen.append((d, t)))
    assert seen and all(0 <= d <= t for d, t in seen) and seen[-1][0] == seen[-1][1]
