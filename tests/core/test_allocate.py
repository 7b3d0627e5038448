"""Ratios per unit from importance: held to the uniform plan's cost, following the scores across units."""

import numpy as np
import pytest

from core.prune.allocate import allocate
from core.prune.job import prune
from core.prune.plan import PlanCostModel, PlanError, PruningPlan, plan_counts
from core.prune.units import find_units
from tests.core.test_pruning import FakeImportance, _importance, _small


@pytest.fixture(scope="module")
def model():
    return _small()


@pytest.fixture(scope="module")
def setup(model):
    units = find_units(model)
    return units, PlanCostModel.from_model(model, units), _importance(model)


@pytest.mark.parametrize("budget", ["macs", "parameters"])
@pytest.mark.parametrize("plan", [PruningPlan(ratio=0.5, criterion="random"),
                                  PruningPlan(ratio=0.3, criterion="weight_l1", round_to=8),
                                  PruningPlan(ratio=0.4, group_ratios={"stem": 0.0}, prune_head=False,
                                              criterion="random")])
def test_allocation_stays_within_the_plans_cost_and_keeps_what_it_must(model, setup, plan, budget):
    units, cost, imp = setup
    a = allocate(plan, units, imp, cost, budget=budget, max_unit_ratio=0.8)
    counts = plan_counts(a.plan, units)
    p = cost.predict(counts)
    assert (p.macs if budget == "macs" else p.parameters) == a.achieved <= a.target
    assert a.achieved > 0.97 * a.target  # it spends the budget rather than cutting more than asked
    for u in units:
        if plan.ratio_for(u) == 0:  # kept whole by the plan: kept whole here
            assert counts[u.name] == u.channels
        else:
            assert counts[u.name] >= int(np.floor(u.channels * 0.2 + 1e-9))
            assert counts[u.name] % plan.round_to == 0 or counts[u.name] == u.channels
    # the allocated plan prunes like any plan
    res = prune(model, a.plan, imp)
    assert res.model.num_parameters() == p.parameters


def test_channels_compete_across_units(model, setup):
    """A unit whose channels are all alike loses less than one with many weak channels."""
    units, cost, _ = setup
    rng = np.random.default_rng(0)
    flat, skewed = units[1].name, units[2].name
    scores = {u.name: rng.uniform(0.9, 1.1, u.channels) for u in units}
    scores[skewed] = np.where(np.arange(units[2].channels) % 4 == 0, 10.0, 0.1)  # a quarter strong
    imp = FakeImportance(("s",), {"s": scores})
    a = allocate(PruningPlan(ratio=0.5, criterion="s"), units, imp, cost, max_unit_ratio=0.9)
    counts = plan_counts(a.plan, units)
    assert counts[skewed] / units[2].channels < 0.5 < counts[flat] / units[1].channels
    kept_strong = prune(model, a.plan, imp).kept.indices[skewed]
    assert set(range(0, units[2].channels, 4)) <= set(kept_strong.tolist())


def test_allocation_errors_say_what_is_wrong(setup):
    units, cost, imp = setup
    with pytest.raises(PlanError, match="unknown budget 'flops'"):
        allocate(PruningPlan(ratio=0.5, criterion="random"), units, imp, cost, budget="flops")
    with pytest.raises(PlanError, match="between 0 and 1"):
        allocate(PruningPlan(ratio=0.5, criterion="random"), units, imp, cost, max_unit_ratio=1.0)
    with pytest.raises(PlanError, match="unknown criterion 'combined'"):
        allocate(PruningPlan(ratio=0.5, criterion="combined"), units, imp, cost)
    with pytest.raises(PlanError, match="no allocation within the plan's cost"):
        allocate(PruningPlan(ratio=0.9, criterion="random"), units, imp, cost, max_unit_ratio=0.3)


def test_cli_prune_allocates_and_records_it(model, tmp_path, capsys):
    from core.cli import main as cli_main
    from core.model.checkpoint import load_model, save_model

    parent = save_model(model, tmp_path / "parent.pt")
    out = tmp_path / "allocated.pt"
    assert cli_main(["prune", "--model", str(parent), "--ratio", "0.5", "--allocate", "parameters",
                     "--out", str(out)]) == 0
    assert "ratios allocated by weight_l1 across units: parameters" in capsys.readouterr().out
    loaded = load_model(out)
    allocation = loaded.meta["allocation"]
    assert allocation["budget"] == "parameters"
    assert loaded.model.num_parameters() == allocation["achieved"] <= allocation["target"]
    assert len(set(np.round(list(allocation["unit_ratios"].values()), 3))) > 1  # not one ratio for all

    assert cli_main(["prune", "--model", str(parent), "--ratio", "0.9", "--allocate", "macs",
                     "--max-unit-ratio", "0.3", "--out", str(tmp_path / "no.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --allocate: no allocation within the plan's cost: even keeping 70% of every unit")
    assert not (tmp_path / "no.pt").exists()

