"""Benchmark: peak memory of the gradient-free statistics pass against LCP's backward, on the official
OS2D architectures at the official scale.

For each model it measures, every phase in a fresh process so that no phase inherits another's heap:
- plain inference over the calibration images (the reference), no hooks;
- the statistics pass the gradient-free criteria (`combined` and the others) are computed from, over the
  same images (it streams them into running sums); for both, the peak after each image shows whether
  memory grows with the images seen;
- LCP (`core.importance.gradient.lcp_importance`) for one unit, the one whose backward goes deepest (its
  consumers come first in the forward), on one image;
- the whole LCP ranking: every unit's reconstruction term in the graph, as `lcp_importance` builds it,
  with the first few backwards (units spread over the network, the deepest first) measured and the run
  then cancelled; its wall time over the calibration set is estimated from the measured per-unit times;
- a mini-batch backward: the losses of k images summed before one backward for the deepest unit
  (`lcp_batched`, a bench-only variant; `lcp_importance` itself takes images one by one and holds one
  image's graph), at k = 1, 2, 4, with the fitted memory per image and the batch at which LCP outgrows
  a memory budget. A batch whose predicted peak exceeds the memory free now is not run, and says so.

Memory: on CPU the peak RSS of the child process during the phase (its high-water mark reset when the
phase starts) and, as a cross-check, the child's lifetime peak from `os.wait4` (which includes loading);
on CUDA torch's max allocated memory on the device. Times are one cold run each, not assertions.

    # all three models (OS2D v2 ResNet-50 and v1 ResNet-101 at 1280, the default model at its own scale):
    python -m bench.memory --threads 2 --section memory
    # a smoke run (the default model at 256 px, one image, batches 1 and 2): checks the run, not for quoting
    python -m bench.memory --quick --out-md /tmp/memory.md
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.sections import command_line, cpu_name, publish
from core.data.grozi import open_dataset
from core.detect import pick_device
from core.importance.calibration import CalibrationSet, build_calibration
from core.importance.gradient import GradientConfig, _Reconstruction, _Resampling, lcp_importance, sample_loss
from core.importance.stats import (Meter, StatsConfig, _proc_status_bytes, collect_statistics, eval_mode,
                                   model_device, sample_rois)
from core.jobs import CancelToken, Cancelled
from core.model.checkpoint import load_model
from core.model.os2d import OS2D_V1, OS2D_V2, OS2DModel
from core.prune.units import find_units
from core.resources import benchmark_dir, default_model_path

REPO = Path(__file__).resolve().parent.parent
GIB = 2 ** 30
OFFICIAL_SCALE = 1280.0  # the GroZi evaluation scale of the released models (shared/os2d/README.md)
BUDGETS_GIB = (16.0, 80.0)
HEADROOM = 0.85  # a batch runs only if its predicted peak fits in this share of the memory free now


@dataclass(frozen=True)
class ModelSpec:
    key: str  # what --models names it
    source: str  # "random:v2", "random:v1" or a model file
    scale: float  # target size (h*w ≈ scale²)
    title: str


def model_specs(keys: Sequence[str], target_size: float | None) -> list[ModelSpec]:
    """The models to measure, by name: `v2-r50`, `v1-r101` (random weights at the official scale) and
    `default` (the bundled model at the evaluation scale stored in its file)."""
    specs = []
    for key in keys:
        if key == "v2-r50":
            specs.append(ModelSpec(key, "random:v2", target_size or OFFICIAL_SCALE,
                                   "OS2D v2 / resnet50 (random weights)"))
        elif key == "v1-r101":
            specs.append(ModelSpec(key, "random:v1", target_size or OFFICIAL_SCALE,
                                   "OS2D v1 / resnet101 (random weights)"))
        elif key == "default":
            path = default_model_path()
            loaded = load_model(path)
            scale = target_size or loaded.eval_scale or OFFICIAL_SCALE
            v = "v1" if loaded.model.config.simplified_affine else "v2"
            specs.append(ModelSpec(key, str(path), float(scale),
                                   f"default model: OS2D {v} / {loaded.model.config.backbone} (trained)"))
        else:
            raise ValueError(f"unknown model '{key}', expected some of default, v2-r50, v1-r101")
    return specs


# -- the phases (run inside a child process) -----------------------------------------------------------

def build_model(source: str, seed: int):
    if source.startswith("random:"):
        config = {"v1": OS2D_V1, "v2": OS2D_V2}[source.split(":", 1)[1]]
        torch.manual_seed(seed)
        return OS2DModel(config)
    return load_model(source).model


def deepest_unit(model, units):
    """The unit whose backward goes furthest down: its first consumer comes earliest in the forward."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    return min(units, key=lambda u: min(order[c] for c in u.consumers))


def ranking_order(model, units, measured: int) -> tuple[list, list[int]]:
    """All units, reordered so the first `measured` are spread over the network, the deepest first
    (their backward times are a sample of the ranking's); returns (units, indices of the sample)."""
    deep = units.index(deepest_unit(model, units))
    spread = [deep] + [int(i) for i in np.linspace(0, len(units) - 1, max(measured, 1)).round() if int(i) != deep]
    spread = list(dict.fromkeys(spread))[:max(measured, 1)]
    return [units[i] for i in spread] + [u for i, u in enumerate(units) if i not in spread], spread


def lcp_batched(model, samples, unit, config=None) -> np.ndarray:
    """LCP's score of one unit from one backward of the losses of all `samples` summed (a mini-batch
    backward: every sample's graph is held until it runs). Per sample it builds exactly what
    `lcp_importance` builds (detection loss with GIoU + the unit's reconstruction terms), so for one
    sample the scores are that function's. Bench-only: it exists to measure how memory grows with k."""
    config = config or GradientConfig()
    device = model_device(model)
    state: dict = {}
    rec = {name: _Reconstruction(model.get_submodule(name), state) for name in unit.consumers}
    handles = [r.conv.register_forward_hook(r) for r in rec.values()]
    weights = [r.conv.weight for r in rec.values()]
    frozen = [w for w in weights if not w.requires_grad]
    for w in frozen:
        w.requires_grad_(True)
    stats_cfg = StatsConfig(context_scale=config.context_scale)
    score = torch.zeros(unit.channels, dtype=torch.float64, device=device)
    try:
        with eval_mode(model), _Resampling(model, config.float32_resampling), torch.enable_grad():
            total = None
            for s in samples:
                state["phase"] = "class"
                class_feats = model.class_features([c.to(device) for c in s.class_images])
                state["phase"] = "target"
                state["input_hw"] = s.image_hw
                state["rois"] = sample_rois(s, stats_cfg, device)[0]
                out = model.head(model.target_features(s.image.to(device).unsqueeze(0)), class_feats,
                                 with_detached=True)
                state["phase"] = None
                loss = sample_loss(model, out, s, config.loss)
                parts = [r.loss for r in rec.values() if r.loss is not None]
                if parts and config.reconstruction_weight > 0:
                    loss = loss + config.reconstruction_weight * sum(parts)
                for r in rec.values():
                    r.loss = None
                total = loss if total is None else total + loss
            for g in torch.autograd.grad(total, weights, allow_unused=True):
                if g is not None:
                    score += g.detach().double().square().sum(dim=[d for d in range(g.dim()) if d != 1])
    finally:
        for h in handles:
            h.remove()
        for w in frozen:
            w.requires_grad_(False)
        state.clear()
    return score.cpu().numpy()


def high_water(device: torch.device) -> int:
    """The phase's peak so far: the process's RSS high-water mark on CPU, torch's max allocated on CUDA."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return _proc_status_bytes("VmHWM") or 0


def plain_pass(model, calib, device: torch.device, trace: list[int]):
    """Plain inference over `calib` (as `bench.importance.plain_inference`: class branch, target branch,
    head, no hooks), appending the peak so far to `trace` after each image."""
    with Meter(device) as meter, eval_mode(model), torch.inference_mode():
        for sample in calib:
            cf = model.class_features([c.to(device) for c in sample.class_images])
            model.head(model.target_features(sample.image.to(device).unsqueeze(0)), cf)
            trace.append(high_water(device))
    return meter.result


def costliest_first(samples):
    """Images with the most classes (then boxes) first: a pass over one image is then a pass over the
    costliest one, so the one-image rows and the first point of a trace are not cheaper for their content
    than what follows."""
    return tuple(sorted(samples, key=lambda s: (-len(s.class_images), -int(s.boxes.shape[0]))))


def run_phase(job: dict) -> dict:
    """Set up the model and calibration set of `job` (the same in every phase), then measure one phase."""
    if job.get("threads", 0) > 0:
        torch.set_num_threads(job["threads"])
    device = pick_device(job["device"])
    model = build_model(job["source"], job["seed"]).to(device).eval()
    dataset = open_dataset(job["dataset"], job["split"])
    calib = build_calibration(dataset, job["calib_images"], job["scale"], job["seed"],
                              class_image_size=model.config.class_image_size)
    calib = CalibrationSet(costliest_first(calib.samples), calib.provenance)
    units = find_units(model)

    def first(k: int) -> CalibrationSet:
        return CalibrationSet(calib.samples[:k], calib.provenance)

    phase, k = job["phase"], int(job.get("images", 1))
    extra: dict = {"units": len(units), "image_hw": list(calib[0].image_hw),
                   "calibration": {"dataset": calib.provenance.dataset, "split": calib.provenance.split,
                                   "image_ids": [sm.image_id for sm in calib],
                                   "classes": [len(sm.class_images) for sm in calib]}}
    gc.collect()
    if phase == "plain":
        extra["trace"] = []
        m = plain_pass(model, first(k), device, extra["trace"])
    elif phase == "statistics":
        extra["trace"] = trace = []
        # progress comes before each image and once at the end: from the second call on, after an image
        m = collect_statistics(model, first(k), units, progress=lambda done, *_: done and trace.append(
            high_water(device))).measurement
    elif phase == "lcp-unit":
        unit = deepest_unit(model, units)
        extra["unit"] = unit.name
        marks: list[float] = []
        t0 = time.perf_counter()
        m = lcp_importance(model, first(k), [unit], progress=lambda *a: marks.append(time.perf_counter())).measurement
        extra["forward_s"], extra["backward_s"] = marks[0] - t0, [marks[1] - marks[0]]
    elif phase == "lcp-ranking":
        ordered, spread = ranking_order(model, units, int(job["measured_units"]))
        extra["measured"] = [units[i].name for i in spread]
        marks = []
        cancel = CancelToken()

        def progress(done: int, total: int, message: str = "") -> None:
            marks.append(time.perf_counter())
            if done + 1 >= len(spread):  # the last measured unit's backward runs, then the job stops
                cancel.cancel()

        t0 = time.perf_counter()
        with Meter(device) as meter:
            try:
                lcp_importance(model, first(1), ordered, progress=progress, cancel=cancel)
            except Cancelled:
                pass
            marks.append(time.perf_counter())
        m = meter.result
        extra["forward_s"] = marks[0] - t0
        extra["backward_s"] = [b - a for a, b in zip(marks[:len(spread)], marks[1:len(spread) + 1])]
    elif phase == "lcp-batch":
        unit = deepest_unit(model, units)
        extra["unit"] = unit.name
        with Meter(device) as meter:
            lcp_batched(model, first(k).samples, unit)
        m = meter.result
    else:
        raise ValueError(f"unknown phase {phase!r}")
    return {"seconds": m.seconds, "peak_bytes": m.peak_bytes, "start_bytes": m.start_bytes, "memory": m.memory,
            **extra}


def _child_main(job_json: str, out_path: str) -> int:
    result = run_phase(json.loads(job_json))
    Path(out_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


# -- the parent: one child per phase ------------------------------------------------------------------

def run_child(job: dict) -> dict:
    """Run one phase in a fresh interpreter; the result plus the child's lifetime peak RSS (wait4)."""
    with tempfile.TemporaryDirectory(prefix="os2d-memory-bench-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.Popen([sys.executable, "-m", "bench.memory", "--child", json.dumps(job),
                                 "--child-out", str(out)], cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        if rc != 0 or not out.exists():
            why = "killed (out of memory?)" if rc == -9 else f"exit status {rc}"
            return {"error": f"the phase failed: {why}", "process_peak_bytes": usage.ru_maxrss * 1024}
        result = json.loads(out.read_text(encoding="utf-8"))
    result["process_peak_bytes"] = usage.ru_maxrss * 1024  # Linux reports kB
    return result


def free_bytes(device: str) -> int:
    """Memory a new phase can use now: MemAvailable on CPU, the device's free memory on CUDA."""
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return int(torch.cuda.mem_get_info()[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2 ** 62


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys over xs; slope 0 with a single point."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return float(y.mean()), 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def batch_exceeding(intercept: float, slope: float, budget: float) -> int | None:
    """The smallest batch k >= 1 whose fitted peak intercept + slope·k exceeds `budget` (None: never)."""
    if intercept + slope > budget:
        return 1
    if slope <= 0:
        return None
    return int(math.floor((budget - intercept) / slope)) + 1


def batch_key(k: int) -> str:
    """Batch 1 is `lcp_importance` itself on one unit; larger batches the bench-only `lcp_batched`."""
    return "lcp-unit" if k == 1 else f"lcp-batch-{k}"


def lcp_peaks(runs: dict[str, dict], batches: Sequence[int]) -> list[tuple[int, int]]:
    """(images held, peak bytes) of the LCP batch runs that were measured."""
    return [(k, runs[batch_key(k)]["peak_bytes"]) for k in sorted(batches)
            if "peak_bytes" in runs.get(batch_key(k), {})]


def measure_model(spec: ModelSpec, args) -> dict:
    base = {"source": spec.source, "scale": spec.scale, "dataset": args.dataset, "split": args.split,
            "seed": args.seed, "device": args.device, "threads": args.threads,
            "calib_images": max(args.images, max(args.batches))}
    runs: dict[str, dict] = {}

    def run(name: str, **job) -> dict:
        print(f"[memory] {spec.key}: {name}", file=sys.stderr, flush=True)
        runs[name] = run_child({**base, **job})
        return runs[name]

    run("plain", phase="plain", images=args.images)
    run("statistics", phase="statistics", images=args.images)
    run("lcp-unit", phase="lcp-unit", images=1)
    run("lcp-ranking", phase="lcp-ranking", measured_units=args.ranking_units)
    for k in (b for b in args.batches if b > 1):
        points = lcp_peaks(runs, args.batches)
        if len(points) >= 2:
            a, s = fit_line(*zip(*points))
        elif "peak_bytes" in runs["lcp-unit"]:  # one point: an image costs at most what the phase added
            a, s = runs["lcp-unit"]["start_bytes"], runs["lcp-unit"]["peak_bytes"] - runs["lcp-unit"]["start_bytes"]
        else:
            a, s = 0.0, 0.0
        predicted, free = a + s * k, free_bytes(args.device)
        if predicted > HEADROOM * free:
            runs[batch_key(k)] = {"skipped": f"not run: predicted {predicted / GIB:.1f} GiB, over "
                                             f"{HEADROOM:.0%} of the {free / GIB:.1f} GiB free on this machine"}
            continue
        run(batch_key(k), phase="lcp-batch", images=k)
    return runs


# -- the report ------------------------------------------------------------------------------------

def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _images(n: int) -> str:
    return _count(n, "image", "images")


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "n/a"


def summarize(spec: ModelSpec, runs: dict[str, dict], args) -> dict:
    """The numbers the tables show, from one model's runs."""
    plain = runs["plain"]
    lcp_points = lcp_peaks(runs, args.batches)
    lcp_a, lcp_s = fit_line(*zip(*lcp_points)) if lcp_points else (float("nan"), float("nan"))
    ranking = runs["lcp-ranking"]
    out = {"lcp_fit": (lcp_a, lcp_s), "lcp_points": lcp_points, "plain_peak": plain.get("peak_bytes", 0)}
    if "backward_s" in ranking:
        per_unit = float(np.mean(ranking["backward_s"]))
        out["ranking_estimate_s"] = args.images * (ranking["forward_s"] + per_unit * ranking["units"])
        out["per_unit_s"] = per_unit
    return out


def report(specs: Sequence[ModelSpec], all_runs: dict[str, dict[str, dict]], args, device_name: str) -> str:
    any_run = next((r for runs in all_runs.values() for r in runs.values() if "calibration" in r), None)
    if any_run is None:
        return "## Memory: gradient-free statistics against LCP's backward\n\nEvery phase failed.\n"
    calib = any_run["calibration"]
    kind = any_run["memory"]
    cpu = kind.startswith("cpu")
    ids = ", ".join(f"{i} ({_count(c, 'class', 'classes')})" for i, c in zip(calib["image_ids"], calib["classes"]))
    lines = [
        "## Memory: gradient-free statistics against LCP's backward",
        "",
        f"- machine: {device_name}, {args.threads or torch.get_num_threads()} CPU threads, torch {torch.__version__}, "
        f"1-minute load average {args.load_average:.1f} when the run started (other processes share the CPUs: "
        "wall times are indicative); "
        + ("memory = peak RSS of a fresh process during the phase (high-water mark reset at its start; the "
           "process's lifetime peak, loading included, in brackets)" if cpu else
           "memory = torch's max allocated memory on the device during the phase"),
        f"- calibration: {calib['dataset']} / {calib['split']}, image ids {ids}, most classes first: the first "
        f"{args.images} for inference and statistics, the first k for a batch of k, the first alone for the "
        "one-image LCP rows",
        *([f"- {OFFICIAL_SCALE:g}: the GroZi evaluation scale of the released OS2D models (target h·w ≈ "
           f"{OFFICIAL_SCALE:g}², the single-scale setting); the default model at the evaluation scale stored in "
           "its file"] if any(spec.scale == OFFICIAL_SCALE for spec in specs) else []),
        *(["- random weights: the official OS2D weights are not available here. Memory and time depend on the "
           "shapes (architecture, image size, classes per image), not on the weight values"]
          if any(spec.source.startswith("random:") for spec in specs) else []),
        "- `+ GiB`: peak minus the memory in use when the phase started (model, inputs"
        + (", libraries" if cpu else "") + "). Ratios are to plain inference on the same model.",
        "",
        "| model | input h×w | phase | images held | wall s | peak GiB | + GiB | peak / plain | + / plain + |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    summaries = {}
    for spec in specs:
        runs = all_runs[spec.key]
        plain = runs["plain"]
        summaries[spec.key] = summarize(spec, runs, args)
        hw = next((r["image_hw"] for r in runs.values() if "image_hw" in r), None)
        size = f"{hw[0]}×{hw[1]} (scale {spec.scale:g})" if hw else f"scale {spec.scale:g}"
        units = next((r["units"] for r in runs.values() if "units" in r), 0)

        def row(label: str, held: str, r: dict) -> None:
            name = spec.title
            if "skipped" in r or "error" in r:
                lines.append(f"| {name} | {size} | {label} | {held} | | {r.get('skipped') or r['error']} | | | |")
                return
            peak, plus = r["peak_bytes"], max(r["peak_bytes"] - r["start_bytes"], 0)
            pplus = max(plain["peak_bytes"] - plain["start_bytes"], 0) if "peak_bytes" in plain else 0
            process = f" ({_gib(r['process_peak_bytes'])})" if cpu and r.get("process_peak_bytes") else ""
            lines.append(f"| {name} | {size} | {label} | {held} | {r['seconds']:.1f} | {_gib(peak)}{process} | "
                         f"{_gib(plus)} | {_ratio(peak, plain.get('peak_bytes', 0))} | {_ratio(plus, pplus)} |")

        row(f"plain inference, {_images(args.images)}", "1", plain)
        row(f"statistics pass, {_images(args.images)}", "1", runs["statistics"])
        unit = runs["lcp-unit"].get("unit", "deepest unit")
        row(f"LCP, one unit (`{unit}`), 1 image", "1", runs["lcp-unit"])
        ranking = runs["lcp-ranking"]
        measured = len(ranking.get("measured", [])) or args.ranking_units
        row(f"LCP, whole ranking ({units} units' terms in the graph; first {measured} backwards), 1 image", "1",
            ranking)
        for k in sorted(b for b in args.batches if b > 1):
            row(f"LCP mini-batch backward, one unit, {_images(k)}", str(k), runs[batch_key(k)])

    budgets = " | ".join(f"LCP > {b:g} GiB at batch" for b in args.budgets)
    lines += [
        "",
        "Growth with the images held at once. `lcp_importance` takes the calibration images one by one (one image's "
        "graph at a time, so its memory is the batch-1 row whatever the set size); a mini-batch backward over k "
        "images holds k graphs. The statistics pass streams images into running sums: its peak after each image, "
        "beside plain inference's, shows whether it grows with the images seen. LCP: lines fitted to the peaks "
        "above; a batch is where the fitted peak first exceeds the budget.",
        "",
        f"| model | batches measured | LCP GiB at batch 1 | LCP GiB / image held | {budgets} "
        "| plain inference: peak GiB after each image | statistics: peak GiB after each image |",
        "|---|---|---:|---:|" + "---:|" * len(args.budgets) + "---|---|",
    ]
    for spec in specs:
        s = summaries[spec.key]
        a, slope = s["lcp_fit"]
        crossings = []
        for b in args.budgets:
            k = batch_exceeding(a, slope, b * GIB) if math.isfinite(slope) and len(s["lcp_points"]) >= 2 else None
            crossings.append("n/a" if len(s["lcp_points"]) < 2 else ("never" if k is None else str(k)))
        at1 = dict(s["lcp_points"]).get(1)
        traces = [" → ".join(_gib(b) for b in all_runs[spec.key][name].get("trace", [])) or "n/a"
                  for name in ("plain", "statistics")]
        measured = ", ".join(str(k) for k, _ in s["lcp_points"]) or "none"
        lines.append(f"| {spec.title} | {measured} | {_gib(at1) if at1 else 'n/a'} | "
                     f"{_gib(slope) if len(s['lcp_points']) >= 2 else 'n/a'} | " + " | ".join(crossings)
                     + f" | {traces[0]} | {traces[1]} |")

    lines += [
        "",
        f"Wall time of a ranking over the calibration set ({_images(args.images)}): the statistics pass measured; LCP "
        "*estimated* as images × (forward + units × the mean backward time of the measured units).",
        "",
        "| model | units | LCP forward s | LCP backward s / unit (measured units) | LCP ranking s (estimate) "
        "| statistics s (measured) | LCP / statistics |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for spec in specs:
        runs, s = all_runs[spec.key], summaries[spec.key]
        ranking = runs["lcp-ranking"]
        stats = runs.get("statistics", {})
        if "ranking_estimate_s" not in s or "seconds" not in stats:
            lines.append(f"| {spec.title} | | | | n/a | | |")
            continue
        b = ranking["backward_s"]
        lines.append(f"| {spec.title} | {ranking['units']} | {ranking['forward_s']:.1f} | {s['per_unit_s']:.1f} "
                     f"(min {min(b):.1f}, max {max(b):.1f}, {len(b)} units) | ~{s['ranking_estimate_s']:.0f} | "
                     f"{stats['seconds']:.1f} | ~{s['ranking_estimate_s'] / stats['seconds']:.0f}× |")

    verdicts = []
    for spec in specs:
        r = all_runs[spec.key].get("statistics", {})
        plain = all_runs[spec.key]["plain"]
        if "peak_bytes" in r and "peak_bytes" in plain:
            ratio = r["peak_bytes"] / plain["peak_bytes"]
            verdicts.append(f"{spec.title}: {ratio:.2f}× ({'within' if ratio <= 1.05 else 'above'} 1.05×)")
    lines += ["", "Statistics pass against plain inference, peak: " + "; ".join(verdicts) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=None,
                   help="comma-separated: default (the bundled model at its own scale), v2-r50, v1-r101 "
                        "(default: all three; the default model alone with --quick)")
    p.add_argument("--dataset", default=None,
                   help="dataset folder or grozi:PATH (default: the benchmark bundled with the app, train split)")
    p.add_argument("--split", default=None)
    p.add_argument("--images", type=int, default=None,
                   help="calibration images for inference and statistics (default 4; 1 with --quick)")
    p.add_argument("--target-size", type=float, default=None,
                   help="one scale for every model (default: 1280 for v2-r50 and v1-r101, the default model's "
                        "own; 256 with --quick)")
    p.add_argument("--batches", default=None, help="images per LCP backward (default 1,2,4; 1,2 with --quick)")
    p.add_argument("--ranking-units", type=int, default=None,
                   help="LCP units whose backward is measured in the whole-ranking run (default 4; 2 with --quick)")
    p.add_argument("--budgets", default=",".join(f"{b:g}" for b in BUDGETS_GIB), help="GiB, comma-separated")
    p.add_argument("--quick", action="store_true",
                   help="256 px, one image, batches 1 and 2, the default model: checks the run, not for quoting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out-md", default=None, help="markdown file to write (default with --section: bench/RESULTS.md)")
    p.add_argument("--section", default=None, help="write only this marked section of --out-md, keeping the rest")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        return _child_main(args.child, args.child_out)
    if args.out_md is None and args.section is None:
        p.error("pass --out-md FILE, --section NAME, or both")
    command = command_line("memory", argv)
    args.images = args.images or (1 if args.quick else 4)
    args.ranking_units = args.ranking_units or (2 if args.quick else 4)
    args.batches = sorted({int(b) for b in (args.batches or ("1,2" if args.quick else "1,2,4")).split(",")} | {1})
    args.budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
    if args.quick and args.target_size is None:
        args.target_size = 256.0
    if args.dataset is None:
        args.dataset, args.split = str(benchmark_dir()), args.split or "train"
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.models = args.models or ("default" if args.quick else "default,v2-r50,v1-r101")
    specs = model_specs([m.strip() for m in args.models.split(",") if m.strip()], args.target_size)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else cpu_name()

    args.load_average = os.getloadavg()[0]
    t0 = time.perf_counter()
    all_runs = {spec.key: measure_model(spec, args) for spec in specs}
    text = report(specs, all_runs, args, device_name)
    text += f"\nWhole run: {time.perf_counter() - t0:.0f} s.\n"
    text = publish(text, command=command, section=args.section, out_md=args.out_md, quick=args.quick)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
