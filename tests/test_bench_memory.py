"""The memory benchmark: its bench-only batched LCP is LCP for one image, its budget arithmetic, and a
quick run that writes its table into its own section."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import memory  # noqa: E402
from core.data.grozi import open_dataset  # noqa: E402
from core.importance.calibration import CalibrationSet, build_calibration  # noqa: E402
from core.importance.gradient import lcp_importance  # noqa: E402
from core.model.os2d import ModelConfig, OS2DModel  # noqa: E402
from core.prune.units import find_units  # noqa: E402

TINY = REPO / "tests" / "data" / "tiny_os2d"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = OS2DModel(ModelConfig("resnet18")).eval()
    calib = build_calibration(open_dataset(str(TINY), None), 2, 96.0, 0)
    return model, calib, find_units(model)


def test_batched_lcp_of_one_image_is_lcp_importance(tiny):
    model, calib, units = tiny
    unit = memory.deepest_unit(model, units)
    assert unit.name == "net_feature_maps.conv1"  # its consumers open layer1: the backward through everything
    one = CalibrationSet(calib.samples[:1], calib.provenance)
    expected = lcp_importance(model, one, [unit]).scores[unit.name]
    got = memory.lcp_batched(model, calib.samples[:1], unit)
    assert expected.max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)
    both = memory.lcp_batched(model, calib.samples, unit)  # gradient of the summed loss: not the one-image score
    assert np.isfinite(both).all() and not np.allclose(both, got)
    assert all(p.requires_grad for p in model.parameters())  # the hooks and flags are put back


def test_ranking_order_measures_a_spread_deepest_first(tiny):
    model, _, units = tiny
    ordered, spread = memory.ranking_order(model, units, 3)
    assert sorted(u.name for u in ordered) == sorted(u.name for u in units)
    assert [u.name for u in ordered[:3]] == [units[i].name for i in spread]
    assert ordered[0].name == "net_feature_maps.conv1" and spread[-1] == len(units) - 1


def test_fit_and_budget_crossing():
    a, s = memory.fit_line([1, 2, 4], [5.0, 7.0, 11.0])
    assert a == pytest.approx(3.0) and s == pytest.approx(2.0)
    assert memory.batch_exceeding(3.0, 2.0, 10.0) == 4  # 9 fits at 3, 11 does not at 4
    assert memory.batch_exceeding(3.0, 2.0, 11.0) == 5  # equal to the budget still fits
    assert memory.batch_exceeding(12.0, 1.0, 10.0) == 1
    assert memory.batch_exceeding(3.0, 0.0, 10.0) is None


def _number(cell: str) -> float:
    return float(cell.split()[0])


def test_quick_run_writes_every_phase_with_positive_ratios(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# results\n\n<!-- other:start -->\nx\n<!-- other:end -->\n")
    argv = ["--quick", "--models", "default", "--target-size", "96", "--threads", "1", "--dataset", str(TINY),
            "--out-md", str(out), "--section", "memory"]
    assert memory.main(argv) == 0
    text = out.read_text()
    assert "<!-- other:start -->\nx\n<!-- other:end -->" in text
    section = text[text.index("<!-- memory:start -->"):text.index("<!-- memory:end -->")]
    assert "Command: `.venv/bin/python -m bench.memory --quick --models default" in section
    assert re.search(r"machine: .+\(\d+ cores\), 1 CPU threads", section)
    table = [line for line in section.splitlines() if line.startswith("| default model")]
    phases = {cells[3]: cells for cells in ([c.strip() for c in line.split("|")] for line in table) if len(cells) == 11}
    expected = ["plain inference, 1 image", "statistics pass, 1 image", "LCP, one unit", "LCP, whole ranking",
                "LCP mini-batch backward, one unit, 2 images"]
    for name in expected:
        rows = [cells for phase, cells in phases.items() if phase.startswith(name)]
        assert len(rows) == 1, f"no row for {name}: {table}"
        cells = rows[0]
        peak, plus, ratio, plus_ratio = _number(cells[6]), _number(cells[7]), _number(cells[8]), _number(cells[9])
        assert peak > 0 and plus >= 0 and ratio > 0 and plus_ratio > 0, cells
    plain = next(cells for phase, cells in phases.items() if phase.startswith("plain"))
    assert _number(plain[8]) == 1.0
    growth = [cells for cells in ([c.strip() for c in line.split("|")] for line in table) if cells[2] == "1, 2"]
    assert len(growth) == 1, table  # the growth table: the fit over batches 1 and 2
    assert _number(growth[0][3]) > 0 and all(c == "never" or int(c) >= 1 for c in growth[0][5:7])
    assert all(float(v) > 0 for trace in growth[0][7:9] for v in trace.split(" → "))  # a peak after each image
