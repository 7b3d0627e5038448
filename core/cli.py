"""`os2d-studio`: everything the GUI does, headless and scriptable, over the same core jobs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import USER_ERRORS, InputError, user_message
from core.jobs import Cancelled, ConsoleProgress


def _number(text: str, kind: type, least: float, what: str):
    """argparse type check: a finite number of `kind` ≥ `least`, else argparse's one-line usage error."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not least <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def _positive_int(text: str) -> int:
    return _number(text, int, 1, "a whole number of at least 1")


def _non_negative_int(text: str) -> int:
    """0 means the default or no limit."""
    return _number(text, int, 0, "a whole number of 0 or more")


def _non_negative_float(text: str) -> float:
    """0 means the model's or the dataset's own value."""
    return _number(text, float, 0.0, "a number of 0 or more")


def _model_path(arg: str | None) -> str:
    from core.resources import require_default_model

    return arg or str(require_default_model())


def _load(arg: str | None):
    from core.model.checkpoint import load_model

    return load_model(_model_path(arg))


def _chosen_size(args, loaded) -> float | None:
    """--target-size, else the model's own eval scale; None when neither says (official models)."""
    return args.target_size or loaded.eval_scale


def _target_size(args, loaded) -> float:
    from core.detect import DEFAULT_TARGET_SIZE

    return float(_chosen_size(args, loaded) or DEFAULT_TARGET_SIZE)


def _backend_kwargs(args) -> dict:
    """Detector keywords for --backend/--precision (and --deploy-dir where the command has it)."""
    return {"backend": args.backend, "precision": args.precision, "deploy_dir": getattr(args, "deploy_dir", None)}


def _where(det) -> str:
    return str(det.device) if det.backend == "torch" else det.describe()


# -- detect ------------------------------------------------------------------------------------------
def cmd_detect(args) -> int:
    from core.data.images import load_image
    from core.detect import Detector, save_detections_json
    from core.visualize import draw_detections, save_rgb

    loaded = _load(args.model)
    det = Detector(loaded.model, args.device, target_size=_target_size(args, loaded), **_backend_kwargs(args))
    target = load_image(args.image)
    bank = det.prepare_classes(args.class_image)
    dets = det.detect(target, bank, scales=tuple(args.scales), nms_iou_threshold=args.nms_iou,
                      score_threshold=args.score_threshold)
    shown = dets.top(args.max_detections, args.min_score)
    names = bank.names
    for b, s, l in zip(shown.boxes, shown.scores, shown.labels):
        print(f"{names[l]:<20} {s:7.4f}  [{b[0]:7.1f} {b[1]:7.1f} {b[2]:7.1f} {b[3]:7.1f}]")
    print(f"{len(shown)} shown of {len(dets)} detections in {dets.seconds:.2f}s on {_where(det)}")
    if args.out:
        save_rgb(args.out, draw_detections(target, shown.boxes, shown.scores, shown.labels, names))
        print(f"wrote {args.out}")
    if args.json:
        save_detections_json(dets.top(None, args.min_score), args.json, names)  # all of them; the cap is for drawing
        print(f"wrote {args.json}")
    return 0


# -- info --------------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    from core.model.summary import summarize

    loaded = _load(args.model)
    s = summarize(loaded.model)
    size = Path(loaded.path).stat().st_size
    if args.json:
        d = s.to_json()
        d.update({"path": loaded.path, "kind": loaded.kind, "file_bytes": size, "sha256": loaded.sha256,
                  "content_checksum_verified": loaded.verified, "meta": loaded.meta})
        print(json.dumps(d, indent=1, default=str))
        return 0
    print(f"file        {loaded.path} ({loaded.kind}, {size / 1e6:.2f} MB on disk)")
    print(f"sha256      {loaded.sha256} ({'content checksum verified' if loaded.verified else 'no content checksum recorded'})")
    print(f"model       {s.description}")
    print(f"parameters  {s.parameters:,} (trunk {s.trunk_parameters:,}, head {s.head_parameters:,})")
    print(f"fp32 size   {s.fp32_mb:.2f} MB ({s.fp32_mib:.2f} MiB)")
    print(f"features    {s.feature_dim} channels at stride {loaded.model.stride}")
    if loaded.eval_scale:
        print(f"eval scale  {loaded.eval_scale:g}")
    m = loaded.meta.get("metrics", {})
    if m:
        print(f"metrics     {json.dumps(m)[:200]}")
    if args.layers:
        print(f"\n{'layer':<58} {'kind':<5} {'in':>5} {'out':>5} {'k':>4} {'params':>10}")
        for r in s.layers:
            print(f"{r.name:<58} {r.kind:<5} {r.in_channels:>5} {r.out_channels:>5} {r.kernel:>4} {r.params:>10,}")
    return 0


# -- synth -------------------------------------------------------------------------------------------
def cmd_synth(args) -> int:
    from core.data.synth import SynthConfig, generate

    out = Path(args.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(out, "refusing to overwrite: it exists and is not an empty folder")
    cfg = SynthConfig(seed=args.seed, **({"num_train_images": args.train_images} if args.train_images else {}),
                      **({"num_val_images": args.val_images} if args.val_images else {}))
    res = generate(args.out, cfg, progress=ConsoleProgress("synth"), cancel=None)
    print(f"wrote {res.out_dir}")
    return 0


# -- eval --------------------------------------------------------------------------------------------
def cmd_eval(args) -> int:
    from core.data.grozi import open_dataset
    from core.detect import Detector
    from core.eval.evaluate import EvalConfig, evaluate
    from core.io import atomic_write_text

    loaded = _load(args.model)
    ds = open_dataset(args.dataset, args.split)
    det = Detector(loaded.model, args.device, target_size=_chosen_size(args, loaded), **_backend_kwargs(args))
    cfg = EvalConfig(scales=tuple(args.scales), target_size=args.target_size or 0.0, max_images=args.max_images,
                     exclude_spread=tuple(args.exclude_spread))
    rep = evaluate(det, ds, split=args.split, config=cfg, progress=ConsoleProgress("eval"))
    print(f"mAP@0.5 = {rep.map:.4f} on {rep.num_images} images, {rep.num_classes} classes "
          f"({rep.seconds_per_image:.2f} s/image on {_where(det)})")
    if args.json:
        d = rep.to_json()
        d["model"] = loaded.path
        atomic_write_text(args.json, json.dumps(d, indent=1))
        print(f"wrote {args.json}")
    return 0


# -- train -------------------------------------------------------------------------------------------
def _not_lead_rank(res) -> bool:
    """Under torchrun every rank prints its final-weights digest (they must agree); only rank 0 goes on
    to report, as it alone wrote the model."""
    if res.world_size > 1:
        print(f"rank {res.rank}/{res.world_size} weights sha256 {res.weights_sha256}", flush=True)
    return res.rank != 0


def cmd_train(args) -> int:
    from dataclasses import replace

    from core.train.batches import BatchConfig
    from core.train.loop import TrainConfig, train
    from core.model.backbone import ARCHITECTURES
    from core.train.loss import LossConfig

    if args.backbone not in ARCHITECTURES:
        raise InputError("--backbone", f"unknown backbone '{args.backbone}', expected one of {', '.join(ARCHITECTURES)}")
    batch = BatchConfig(batch_size=args.batch_size, class_batch_size=args.class_batch_size, crop_size=args.crop_size,
                        train_scale=args.train_scale)
    cfg = TrainConfig(dataset=args.dataset, extra_train=tuple(args.extra_train), out=args.out, work_dir=args.work_dir or "", backbone=args.backbone,
                      init=args.init or "", init_trunk=args.init_trunk or "", iterations=args.iterations, lr=args.lr,
                      optimizer=args.optimizer, batch=batch, eval_every=args.eval_every, eval_images=args.eval_images,
                      checkpoint_every=args.checkpoint_every, seed=args.seed, device=args.device, threads=args.threads,
                      resume=not args.restart, remap_from=args.remap_from,
                      loss=LossConfig(match_weight=args.match_weight, match_temperature=args.match_temperature))
    if args.teacher:
        cfg = replace(cfg, teacher=args.teacher)
    res = train(cfg, progress=ConsoleProgress("train"),
                log=lambda e: print(json.dumps(e), flush=True) if "mAP@0.5" in e else None)
    if _not_lead_rank(res):
        return 0
    print(f"wrote {res.out} after {res.iterations} iterations ({res.seconds / 60:.1f} min), "
          f"best val mAP {res.best_map if res.best_map is None else round(res.best_map, 4)}")
    return 0


# -- importance --------------------------------------------------------------------------------------
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
    loaded = _load(args.model)
    ds = open_dataset(args.dataset, args.split)
    calib = build_calibration(ds, args.images, _chosen_size(args, loaded) or ds.eval_scale,
                              seed=args.seed, progress=ConsoleProgress("calibration"))
    res = compute_importance(loaded.model, calib, names, model_path=loaded.path,
                             progress=ConsoleProgress("importance"))
    paths = res.save(args.out)
    for phase, m in res.timings.items():
        print(f"{phase:<14} {m.seconds:8.2f} s   peak {m.peak_bytes / 2**20:8.1f} MiB")
    print(f"scored {len(res.units)} units with {', '.join(names)} on {len(calib)} images; wrote "
          f"{paths[0]} and {paths[1]}")
    return 0


# -- prune -------------------------------------------------------------------------------------------
def cmd_prune(args) -> int:
    from core.prune.job import prune, save_pruned
    from core.prune.plan import PruningPlan, weight_magnitude_importance

    if args.plan:
        plan = PruningPlan.load(args.plan)  # before the model: a bad plan is reported at once
    else:
        plan = PruningPlan(ratio=args.ratio, criterion=args.criterion or "weight_l1")
    loaded = _load(args.model)
    if args.importance:
        from core.importance.result import ImportanceResult

        importance = ImportanceResult.load(args.importance)
        if args.criterion:
            plan = plan.with_changes(criterion=args.criterion)
    elif plan.criterion == "weight_l1":
        importance = weight_magnitude_importance(loaded.model)
    else:
        raise InputError(args.plan if args.plan and not args.criterion else "--criterion",
                         f"criterion '{plan.criterion}' needs --importance FILE (from `os2d-studio importance`)")
    res = prune(loaded.model, plan, importance, progress=ConsoleProgress("prune"))
    extra = {k: loaded.meta[k] for k in ("eval_scale",) if k in loaded.meta}
    out = save_pruned(res, args.out, loaded.path, parent_sha256=loaded.sha256, extra_meta=extra)
    p = res.predicted
    print(f"pruned with {plan.criterion}: {res.parent_parameters:,} → {res.measured_parameters:,} parameters "
          f"({res.measured_size_mb:.2f} MB fp32; predicted {p.parameters:,}), {res.seconds:.2f}s")
    print(f"wrote {out}")
    return 0


# -- profile -----------------------------------------------------------------------------------------
def cmd_profile(args) -> int:
    from core.eval.profile import compare_profiles, profile_model
    from core.io import atomic_write_text

    size = (args.size, args.size)
    profs = []
    for path in args.models:
        loaded = _load(path)
        if args.backend == "torch" and args.precision == "fp32":
            profs.append(profile_model(loaded.model, name=Path(loaded.path).name, input_size=size,
                                       num_classes=args.classes, repeats=args.repeats, device=args.device,
                                       optimize=args.optimize))
        else:
            profs.append(_profile_deployed(loaded, args, size))
    if len(profs) == 2:
        cmp = compare_profiles(*profs)
        print(cmp.to_markdown())
        data = cmp.to_json()
    else:
        data = profs[0].to_json()
        for k, v in data.items():
            print(f"{k:<22} {v}")
    if args.json:
        atomic_write_text(args.json, json.dumps(data, indent=1))
        print(f"wrote {args.json}")
    return 0


def _profile_deployed(loaded, args, size):
    """Counts from the model, latency from its exported graphs on --backend at --precision."""
    import statistics
    from dataclasses import replace

    import torch

    from core.deploy.latency import time_runtime
    from core.eval.profile import profile_model

    if args.device not in ("auto", "cpu"):
        raise ValueError(f"--device {args.device}: the {args.backend} backend is timed on the CPU")
    prof = profile_model(loaded.model, name=f"{Path(loaded.path).name} [{args.backend} {args.precision}]",
                         input_size=size, num_classes=args.classes, repeats=0)
    t = time_runtime(loaded.model, args.backend, args.precision, input_size=size, num_classes=args.classes,
                     repeats=max(1, args.repeats))
    return replace(prof, cpu_latency_ms=statistics.median(t), cpu_latency_min_ms=min(t), cpu_latency_max_ms=max(t),
                   cpu_threads=torch.get_num_threads(), repeats=len(t))


# -- export and quantize -----------------------------------------------------------------------------
def cmd_export(args) -> int:
    from core.deploy.export import export_model

    loaded = _load(args.model)
    res = export_model(loaded.model, args.out, source_path=loaded.path, source_sha256=loaded.sha256,
                       progress=ConsoleProgress("export"))
    where = "found in the cache" if res.cached else "wrote"
    print(f"{where} {res.target}, {res.classes} and {res.sidecar.name} (opset {res.info['opset']}; model "
          f"sha256 {res.sha256[:12]}…; largest difference from torch: score "
          f"{res.info['check_max_abs_diff']['cls']:.2g})")
    return 0


def cmd_quantize(args) -> int:
    from core.data.grozi import open_dataset
    from core.deploy.quantize import QuantizeConfig, quantize
    from core.importance.calibration import build_calibration

    loaded = _load(args.model)
    ds = open_dataset(args.dataset, args.split)
    calib = build_calibration(ds, args.images, _chosen_size(args, loaded) or ds.eval_scale, seed=args.seed,
                              class_image_size=loaded.model.config.class_image_size,
                              progress=ConsoleProgress("calibration"))
    cfg = QuantizeConfig(int8_parts=tuple(args.int8_parts)) if args.int8_parts else QuantizeConfig()
    res = quantize(loaded.model, calib, args.out, config=cfg, source_path=loaded.path, source_sha256=loaded.sha256,
                   progress=ConsoleProgress("quantize"))
    d = res.info["int8_vs_fp32_on_calibration"]
    print(f"int8 parts: {', '.join(res.info['int8_parts'])}; kept float: {', '.join(res.info['ignored_scope']['kept_float'])}")
    print(f"on the {d['images']} calibration images int8 scores moved {d['mean_abs_score_diff']:.4f} on average "
          f"from fp32 (at most {d['max_abs_score_diff_top20']:.4f} at the top 20 anchors of an image)")
    print(f"{'found in the cache' if res.cached else 'wrote'} {res.xml} with {res.sidecar.name} in {res.folder}")
    return 0


# -- finetune ----------------------------------------------------------------------------------------
def _finetune_config(args, **fields):
    """A FinetuneConfig from the options `_add_finetune_options` added (shared by finetune and prune-stages)."""
    from core.train.batches import BatchConfig
    from core.train.finetune import FinetuneConfig

    if args.lr is not None:
        fields["lr"] = args.lr
    return FinetuneConfig(dataset=args.dataset, out=args.out, giou_weight=args.giou_weight,
                          match_weight=args.match_weight, distill_score_weight=args.distill_score,
                          distill_attention_weight=args.distill_attention,
                          batch=BatchConfig(batch_size=args.batch_size, class_batch_size=args.class_batch_size,
                                            crop_size=args.crop_size),
                          eval_images=args.eval_images, evaluate_before_after=not args.no_eval, seed=args.seed,
                          checkpoint_every=args.checkpoint_every, device=args.device, threads=args.threads,
                          extra_train=tuple(args.extra_train), select_every=args.select_every,
                          select_images=args.select_images, **fields)


def cmd_finetune(args) -> int:
    from core.io import atomic_write_text
    from core.train.finetune import finetune

    cfg = _finetune_config(args, model=args.model, teacher=args.teacher or "", epochs=args.epochs,
                           iterations=args.iterations)
    res = finetune(cfg, progress=ConsoleProgress("finetune"))
    if _not_lead_rank(res.train):
        return 0
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"mAP@0.5 before {fmt(res.map_before)} → after {fmt(res.map_after)} (teacher {fmt(res.teacher_map)}); "
          f"{res.train.iterations} iterations in {res.train.seconds / 60:.1f} min; wrote {res.out}")
    if args.json:
        atomic_write_text(args.json, json.dumps(res.to_json(), indent=1))
    return 0


# -- prune-stages ------------------------------------------------------------------------------------
def cmd_prune_stages(args) -> int:
    from core.io import atomic_write_text
    from core.prune.plan import PruningPlan
    from core.train.staged import STAGE_ORDER, StagedConfig, prune_in_stages

    plan = PruningPlan.load(args.plan) if args.plan else PruningPlan(ratio=args.ratio)
    if args.criterion:
        plan = plan.with_changes(criterion=args.criterion)
    elif not args.plan:
        plan = plan.with_changes(criterion="combined")
    model = _load(args.model).path
    cfg = StagedConfig(model=model, dataset=args.dataset, out=args.out, plan=plan,
                       stages=tuple(args.stages or STAGE_ORDER), iterations_per_stage=args.iterations_per_stage,
                       calib_images=args.calib_images, finetune=_finetune_config(args, model="", teacher=""),
                       eval_images=args.eval_images, evaluate_before_after=not args.no_eval, device=args.device)
    res = prune_in_stages(cfg, progress=ConsoleProgress("prune-stages"))
    for s in res.stages:
        print(f"stage {s.group:<10} → {s.parameters:,} parameters  ({s.finetuned})")
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"mAP@0.5 original {fmt(res.map_before)} → staged {fmt(res.map_after)}; wrote {res.out}")
    if args.json:
        atomic_write_text(args.json, json.dumps(res.to_json(), indent=1))
    return 0


# -- compare -----------------------------------------------------------------------------------------
def cmd_compare(args) -> int:
    from core.compare import compare_video
    from core.data.video_gt import load_video_ground_truth

    original = _load(args.original)
    pruned = _load(args.pruned)
    size = _target_size(args, original)
    if args.backend != "torch" or args.precision != "fp32":  # both sides on the chosen backend
        from core.detect import Detector

        original, pruned = (Detector(m.model, args.device, target_size=size, **_backend_kwargs(args),
                                     name=f"{Path(m.path).name} [{args.backend} {args.precision}]")
                            for m in (original, pruned))
    res = compare_video(original, pruned, args.class_image, args.video, out_video=args.out, out_json=args.json,
                        target_size=size, score_threshold=args.score_threshold,
                        pruned_score_threshold=args.pruned_score_threshold, nms_iou=args.nms_iou,
                        ground_truth=load_video_ground_truth(args.ground_truth) if args.ground_truth else None,
                        max_detections=args.max_detections,
                        mode="live" if args.live else "offline", device=args.device,
                        max_frames=args.max_frames or None, progress=ConsoleProgress("compare"))
    print(f"{res.processed_count} of {res.frame_count} frames processed ({res.mode}, target size "
          f"{res.target_size:g}, {res.device})" + (f", {len(res.skipped)} skipped to keep up" if res.skipped else ""))
    for side in (res.original, res.pruned):
        scored = (f"  recall {side.recall:.3f}  mAP@0.5 {side.map:.3f}"
                  if side.recall is not None and side.map is not None else "")
        print(f"{side.name:<28} mean {side.mean_ms:8.1f} ms  median {side.median_ms:8.1f} ms  {side.fps:6.2f} FPS  "
              f"{side.parameters:,} params{scored}")
    a = res.agreement
    speed = f"speedup {res.speedup:.2f}x; " if res.speedup else ""
    print(f"{speed}boxes found by both {a.matched}, only original {a.only_original}, only pruned {a.only_pruned} "
          f"(agreement {a.rate:.1%})")
    for path in (res.out_video, res.out_json):
        if path:
            print(f"wrote {path}")
    return 0


def _add_finetune_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: FinetuneConfig.lr, the one bench/seed_table.py measured best)")
    p.add_argument("--giou-weight", type=float, default=0.5)
    p.add_argument("--match-weight", type=float, default=None,
                   help="aligned-matching loss weight (default: as the model, or its teacher, was trained)")
    p.add_argument("--distill-score", type=float, default=1.0)
    p.add_argument("--distill-attention", type=float, default=1.0)
    p.add_argument("--batch-size", type=_positive_int, default=4)
    p.add_argument("--class-batch-size", type=_positive_int, default=6)
    p.add_argument("--crop-size", type=_positive_int, default=384)
    p.add_argument("--eval-images", type=_non_negative_int, default=0)
    p.add_argument("--no-eval", action="store_true", help="skip the before/after evaluation")
    p.add_argument("--extra-train", nargs="+", default=[], metavar="DATASET",
                   help="more datasets (all their splits) to fine-tune on; more classes, less forgetting")
    p.add_argument("--select-every", type=_non_negative_int, default=0, metavar="N",
                   help="score every N iterations on --select-images val images and keep the best (0: the last)")
    p.add_argument("--select-images", type=_positive_int, default=30)
    p.add_argument("--checkpoint-every", type=_positive_int, default=25,
                   help="iterations between resumable checkpoints (OUT.run/last.pt); rerun the command to resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=_non_negative_int, default=0)
    p.add_argument("--device", default="auto")


def _add_backend_options(p: argparse.ArgumentParser, deploy_dir: bool = True) -> None:
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "openvino"],
                   help="what runs the network: torch, or the exported graphs on ONNX Runtime or OpenVINO "
                        "(exported on first use into the cache); decoding and NMS are the same for all")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="openvino only: bf16 where the CPU has it natively, int8 after `os2d-studio quantize`")
    if deploy_dir:
        p.add_argument("--deploy-dir", help="a folder from `os2d-studio export` or `quantize` (default: the cache)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="os2d-studio", description="OS2D one-shot detection, importance, pruning.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("detect", help="detect class images in a target image")
    d.add_argument("--model", help="model file (default: the embedded default model)")
    d.add_argument("--class-image", action="append", required=True, help="class image (repeat for several)")
    d.add_argument("--image", required=True, help="target image")
    d.add_argument("--out", help="write the annotated image here")
    d.add_argument("--json", help="write every detection scoring at least --min-score as JSON here")
    d.add_argument("--target-size", type=_non_negative_float, default=0,
                   help="S: resize so h*w ≈ S² (default: the model's)")
    d.add_argument("--scales", type=float, nargs="+", default=[1.0], help="pyramid scales of S")
    d.add_argument("--nms-iou", type=float, default=0.3)
    d.add_argument("--score-threshold", type=float, default=float("-inf"))
    d.add_argument("--min-score", type=float, default=0.5, help="only show and write detections above this score")
    d.add_argument("--max-detections", type=int, default=20, help="most detections printed and drawn (not a cap on --json)")
    d.add_argument("--device", default="auto", help="torch: cpu, cuda; openvino: CPU, GPU, NPU")
    _add_backend_options(d)
    d.set_defaults(func=cmd_detect)

    i = sub.add_parser("info", help="architecture, parameters, size, layer table")
    i.add_argument("model", nargs="?", help="model file (default: the embedded default model)")
    i.add_argument("--layers", action="store_true", help="print the layer table")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    s = sub.add_parser("synth", help="generate the one-shot shelf benchmark")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train-images", type=_non_negative_int, default=0)
    s.add_argument("--val-images", type=_non_negative_int, default=0)
    s.set_defaults(func=cmd_synth)

    e = sub.add_parser("eval", help="mAP@0.5 on a dataset split")
    e.add_argument("--model")
    e.add_argument("--dataset", required=True, help="dataset folder (with dataset.json) or grozi:PATH")
    e.add_argument("--split", default="val")
    e.add_argument("--json")
    e.add_argument("--scales", type=float, nargs="+", default=[1.0])
    e.add_argument("--target-size", type=_non_negative_float, default=0)
    e.add_argument("--max-images", type=_non_negative_int, default=0)
    e.add_argument("--exclude-spread", type=int, nargs="+", default=[], metavar="N",
                   help="first leave out the evenly spread N-image subset (each N in turn), e.g. the "
                        "train --eval-images the checkpoint was selected on")
    e.add_argument("--device", default="auto", help="torch: cpu, cuda; openvino: CPU, GPU, NPU")
    _add_backend_options(e)
    e.set_defaults(func=cmd_eval)

    t = sub.add_parser("train", help="train an OS2D model (resumes from its work folder)")
    t.add_argument("--dataset", required=True)
    t.add_argument("--extra-train", nargs="+", default=[], metavar="DATASET",
                   help="more datasets (folders or grozi:PATH, all their splits) to train on; --dataset's val "
                        "split stays the held-out evaluation and must share no class image with them")
    t.add_argument("--out", required=True)
    t.add_argument("--work-dir")
    t.add_argument("--backbone", default="resnet18", help="resnet18, resnet34, resnet50 or resnet101")
    t.add_argument("--init", help="start from this OS2D model")
    t.add_argument("--init-trunk", help="torchvision ImageNet ResNet weights for the trunk")
    t.add_argument("--teacher", help="distil from this model")
    t.add_argument("--iterations", type=_positive_int, default=3000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    t.add_argument("--batch-size", type=_positive_int, default=4)
    t.add_argument("--class-batch-size", type=_positive_int, default=8)
    t.add_argument("--crop-size", type=_positive_int, default=448)
    t.add_argument("--train-scale", type=float, default=0)
    t.add_argument("--eval-every", type=_non_negative_int, default=500)
    t.add_argument("--eval-images", type=_non_negative_int, default=40)
    t.add_argument("--checkpoint-every", type=_positive_int, default=50)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_non_negative_int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--remap-from", type=float, default=0.0,
                   help="fraction of the run trained on anchor targets before OS2D's target remapping starts")
    t.add_argument("--match-weight", type=float, default=0.0,
                   help="weight of the aligned-matching loss on ground-truth boxes (helps training from scratch)")
    t.add_argument("--match-temperature", type=float, default=0.1)
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in the work folder")
    t.set_defaults(func=cmd_train)
    im = sub.add_parser("importance", help="rank channels (gradient-free criteria, or the gradient references)")
    im.add_argument("--model", help="model (default: the embedded default model)")
    im.add_argument("--dataset", required=True, help="calibration data: dataset folder or grozi:PATH")
    im.add_argument("--split", default="train")
    im.add_argument("--criterion", nargs="+", default=["combined"],
                    help="one or more of combined, weight_l1, bn_gamma, act_l1, act_variance, sparsity, "
                         "fg_bg_separation, taylor, lcp; or all")
    im.add_argument("--images", type=_positive_int, default=16, help="calibration images")
    im.add_argument("--target-size", type=_non_negative_float, default=0)
    im.add_argument("--seed", type=int, default=0)
    im.add_argument("--out", required=True, help="output prefix: writes PREFIX.npz and PREFIX.json")
    im.set_defaults(func=cmd_importance)

    pr = sub.add_parser("prune", help="remove channels physically and save a self-describing pruned model")
    pr.add_argument("--model", help="model to prune (default: the embedded default model)")
    pr.add_argument("--importance", help="importance file from `os2d-studio importance` (.npz/.json)")
    g = pr.add_mutually_exclusive_group(required=True)
    g.add_argument("--plan", help="plan.json (global, per-group and per-unit ratios)")
    g.add_argument("--ratio", type=float, help="one global ratio of channels to remove, e.g. 0.3")
    pr.add_argument("--criterion", help="which importance ranks the channels (default: the plan's, or weight_l1)")
    pr.add_argument("--out", required=True, help="output file (never overwrites an existing file)")
    pr.set_defaults(func=cmd_prune)

    ft = sub.add_parser("finetune", help="recover accuracy: detection loss + GIoU + distillation from the teacher")
    ft.add_argument("--model", required=True, help="the pruned model")
    ft.add_argument("--teacher", help="the unpruned model to distil from")
    ft.add_argument("--dataset", required=True)
    ft.add_argument("--out", required=True)
    ft.add_argument("--epochs", type=float, default=1.0)
    ft.add_argument("--iterations", type=_non_negative_int, default=0, help="overrides --epochs")
    _add_finetune_options(ft)
    ft.add_argument("--json")
    ft.set_defaults(func=cmd_finetune)

    ps = sub.add_parser("prune-stages", help="LCP-style layer-wise pruning: prune one stage, fine-tune, then the next")
    ps.add_argument("--model", help="the unpruned model (default: the embedded default model); also the teacher")
    ps.add_argument("--dataset", required=True)
    g = ps.add_mutually_exclusive_group(required=True)
    g.add_argument("--plan", help="plan.json with the final ratios")
    g.add_argument("--ratio", type=float, help="one global ratio of channels to remove, e.g. 0.3")
    ps.add_argument("--criterion", help="ranks each stage's channels on the model so far (default: the plan's, "
                                        "or combined with --ratio)")
    ps.add_argument("--stages", nargs="+",
                    help="groups in the order they are pruned (default: transform stem layer1 layer2 layer3; "
                         "groups the plan keeps whole are skipped)")
    ps.add_argument("--iterations-per-stage", type=_positive_int, default=50)
    ps.add_argument("--calib-images", type=_positive_int, default=8, help="train images each stage's ranking sees")
    ps.add_argument("--out", required=True, help="the final model (stages go to OUT.stages/; rerun to resume)")
    _add_finetune_options(ps)
    ps.add_argument("--json")
    ps.set_defaults(func=cmd_prune_stages)

    pf = sub.add_parser("profile", help="parameters, MACs, size, latency; two models side by side")
    pf.add_argument("models", nargs="+", help="one or two model files")
    pf.add_argument("--size", type=_positive_int, default=512, help="square target image side for MACs and latency")
    pf.add_argument("--classes", type=_positive_int, default=1)
    pf.add_argument("--repeats", type=_positive_int, default=10)
    pf.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pf.add_argument("--plain", dest="optimize", action="store_false",
                    help="time the model as stored, not the BN-folded channels-last copy detection runs")
    pf.add_argument("--json")
    _add_backend_options(pf, deploy_dir=False)
    pf.set_defaults(func=cmd_profile)

    ex = sub.add_parser("export", help="ONNX graphs of the target and class branches, with a sidecar")
    ex.add_argument("--model", help="model file (default: the embedded default model)")
    ex.add_argument("--out", help="a new folder for target.onnx, class.onnx and export.json (never overwrites; "
                                  "default: the cache, where detection with --backend finds it)")
    ex.set_defaults(func=cmd_export)

    q = sub.add_parser("quantize", help="int8 target branch for OpenVINO (NNCF post-training quantization)")
    q.add_argument("--model", help="model file (default: the embedded default model)")
    q.add_argument("--dataset", required=True, help="calibration images: dataset folder or grozi:PATH")
    q.add_argument("--split", default="train")
    q.add_argument("--images", type=int, default=16, help="calibration images (the same choice importance makes)")
    q.add_argument("--target-size", type=float, default=0, help="S (default: the model's)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--int8-parts", nargs="+", choices=["trunk", "transform_net", "transform_output", "correlation"],
                   help="parts run in int8 (default: trunk transform_net correlation); the rest of the head "
                        "stays float")
    q.add_argument("--out", help="a new folder for the int8 model (never overwrites; it is also kept in the "
                                 "cache, where --precision int8 finds it)")
    q.set_defaults(func=cmd_quantize)

    cp = sub.add_parser("compare", help="original vs pruned on a video: side-by-side video, latency, FPS, agreement")
    cp.add_argument("--original", help="the original model (default: the embedded default model)")
    cp.add_argument("--pruned", required=True, help="the pruned model")
    cp.add_argument("--class-image", action="append", required=True, help="class image (repeat for several)")
    cp.add_argument("--video", required=True, help="video file, image folder, or camera:N")
    cp.add_argument("--out", help="write the side-by-side video here (.mp4; falls back to .avi)")
    cp.add_argument("--json", help="write latency, FPS and agreement statistics here")
    cp.add_argument("--target-size", type=_non_negative_float, default=0,
                    help="S: resize so h*w ≈ S² (default: the original's)")
    cp.add_argument("--live", action="store_true", help="skip frames to keep up with the video's frame rate")
    cp.add_argument("--score-threshold", type=float, default=0.5)
    cp.add_argument("--ground-truth", help="per-frame ground truth (the sample video's demo_gt.json): each side's "
                                           "recall and mAP; class images named by class id (class_87.png)")
    cp.add_argument("--pruned-score-threshold", type=float, default=None,
                    help="the pruned side's threshold (default: --score-threshold); a pruned model scores on "
                         "another scale, its eval JSON's best_f1_threshold is a good choice")
    cp.add_argument("--nms-iou", type=float, default=0.3)
    cp.add_argument("--max-detections", type=int, default=50)
    cp.add_argument("--max-frames", type=_non_negative_int, default=0, help="stop after this many processed frames")
    cp.add_argument("--device", default="auto")
    _add_backend_options(cp, deploy_dir=False)
    cp.set_defaults(func=cmd_compare)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        print(f"error: {user_message(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
