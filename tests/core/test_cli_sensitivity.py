"""Sensitivity analysis (`core.prune.sensitivity`, `os2d-studio sensitivity`): each point prunes one group
alone with the plan's settings, on the same images, one progress bar over points."""

import json
from pathlib import Path

import pytest
import torch

from core.cli import main as cli_main
from core.importance.result import data_free_importance
from core.jobs import CancelToken, Cancelled
from core.model.checkpoint import load_model, save_model
from core.model.os2d import ModelConfig, OS2DModel
from core.prune.job import prune
from core.prune.plan import PruningPlan
from core.prune.sensitivity import SensitivityConfig, SensitivityResult, sensitivity

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny_os2d"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(OS2DModel(ModelConfig("resnet18")).eval(), tmp_path_factory.mktemp("m") / "m.pt")


def _run(model_file, tmp_path, *extra) -> dict:
    out = tmp_path / "sens.json"
    args = ["sensitivity", "--model", str(model_file), "--dataset", str(TINY), "--images", "1", "--device", "cpu",
            "--json", str(out), *extra]
    assert cli_main(args) == 0
    return json.loads(out.read_text())


def test_each_point_prunes_only_its_group(model_file, tmp_path, capsys):
    data = _run(model_file, tmp_path, "--groups", "layer2", "layer3", "--ratios", "0.25", "0.5")
    res = SensitivityResult.from_json(data)
    assert res.complete and res.groups == ("layer2", "layer3") and res.ratios == (0.25, 0.5)
    assert [(p.group, p.ratio) for p in res.points] == [("", 0.0), ("layer2", 0.25), ("layer2", 0.5),
                                                        ("layer3", 0.25), ("layer3", 0.5)]
    model = load_model(model_file).model
    assert res.baseline.parameters == model.num_parameters()
    scores = data_free_importance(model)
    for p in res.points[1:]:
        alone = prune(model, PruningPlan(group_ratios={p.group: p.ratio}), scores)
        assert p.parameters == alone.measured_parameters < res.baseline.parameters
        assert 0.0 <= p.map <= 1.0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("layer")}
    assert rows["layer3"] == [f"{m:.4f}" for m in res.curve("layer3")[1]]
    assert data["model"] == str(model_file) and f"wrote {tmp_path / 'sens.json'}" in out


def test_plan_settings_hold_at_every_point(model_file, tmp_path):
    """A plan that rounds every unit up to its full width removes nothing: each point is the baseline."""
    plan = tmp_path / "plan.json"
    PruningPlan(round_to=4096, criterion="weight_l2").save(plan)
    res = SensitivityResult.from_json(_run(model_file, tmp_path, "--plan", str(plan), "--groups", "layer3",
                                           "--ratios", "0.5"))
    assert res.criterion == "weight_l2"
    base, point = res.points
    assert (point.parameters, point.map) == (base.parameters, base.map)


def test_job_reports_every_point_on_one_bar_and_cancels_between_points(model_file):
    loaded = load_model(model_file)
    plan = PruningPlan()
    scores = data_free_importance(loaded.model)
    cfg = SensitivityConfig(str(TINY), (0.5,), ("layer1", "layer3"), max_images=1)
    calls, reported = [], []
    res = sensitivity(loaded, plan, scores, cfg, progress=lambda d, n, m="": calls.append((d, n, m)),
                      report=reported.append)
    assert tuple(reported) == res.points and len(res.points) == 3
    assert {n for _, n, _ in calls} == {300}  # three points, one bar
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and calls[-1] == (300, 300, "3 points measured")
    assert any(m.startswith("point 3 of 3: layer3 at 50%") for _, _, m in calls)

    cancel = CancelToken()
    reported.clear()
    with pytest.raises(Cancelled):
        sensitivity(loaded, plan, scores, cfg, cancel=cancel, report=lambda p: (reported.append(p), cancel.cancel()))
    assert [p.group for p in reported] == [""]  # the baseline, then nothing more


@pytest.mark.parametrize("extra, problem", [
    (["--groups", "layer9"], "error: unknown group(s) layer9; groups are stem, layer1, layer2, layer3, transform"),
    (["--ratios", "1.5"], "error: group 'layer1': ratio 1.5 is outside [0, 0.95]"),
    (["--criterion", "combined"], "error: --criterion: criterion 'combined' needs --importance FILE"),
])
def test_bad_choices_fail_before_any_measurement(model_file, tmp_path, capsys, extra, problem):
    args = ["sensitivity", "--model", str(model_file), "--dataset", str(tmp_path / "nowhere"), *extra]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(problem), err
