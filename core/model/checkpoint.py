"""Reading official OS2D checkpoints and reading/writing our own self-describing ones.

Every file is opened with `torch.load(weights_only=True)`: a model file never runs code. Our own
format stores the architecture config, the shape of every tensor (so a pruned model is rebuilt
without its parent), provenance and metrics; the shared trunk is stored once.
"""

from __future__ import annotations

from core.errors import InputError

import hashlib
import io
import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from core.io import ZIP_MAGIC, atomic_write_bytes, looks_like, read_head, zip_end_missing
from core.model.os2d import ModelConfig, OS2DModel

OS2D_TARGET_SIZE = 1280.0  # GroZi-3.2k's evaluation scale: what official models are run at
FORMAT_NAME = "os2d-studio"
FORMAT_VERSION = 1
TRUNK = "net_feature_maps."
CLASS_TRUNK = "net_label_features.net_class_features."
REGRESSOR = "os2d_head_creator.aligner.parameter_regressor."


CHECKSUM_KEY = "content_sha256"  # our files' checksum of their content; see content_digest
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")  # torch's legacy header
DAMAGED = "damaged: content does not match its checksum"


class CheckpointError(InputError):
    """A model file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class LoadedModel:
    model: OS2DModel
    path: str
    kind: str  # "official", "os2d-studio", "trunk-only"
    meta: dict = field(default_factory=dict)  # provenance, metrics, eval_scale, plan, ...
    sha256: str = ""  # of the whole file
    verified: bool = False  # the file recorded a content checksum and its content matched it

    @property
    def eval_scale(self) -> float | None:
        """The target size (h·w ≈ size²) the model was trained at and is judged at, when it records one:
        its fixed-size default boxes only fit objects of the size it learned."""
        value = self.meta.get("eval_scale")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None

    def scale(self, dataset: Any = None) -> float:
        """The one rule for the size a model runs at: its own scale, else the dataset's evaluation scale
        (OS2D's protocol for models that store none), else GroZi-3.2k's 1280, OS2D's default."""
        return self.eval_scale or float(getattr(dataset, "eval_scale", 0) or OS2D_TARGET_SIZE)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _numpy_safe_globals() -> list:
    """The plain numpy types official best-model checkpoints pickle (their metric values)."""
    import numpy as np

    allowed: list = [np.dtype, np.ndarray]
    for mod_name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            mod = __import__(mod_name, fromlist=["scalar", "_reconstruct"])
            allowed += [mod.scalar, mod._reconstruct]
        except (ImportError, AttributeError):
            pass
    for name in ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType"):
        if hasattr(np, "dtypes") and hasattr(np.dtypes, name):
            allowed.append(getattr(np.dtypes, name))
    return allowed


def _zip_problem(path: Path, size: int) -> str:
    """Why a file that starts like a zip is unusable as a torch checkpoint; "" when the zip is sound."""
    import zipfile

    try:
        zf = zipfile.ZipFile(path)
    except Exception:  # zipfile raises BadZipFile, struct.error, EOFError, ... on a damaged archive
        if zip_end_missing(path, size):
            return f"truncated or corrupt ({size:,} bytes, expected more)"
        return "corrupt (its table of contents is damaged)"
    with zf:
        if any(i.header_offset + i.compress_size > size for i in zf.infolist()):
            return f"truncated or corrupt ({size:,} bytes, expected more)"
        try:  # the zip's own CRCs and headers: catches damage in files that carry no checksum of ours
            bad = zf.testzip()
        except Exception:
            bad = "?"
        if bad is not None:
            return DAMAGED
        names = zf.namelist()
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            if names and all(n.endswith(".npy") for n in names):
                return "not a PyTorch checkpoint (it looks like a NumPy .npz archive)"
            return "not a PyTorch checkpoint (it looks like a zip archive of other files)"
        return ""


def read_file(path: str | os.PathLike) -> Any:
    """torch.load with weights_only=True and errors that say what is wrong with the file.

    The file's first bytes decide what it is before torch sees it, so a foreign, truncated or damaged
    file gets a message of ours rather than the zip or pickle library's."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "file not found")
    if path.is_dir():
        raise CheckpointError(path, "is a directory, expected a model file")
    try:
        size, head = read_head(path)
    except OSError as e:
        raise CheckpointError(path, f"cannot read the file ({e.strerror or type(e).__name__})") from None
    if size == 0:
        raise CheckpointError(path, "file is empty")
    if head.startswith(ZIP_MAGIC):
        problem = _zip_problem(path, size)
        if problem:
            raise CheckpointError(path, problem)
    elif not head.startswith(_LEGACY_MAGIC):
        if size < len(_LEGACY_MAGIC) and (_LEGACY_MAGIC.startswith(head) or ZIP_MAGIC.startswith(head)):
            raise CheckpointError(path, f"truncated or corrupt ({size:,} bytes, expected more)")
        kind = looks_like(head)
        raise CheckpointError(path, f"not a PyTorch checkpoint (it looks like {kind})" if kind
                              else "not a PyTorch checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e):
            raise CheckpointError(path, "it contains pickled Python objects that a model file should not need; "
                                        "refusing to run code from it") from None
        raise CheckpointError(path, "corrupt (its contents do not read as a PyTorch checkpoint)") from None
    except Exception as e:  # torch raises many types for damaged files; all mean "unusable"
        if isinstance(e, EOFError) or "unexpected EOF" in str(e):
            raise CheckpointError(path, f"truncated or corrupt ({size:,} bytes, expected more)") from None
        raise CheckpointError(path, "corrupt (its contents do not read as a PyTorch checkpoint)") from None


# -- architecture detection ------------------------------------------------------------------------
def _trunk_arch(sd: Mapping[str, torch.Tensor], prefix: str, path) -> str:
    blocks = {k[len(prefix):].split(".")[1] for k in sd if k.startswith(prefix + "layer3.")}
    n = len(blocks)
    bottleneck = any(k.startswith(prefix + "layer3.0.conv3.") for k in sd)
    table = {(False, 2): "resnet18", (False, 6): "resnet34", (True, 6): "resnet50", (True, 23): "resnet101"}
    arch = table.get((bottleneck, n))
    if arch is None:
        raise CheckpointError(path, f"unrecognized trunk: layer3 has {n} {'bottleneck' if bottleneck else 'basic'} blocks "
                                    "(expected a ResNet-18/34/50/101 cut after layer3)")
    return arch


def infer_config(sd: Mapping[str, torch.Tensor], path="<state dict>", class_image_size: int = 240) -> ModelConfig:
    """Recognise an OS2D architecture from an official-layout state dict."""
    if not any(k.startswith(TRUNK) for k in sd):
        raise CheckpointError(path, "no OS2D weights: expected keys starting with 'net_feature_maps.' "
                                    f"(found e.g. {', '.join(list(sd)[:3]) or 'nothing'})")
    if (REGRESSOR + "linear.weight") not in sd:
        raise CheckpointError(path, "no transformation net: missing 'os2d_head_creator.aligner.parameter_regressor.linear.weight'")
    arch = _trunk_arch(sd, TRUNK, path)
    n_params = sd[REGRESSOR + "linear.weight"].shape[0]
    if n_params not in (4, 6):
        raise CheckpointError(path, f"transformation net outputs {n_params} parameters, expected 6 (v2) or 4 (v1)")
    merged = True
    ck = CLASS_TRUNK + "conv1.weight"
    if ck in sd and not torch.equal(sd[ck], sd[TRUNK + "conv1.weight"]):
        merged = False
    simplified = n_params == 4
    # released v1 uses a simplified affine without inversion, v2 a full affine with inversion
    return ModelConfig(arch, simplified_affine=simplified, inverse_geom=not simplified,
                       merge_branch_parameters=merged, class_image_size=class_image_size)


def conform_to_shapes(model: nn.Module, shapes: Mapping[str, tuple]) -> None:
    """Resize convolutions and batch norms whose stored shapes differ (pruned models).

    Replacing a module on its parent also replaces it in every branch sharing that parent.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Conv2d):
            w = shapes.get(name + ".weight")
            if w is None or tuple(w) == tuple(module.weight.shape):
                continue
            new = nn.Conv2d(w[1] * module.groups, w[0], module.kernel_size, module.stride, module.padding,
                            module.dilation, module.groups, module.bias is not None, module.padding_mode)
        elif isinstance(module, nn.BatchNorm2d):
            w = shapes.get(name + ".weight")
            if w is None or tuple(w) == (module.num_features,):
                continue
            new = nn.BatchNorm2d(w[0], module.eps, module.momentum, module.affine, module.track_running_stats)
        else:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, new)


def _with_branch_aliases(model: OS2DModel, sd: dict) -> dict:
    """Add the class-branch keys for a merged trunk stored once."""
    if not model.config.merge_branch_parameters:
        return sd
    out = dict(sd)
    for k, v in sd.items():
        if k.startswith(TRUNK):
            out.setdefault(CLASS_TRUNK + k[len(TRUNK):], v)
    return out


def content_digest(config: Mapping, meta: Mapping, sd: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of what a loader uses: the config and meta (canonical JSON), then every tensor in sorted
    key order as key, dtype, shape and raw bytes. It does not depend on how torch lays out the zip, so
    it survives any re-save of the same content and catches any changed bit of it."""
    h = hashlib.sha256()
    h.update(json.dumps({"config": config, "meta": meta}, sort_keys=True, default=str).encode())
    for key in sorted(sd):
        t = sd[key]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{key} is a {type(t).__name__}, not a tensor")
        h.update(f"\n{key}\0{t.dtype}\0{list(t.shape)}\n".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _verify_content(data: Mapping, path) -> bool:
    """Check a recorded checksum (files written before checksums have none: False, loaded as before)."""
    recorded = data.get(CHECKSUM_KEY)
    if recorded is None:
        return False
    try:
        ok = isinstance(recorded, str) and recorded == content_digest(data["config"], data.get("meta", {}),
                                                                         data["state_dict"])
    except (TypeError, ValueError, RuntimeError):  # a value that is no tensor, a config that is no JSON
        ok = False
    if not ok:
        raise CheckpointError(path, DAMAGED)
    return True


def check_values(sd: Mapping[str, torch.Tensor], path) -> None:
    """Refuse weights no trained network has: NaN or infinite values, negative batch-norm variances.
    Such a file loads fine and then detects nothing, far from the cause."""
    import numpy as np

    for key, t in sd.items():
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
            continue
        t = t.detach().cpu()
        # numpy's sum: single-threaded, so no stall behind other busy threads; a sum is finite when every
        # value is, and a huge sum that overflows is told apart by the full check
        a = t.numpy() if t.dtype in (torch.float32, torch.float64) else t.float().numpy()
        if not np.isfinite(a.sum()) and not np.isfinite(a).all():
            kind = "NaN" if np.isnan(a).any() else "infinite"
            raise CheckpointError(path, f"layer {key} holds {kind} values")
        if key.endswith("running_var") and a.min() < 0:
            raise CheckpointError(path, f"layer {key} holds negative values")


def build_and_load(config: ModelConfig, sd: Mapping[str, torch.Tensor], path) -> OS2DModel:
    check_values(sd, path)
    model = OS2DModel(config)
    conform_to_shapes(model, {k: tuple(v.shape) for k, v in sd.items()})
    full = _with_branch_aliases(model, dict(sd))
    expected = model.state_dict()
    missing = [k for k in expected if k not in full]
    unexpected = [k for k in full if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(path, f"weights do not match {config.describe()}: " + "; ".join(parts))
    for k, v in expected.items():
        if tuple(full[k].shape) != tuple(v.shape):
            raise CheckpointError(path, f"weights do not match {config.describe()}: '{k}' has shape "
                                        f"{tuple(full[k].shape)}, the architecture needs {tuple(v.shape)}")
    model.load_state_dict(full, strict=True)
    from core.prune.surgery import consistency_problems  # the unit structure knows which widths must agree

    problems = consistency_problems(model)
    if problems:
        raise CheckpointError(path, f"layers do not fit together ({len(problems)} mismatches, e.g. {problems[0]})")
    model.eval()
    return model


def load_trunk_weights(model: OS2DModel, path: str | os.PathLike) -> int:
    """Initialise the trunk from a torchvision ImageNet ResNet state dict (fc and layer4 are ignored)."""
    data = read_file(path)
    sd = data.get("state_dict", data) if isinstance(data, dict) else None
    if not isinstance(sd, dict) or "conv1.weight" not in sd:
        raise CheckpointError(path, "not a torchvision ResNet state dict (no 'conv1.weight')")
    trunk = model.net_feature_maps
    own = trunk.state_dict()
    usable = {k: v for k, v in sd.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    check_values(usable, path)
    if len(usable) < len(own) // 2:
        raise CheckpointError(path, f"only {len(usable)} of {len(own)} trunk tensors match a {trunk.arch} trunk")
    trunk.load_state_dict(usable, strict=False)
    return len(usable)


def load_model(path: str | os.PathLike, *, config: ModelConfig | None = None) -> LoadedModel:
    """Load any supported model file: our format, the official layout ({"net": ...}), or a bare state dict."""
    path = Path(path)
    data = read_file(path)
    if not isinstance(data, dict):
        raise CheckpointError(path, f"expected a dictionary of weights, found {type(data).__name__}")
    digest = file_sha256(path)
    if data.get("format") == FORMAT_NAME:
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CheckpointError(path, f"bad format version {str(version)[:40]!r} (expected a whole number)")
        if version > FORMAT_VERSION:
            raise CheckpointError(path, f"written by a newer os2d-studio (format version {version}); please upgrade")
        if "config" not in data or "state_dict" not in data:
            raise CheckpointError(path, "os2d-studio file without 'config' or 'state_dict' (truncated?)")
        verified = _verify_content(data, path)  # damage first: it explains any odd value below
        for key in ("config", "meta"):
            if not isinstance(data.get(key, {}), dict):
                raise CheckpointError(path, f"'{key}' is a {type(data[key]).__name__}, expected a mapping")
        try:
            cfg = ModelConfig.from_json(data["config"])
        except (TypeError, ValueError) as e:
            raise CheckpointError(path, f"bad architecture config: {e}") from None
        model = build_and_load(cfg, _tensors(data["state_dict"], path), path)
        return LoadedModel(model, str(path), FORMAT_NAME, dict(data.get("meta", {})), digest, verified)
    if "net" in data and isinstance(data["net"], dict):
        sd = data["net"]
        kind = "official"
    elif any(isinstance(k, str) and k.startswith(TRUNK) for k in data):
        sd = data
        kind = "official"
    elif "conv1.weight" in data or ("state_dict" in data and isinstance(data["state_dict"], dict)):
        raise CheckpointError(path, "this is a backbone/ImageNet or weakalign file, not an OS2D model; "
                                    "use it to initialise training (--init-trunk) instead")
    else:
        keys = ", ".join(map(str, list(data)[:5]))
        raise CheckpointError(path, f"unknown checkpoint layout (top-level keys: {keys}); expected an OS2D "
                                    "checkpoint with 'net' or an os2d-studio model")
    sd = _tensors(sd, path)
    cfg = config or infer_config(sd, path)
    model = build_and_load(cfg, sd, path)
    meta = {"official_keys": {k: _plain(v) for k, v in data.items() if isinstance(k, str) and k.startswith("criterion")}}
    return LoadedModel(model, str(path), kind, meta, digest)


def _tensors(sd: Any, path) -> dict[str, torch.Tensor]:
    """A state dict as loaders expect it: names to tensors."""
    if not isinstance(sd, dict):
        raise CheckpointError(path, f"the weights are a {type(sd).__name__}, expected a mapping of names to tensors")
    for k, v in sd.items():
        if not isinstance(k, str):
            raise CheckpointError(path, f"weights entry {str(k)[:40]!r} is not named by a string")
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(path, f"weights entry {k[:80]!r} holds a {type(v).__name__}, expected a tensor")
    return sd


def _plain(v):
    try:
        return v.item()
    except AttributeError:
        return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)


def unique_state_dict(model: OS2DModel) -> dict[str, torch.Tensor]:
    """The state dict with the shared class-branch trunk stored once."""
    sd = model.state_dict()
    if model.config.merge_branch_parameters:
        sd = {k: v for k, v in sd.items() if not k.startswith(CLASS_TRUNK)}
    return {k: v.detach().cpu().clone() for k, v in sd.items()}


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """Serialize in memory, then write atomically: readers never see half a file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def save_model(model: OS2DModel, path: str | os.PathLike, *, meta: dict | None = None, overwrite: bool = False,
               protect: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Save in our self-describing format. Refuses to replace an existing file unless `overwrite`,
    and never replaces any path in `protect` (the model it was derived from)."""
    path = Path(path)
    for p in protect:
        if p and path.exists() and Path(p).exists() and path.resolve() == Path(p).resolve():
            raise CheckpointError(path, "refusing to overwrite the input model; choose another output path")
    if path.exists() and not overwrite:
        raise CheckpointError(path, "file exists; refusing to overwrite it (choose another path or pass overwrite)")
    sd = unique_state_dict(model)
    config = model.config.to_json()
    plain_meta = json.loads(json.dumps(meta or {}, default=_plain))  # plain types only: loads with weights_only
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": config,
        "shapes": {k: list(v.shape) for k, v in sd.items()},
        "state_dict": sd,
        "meta": plain_meta,
        CHECKSUM_KEY: content_digest(config, plain_meta, sd),  # readers before checksums ignore it
    }
    atomic_torch_save(payload, path)
    return path


# -- other files of ours (resume checkpoints) ---------------------------------------------------------
def tree_digest(obj: Any) -> str:
    """SHA-256 of a nested payload (mappings, lists, tensors, plain values) as a loader sees it: keys in
    sorted order, tensors by dtype, shape and bytes. Like `content_digest`, independent of torch's zip
    layout; it covers what a resume checkpoint holds besides weights (optimizer state, history)."""
    import numpy as np

    h = hashlib.sha256()

    def walk(v: Any) -> None:
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{list(t.shape)}:".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(v, Mapping):
            h.update(f"{{{len(v)}:".encode())
            for k in sorted(v, key=lambda k: (type(k).__name__, repr(k))):
                h.update(f"{type(k).__name__}:{k!r}=".encode())
                walk(v[k])
            h.update(b"}")
        elif isinstance(v, (list, tuple)):
            h.update(f"[{len(v)}:".encode())
            for item in v:
                walk(item)
            h.update(b"]")
        elif v is None or isinstance(v, (bool, int, float, str)):
            h.update(f"{type(v).__name__}:{v!r};".encode())
        elif isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            h.update(f"A{a.dtype.str}{list(a.shape)}:".encode())
            h.update(a.tobytes())
        elif isinstance(v, np.generic):
            h.update(f"{type(v).__name__}:{v.item()!r};".encode())
        else:
            raise TypeError(f"cannot digest a {type(v).__name__}")

    walk(obj)
    return h.hexdigest()


def save_checked(payload: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a payload of ours atomically with a digest of all of it (`read_checked` verifies it)."""
    payload = dict(payload)
    payload.pop(CHECKSUM_KEY, None)
    payload[CHECKSUM_KEY] = tree_digest(payload)
    atomic_torch_save(payload, path)
    return Path(path)


def read_checked(path: str | os.PathLike) -> dict:
    """A payload `save_checked` wrote, through `read_file`, its digest verified (DAMAGED when it does not
    match). A payload written before digests has none and is returned as read: the zip's own CRCs, which
    `read_file` checks, are all that guards it."""
    data = read_file(path)
    if not isinstance(data, dict):
        raise CheckpointError(path, f"expected a dictionary, found {type(data).__name__}")
    recorded = data.pop(CHECKSUM_KEY, None)
    if recorded is not None:
        try:
            ok = isinstance(recorded, str) and recorded == tree_digest(data)
        except TypeError:  # a value no payload of ours holds
            ok = False
        if not ok:
            raise CheckpointError(path, DAMAGED)
    return data


def model_size_bytes(model: OS2DModel) -> int:
    """fp32 bytes of the unique parameters (what the seed study reports as model size)."""
    return sum(p.numel() for p in model.parameters()) * 4
