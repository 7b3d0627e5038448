"""The Video tab's words for a comparison, from stand-ins of core's results (no display, no model)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from app.video_text import agreement_text, export_text, fps_text, side_text


def side(fps: float, n: int, only: int, recall: float | None = None) -> SimpleNamespace:
    return SimpleNamespace(fps=fps, seconds=0.0421, detections=[0] * n, recall=recall,
                           only_here=np.array([True] * only + [False] * (n - only)))


def test_fps_keeps_two_decimals_below_one():
    assert fps_text(12.34) == "12.3 FPS" and fps_text(0.456) == "0.46 FPS"


def test_side_lines_count_only_here_when_both_ran():
    text, tip = side_text("original", side(5.0, 3, 1, recall=0.5), compared=True)
    assert "<b>Original</b>: <b>5.0 FPS</b> · 42 ms · 3 boxes" in text and "1 only here" in text
    assert "recall <b>50%</b>" in text and "recall:" in tip
    text, tip = side_text("original", side(5.0, 3, 1), compared=False)
    assert "only here" not in text and "recall" not in tip
    assert side_text("pruned", None, compared=False) == ("<b>Pruned</b>: no model", None)
    assert " · 1 box · " in side_text("pruned", side(5.0, 1, 0, recall=0.5), compared=True)[0]


def test_agreement_and_export_lines():
    fr = SimpleNamespace(original=side(4.0, 2, 0), pruned=side(8.0, 2, 0), matched=2, mean_iou=0.9,
                         skipped_before=3)
    line = agreement_text(fr, compared=True)
    assert line.startswith("Found by both: 2 (mean IoU 0.90)") and "2.00× the original's FPS" in line
    assert line.endswith(" · 3 frames skipped")
    assert agreement_text(fr, compared=False) == ("Original only: no pruned model to compare with. "
                                                  "3 frames skipped.")
    res = SimpleNamespace(speedup=2.0, out_video="/v/out.mp4", processed_count=4,
                          original=SimpleNamespace(map=None, mean_ms=100.0),
                          pruned=SimpleNamespace(map=None, mean_ms=50.0), agreement=SimpleNamespace(rate=0.75))
    assert export_text(res) == ("Wrote /v/out.mp4: 4 frames; mean latency original 100 ms, pruned 50 ms, pruned "
                                "2.00× as fast; agreement 75%.")
