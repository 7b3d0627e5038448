"""What the subcommands share: argument types that fail as argparse usage errors, the model and size
choices, and the --backend/--precision options."""

from __future__ import annotations

import argparse


def _number(text: str, kind: type, least: float, what: str):
    """argparse type check: a finite number of `kind` ≥ `least`, else argparse's one-line usage error."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not least <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, 1, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    """0 means the default or no limit."""
    return _number(text, int, 0, "a whole number of 0 or more")


def non_negative_float(text: str) -> float:
    """0 means the model's or the dataset's own value."""
    return _number(text, float, 0.0, "a number of 0 or more")


def _model_path(arg: str | None) -> str:
    from core.resources import require_default_model

    return arg or str(require_default_model())


def open_model(arg: str | None):
    from core.model.checkpoint import load_model

    return load_model(_model_path(arg))


def chosen_size(args, loaded) -> float | None:
    """--target-size, else the model's own eval scale; None when neither says (official models)."""
    return args.target_size or loaded.eval_scale


def detection_size(args, loaded) -> float:
    """`chosen_size`, else OS2D's default."""
    from core.detect import DEFAULT_TARGET_SIZE

    return float(chosen_size(args, loaded) or DEFAULT_TARGET_SIZE)


def backend_kwargs(args) -> dict:
    """Detector keywords for --backend/--precision (and --deploy-dir where the command has it)."""
    return {"backend": args.backend, "precision": args.precision, "deploy_dir": getattr(args, "deploy_dir", None)}


def where(det) -> str:
    return str(det.device) if det.backend == "torch" else det.describe()


def add_backend_options(p: argparse.ArgumentParser, deploy_dir: bool = True) -> None:
    p.add_argument("--backend", default="torch", choices=["torch", "onnxruntime", "openvino"],
                   help="what runs the network: torch, or the exported graphs on ONNX Runtime or OpenVINO "
                        "(exported on first use into the cache); decoding and NMS are the same for all")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"],
                   help="openvino only: bf16 where the CPU has it natively, int8 after `os2d-studio quantize`")
    if deploy_dir:
        p.add_argument("--deploy-dir", help="a folder from `os2d-studio export` or `quantize` (default: the cache)")
