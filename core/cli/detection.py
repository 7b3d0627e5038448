"""`detect` (class images in one target image) and `compare` (original vs pruned on a video)."""

from __future__ import annotations

from pathlib import Path

from core.cli.options import (add_backend_options, backend_kwargs, detection_size, non_negative_float,
                              non_negative_int, open_model, where)
from core.jobs import ConsoleProgress


# -- detect ----------------------------------------------------------------------------------------
def cmd_detect(args) -> int:
    from core.data.images import load_image
    from core.detect import Detector, save_detections_json
    from core.visualize import draw_detections, save_rgb

    loaded = open_model(args.model)
    det = Detector(loaded.model, args.device, target_size=detection_size(args, loaded), **backend_kwargs(args))
    target = load_image(args.image)
    bank = det.prepare_classes(args.class_image)
    dets = det.detect(target, bank, scales=tuple(args.scales), nms_iou_threshold=args.nms_iou,
                      score_threshold=args.score_threshold)
    shown = dets.top(args.max_detections, args.min_score)
    names = bank.names
    for b, s, l in zip(shown.boxes, shown.scores, shown.labels):
        print(f"{names[l]:<20} {s:7.4f}  [{b[0]:7.1f} {b[1]:7.1f} {b[2]:7.1f} {b[3]:7.1f}]")
    print(f"{len(shown)} shown of {len(dets)} detections in {dets.seconds:.2f}s on {where(det)}")
    if args.out:
        save_rgb(args.out, draw_detections(target, shown.boxes, shown.scores, shown.labels, names))
        print(f"wrote {args.out}")
    if args.json:
        save_detections_json(dets.top(None, args.min_score), args.json, names)  # all of them; the cap is for drawing
        print(f"wrote {args.json}")
    return 0


def add_detect(sub) -> None:
    d = sub.add_parser("detect", help="detect class images in a target image")
    d.add_argument("--model", help="model file (default: the embedded default model)")
    d.add_argument("--class-image", action="append", required=True, help="class image (repeat for several)")
    d.add_argument("--image", required=True, help="target image")
    d.add_argument("--out", help="write the annotated image here")
    d.add_argument("--json", help="write every detection scoring at least --min-score as JSON here")
    d.add_argument("--target-size", type=non_negative_float, default=0,
                   help="S: resize so h*w ≈ S² (default: the model's)")
    d.add_argument("--scales", type=float, nargs="+", default=[1.0], help="pyramid scales of S")
    d.add_argument("--nms-iou", type=float, default=0.3)
    d.add_argument("--score-threshold", type=float, default=float("-inf"))
    d.add_argument("--min-score", type=float, default=0.5, help="only show and write detections above this score")
    d.add_argument("--max-detections", type=int, default=20, help="most detections printed and drawn (not a cap on --json)")
    d.add_argument("--device", default="auto", help="torch: cpu, cuda; openvino: CPU, GPU, NPU")
    add_backend_options(d)
    d.set_defaults(func=cmd_detect)


# -- compare ---------------------------------------------------------------------------------------
def cmd_compare(args) -> int:
    from core.compare import compare_video
    from core.data.video_gt import load_video_ground_truth

    original = open_model(args.original)
    pruned = open_model(args.pruned)
    size = detection_size(args, original)
    if args.backend != "torch" or args.precision != "fp32":  # both sides on the chosen backend
        from core.detect import Detector

        original, pruned = (Detector(m.model, args.device, target_size=size, **backend_kwargs(args),
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


def add_compare(sub) -> None:
    cp = sub.add_parser("compare", help="original vs pruned on a video: side-by-side video, latency, FPS, agreement")
    cp.add_argument("--original", help="the original model (default: the embedded default model)")
    cp.add_argument("--pruned", required=True, help="the pruned model")
    cp.add_argument("--class-image", action="append", required=True, help="class image (repeat for several)")
    cp.add_argument("--video", required=True, help="video file, image folder, or camera:N")
    cp.add_argument("--out", help="write the side-by-side video here (.mp4; falls back to .avi)")
    cp.add_argument("--json", help="write latency, FPS and agreement statistics here")
    cp.add_argument("--target-size", type=non_negative_float, default=0,
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
    cp.add_argument("--max-frames", type=non_negative_int, default=0, help="stop after this many processed frames")
    cp.add_argument("--device", default="auto")
    add_backend_options(cp, deploy_dir=False)
    cp.set_defaults(func=cmd_compare)
