"""Where deploy artefacts live and how they are written and checked.

A *deploy folder* holds the exported graphs of one model and their sidecars: `target.onnx`,
`class.onnx`, `export.json`, and after quantization `target_int8.xml`/`.bin` and `quantize.json`.
Folders the tools make for themselves sit in a cache keyed by the model's content digest
(`~/.cache/os2d-studio/deploy/<sha256>/`, root overridable with `OS2D_STUDIO_CACHE`); a folder the
user names is written only where none of its files exist yet. Folders are built beside their
destination and moved in whole, so a reader never sees half an export.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.errors import InputError
from core.io import _umask, atomic_write_text, check_json_digest, looks_like, read_head, with_json_digest

CACHE_ENV = "OS2D_STUDIO_CACHE"
SIDECAR_FORMAT = "os2d-studio-deploy"
# Bump when the exported graphs change: cached exports (and int8 models made from them) of an older
# version are made again. Older versions whose outputs mean the same stay readable from a user's folder.
# 2: the correlation resampling's coordinates as one fused elementwise pass (same outputs, faster).
EXPORT_VERSION = 2
READABLE_EXPORT_VERSIONS = (1, 2)

TARGET_ONNX = "target.onnx"
CLASS_ONNX = "class.onnx"
EXPORT_JSON = "export.json"
TARGET_INT8_XML = "target_int8.xml"
TARGET_INT8_BIN = "target_int8.bin"
QUANTIZE_JSON = "quantize.json"


class DeployError(InputError):
    """An exported or quantized model that cannot be used; the message names the file and the problem."""


# -- identity and places ---------------------------------------------------------------------------
def model_digest(model) -> str:
    """SHA-256 of an OS2D model's architecture and tensors (`checkpoint.content_digest` without meta):
    what an export depends on, the same for a model in memory and for any file holding it."""
    from core.model.checkpoint import content_digest, unique_state_dict

    return content_digest(model.config.to_json(), {}, unique_state_dict(model))


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "os2d-studio"


def model_cache_dir(digest: str) -> Path:
    return cache_root() / "deploy" / digest


# -- sidecars --------------------------------------------------------------------------------------
def write_sidecar(path: Path, kind: str, data: Mapping[str, Any]) -> None:
    body = json.loads(json.dumps({"format": SIDECAR_FORMAT, "kind": kind, **data}, default=str))
    atomic_write_text(path, json.dumps(with_json_digest(body), indent=1, sort_keys=False) + "\n")


def read_sidecar(path: str | os.PathLike, kind: str) -> dict:
    """A sidecar of `kind` ("export", "quantize"), or a DeployError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DeployError(path, "file not found" if not path.exists() else "is not a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DeployError(path, "not a JSON sidecar of an os2d-studio export (unreadable JSON)") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise DeployError(path, "not a sidecar written by os2d-studio export or quantize")
    if data.get("kind") != kind:
        raise DeployError(path, f"a sidecar of kind '{data.get('kind')}', expected '{kind}'")
    check_json_digest(data, path, DeployError)
    return data


# -- checking files --------------------------------------------------------------------------------
def _describe_foreign(path: Path) -> str:
    try:
        size, head = read_head(path)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if size == 0:
        return "file is empty"
    kind = looks_like(head)
    return kind if kind else f"unrecognised content ({size} bytes)"


def check_onnx(path: str | os.PathLike, inputs: Iterable[str], outputs: Iterable[str]):
    """Parse an ONNX file and check it is the graph we exported (its input and output names).

    Returns the parsed `onnx.ModelProto`; anything else is a one-line DeployError naming the file."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise DeployError(path, "file not found" if not path.exists() else "is a directory, expected an ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError, UnicodeDecodeError):
        kind = _describe_foreign(path)
        raise DeployError(path, f"not a readable ONNX model ({kind}; damaged or another kind of file)") from None
    if not len(proto.graph.node):
        raise DeployError(path, f"not a usable ONNX model ({_describe_foreign(path)}; it has no graph)")
    got_in = [i.name for i in proto.graph.input]
    got_out = [o.name for o in proto.graph.output]
    if got_in != list(inputs) or got_out != list(outputs):
        raise DeployError(path, f"an ONNX model, but not one os2d-studio exported (inputs {', '.join(got_in) or 'none'}; "
                                f"outputs {', '.join(got_out) or 'none'})")
    return proto


def check_ir_files(xml: str | os.PathLike) -> Path:
    """An OpenVINO IR is an .xml with its .bin beside it; refuse anything that is not, naming the file."""
    xml = Path(xml)
    if not xml.is_file():
        raise DeployError(xml, "file not found" if not xml.exists() else "is a directory, expected an OpenVINO .xml")
    try:
        _, head = read_head(xml)
    except OSError as e:
        raise DeployError(xml, f"cannot be read ({e.strerror or e})") from None
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not (text.startswith(b"<?xml") or text.startswith(b"<net")) or b"<net" not in head:
        raise DeployError(xml, f"not an OpenVINO IR ({_describe_foreign(xml)})")
    bin_path = xml.with_suffix(".bin")
    if not bin_path.is_file():
        raise DeployError(bin_path, "weights of the OpenVINO IR are missing (the .bin beside the .xml)")
    return bin_path


# -- writing folders -------------------------------------------------------------------------------
def staging_dir(dest: Path) -> Path:
    """A fresh folder beside `dest` (same file system, so moving out of it is a rename)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))


def existing(dest: Path, names: Iterable[str]) -> list[str]:
    return [n for n in names if (dest / n).exists()]


def publish(staged: Path, dest: Path) -> None:
    """Move every file of `staged` into `dest` without replacing any file there; `staged` is removed.

    When `dest` does not exist the folder is renamed in one step; otherwise each file is hard-linked
    in (which fails rather than replace) or, where links are not possible, copied after a check."""
    os.chmod(staged, 0o777 & ~_umask())  # mkdtemp made it private; files in it already have the usual modes
    try:
        if not dest.exists():
            try:
                os.rename(staged, dest)
                return
            except OSError:
                if not dest.is_dir():  # something else appeared there
                    raise
        clash = existing(dest, (p.name for p in staged.iterdir()))
        if clash:
            raise DeployError(dest / clash[0], "file exists; refusing to overwrite it (choose a new folder)")
        for f in sorted(staged.iterdir()):
            target = dest / f.name
            try:
                os.link(f, target)
            except FileExistsError:
                raise DeployError(target, "file exists; refusing to overwrite it (choose a new folder)") from None
            except OSError:
                if target.exists():
                    raise DeployError(target, "file exists; refusing to overwrite it (choose a new folder)") from None
                shutil.copy2(f, target)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
