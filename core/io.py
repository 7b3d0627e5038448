"""Files: atomic writes (a reader, or a crash, never sees half a file) and telling what a file is, so a
loader that meets a foreign or truncated file can say so in its own words."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

SNIFF_BYTES = 4096  # how much of a file `looks_like` reads


def _umask() -> int:
    """The process umask, read without changing it where the system allows (changing it races threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode(path: Path) -> int:
    """What `open(path, "w")` would give: the replaced file's mode, else 0666 less the umask.

    mkstemp creates its files 0600, which would leave every file we write private to its owner."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def give_new_file_mode(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Before a temporary file (mkstemp: 0600) is renamed to `final`: the mode a plain open would give."""
    os.chmod(tmp, _new_file_mode(Path(final)))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


# -- what a file is ---------------------------------------------------------------------------------
ZIP_MAGIC = b"PK\x03\x04"  # torch checkpoints and npz archives are zips
_KINDS = (  # (offset, magic bytes, what the file looks like)
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"%PDF", "a PDF document"),
    (0, b"\x1f\x8b", "a gzip archive"),
    (0, b"\x93NUMPY", "a NumPy array file"),
    (0, b"\x89HDF", "an HDF5 file"),
    (0, b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (0, ZIP_MAGIC, "a zip archive"),
    (4, b"ftyp", "an MP4/MOV video"),
    (8, b"WEBP", "a WebP image"),
)


def read_head(path: str | os.PathLike) -> tuple[int, bytes]:
    """(size, first SNIFF_BYTES bytes); OSError passes through for the caller to word."""
    with open(path, "rb") as f:
        return os.fstat(f.fileno()).st_size, f.read(SNIFF_BYTES)


def looks_like(head: bytes) -> str:
    """Name a file's kind from its first bytes ("a PNG image"), or "" when nothing fits."""
    for offset, magic, kind in _KINDS:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if head[:1] == b"\x80":
        return "a Python pickle not written by torch.save"
    if len(head) > 10 and head[8:10] == b'{"':
        return "a safetensors file"
    if len(head) > 3 and head[0] == 0x08 and head[1] < 0x20 and head[2] == 0x12:
        return "an ONNX model (an export; open the checkpoint it was exported from)"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as e:  # a character cut at the end of the sniffed bytes is still text
            text = head[:e.start].decode("utf-8") if len(head) == SNIFF_BYTES and e.start >= SNIFF_BYTES - 3 else None
        if text is not None:
            return "a JSON file" if text.lstrip()[:1] in ("{", "[") else "a text file"
    return ""


def zip_end_missing(path: str | os.PathLike, size: int) -> bool:
    """True when a zip lacks its end-of-archive record (22 bytes and a comment): the file was cut short."""
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    return at < 0 or len(tail) - at < 22 + int.from_bytes(tail[at + 20:at + 22], "little")


def read_json(path: str | os.PathLike, error: Callable[[Path, str], Exception], kind: str) -> Any:
    """The parsed JSON of a user's file, or `error(path, problem)` in our words: a loader of any JSON
    file (plan, dataset description) reports a missing, foreign or broken file the same way, without the
    decoder's or the operating system's text. `kind` names what was expected ("plan file")."""
    path = Path(path)
    if not path.exists():
        raise error(path, f"{kind} not found")
    if path.is_dir():
        raise error(path, f"is a directory, expected a {kind}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise error(path, f"cannot read the file ({e.strerror or type(e).__name__})") from None
    if not data:
        raise error(path, "file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        seen = looks_like(data[:SNIFF_BYTES])
        raise error(path, f"not a JSON file (it looks like {seen})" if seen
                    else "not a JSON file (not UTF-8 text)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        seen = looks_like(data[:SNIFF_BYTES])
        where = f"invalid at line {e.lineno}, column {e.colno}"
        raise error(path, f"not a readable JSON file ({where}; it looks like {seen})"
                    if seen and seen != "a JSON file" and seen != "a text file"
                    else f"not a readable JSON file ({where})") from None
    except RecursionError:
        raise error(path, "not a readable JSON file (nested too deeply)") from None


JSON_DIGEST_KEY = "content_sha256"


def json_digest(data: dict) -> str:
    """SHA-256 of a JSON object's content without its own digest field, in a canonical form (sorted keys,
    no whitespace), so re-indenting or reordering the file does not change it but editing a value does."""
    import hashlib

    body = {k: v for k, v in data.items() if k != JSON_DIGEST_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def with_json_digest(data: dict) -> dict:
    """`data` plus the digest of its content: what our JSON files (projects, sidecars) are written as."""
    body = {k: v for k, v in data.items() if k != JSON_DIGEST_KEY}
    return {**body, JSON_DIGEST_KEY: json_digest(body)}


def check_json_digest(data: Any, path: str | os.PathLike, error: Callable[[Path, str], Exception]) -> None:
    """A file that records a digest must match it; files written before digests (none recorded) pass."""
    if not isinstance(data, dict) or JSON_DIGEST_KEY not in data:
        return
    if data[JSON_DIGEST_KEY] != json_digest(data):  # parsed JSON: already plain types
        raise error(Path(path), "damaged: content does not match its checksum")
