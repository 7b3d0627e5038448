"""Channel importance: streaming statistics against a direct computation, zero channels rank last
under every criterion, determinism, calibration sets, and the result files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from core.data.grozi import open_dataset
from core.importance.calibration import (CalibrationProvenance, CalibrationSample, CalibrationSet,
                                         build_calibration, select_images)
from core.importance.criteria import CRITERIA, DATA_FREE, channel_order
from core.importance.result import (ALL_CRITERIA, ImportanceFileError, ImportanceResult, compute_importance,
                                    data_free, data_free_importance, importance_for_plan)
from core.importance.stats import StatsConfig, collect_statistics, nominal_stride
from core.jobs import CancelToken, Cancelled
from core.model.digest import weights_digest
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.plan import PlanError, PruningPlan, resolve
from core.prune.units import find_units, units_by_name

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_os2d"
T = "net_feature_maps."
R = "os2d_head_creator.aligner.parameter_regressor."
INNER = T + "layer2.0.conv1"  # one producer
STAGE = T + "layer2.0.conv2"  # layer2's residual-coupled outputs: three producers
HEAD = R + "conv.0"
ZEROED = {INNER: 3, STAGE: 5, HEAD: 7}
H, W = 192, 288  # multiples of 16: every map's stride is exact


def make_model(seed: int = 0) -> OS2DModel:
    """ResNet-18 OS2D whose BN running statistics match its inputs (as in a trained net: no channel is
    dead), with small random gamma/beta so channels differ, and a non-zero transform head."""
    torch.manual_seed(seed)
    model = OS2DModel(ModelConfig("resnet18"))
    g = torch.Generator().manual_seed(seed)
    lin = model.os2d_head_creator.aligner.parameter_regressor.linear
    lin.weight.data = torch.randn(lin.weight.shape, generator=g) * 1e-3  # zero-initialised: no gradient would pass
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration forwards
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(1, 3, H // 2, W // 2, generator=g), [torch.randn(3, 64, 64, generator=g)] * 2)
    for m in bns:
        n = m.num_features
        m.momentum = 0.1
        m.weight.data = torch.rand(n, generator=g) + 0.5
        m.bias.data = torch.randn(n, generator=g) * 0.1
    return model.eval()


def make_calibration(num: int = 2) -> CalibrationSet:
    """Synthetic images: one box large enough to match the 240-px default boxes, one small; two classes."""
    g = torch.Generator().manual_seed(1)
    boxes = [torch.tensor([[10.0, 8.0, 190.0, 188.0], [230.0, 60.0, 280.0, 140.0]]),
             torch.tensor([[100.0, 5.0, 280.0, 185.0], [10.0, 100.0, 60.0, 180.0]])]
    samples = []
    for i in range(num):
        samples.append(CalibrationSample(
            image_id=i, image=torch.randn(3, H, W, generator=g), boxes=boxes[i % 2],
            labels=torch.tensor([0, 1]), difficult=torch.tensor([False, False]), class_ids=(10, 11),
            class_images=tuple(torch.randn(3, 64, 64, generator=g) for _ in range(2))))
    prov = CalibrationProvenance("synthetic", "all", tuple(range(num)), float(math.sqrt(H * W)), 0)
    return CalibrationSet(tuple(samples), prov)


def zero_channels(model: OS2DModel) -> None:
    """Zero each test channel's filters and BN gamma/beta in every producer: its output is exactly 0."""
    units = units_by_name(find_units(model))
    with torch.no_grad():
        for name, c in ZEROED.items():
            for conv, bn in zip(units[name].producers, units[name].norms):
                model.get_submodule(conv).weight[c] = 0
                model.get_submodule(bn).weight[c] = 0
                model.get_submodule(bn).bias[c] = 0


@pytest.fixture(scope="module")
def zeroed_result() -> ImportanceResult:
    model = make_model()
    zero_channels(model)
    return compute_importance(model, make_calibration(), list(ALL_CRITERIA), model_path="synthetic")


# -- (a) streaming statistics equal a direct computation ------------------------------------------------

def _context(boxes: torch.Tensor, scale: float) -> torch.Tensor:
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    out = torch.cat([c - half, c + half], 1)
    return torch.stack([out[:, 0].clamp(0, W), out[:, 1].clamp(0, H), out[:, 2].clamp(0, W), out[:, 3].clamp(0, H)], 1)


def _moments(values: np.ndarray, relu: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """values [N, C] → per-channel mean, variance, mean |a|, fraction > 0, mean ReLU (of `relu` if given)."""
    relu = np.maximum(values, 0) if relu is None else relu
    return {"mean": values.mean(0), "var": values.var(0), "abs": np.abs(values).mean(0), "pos": (values > 0).mean(0),
            "relu": relu.mean(0)}


def test_streaming_statistics_equal_direct_computation():
    model = make_model()
    calib = make_calibration()
    units = find_units(model)
    cfg = StatsConfig()
    stats = collect_statistics(model, calib, units, config=cfg)

    by_name = units_by_name(units)
    norms = {n: (u, p) for u in (by_name[INNER], by_name[STAGE], by_name[HEAD]) for p, n in enumerate(u.norms)}
    captured: dict[str, list] = {n: [] for n in norms}
    phase = {"now": ""}
    handles = [model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: captured[n].append((phase["now"], o.detach().clone()))) for n in norms]
    rois_of = []
    with torch.no_grad():
        for s in calib:
            phase["now"] = "class"
            cf = model.class_features(list(s.class_images))
            phase["now"] = "target"
            model.head(model.target_features(s.image.unsqueeze(0)), cf)
            rois_of.append(_context(s.boxes, cfg.context_scale))
    for h in handles:
        h.remove()

    for norm, (unit, p) in norms.items():
        target = [a for ph, a in captured[norm] if ph == "target"]
        klass = [a for ph, a in captured[norm] if ph == "class"]
        assert len(target) == len(calib)
        fg, fg_relu, bg, whole = [], [], [], []
        for s, a, ctx in zip(calib, target, rois_of):
            b, c, h, w = a.shape
            stride = H // h
            assert stride == nominal_stride((H, W), (h, w)) and stride * w == W
            batch = s.labels.float() if unit.kind == "head" else torch.zeros(len(ctx))
            rois = torch.cat([batch[:, None], ctx], 1)
            kw = dict(output_size=cfg.roi_size, spatial_scale=1 / stride, sampling_ratio=cfg.sampling_ratio,
                      aligned=True)
            fg.append(roi_align(a, rois, **kw).permute(0, 2, 3, 1).reshape(-1, c))
            fg_relu.append(roi_align(a.clamp(min=0), rois, **kw).permute(0, 2, 3, 1).reshape(-1, c))
            cy = (torch.arange(h) + 0.5) * stride
            cx = (torch.arange(w) + 0.5) * stride
            for slice_ in range(b):
                sel = ctx[batch == slice_] if unit.kind == "head" else ctx
                inside = torch.zeros(h, w, dtype=torch.bool)
                for x1, y1, x2, y2 in sel.tolist():
                    inside |= ((cy[:, None] >= y1) & (cy[:, None] <= y2) & (cx[None] >= x1) & (cx[None] <= x2))
                bg.append(a[slice_].permute(1, 2, 0)[~inside])
            whole.append(a.permute(0, 2, 3, 1).reshape(-1, c))
        got = stats[unit.name]
        expect = {"fg": _moments(torch.cat(fg).double().numpy(), torch.cat(fg_relu).double().numpy()), "bg": _moments(torch.cat(bg).double().numpy()),
                  "whole": _moments(torch.cat(whole).double().numpy())}
        if klass:
            expect["class"] = _moments(torch.cat([a.permute(0, 2, 3, 1).reshape(-1, a.shape[1]) for a in klass])
                                       .double().numpy())
        else:
            assert got.counts["class"][p] == 0
        assert got.counts["fg"][p] == sum(len(x) for x in fg)
        assert got.counts["bg"][p] == sum(len(x) for x in bg) > 0
        for region, e in expect.items():
            n = got.counts[region][p]
            mean = got.sums[f"{region}.sum"][p] / n
            var = got.sums[f"{region}.sum_sq"][p] / n - mean ** 2
            np.testing.assert_allclose(mean, e["mean"], rtol=1e-4, atol=1e-5, err_msg=f"{norm} {region} mean")
            np.testing.assert_allclose(var, e["var"], rtol=1e-3, atol=1e-5, err_msg=f"{norm} {region} var")
            np.testing.assert_allclose(got.sums[f"{region}.sum_abs"][p] / n, e["abs"], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(got.sums[f"{region}.count_pos"][p] / n, e["pos"], rtol=0, atol=1e-12)
            np.testing.assert_allclose(got.sums[f"{region}.sum_relu"][p] / n, e["relu"], rtol=1e-4, atol=1e-5)
        if len(unit.norms) == 1:  # the producer-averaged accessors of a single-producer unit are the same numbers
            np.testing.assert_allclose(got.mean("fg"), expect["fg"]["mean"], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(got.variance("bg"), expect["bg"]["var"], rtol=1e-3, atol=1e-5)
    assert stats.num_images == len(calib) and stats.measurement.seconds > 0
    assert set(stats) == {u.name for u in units}
    # the stage unit keeps its three producers apart, averaged with equal weight
    stage = stats[STAGE]
    assert stage.sums["fg.sum"].shape == (3, by_name[STAGE].channels)
    per = stage.sums["whole.sum"] / stage.counts["whole"][:, None]
    np.testing.assert_allclose(stage.mean("whole"), per.mean(0), rtol=1e-12)


# -- (b) a zeroed channel ranks last everywhere ---------------------------------------------------------

@pytest.mark.parametrize("criterion", ALL_CRITERIA)
def test_zeroed_channel_ranks_last(zeroed_result, criterion):
    for unit, c in ZEROED.items():
        scores = zeroed_result.score(criterion, unit)
        others = np.delete(scores, c)
        assert scores[c] == 0.0, f"{criterion} {unit}: zeroed channel scored {scores[c]}"
        assert others.min() > 0, f"{criterion} {unit}: another channel also scored 0"
        assert zeroed_result.order(criterion, unit)[-1] == c


def test_result_contents(zeroed_result):
    r = zeroed_result
    assert r.criteria == ALL_CRITERIA
    assert r.units[0] == T + "conv1" and len(r.units) == len(r.channels) == 11
    for crit in r.criteria:
        for unit, c in zip(r.units, r.channels):
            assert r.score(crit, unit).shape == (c,) and np.isfinite(r.score(crit, unit)).all()
            np.testing.assert_array_equal(r.order(crit, unit), channel_order(r.score(crit, unit)))
    combined = [r.score("combined", u) for u in r.units]
    assert all(0 <= s.min() and s.max() <= 1 for s in combined)  # normalized per unit
    assert {"statistics", "lcp", "taylor", "combined"} <= set(r.timings)
    assert r.timings["lcp"].seconds > 0 and r.timings["statistics"].peak_bytes > 0
    assert len(r.model["sha256"]) == 64 and r.model["path"] == "synthetic"
    assert r.calibration.dataset == "synthetic"


# -- (c) determinism ----------------------------------------------------------------------------------------

def test_deterministic_for_a_fixed_calibration_set():
    model = make_model(seed=3)
    calib = make_calibration(1)
    a = compute_importance(model, calib, list(ALL_CRITERIA))
    b = compute_importance(model, calib, list(ALL_CRITERIA))
    for crit in ALL_CRITERIA:
        for unit in a.units:
            np.testing.assert_array_equal(a.score(crit, unit), b.score(crit, unit), err_msg=f"{crit} {unit}")
    assert a.model["sha256"] == b.model["sha256"] != ImportanceResult.__name__


# -- (d) files ------------------------------------------------------------------------------------------------

def test_save_load_roundtrip(zeroed_result, tmp_path):
    npz, js = zeroed_result.save(tmp_path / "imp")
    assert npz == tmp_path / "imp.npz" and js == tmp_path / "imp.json"
    for path in (tmp_path / "imp", js, npz):
        back = ImportanceResult.load(path)
        assert back.units == zeroed_result.units and back.channels == zeroed_result.channels
        assert back.criteria == zeroed_result.criteria
        for crit in back.criteria:
            for unit in back.units:
                np.testing.assert_array_equal(back.score(crit, unit), zeroed_result.score(crit, unit))
                np.testing.assert_array_equal(back.order(crit, unit), zeroed_result.order(crit, unit))
        assert back.calibration == zeroed_result.calibration
        assert back.timings == zeroed_result.timings
        assert back.stats_config == zeroed_result.stats_config
        assert back.gradient_config == zeroed_result.gradient_config
        assert back.model == zeroed_result.model


def test_bad_files_give_clear_errors(zeroed_result, tmp_path):
    with pytest.raises(ImportanceFileError, match="missing.json: importance result not found"):
        ImportanceResult.load(tmp_path / "missing")
    npz, js = zeroed_result.save(tmp_path / "r")
    meta = json.loads(js.read_text())

    js.write_text("{not json")
    with pytest.raises(ImportanceFileError, match=r"r\.json: cannot read JSON"):
        ImportanceResult.load(js)
    js.write_text(json.dumps({**meta, "format": "something-else"}))
    with pytest.raises(ImportanceFileError, match="not an os2d-studio importance result"):
        ImportanceResult.load(js)
    js.write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ImportanceFileError, match="newer os2d-studio"):
        ImportanceResult.load(js)
    js.write_text(json.dumps({k: v for k, v in meta.items() if k != "units"}))
    with pytest.raises(ImportanceFileError, match="malformed result"):
        ImportanceResult.load(js)

    js.write_text(json.dumps(meta))
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImportanceFileError, match=r"r\.npz: does not match r\.json"):
        ImportanceResult.load(js)
    js.write_text(json.dumps({**meta, "npz_sha256": ""}))
    with pytest.raises(ImportanceFileError, match=r"r\.npz: not a readable npz"):
        ImportanceResult.load(js)
    npz.unlink()
    with pytest.raises(ImportanceFileError, match=r"r\.npz: arrays file missing"):
        ImportanceResult.load(js)


# -- calibration sets and job plumbing ---------------------------------------------------------------------

def test_build_calibration_from_a_dataset():
    ds = open_dataset(TINY)
    calib = build_calibration(ds, 2, target_size=96)
    assert calib.provenance.image_ids == (0, 2) and calib.provenance.candidates == 3
    assert calib.provenance.dataset == "tiny_os2d" and calib.provenance.target_size == 96.0
    s = calib[0]
    h, w = s.image_hw
    assert abs(h * w - 96 ** 2) < 2 * 96
    np.testing.assert_allclose(s.boxes.numpy(), ds.images[0].boxes * np.array([w, h, w, h]), rtol=1e-6)
    assert s.class_ids == (0, 1) and s.labels.tolist() == [0, 1]
    assert all(abs(c.shape[1] * c.shape[2] - 240 ** 2) < 2 * 240 for c in s.class_images)
    assert calib[1].class_images[0] is s.class_images[1]  # class 1 read once, shared
    again = build_calibration(ds, 2, target_size=96)
    assert torch.equal(again[0].image, s.image)
    assert build_calibration(ds, 9).provenance.image_ids == (0, 1, 2)
    r = select_images(100, 5, selection="random", seed=7)
    np.testing.assert_array_equal(r, select_images(100, 5, selection="random", seed=7))
    assert len(set(r.tolist())) == 5 and list(select_images(10, 5)) == [1, 3, 5, 7, 9]
    with pytest.raises(ValueError, match="at least 1"):
        build_calibration(ds, 0)


def test_unknown_criterion_and_cancel():
    model = make_model()
    calib = make_calibration(1)
    with pytest.raises(ValueError, match="unknown criteria nope"):
        compute_importance(model, calib, ["nope"])
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        compute_importance(model, calib, ["combined", "lcp"], cancel=token)
    calls = []
    res = compute_importance(model, calib, ["weight_l1", "bn_gamma"], progress=lambda d, t, m="": calls.append((d, t)))
    assert "statistics" not in res.timings and calls[-1][0] == calls[-1][1]
    assert set(CRITERIA) < set(ALL_CRITERIA)


# -- (e) data-free rankings: one set, one function ----------------------------------------------------------

def test_data_free_criteria_need_no_images():
    assert DATA_FREE == ("weight_l1", "weight_l2", "bn_gamma")
    assert data_free(DATA_FREE) and not data_free(["weight_l1", "combined"])
    model = make_model()
    r = data_free_importance(model, model_path="m.pt")
    assert r.criteria == DATA_FREE and "statistics" not in r.timings
    assert r.calibration.image_ids == () and r.model["sha256"] == weights_digest(model)


def _filter_norm_mean(model: OS2DModel, unit, p: int) -> np.ndarray:
    """The classic filter-norm baseline: each producer's per-filter norm in float32, averaged over producers."""
    total = np.zeros(unit.channels)
    for name in unit.producers:
        w = model.get_submodule(name).weight.detach().float().flatten(1)
        total += (w.abs().sum(1) if p == 1 else w.pow(2).sum(1).sqrt()).numpy()
    return total / len(unit.producers)


@pytest.mark.parametrize("criterion,p", [("weight_l1", 1), ("weight_l2", 2)])
def test_summed_filter_norms_keep_what_their_mean_keeps(criterion, p):
    """Summing over producers (our criteria) and averaging (the usual baseline) differ by a positive factor
    per unit: every plan keeps the same channels."""
    model = make_model(seed=2)
    units = find_units(model)
    ours = data_free_importance(model, [criterion], units=units)
    mean = {u.name: _filter_norm_mean(model, u, p) for u in units}
    for u in units:
        np.testing.assert_allclose(ours.score(criterion, u.name), mean[u.name] * len(u.producers), rtol=1e-12)
    baseline = type("Scores", (), {"criteria": (criterion,), "scores": {criterion: mean}})
    for ratio in (0.1, 0.3, 0.5, 0.9):
        for plan in (PruningPlan(ratio=ratio, criterion=criterion), PruningPlan(ratio=ratio, criterion=criterion,
                                                                              min_channels=1, round_to=8)):
            a, b = resolve(plan, units, ours).indices, resolve(plan, units, baseline).indices
            assert all(np.array_equal(a[k], b[k]) for k in a), plan


def test_importance_for_plan_prefers_a_computed_result_and_falls_back_to_the_weights():
    model = make_model()
    computed = data_free_importance(model, ["bn_gamma"])
    assert importance_for_plan("bn_gamma", computed, model) is computed
    for importance in (None, computed):
        fallback = importance_for_plan("weight_l2", importance, model)
        assert fallback.criteria == ("weight_l2",)
    with pytest.raises(PlanError, match="criterion 'combined' needs an importance result .*weight_l1 / weight_l2"):
        importance_for_plan("combined", computed, model)


def test_moment_sums_in_channel_chunks_equal_the_whole_map():
    from core.importance.stats import _masked_moment_sums

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 70, 9, 11, generator=g)
    masks = torch.rand(2, 9, 11, 2, generator=g) > 0.5
    whole = _masked_moment_sums(x, masks, x.clamp(min=0), chunk=70)
    for chunk in (1, 32, 64):
        assert torch.allclose(_masked_moment_sums(x, masks, x.clamp(min=0), chunk=chunk), whole, rtol=1e-6, atol=1e-5)
    assert whole.shape == (2, 5, 70)
