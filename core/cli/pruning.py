"""Ranking and removing channels: `importance`, `prune`, and `sensitivity` (which groups tolerate it)."""

from __future__ import annotations

from core.cli.options import chosen_size, non_negative_float, open_model, positive_int
from core.errors import InputError
from core.jobs import ConsoleProgress


# -- importance ------------------------------------------------------------------------------------
def cmd_importance(args) -> int:
    from core.data.grozi import open_dataset
    from core.importance.calibration import build_calibration
    from core.importance.criteria import CRITERIA
    from core.importance.result import ALL_CRITERIA, compute_importance

    names = list(CRITERIA) if args.criterion == ["all"] else args.criterion
    unknown = [c for c in names if c not in ALL_CRITERIA]
    if unknown:
        raise InputError("--criterion", f"unknown criteria {', '.join(unknown)}; expected some of "
                                        f"{', '.join(ALL_CRITERIA)} or all")
    loaded = open_model(args.model)
    ds = open_dataset(args.dataset, args.split)
    calib = build_calibration(ds, args.images, chosen_size(args, loaded) or ds.eval_scale,
                              seed=args.seed, progress=ConsoleProgress("calibration"))
    res = compute_importance(loaded.model, calib, names, model_path=loaded.path,
                             progress=ConsoleProgress("importance"))
    paths = res.save(args.out)
    for phase, m in res.timings.items():
        print(f"{phase:<14} {m.seconds:8.2f} s   peak {m.peak_bytes / 2**20:8.1f} MiB")
    print(f"scored {len(res.units)} units with {', '.join(names)} on {len(calib)} images; wrote "
          f"{paths[0]} and {paths[1]}")
    return 0


def add_importance(sub) -> None:
    im = sub.add_parser("importance", help="rank channels (gradient-free criteria, or the gradient references)")
    im.add_argument("--model", help="model (default: the embedded default model)")
    im.add_argument("--dataset", required=True, help="calibration data: dataset folder or grozi:PATH")
    im.add_argument("--split", default="train")
    im.add_argument("--criterion", nargs="+", default=["combined"],
                    help="one or more of combined, weight_l1, bn_gamma, act_l1, act_variance, sparsity, "
                         "fg_bg_separation, taylor, lcp; or all")
    im.add_argument("--images", type=positive_int, default=16, help="calibration images")
    im.add_argument("--target-size", type=non_negative_float, default=0)
    im.add_argument("--seed", type=int, default=0)
    im.add_argument("--out", required=True, help="output prefix: writes PREFIX.npz and PREFIX.json")
    im.set_defaults(func=cmd_importance)


# -- prune -----------------------------------------------------------------------------------------
def cmd_prune(args) -> int:
    from core.prune.job import prune, save_pruned
    from core.importance.result import ImportanceResult, importance_for_plan
    from core.prune.plan import PlanError, PruningPlan

    if args.plan:
        plan = PruningPlan.load(args.plan)  # before the model: a bad plan is reported at once
    else:
        plan = PruningPlan(ratio=args.ratio, criterion=args.criterion or "weight_l1")
    if args.criterion:
        plan = plan.with_changes(criterion=args.criterion)
    loaded = open_model(args.model)
    importance = ImportanceResult.load(args.importance) if args.importance else None
    try:
        importance = importance_for_plan(plan.criterion, importance, loaded.model)
    except PlanError:
        raise InputError(args.plan if args.plan and not args.criterion else "--criterion",
                         f"criterion '{plan.criterion}' needs --importance FILE (from `os2d-studio importance`)") from None
    extra = {k: loaded.meta[k] for k in ("eval_scale",) if k in loaded.meta}
    if args.allocate:
        from core.prune.allocate import allocate
        from core.prune.plan import PlanCostModel
        from core.prune.units import find_units

        units = find_units(loaded.model)
        try:
            allocation = allocate(plan, units, importance, PlanCostModel.from_model(loaded.model, units),
                                  budget=args.allocate, max_unit_ratio=args.max_unit_ratio)
        except PlanError as e:
            raise InputError("--allocate", e.problem) from None
        plan = allocation.plan
        extra["allocation"] = allocation.to_json()
        print(f"ratios allocated by {plan.criterion} across units: {allocation.summary()}")
    if args.reconstruct and not args.dataset:
        raise InputError("--reconstruct", "needs --dataset DIR: the consumers are refit on its train images")
    calib = None
    if args.reconstruct:  # the calibration set first: a bad dataset is reported before any cutting
        from core.data.grozi import open_dataset
        from core.importance.calibration import build_calibration

        calib = build_calibration(open_dataset(args.dataset, "train"), args.reconstruct, chosen_size(args, loaded),
                                  args.seed, class_image_size=loaded.model.config.class_image_size,
                                  progress=ConsoleProgress("calibration"))
    res = prune(loaded.model, plan, importance, progress=ConsoleProgress("prune"))
    p = res.predicted
    print(f"pruned with {plan.criterion}: {res.parent_parameters:,} → {res.measured_parameters:,} parameters "
          f"({res.measured_size_mb:.2f} MB fp32; predicted {p.parameters:,}), {res.seconds:.2f}s")
    if calib is not None:
        from core.prune.reconstruct import reconstruct_consumers

        rec = reconstruct_consumers(loaded.model, res.model, res.kept, calib, progress=ConsoleProgress("reconstruct"))
        extra["reconstruction"] = summary = rec.summary()
        errors = (f": error inside the context boxes {summary['error_before']:.3f} → {summary['error_after']:.3f}"
                  if summary["updated"] else "")
        print(f"reconstructed {summary['updated']} consumers on {len(calib)} images{errors}")
    out = save_pruned(res, args.out, loaded.path, parent_sha256=loaded.sha256, extra_meta=extra)
    print(f"wrote {out}")
    return 0


def add_prune(sub) -> None:
    pr = sub.add_parser("prune", help="remove channels physically and save a self-describing pruned model")
    pr.add_argument("--model", help="model to prune (default: the embedded default model)")
    pr.add_argument("--importance", help="importance file from `os2d-studio importance` (.npz/.json)")
    g = pr.add_mutually_exclusive_group(required=True)
    g.add_argument("--plan", help="plan.json (global, per-group and per-unit ratios)")
    g.add_argument("--ratio", type=float, help="one global ratio of channels to remove, e.g. 0.3")
    pr.add_argument("--criterion", help="which importance ranks the channels (default: the plan's, or weight_l1)")
    pr.add_argument("--allocate", choices=("macs", "parameters"),
                    help="rank channels across units instead of one ratio per unit, at the MACs or parameters "
                         "the plan's own ratios would leave")
    pr.add_argument("--max-unit-ratio", type=float, default=0.8, help="with --allocate: the most any unit loses")
    pr.add_argument("--reconstruct", type=positive_int, metavar="N",
                    help="after the cut, refit the consumers' kept weights by least squares to the uncut model's "
                         "outputs inside the objects' context boxes of N train images of --dataset (LCP's "
                         "reconstruction step, no gradients)")
    pr.add_argument("--dataset", help="with --reconstruct: dataset folder or grozi:PATH")
    pr.add_argument("--target-size", type=non_negative_float, default=0,
                    help="with --reconstruct: calibration scale (default: the model's own)")
    pr.add_argument("--seed", type=int, default=0, help="with --reconstruct: which train images")
    pr.add_argument("--out", required=True, help="output file (never overwrites an existing file)")
    pr.set_defaults(func=cmd_prune)


# -- sensitivity -----------------------------------------------------------------------------------
def cmd_sensitivity(args) -> int:
    import json

    from core.importance.criteria import DATA_FREE
    from core.importance.result import ImportanceResult, importance_for_plan
    from core.io import atomic_write_text
    from core.prune.plan import PruningPlan
    from core.prune.sensitivity import SENSITIVITY_RATIOS, SensitivityConfig, sensitivity

    plan = PruningPlan.load(args.plan) if args.plan else PruningPlan()  # before the model: reported at once
    if args.criterion:
        plan = plan.with_changes(criterion=args.criterion)
    importance = ImportanceResult.load(args.importance) if args.importance else None
    if importance is None and plan.criterion not in DATA_FREE:
        raise InputError(args.plan if args.plan and not args.criterion else "--criterion",
                         f"criterion '{plan.criterion}' needs --importance FILE (from `os2d-studio importance`)")
    loaded = open_model(args.model)
    importance = importance_for_plan(plan.criterion, importance, loaded.model)
    cfg = SensitivityConfig(args.dataset, tuple(args.ratios or SENSITIVITY_RATIOS),
                            tuple(args.groups) if args.groups else None, args.images, args.split, args.device)
    res = sensitivity(loaded, plan, importance, cfg, progress=ConsoleProgress("sensitivity"))
    base = res.baseline
    print(f"mAP@0.5 on at most {res.images} images of {res.dataset}, each group pruned alone "
          f"with {res.criterion}")
    print(f"{'group':<10}{'0%':>8}" + "".join(f"{r:>8.0%}" for r in res.ratios))
    for g in res.groups:
        print(f"{g:<10}" + "".join(f"{m:8.4f}" for m in res.curve(g)[1]))
    print(f"unpruned: {base.parameters:,} parameters, {base.size_mb:.2f} MB fp32")
    if args.json:
        d = res.to_json()
        d["model"] = loaded.path
        atomic_write_text(args.json, json.dumps(d, indent=1))
        print(f"wrote {args.json}")
    return 0


def add_sensitivity(sub) -> None:
    se = sub.add_parser("sensitivity", help="mAP when one group alone is pruned at each ratio (which parts "
                                            "tolerate pruning)")
    se.add_argument("--model", help="model (default: the embedded default model)")
    se.add_argument("--dataset", required=True, help="dataset folder or grozi:PATH")
    se.add_argument("--split", default="val")
    se.add_argument("--ratios", type=float, nargs="+",
                    help="ratios of channels to remove, each measured per group (default: 0.1 0.2 ... 0.7)")
    se.add_argument("--groups", nargs="+", help="groups to prune one at a time (default: every group the plan "
                                                "can prune: stem layer1 layer2 layer3 transform)")
    se.add_argument("--images", type=positive_int, default=10, help="images of --split each point is measured on")
    se.add_argument("--plan", help="plan.json whose settings (criterion, min_channels, round_to, switches) "
                                   "every point keeps; its ratios are ignored")
    se.add_argument("--criterion", help="which importance ranks the channels (default: the plan's, or weight_l1)")
    se.add_argument("--importance", help="importance file from `os2d-studio importance` (.npz/.json)")
    se.add_argument("--device", default="auto")
    se.add_argument("--json", help="write every measured point here")
    se.set_defaults(func=cmd_sensitivity)
