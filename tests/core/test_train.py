"""Training: the loss learns, checkpoints are atomic, and a killed or cancelled run resumes exactly."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.data.synth import SynthConfig, generate
from core.jobs import CancelToken, Cancelled
from core.model.checkpoint import load_model
from core.train.batches import BatchConfig
from core.train.loop import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate(out, SynthConfig(num_train_classes=4, num_val_classes=2, num_train_images=4, num_val_images=2,
                              image_size=(320, 240), eval_scale=240, demo_video=False))
    return out


def _cfg(ds, out, **kw):
    base = dict(dataset=str(ds), out=str(out), backbone="resnet18", iterations=6, lr=1e-3, warmup=2,
                batch=BatchConfig(batch_size=2, class_batch_size=2, crop_size=160, train_scale=240),
                eval_every=0, checkpoint_every=2, seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _weights(path):
    return load_model(path).model.state_dict()


def test_cancelled_run_resumes_to_the_same_weights(tiny_synth, tmp_path):
    ref = train(_cfg(tiny_synth, tmp_path / "ref.pt"))
    assert ref.iterations == 6 and len(ref.history) == 6

    token = CancelToken()

    def stop_after_3(done, total, msg=""):
        if done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        train(_cfg(tiny_synth, tmp_path / "b.pt"), progress=stop_after_3, cancel=token)
    assert not (tmp_path / "b.pt").exists()  # no final model from a cancelled run
    last = tmp_path / "b.run" / "last.pt"
    assert torch.load(last, weights_only=True)["state"]["iteration"] == 2  # the last good checkpoint
    res = train(_cfg(tiny_synth, tmp_path / "b.pt"))
    assert res.iterations == 6
    assert [h["iteration"] for h in res.history] == list(range(1, 7))
    a, b = _weights(tmp_path / "ref.pt"), _weights(tmp_path / "b.pt")
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    meta = load_model(tmp_path / "b.pt").meta
    assert meta["training"]["iterations"] == 6 and meta["eval_scale"] == 240


def test_damaged_resume_checkpoint_stops_the_run_naming_it(tiny_synth, tmp_path):
    """A resume checkpoint whose content changed (its zip still sound) is refused, never resumed from."""
    from core.model.checkpoint import CheckpointError

    from _file_helpers import flip_byte, rewrite_entry, tensor_entries  # noqa: E402

    train(_cfg(tiny_synth, tmp_path / "d.pt", iterations=2))
    last = tmp_path / "d.run" / "last.pt"
    good = last.rename(tmp_path / "good.pt")
    rewrite_entry(good, last, tensor_entries(good)[0].filename, lambda b: flip_byte(b, len(b) // 2))
    with pytest.raises(CheckpointError) as e:
        train(_cfg(tiny_synth, tmp_path / "d.pt", iterations=4))
    assert str(e.value) == f"{last}: damaged: content does not match its checksum; delete it to start the run over"
    last.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"last\.pt: file is empty; delete it to start the run over$"):
        train(_cfg(tiny_synth, tmp_path / "d.pt", iterations=4))


# The first run dies by SIGKILL (as in a power cut) right after it wrote its first checkpoint: the kill
# lands at the same point on a fast or a loaded machine, not whenever a polling loop notices the file.
_DIE_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
import core.train.loop as loop
save = loop.save_checked
def save_then_die(*args, **kwargs):
    save(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
loop.save_checked = save_then_die
from core.cli import main
sys.argv = ["os2d-studio", *sys.argv[1:]]
sys.exit(main())
"""


def _kill_then_rerun(cmd: list[str], out: Path, iterations: int, first_checkpoint: int) -> subprocess.CompletedProcess:
    """Run `cmd` (python -m core.cli ...) killed right after its first checkpoint (OUT.run/last.pt), check
    it left that and no output, then run the same command again to the end."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert cmd[1:3] == ["-m", "core.cli"]
    killed = subprocess.run([cmd[0], "-c", _DIE_AFTER_FIRST_CHECKPOINT, *cmd[3:]], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    last = out.with_suffix(".run") / "last.pt"
    assert last.exists() and not out.exists()
    assert torch.load(last, weights_only=True)["state"]["iteration"] == first_checkpoint
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_model(out).meta["training"]["iterations"] == iterations
    return done


def test_killed_process_resumes_and_finishes(tiny_synth, tmp_path):
    out = tmp_path / "k.pt"
    cmd = [sys.executable, "-m", "core.cli", "train", "--dataset", str(tiny_synth), "--out", str(out),
           "--iterations", "40", "--batch-size", "2", "--class-batch-size", "2", "--crop-size", "160",
           "--train-scale", "240", "--eval-every", "0", "--checkpoint-every", "2", "--threads", "1"]
    assert "after 40 iterations" in _kill_then_rerun(cmd, out, 40, first_checkpoint=2).stdout


def _pruned_pair(folder: Path) -> tuple[Path, Path]:
    """An untrained original and its 30 % weight-L1 pruned copy, saved as files (teacher, student)."""
    from core.model.checkpoint import save_model
    from core.model.os2d import ModelConfig, OS2DModel
    from core.prune.job import prune, save_pruned
    from core.prune.plan import PruningPlan
    from core.importance.result import data_free_importance

    torch.manual_seed(0)
    original = OS2DModel(ModelConfig("resnet18")).eval()
    teacher = save_model(original, folder / "original.pt")
    res = prune(original, PruningPlan(ratio=0.3, criterion="weight_l1"), data_free_importance(original))
    return Path(teacher), Path(save_pruned(res, folder / "pruned.pt", teacher))


def test_killed_finetune_resumes_and_finishes(tiny_synth, tmp_path):
    """`os2d-studio finetune` killed mid-run: the same command resumes from its checkpoint and finishes."""
    teacher, pruned = _pruned_pair(tmp_path)
    out = tmp_path / "ft.pt"
    cmd = [sys.executable, "-m", "core.cli", "finetune", "--model", str(pruned), "--teacher", str(teacher),
           "--dataset", str(tiny_synth), "--out", str(out), "--iterations", "30", "--batch-size", "2",
           "--class-batch-size", "2", "--crop-size", "160", "--checkpoint-every", "2", "--no-eval",
           "--threads", "1", "--device", "cpu"]
    assert "30 iterations" in _kill_then_rerun(cmd, out, 30, first_checkpoint=2).stdout
    assert load_model(out).meta["teacher"] == str(teacher)
    count = lambda path: sum(p.numel() for p in load_model(path).model.parameters())  # noqa: E731
    assert count(out) == count(pruned) < count(teacher)  # still the pruned architecture


def test_refuses_to_overwrite_its_init_model(tiny_synth, tmp_path):
    from core.model.checkpoint import CheckpointError, save_model
    from core.model.os2d import ModelConfig, OS2DModel

    init = save_model(OS2DModel(ModelConfig("resnet18")), tmp_path / "init.pt")
    with pytest.raises(CheckpointError, match="overwrite"):
        train(_cfg(tiny_synth, init, init=str(init)))


def _torchrun_two_cpu_ranks(args: list[str]) -> tuple[dict, subprocess.CompletedProcess]:
    """Run `os2d-studio ARGS` as two gloo ranks; each rank's final-weights digest by rank."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this python")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "core.cli", *args,
           "--threads", "1", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    digests = {}
    for line in (done.stdout + done.stderr).splitlines():
        if "weights sha256" in line:
            parts = line.split()
            digests[parts[parts.index("rank") + 1]] = parts[-1]
    assert set(digests) == {"0/2", "1/2"}, done.stdout[-2000:]
    return digests, done


@pytest.mark.slow
def test_ddp_two_cpu_processes_end_with_identical_weights(tiny_synth, tmp_path):
    out = tmp_path / "ddp.pt"
    digests, _ = _torchrun_two_cpu_ranks(
        ["train", "--dataset", str(tiny_synth), "--out", str(out), "--iterations", "3", "--batch-size", "2",
         "--class-batch-size", "2", "--crop-size", "160", "--train-scale", "240", "--eval-every", "0",
         "--checkpoint-every", "3"])
    assert digests["0/2"] == digests["1/2"]
    assert load_model(out).meta["training"]["world_size"] == 2


@pytest.mark.slow
def test_ddp_finetune_evaluates_once_and_ranks_agree(tiny_synth, tmp_path):
    """The same finetune command under torchrun: rank 0 alone measures mAP before and after (the other
    rank must not read the output before rank 0 has written it)."""
    teacher, pruned = _pruned_pair(tmp_path)
    out = tmp_path / "ddp-ft.pt"
    digests, done = _torchrun_two_cpu_ranks(
        ["finetune", "--model", str(pruned), "--teacher", str(teacher), "--dataset", str(tiny_synth), "--out",
         str(out), "--iterations", "3", "--batch-size", "2", "--class-batch-size", "2", "--crop-size", "160",
         "--eval-images", "1"])
    assert digests["0/2"] == digests["1/2"]
    assert done.stdout.count("mAP@0.5 before") == 1
    assert load_model(out).meta["training"]["world_size"] == 2


def test_distillation_from_a_teacher_runs(tiny_synth, tmp_path):
    from core.model.checkpoint import save_model
    from core.model.os2d import ModelConfig, OS2DModel

    teacher = save_model(OS2DModel(ModelConfig("resnet18")), tmp_path / "teacher.pt")
    res = train(_cfg(tiny_synth, tmp_path / "student.pt", iterations=2, init=str(teacher), teacher=str(teacher),
                     distill_score_weight=1.0, distill_attention_weight=1.0, distill_box_weight=1.0))
    assert all("distill_score" in h and "distill_attention" in h and "distill_box" in h for h in res.history)


def test_box_distillation_copies_the_teacher_where_it_is_confident():
    from core.model.box_coder import strided_boxes
    from core.train.loss import box_distillation

    torch.manual_seed(0)
    anchors = strided_boxes(5, 10, 64.0, 16.0)  # 50 locations
    t_loc, t_cls = 0.3 * torch.randn(2, 3, 4, 50), torch.randn(2, 3, 50)
    assert box_distillation(t_loc.clone(), t_loc, t_cls, anchors, top_k=5) < 1e-6
    unsure = t_cls.topk(45, dim=-1, largest=False).indices  # the 45 locations outside each top 5
    s_loc = t_loc.clone()
    s_loc.scatter_(3, unsure.unsqueeze(2).expand(-1, -1, 4, -1), 3.0)
    assert box_distillation(s_loc, t_loc, t_cls, anchors, top_k=5) < 1e-6  # only confident locations count
    s_loc = t_loc.clone().requires_grad_(True)
    wider = s_loc + torch.tensor([0.0, 0.0, 2.0, 0.0]).view(1, 1, 4, 1)  # boxes too wide, as a cut model's
    loss = box_distillation(wider, t_loc, t_cls, anchors, top_k=5)
    loss.backward()
    assert 0 < loss < 2 and (s_loc.grad.abs().sum(2) != 0).sum() == 2 * 3 * 5


def test_matching_loss_rewards_the_true_class_at_the_ideal_alignment():
    from core.train.loss import matching_loss

    torch.manual_seed(0)
    class_feats = torch.randn(3, 8, 15, 15)
    # a 15x15 stride-1 map that *is* class 1's feature grid; the box covers it exactly
    feats = class_feats[1:2].clone()
    box = [torch.tensor([[0.0, 0.0, 15.0, 15.0]])]
    no = [torch.tensor([False])]
    right = matching_loss(feats, class_feats, box, [torch.tensor([1])], no, stride=1, temperature=0.1)
    wrong = matching_loss(feats, class_feats, box, [torch.tensor([0])], no, stride=1, temperature=0.1)
    assert right < 0.01 < 5.0 < wrong
    # difficult boxes do not count; with nothing left there is no loss
    assert matching_loss(feats, class_feats, box, [torch.tensor([1])], [torch.tensor([True])], 1, 0.1) is None


def test_matching_term_is_logged_when_enabled(tiny_synth, tmp_path):
    from core.train.loss import LossConfig

    res = train(_cfg(tiny_synth, tmp_path / "m.pt", iterations=2, loss=LossConfig(match_weight=1.0)))
    assert any("match" in h for h in res.history)


def test_finetune_keeps_the_loss_the_model_was_trained_with(tiny_synth, tmp_path):
    from core.train.finetune import FinetuneConfig, finetune, trained_loss
    from core.train.loss import LossConfig

    teacher = tmp_path / "teacher.pt"
    train(_cfg(tiny_synth, teacher, iterations=2, loss=LossConfig(match_weight=0.7, pos_margin=0.55)))
    assert trained_loss(load_model(teacher).meta) == LossConfig(match_weight=0.7, pos_margin=0.55)
    assert trained_loss({}, {"training": "not a record"}) == LossConfig()

    def tune(out, **kw):
        cfg = FinetuneConfig(model=str(teacher), teacher=str(teacher), dataset=str(tiny_synth), out=str(out),
                             iterations=2, evaluate_before_after=False, giou_weight=0.3, device="cpu",
                             batch=BatchConfig(batch_size=2, class_batch_size=2, crop_size=160), **kw)
        res = finetune(cfg)
        return load_model(out).meta["training"]["config"]["loss"], res.train.history

    loss, history = tune(tmp_path / "ft.pt")
    assert (loss["match_weight"], loss["pos_margin"], loss["giou_weight"]) == (0.7, 0.55, 0.3)
    assert any("match" in h for h in history)
    loss, history = tune(tmp_path / "ft0.pt", match_weight=0.0)
    assert loss["match_weight"] == 0.0 and not any("match" in h for h in history)


def test_extra_training_data_widens_the_class_pool_but_never_the_held_out_split(tiny_synth, tmp_path):
    from core.data.grozi import DatasetError

    extra = tmp_path / "extra"
    generate(extra, SynthConfig(num_train_classes=3, num_val_classes=1, num_train_images=3, num_val_images=1,
                                image_size=(320, 240), eval_scale=240, demo_video=False, seed=5))
    res = train(_cfg(tiny_synth, tmp_path / "x.pt", iterations=2, extra_train=(str(extra),)))
    assert res.iterations == 2
    cfg = load_model(tmp_path / "x.pt").meta["training"]["config"]
    assert list(cfg["extra_train"]) == [str(extra)]
    with pytest.raises(Exception, match="another dataset"):  # its work folder belongs to this data mix
        train(_cfg(tiny_synth, tmp_path / "x.pt", iterations=3))
    with pytest.raises(DatasetError, match="held-out classes"):  # the benchmark itself holds its val classes
        train(_cfg(tiny_synth, tmp_path / "y.pt", iterations=2, eval_every=1, extra_train=(str(tiny_synth),)))
    with pytest.raises(DatasetError, match="held-out classes"):  # also when the run never evaluates
        train(_cfg(tiny_synth, tmp_path / "y.pt", iterations=2, eval_every=0, extra_train=(str(tiny_synth),)))
    # without evaluation a dataset need not have the val split at all
    assert train(_cfg(extra, tmp_path / "z.pt", iterations=1, eval_every=0, val_split="test")).iterations == 1


def test_image_cache_stops_at_its_byte_budget_without_changing_batches(tiny_synth):
    from core.data.grozi import open_dataset
    from core.train.batches import BatchSampler

    ds = open_dataset(tiny_synth, "train")
    cfg = BatchConfig(batch_size=2, class_batch_size=2, crop_size=160, train_scale=240)
    full, capped = BatchSampler(ds, cfg), BatchSampler(ds, cfg, cache_bytes=0)
    for it in range(3):
        a, b = full.batch(it), capped.batch(it)
        assert torch.equal(a.images, b.images) and a.class_ids == b.class_ids
    assert full._cache and not capped._cache
