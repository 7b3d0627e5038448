"""The words the Video tab shows for a comparison: each side's speed and boxes, the agreement line and an
export's summary.

Why plain functions: they read core's results (`FrameResult`, `CompareResult`) and return rich text, so
they are tested without a display and the view only puts them on labels.
"""

from __future__ import annotations

from core.visualize import ONLY_COLOR, boxes_text

ONLY_HEX = "#{:02x}{:02x}{:02x}".format(*ONLY_COLOR)


def fps_text(fps: float) -> str:
    """'12.3 FPS', or two decimals below 1 FPS (a slow CPU should not read as 0.0)."""
    return f"{fps:.1f} FPS" if fps >= 1 else f"{fps:.2f} FPS"


def side_text(side: str, res, compared: bool) -> tuple[str, str | None]:
    """One side's line and its tooltip (None: keep the tooltip) for `res`, its part of a FrameResult (None:
    no pruned model); "only here" counts only when both sides ran."""
    if res is None:
        return "<b>Pruned</b>: no model", None
    n_only = int(res.only_here.sum())
    only = f", <span style='color:{ONLY_HEX}'>{n_only} only here</span>" if compared and n_only else ""
    recall = f" · recall <b>{res.recall:.0%}</b>" if res.recall is not None else ""
    text = (f"<b>{side.capitalize()}</b>: <b>{fps_text(res.fps)}</b> · {res.seconds * 1e3:.0f} ms · "
            f"{boxes_text(len(res.detections))}{only}{recall}")
    tip = ("FPS: running, over the last frames; ms: this frame's latency"
           + ("; recall: ground-truth boxes found so far (IoU ≥ 0.5) on the frames played, at this side's "
              "score threshold" if res.recall is not None else ""))
    return text, tip


def agreement_text(fr, compared: bool) -> str:
    """What both sides found, what only one did and the speed ratio, for a FrameResult."""
    skipped = fr.skipped_before
    if not compared:
        return "Original only: no pruned model to compare with." + (f" {skipped} frames skipped." if skipped else "")
    o, p = fr.original.fps, fr.pruned.fps  # running FPS: steadier than one frame's latencies
    speed = f" · pruned at {p / o:.2f}× the original's FPS" if o > 0 and p > 0 else ""
    iou = f" (mean IoU {fr.mean_iou:.2f})" if fr.mean_iou is not None else ""
    return (f"Found by both: {fr.matched}{iou} · <span style='color:{ONLY_HEX}'>dashed magenta</span>: found by "
            f"one side only{speed}" + (f" · {skipped} frames skipped" if skipped else ""))


def export_text(res) -> str:
    """What an export (a CompareResult) wrote and measured, in one line."""
    speed = f", pruned {res.speedup:.2f}× as fast" if res.speedup else ""
    scored = (f" mAP@0.5 on the video's ground truth: original {res.original.map:.3f}, pruned "
              f"{res.pruned.map:.3f}." if res.original.map is not None and res.pruned.map is not None else "")
    return (f"Wrote {res.out_video}: {res.processed_count} frames; mean latency original "
            f"{res.original.mean_ms:.0f} ms, pruned {res.pruned.mean_ms:.0f} ms{speed}; "
            f"agreement {res.agreement.rate:.0%}.{scored}")
