"""The LCP reference bench calls a paired difference noise only when its bootstrap interval holds 0."""

import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.lcp_reference import _versus, markdown  # noqa: E402
from core.importance.stats import Measurement  # noqa: E402


def _entry(m: float, spread: float, n: int = 50) -> dict:
    return {"map": m, "images": 70, "boot": [m + spread * ((i % 5) - 2) / 2 for i in range(n)]}


def test_paired_difference_verdicts():
    ref = _entry(0.90, 0.02)
    assert _versus(_entry(0.95, 0.02), ref).endswith("better")  # the same resamplings: the difference is 0.05 each
    assert _versus(_entry(0.80, 0.02), ref).endswith("worse")
    wobbly = {"map": 0.91, "images": 70, "boot": [0.90 + 0.04 * ((i % 3) - 1) for i in range(50)]}
    assert _versus(wobbly, ref).endswith("noise")


def test_markdown_reports_both_costs_and_the_staged_row():
    rows = [{"ratio": 0.5, "ranking": "weight_l1", "pruned": _entry(0.3, 0.01), "tuned": _entry(0.9, 0.01),
             "finetune_s": 100.0, "cut_s": 1.0},
            {"ratio": 0.5, "ranking": "combined", "pruned": _entry(0.6, 0.01), "tuned": _entry(0.85, 0.01),
             "finetune_s": 100.0, "cut_s": 1.0},
            {"ratio": 0.5, "ranking": "weight_l1+reconstruction", "pruned": _entry(0.7, 0.01), "tuned": _entry(0.95, 0.01),
             "finetune_s": 100.0, "cut_s": 20.0},
            {"ratio": 0.5, "ranking": "lcp_staged", "pruned": None, "tuned": _entry(0.8, 0.01), "stages": 11,
             "iterations_per_stage": 9, "rank_s": 300.0, "reconstruct_s": 200.0, "backward_passes": 88,
             "rank_peak_bytes": 2 ** 30, "pipeline_s": 1500.0}]
    importance = SimpleNamespace(units=[object()] * 11, timings={
        "statistics": Measurement(10.0, 2 ** 29, 0, "cpu-peak-rss"), "lcp": Measurement(120.0, 2 ** 30, 0, "cpu-peak-rss")})
    args = SimpleNamespace(section="lcp-reference", model="m.pt", dataset="d", calib_images=8, iterations=100,
                           bootstrap=50, ratios=[0.5], command="cmd")
    text = markdown(rows, _entry(0.93, 0.01), importance, args, 1100.0, "ab" * 32, 30)
    assert text.startswith("<!-- lcp-reference:start -->") and text.rstrip().endswith("<!-- lcp-reference:end -->")
    assert "11 stages × 9 iterations" in text and "| LCP, one step | 120.0 | 1024 | 88 | 12x |" in text
    assert "rankings alone | 300.0 | 1024 | 88 | 30x |" in text and "whole pipeline | 1500 |" in text
    assert "gradient-free one-shot 111 s, staged LCP 1500 s (13.5x)" in text
    assert "all but the 30 the model's checkpoint was selected on" in text
    assert "| 50% | weight L1, consumers reconstructed after the cut | 0.700 [" in text
    assert "| +0.050 [+0.050, +0.050] better |" in text
