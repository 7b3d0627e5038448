"""LCP's reconstruction step after a cut: the patches are im2col's columns, the update lowers every
consumer's error inside the context boxes (measured afresh with the models' own convolutions), what it
cannot rebuild is named with a reason, and LCP's ranking it follows is deterministic."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from test_importance import HEAD, INNER, STAGE, make_calibration, make_model

from core.importance.gradient import lcp_importance
from core.importance.result import data_free_importance
from core.jobs import CancelToken, Cancelled
from core.prune.job import prune
from core.prune.plan import PruningPlan
from core.prune.reconstruct import (ReconstructConfig, consumer_input, context_cells, patches,
                                    reconstruct_consumers)
from core.prune.units import find_units, units_by_name

CONV3 = "os2d_head_creator.aligner.parameter_regressor.conv.3"


@pytest.fixture(scope="module")
def cut():
    """A model before and after a cut of an inner, a stage, the trunk-output and both head units."""
    model = make_model(seed=2)
    last = next(u.name for u in find_units(model) if u.feeds_correlation)
    plan = PruningPlan(unit_ratios={INNER: 0.5, STAGE: 0.5, last: 0.5, HEAD: 0.5, CONV3: 0.5})
    res = prune(model, plan, data_free_importance(model))
    return model, res, make_calibration(2)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2), (2, 3, 1, 4)])
def test_patches_are_unfold_columns(stride, padding, dilation, groups):
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(8, 4, 3 if padding < 3 else 7, stride, padding, dilation, groups, bias=False)
    x = torch.randn(3, 8, 13, 17, generator=g)
    cols = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # [N, C*k*k, L]
    cells = torch.tensor([0, 5, cols.shape[2] + 7, 3 * cols.shape[2] - 1])
    p = patches(conv, x, cells)
    want = cols.permute(0, 2, 1).reshape(-1, cols.shape[1])[cells]
    torch.testing.assert_close(p.reshape(len(cells), -1), want)
    # a grouped conv: each group's patches times its weights give the conv's output
    out = conv(x).permute(0, 2, 3, 1).reshape(-1, 4)[cells]
    w = conv.weight.reshape(groups, 4 // groups, -1)
    cpg = 8 // groups
    per = [p[:, i * cpg:(i + 1) * cpg].reshape(len(cells), -1) @ w[i].t() for i in range(groups)]
    torch.testing.assert_close(torch.cat(per, 1), out, rtol=1e-5, atol=1e-5)


def _errors(original, pruned, kept, calib, cfg, refs: dict) -> dict[str, float]:
    """||conv_cut(x_cut) - conv_orig(x_orig)||^2 / ||conv_orig(x_orig)||^2 (no bias, kept outputs) on the
    in-context cells of every calibration image, from the models' own convolutions (`refs` caches the
    uncut model's inputs)."""
    units = find_units(original)
    out_kept = {p: kept.indices[u.name] for u in units if u.name in kept.pruned_units() for p in u.producers}
    names = {n for u in units if u.name in kept.pruned_units() for n in u.consumers}
    errors = {}
    for name in names:
        conv, ref = pruned.get_submodule(name), original.get_submodule(name)
        num = den = 0.0
        for k, sample in enumerate(calib):
            if (name, k) not in refs:
                refs[name, k] = consumer_input(original, name, sample, "cpu")
            x_ref, x_cut = refs[name, k], consumer_input(pruned, name, sample, "cpu")
            with torch.no_grad():
                y_ref = F.conv2d(x_ref, ref.weight, None, ref.stride, ref.padding, ref.dilation, ref.groups)
                y_cut = F.conv2d(x_cut, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
            if name in out_kept:
                y_ref = y_ref[:, torch.as_tensor(out_kept[name])]
            cells = context_cells(conv, x_cut, sample, cfg, salt=k)
            flat = lambda y: y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])[cells].double()  # noqa: E731
            num += float((flat(y_cut) - flat(y_ref)).square().sum())
            den += float(flat(y_ref).square().sum())
        errors[name] = num / den
    return errors


def test_update_lowers_each_consumers_error_inside_the_context_boxes(cut):
    model, res, calib = cut
    cfg = ReconstructConfig()
    pruned = copy.deepcopy(res.model)
    refs: dict = {}
    before = _errors(model, pruned, res.kept, calib, cfg, refs)
    untouched = copy.deepcopy(model.state_dict())
    messages = []
    report = reconstruct_consumers(model, pruned, res.kept, calib, config=cfg,
                                   progress=lambda d, t, m="": messages.append(m))
    after = _errors(model, pruned, res.kept, calib, cfg, refs)
    assert set(before) == {c.name for c in report.updated}  # every consumer with weights: 7
    assert len(before) == 7
    for name in before:
        assert after[name] < before[name], name
        c = next(c for c in report.updated if c.name == name)
        assert c.error_after == pytest.approx(after[name], rel=1e-3, abs=1e-6)
        assert c.cells > 0
    # the report's "before" is on the inputs the consumers upstream give once updated: for the first
    # consumer (none upstream) that is the cut model as the surgery left it
    first = report.updated[0]
    assert first.name == INNER.replace("conv1", "conv2")
    assert first.error_before == pytest.approx(before[first.name], rel=1e-4)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in untouched.items())  # the uncut model is kept
    assert "reconstructing consumer 2 of 7" in messages
    # only the consumers' weights change, and the cut model's shapes stay
    cut_params = dict(res.model.named_parameters())
    changed = {k.rsplit(".", 1)[0] for k, v in pruned.named_parameters() if not torch.equal(v, cut_params[k])}
    assert changed == set(before)
    s = report.summary()
    assert s["updated"] == 7 and s["error_after"] < s["error_before"] and s["images"] == 2
    # what it cannot rebuild is named, with the reason
    skipped = {c.name: c for c in report.consumers if c.skipped}
    assert list(skipped) == ["correlation"] and "no weights" in skipped["correlation"].skipped
    assert skipped["correlation"].unit == next(u.name for u in find_units(model) if u.feeds_correlation)
    assert s["skipped"] == {"correlation": skipped["correlation"].skipped}


def test_cells_are_bounded_and_drawn_deterministically(cut):
    model, _, calib = cut
    res = prune(model, PruningPlan(unit_ratios={HEAD: 0.5}), data_free_importance(model))
    cfg = ReconstructConfig(max_cells_per_image=50, seed=3)
    conv = res.model.get_submodule(CONV3)
    x = consumer_input(res.model, CONV3, calib[0], "cpu")  # [2 class slices, 64, h, w]
    a, b = context_cells(conv, x, calib[0], cfg, salt=0), context_cells(conv, x, calib[0], cfg, salt=0)
    assert len(a) == 50 and torch.equal(a, b) and bool((a[1:] > a[:-1]).all())
    assert not torch.equal(a, context_cells(conv, x, calib[0], cfg, salt=1))
    assert int(a.max()) >= x.shape[-1] * x.shape[-2]  # cells of both class slices
    report = reconstruct_consumers(model, copy.deepcopy(res.model), res.kept, calib, config=cfg)
    [c] = report.updated
    assert c.name == CONV3 and c.cells == 50 * len(calib) and c.error_after < c.error_before


def test_cancel_stops_it(cut):
    model, res, calib = cut
    token = CancelToken()
    token.cancel()
    pruned = copy.deepcopy(res.model)
    with pytest.raises(Cancelled):
        reconstruct_consumers(model, pruned, res.kept, calib, cancel=token)
    assert all(torch.equal(v, res.model.state_dict()[k]) for k, v in pruned.state_dict().items())
    with pytest.raises(ValueError, match="ridge"):
        ReconstructConfig(ridge=0.0)
    with pytest.raises(ValueError, match="ridge"):
        ReconstructConfig(ridge=0.0)


def test_lcp_ranking_is_deterministic_for_a_fixed_calibration_set():
    model = make_model(seed=4)
    calib = make_calibration(1)
    units = [units_by_name(find_units(model))[n] for n in (INNER, HEAD)]
    a = lcp_importance(model, calib, units)
    b = lcp_importance(model, calib, units)
    for u in units:
        assert np.any(a.scores[u.name] > 0)
        np.testing.assert_array_equal(a.scores[u.name], b.scores[u.name], err_msg=u.name)


def test_cli_prune_reconstructs_on_calibration_images(tmp_path, capsys):
    """`prune --reconstruct N`: the consumers refit on N train images, recorded in the file; without a
    dataset it says what is missing."""
    from core.cli import main as cli_main
    from core.model.checkpoint import load_model
    from core.resources import benchmark_dir

    out = tmp_path / "rec.pt"
    assert cli_main(["prune", "--ratio", "0.5", "--reconstruct", "1", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("error: --reconstruct: needs --dataset DIR: the consumers are "
                                               "refit on its train images")
    assert not out.exists()
    # the tiny random model at a small scale keeps this quick; the bundled benchmark has the boxes
    from core.model.checkpoint import save_model
    from tests.core.test_pruning import _small

    model = _small()
    parent = save_model(model, tmp_path / "parent.pt")
    assert cli_main(["prune", "--model", str(parent), "--ratio", "0.5", "--reconstruct", "1", "--dataset",
                     str(benchmark_dir()), "--target-size", "256", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "reconstructed" in printed and "consumers on 1 images" in printed
    rec = load_model(out).meta["reconstruction"]
    assert rec["updated"] > 0 and rec["images"] == 1 and rec["error_after"] <= rec["error_before"]
