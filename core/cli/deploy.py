"""`export` (ONNX graphs) and `quantize` (int8 for OpenVINO)."""

from __future__ import annotations

from core.cli.options import chosen_size, open_model
from core.jobs import ConsoleProgress


# -- export ----------------------------------------------------------------------------------------
def cmd_export(args) -> int:
    from core.deploy.export import export_model

    loaded = open_model(args.model)
    res = export_model(loaded.model, args.out, source_path=loaded.path, source_sha256=loaded.sha256,
                       progress=ConsoleProgress("export"))
    where = "found in the cache" if res.cached else "wrote"
    print(f"{where} {res.target}, {res.classes} and {res.sidecar.name} (opset {res.info['opset']}; model "
          f"sha256 {res.sha256[:12]}…; largest difference from torch: score "
          f"{res.info['check_max_abs_diff']['cls']:.2g})")
    return 0


def add_export(sub) -> None:
    ex = sub.add_parser("export", help="ONNX graphs of the target and class branches, with a sidecar")
    ex.add_argument("--model", help="model file (default: the embedded default model)")
    ex.add_argument("--out", help="a new folder for target.onnx, class.onnx and export.json (never overwrites; "
                                  "default: the cache, where detection with --backend finds it)")
    ex.set_defaults(func=cmd_export)


# -- quantize --------------------------------------------------------------------------------------
def cmd_quantize(args) -> int:
    from core.data.grozi import open_dataset
    from core.deploy.quantize import QuantizeConfig, quantize
    from core.importance.calibration import build_calibration

    loaded = open_model(args.model)
    ds = open_dataset(args.dataset, args.split)
    calib = build_calibration(ds, args.images, chosen_size(args, loaded) or ds.eval_scale, seed=args.seed,
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


def add_quantize(sub) -> None:
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
