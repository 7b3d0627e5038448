"""What a model is and how well and fast it runs: `info`, `eval` (mAP@0.5), `profile`."""

from __future__ import annotations

import json
from pathlib import Path

from core.cli.options import (add_backend_options, backend_kwargs, chosen_size, non_negative_float,
                              non_negative_int, open_model, positive_int, where)
from core.jobs import ConsoleProgress


# -- info ------------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    from core.model.summary import summarize

    loaded = open_model(args.model)
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


def add_info(sub) -> None:
    i = sub.add_parser("info", help="architecture, parameters, size, layer table")
    i.add_argument("model", nargs="?", help="model file (default: the embedded default model)")
    i.add_argument("--layers", action="store_true", help="print the layer table")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)


# -- eval ------------------------------------------------------------------------------------------
def cmd_eval(args) -> int:
    from core.data.grozi import open_dataset
    from core.detect import Detector
    from core.eval.evaluate import EvalConfig, evaluate
    from core.io import atomic_write_text

    loaded = open_model(args.model)
    ds = open_dataset(args.dataset, args.split)
    det = Detector(loaded.model, args.device, target_size=chosen_size(args, loaded), **backend_kwargs(args))
    cfg = EvalConfig(scales=tuple(args.scales), target_size=args.target_size or 0.0, max_images=args.max_images,
                     exclude_spread=tuple(args.exclude_spread))
    rep = evaluate(det, ds, split=args.split, config=cfg, progress=ConsoleProgress("eval"))
    print(f"mAP@0.5 = {rep.map:.4f} on {rep.num_images} images, {rep.num_classes} classes "
          f"({rep.seconds_per_image:.2f} s/image on {where(det)})")
    if args.json:
        d = rep.to_json()
        d["model"] = loaded.path
        atomic_write_text(args.json, json.dumps(d, indent=1))
        print(f"wrote {args.json}")
    return 0


def add_eval(sub) -> None:
    e = sub.add_parser("eval", help="mAP@0.5 on a dataset split")
    e.add_argument("--model")
    e.add_argument("--dataset", required=True, help="dataset folder (with dataset.json) or grozi:PATH")
    e.add_argument("--split", default="val")
    e.add_argument("--json")
    e.add_argument("--scales", type=float, nargs="+", default=[1.0])
    e.add_argument("--target-size", type=non_negative_float, default=0)
    e.add_argument("--max-images", type=non_negative_int, default=0)
    e.add_argument("--exclude-spread", type=int, nargs="+", default=[], metavar="N",
                   help="first leave out the evenly spread N-image subset (each N in turn), e.g. the "
                        "train --eval-images the checkpoint was selected on")
    e.add_argument("--device", default="auto", help="torch: cpu, cuda; openvino: CPU, GPU, NPU")
    add_backend_options(e)
    e.set_defaults(func=cmd_eval)


# -- profile ---------------------------------------------------------------------------------------
def cmd_profile(args) -> int:
    from core.eval.profile import compare_profiles, profile_model
    from core.io import atomic_write_text

    size = (args.size, args.size)
    profs = []
    for path in args.models:
        loaded = open_model(path)
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


def add_profile(sub) -> None:
    pf = sub.add_parser("profile", help="parameters, MACs, size, latency; two models side by side")
    pf.add_argument("models", nargs="+", help="one or two model files")
    pf.add_argument("--size", type=positive_int, default=512, help="square target image side for MACs and latency")
    pf.add_argument("--classes", type=positive_int, default=1)
    pf.add_argument("--repeats", type=positive_int, default=10)
    pf.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    pf.add_argument("--plain", dest="optimize", action="store_false",
                    help="time the model as stored, not the BN-folded channels-last copy detection runs")
    pf.add_argument("--json")
    add_backend_options(pf, deploy_dir=False)
    pf.set_defaults(func=cmd_profile)
