"""Drive the real app through the pruning workbench and capture the Importance, Pruning and Metrics tabs.

Run under a real X server (Xvfb), from the repository root:

    Xvfb :99 -screen 0 1440x900x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/workbench_tour.py [--model CKPT] [--dataset data/synth-0]

Each capture is the whole X screen, so what is saved is what X drew.
Default model: resources/models/default.pt when present. Jobs run exactly as a user's clicks start them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(ROOT / "resources/models/default.pt"))
    p.add_argument("--dataset", default=str(ROOT / "data/synth-0"))
    p.add_argument("--out", default=str(ROOT / "docs/screenshots"))
    p.add_argument("--calibration-images", type=int, default=8)
    p.add_argument("--gradient", action="store_true", help="also compute the LCP and Taylor references")
    p.add_argument("--eval-images", type=int, default=20)
    p.add_argument("--sensitivity-images", type=int, default=6)
    p.add_argument("--finetune-iterations", type=int, default=20)
    p.add_argument("--size", default="1440x900")
    p.add_argument("--project", help="open this project instead of running the jobs (re-shoot); a full run "
                                     "saves its session here when given and missing")
    args = p.parse_args()

    from tour import Tour

    tour = Tour(args.size, "os2d-tour-")
    w, run = tour.window, tour.run
    w.workbench.scratch_dir = tour.tmp / "work"
    out = Path(args.out)

    def shot(tab: int, name: str) -> None:
        w.tabs.setCurrentIndex(tab)
        tour.capture(out / name)

    project = Path(args.project) if args.project else None
    if project is not None and project.is_file():
        run("open project", w.controller.open_project(project))
        iv = w.importance_view
        iv.select_unit(w.session.model_info.units[len(w.session.model_info.units) // 2].name)
        shot(0, "importance-view.png")
        w.pruning_view.ratio_panel.table.scrollToTop()
        shot(1, "pruning-view.png")
        shot(4, "metrics-view.png")
        tour.close()
        return 0

    run("load model", w.controller.open_model(args.model))
    w.session.set_dataset(args.dataset)
    iv = w.importance_view
    for name in ("lcp", "taylor"):
        iv.criteria_boxes[name].setChecked(args.gradient)
    iv.num_images.setValue(args.calibration_images)
    run("importance", iv.compute())

    units = w.session.model_info.units
    panel = w.pruning_view.ratio_panel
    panel.global_slider.setValue(0.3)
    panel.group_sliders["layer3"].setValue(0.5)
    panel.set_unit_ratio(units[1].name, 0.6)
    iv.select_unit(units[len(units) // 2].name)
    shot(0, "importance-view.png")

    pv = w.pruning_view
    run("prune", pv.prune_button.click() or True)
    pv.eval_images.setValue(args.eval_images)
    run("evaluate", pv.run_evaluate())
    pv.sens_images.setValue(args.sensitivity_images)
    run("sensitivity", pv.run_sensitivity())
    pv.ft_iterations.setValue(args.finetune_iterations)
    pv.ft_eval_images.setValue(args.eval_images)
    run("fine-tune", pv.run_finetune())
    run("evaluate again", pv.run_evaluate())
    panel.table.scrollToTop()
    if project is not None:
        pruned = project.parent / f"{project.name.split('.')[0]}-pruned.pt"
        w.dialogs.save_file = lambda *_a, **_k: str(pruned)
        run("save pruned", w.workbench.save_pruned() if not pruned.exists() else True)
        w.dialogs.save_file = lambda *_a, **_k: str(project)
        w.controller.save_project()
    shot(1, "pruning-view.png")
    shot(4, "metrics-view.png")
    tour.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
