"""Layer-wise prune → fine-tune stages: the same channel counts as a one-shot cut, each stage ranked on
the model the previous stages left, and a cancelled run resumes without redoing finished stages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.data.synth import SynthConfig, generate
from core.jobs import CancelToken, Cancelled
from core.model.checkpoint import CheckpointError, load_model, save_model
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.job import prune
from core.prune.plan import PlanError, PruningPlan
from core.importance.result import data_free_importance
from core.prune.units import find_units
from core.train.batches import BatchConfig
from core.train.finetune import FinetuneConfig
from core.train.staged import StagedConfig, prune_in_stages, stage_plans

REPO = Path(__file__).resolve().parents[2]


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
