"""Frame sources (video file, camera, image folder) behind one interface, and an atomic video writer.

Why one interface: the comparison job, the CLI and the GUI's video tab iterate frames the same way
whatever the source; only cameras differ (no frame count, no seeking, frames arrive in real time).

Facts this relies on (opencv-python-headless 5.0, see shared/ENVIRONMENT.md): mp4v `.mp4` and MJPG
`.avi` write and read back; there is no H.264 encoder (H.264 files decode); CAP_PROP_POS_FRAMES
seeks exactly in mp4v and MJPG files. A truncated `.mp4` from OpenCV's writer has lost its index
(written last) and does not open at all; a truncated `.avi` opens, reports the full frame count and
fails to decode part-way — which we report as an error naming the frame instead of stopping quietly.
"""

from __future__ import annotations

from core.errors import InputError
from core.io import give_new_file_mode

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from core.data.images import IMAGE_SUFFIXES, ImageError, load_image, to_rgb_uint8
from core.io import looks_like, read_head

DEFAULT_FOLDER_FPS = 25.0  # an image folder has no frame rate of its own
DEFAULT_CAMERA_FPS = 30.0  # when the driver reports none
CAMERA_PREFIX = "camera:"
# what `core.io.looks_like` calls files OpenCV may read as videos; anything else it names is refused before
# OpenCV sees it (its image backend opens a still image as a one-frame video)
VIDEO_KINDS = ("an MP4/MOV video", "a Matroska/WebM video")
ANIMATED_KINDS = ("a GIF image",)  # a video when it has more than one frame


class VideoError(InputError):
    """A video, camera or frame folder that cannot be used; the message names it and the problem."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One frame: RGB uint8 [H, W, 3] (None when only grabbed), its index and time in the source (s)."""

    index: int
    timestamp: float
    rgb: np.ndarray | None


class FrameSource:
    """Common interface: iterate `Frame`s; `fps`, `frame_count` (None if unknown), `size` (w, h).

    `live` sources (cameras) deliver frames in real time: they cannot seek and a consumer that is
    slower simply gets fewer frames. Other sources give `timestamp_of(index) = index / fps`, which
    lets a consumer decide which frames to skip before decoding them.
    """

    name: str = ""
    fps: float = 0.0
    frame_count: int | None = None
    size: tuple[int, int] = (0, 0)
    seekable: bool = False
    live: bool = False

    def __init__(self) -> None:
        self._pos = 0
        self._closed = False

    @property
    def position(self) -> int:
        """Index of the frame the next `read` returns."""
        return self._pos

    def timestamp_of(self, index: int) -> float:
        return index / self.fps if self.fps > 0 else float(index)

    def read(self, decode: bool = True) -> Frame | None:
        """The next frame, or None at the end. `decode=False` only advances (rgb is None), cheaper."""
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise VideoError(self.name, "this source cannot seek")

    def close(self) -> None:
        self._closed = True

    def __iter__(self) -> Iterator[Frame]:
        while True:
            f = self.read()
            if f is None:
                return
            yield f

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_seek(self, index: int) -> int:
        index = int(index)
        if index < 0 or (self.frame_count is not None and index >= self.frame_count):
            raise VideoError(self.name, f"cannot seek to frame {index}: it has {self.frame_count} frames")
        return index


def _even_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    return w + (w % 2), h + (h % 2)


class VideoFileSource(FrameSource):
    """A video file read with OpenCV; exact seeking with CAP_PROP_POS_FRAMES.

    `strict=True` (default): a frame that fails to decode while the file says more frames exist
    raises VideoError naming the frame. `strict=False` ends the iteration there instead and leaves
    the message in `self.error` (for callers that want whatever frames could be read).
    """

    seekable = True

    def __init__(self, path: str | os.PathLike, *, strict: bool = True) -> None:
        super().__init__()
        p = Path(path)
        self.name = str(p)
        self.strict = strict
        self.error: str | None = None
        if not p.exists():
            raise VideoError(p, "file not found")
        if p.is_dir():
            raise VideoError(p, "is a directory, expected a video file")
        try:
            size, head = read_head(p)
        except OSError as e:
            raise VideoError(p, f"cannot read the file ({e.strerror or type(e).__name__})") from None
        if size == 0:
            raise VideoError(p, "file is empty")
        kind = looks_like(head)
        if kind and kind not in VIDEO_KINDS + ANIMATED_KINDS:
            raise VideoError(p, f"not a video (it looks like {kind})")
        self._cap = cv2.VideoCapture(str(p))
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoError(p, "cannot open as a video (not a video, an unsupported codec, or a truncated "
                                "file whose index is missing)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if fps > 0 and np.isfinite(fps) else DEFAULT_FOLDER_FPS
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = n if n > 0 else None
        if kind in ANIMATED_KINDS and (self.frame_count or 0) <= 1:
            self._cap.release()
            raise VideoError(p, f"not a video (it looks like {kind} with a single frame)")
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if self.size[0] <= 0 or self.size[1] <= 0:
            self._cap.release()
            raise VideoError(p, "has no video stream with a frame size")

    def read(self, decode: bool = True) -> Frame | None:
        if self._closed:
            raise VideoError(self.name, "source is closed")
        if self.error is not None:
            return None
        index = self._pos
        if self.frame_count is not None and index >= self.frame_count:
            return None
        if decode:
            ok, bgr = self._cap.read()
        else:
            ok, bgr = self._cap.grab(), None
        if not ok or (decode and bgr is None):
            if self.frame_count is None:
                return None  # unknown length: the end of the stream
            msg = (f"frame {index} could not be decoded, but the file says it has {self.frame_count} frames "
                   "(truncated or corrupt file)")
            if self.strict:
                raise VideoError(self.name, msg)
            self.error = msg
            return None
        self._pos += 1
        rgb = to_rgb_uint8(bgr, self.name) if decode else None
        return Frame(index, self.timestamp_of(index), rgb)

    def seek(self, index: int) -> None:
        index = self._check_seek(index)
        if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, index):
            raise VideoError(self.name, f"cannot seek to frame {index}")
        self._pos = index
        self.error = None

    def close(self) -> None:
        if not self._closed:
            self._cap.release()
        super().close()


class CameraSource(FrameSource):
    """A camera by OpenCV index; timestamps are seconds since the first read (wall clock)."""

    live = True

    def __init__(self, index: int = 0) -> None:
        super().__init__()
        self.index = int(index)
        self.name = f"{CAMERA_PREFIX}{self.index}"
        self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            self._cap.release()
            raise VideoError(self.name, "cannot open the camera (no such device, or it is in use)")
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the newest frame, not a backlog (driver may ignore)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if fps > 0 and np.isfinite(fps) else DEFAULT_CAMERA_FPS
        self.frame_count = None
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._t0: float | None = None

    def read(self, decode: bool = True) -> Frame | None:
        if self._closed:
            raise VideoError(self.name, "source is closed")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise VideoError(self.name, f"frame {self._pos} could not be read (camera disconnected?)")
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        index = self._pos
        self._pos += 1
        return Frame(index, now - self._t0, to_rgb_uint8(bgr, self.name) if decode else None)

    def close(self) -> None:
        if not self._closed:
            self._cap.release()
        super().close()


class ImageFolderSource(FrameSource):
    """The images of a folder, sorted by name, as frames at a nominal `fps`."""

    seekable = True

    def __init__(self, folder: str | os.PathLike, *, fps: float = DEFAULT_FOLDER_FPS) -> None:
        super().__init__()
        p = Path(folder)
        self.name = str(p)
        if not p.is_dir():
            raise VideoError(p, "folder not found" if not p.exists() else "is not a folder")
        self.files: list[Path] = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise VideoError(p, f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        if fps <= 0:
            raise VideoError(p, f"frame rate must be positive, got {fps}")
        self.fps = float(fps)
        self.frame_count = len(self.files)
        first = self._load(0)
        self.size = (first.shape[1], first.shape[0])
        self._first = first

    def _load(self, index: int) -> np.ndarray:
        try:
            return load_image(self.files[index])
        except ImageError as e:
            raise VideoError(self.name, f"frame {index} could not be read: {e}") from None

    def read(self, decode: bool = True) -> Frame | None:
        if self._closed:
            raise VideoError(self.name, "source is closed")
        index = self._pos
        if index >= len(self.files):
            return None
        rgb = None
        if decode and index == 0 and self._first is not None:
            rgb = self._first  # already loaded to learn the size
        elif decode:
            rgb = self._load(index)
        self._first = None
        self._pos += 1
        return Frame(index, self.timestamp_of(index), rgb)

    def seek(self, index: int) -> None:
        self._pos = self._check_seek(index)


def open_source(spec: str | os.PathLike, *, fps: float | None = None, strict: bool = True) -> FrameSource:
    """`camera:N` → camera N; a folder → its images (at `fps`); anything else → a video file."""
    s = str(spec)
    if s.startswith(CAMERA_PREFIX):
        idx = s[len(CAMERA_PREFIX):]
        if not idx.isdigit():
            raise VideoError(s, "expected camera:N with N a camera index, e.g. camera:0")
        return CameraSource(int(idx))
    p = Path(s)
    if p.is_dir():
        return ImageFolderSource(p, fps=fps or DEFAULT_FOLDER_FPS)
    return VideoFileSource(p, strict=strict)


# -- writing -------------------------------------------------------------------------------------------
# Per requested suffix, the (fourcc, suffix) pairs tried in order; the first that opens wins.
CODECS: dict[str, tuple[tuple[str, str], ...]] = {
    ".mp4": (("mp4v", ".mp4"), ("MJPG", ".avi")),
    ".avi": (("MJPG", ".avi"), ("XVID", ".avi")),
    ".mkv": (("FFV1", ".mkv"), ("MJPG", ".avi")),
    ".webm": (("VP80", ".webm"), ("MJPG", ".avi")),
}


class VideoWriter:
    """Writes RGB frames to a video atomically: a temporary file beside the target, renamed on `close`.

    If the preferred codec does not open (e.g. no mp4v in this OpenCV build) the next one is used,
    and `path` tells where the video will land (the suffix may change, e.g. .mp4 → .avi). `abort`,
    an exception inside `with`, or garbage collection without `close` leave no file behind. Frames
    of another size are resized; odd sizes are padded to even (mp4v silently changes them otherwise).
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], *,
                 codecs: Sequence[tuple[str, str]] | None = None) -> None:
        requested = Path(path)
        if fps <= 0 or not np.isfinite(fps):
            raise VideoError(requested, f"frame rate must be positive, got {fps}")
        if size[0] <= 0 or size[1] <= 0:
            raise VideoError(requested, f"bad frame size {size}")
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))  # frames are resized to this
        self._encoded = _even_size(self.size)
        self.frames_written = 0
        self._writer = None
        self._tmp: Path | None = None
        self._done = False
        requested.parent.mkdir(parents=True, exist_ok=True)
        tried = []
        for fourcc, suffix in codecs or CODECS.get(requested.suffix.lower(), (("mp4v", requested.suffix or ".mp4"),
                                                                                ("MJPG", ".avi"))):
            fd, tmp = tempfile.mkstemp(prefix=f".{requested.stem}.", suffix=f".part{suffix}", dir=requested.parent)
            os.close(fd)
            w = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), self.fps, self._encoded)
            if w.isOpened():
                self._writer, self._tmp, self.codec = w, Path(tmp), fourcc
                self.path = requested.with_suffix(suffix)
                return
            w.release()
            os.unlink(tmp)
            tried.append(f"{fourcc} {suffix}")
        raise VideoError(requested, f"cannot open a video writer (tried {', '.join(tried)})")

    def write(self, rgb: np.ndarray) -> None:
        if self._done:
            raise VideoError(self.path, "writer is closed")
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 [H, W, 3] frame, got {rgb.dtype} {rgb.shape}")
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self._encoded != self.size:
            bgr = cv2.copyMakeBorder(bgr, 0, self._encoded[1] - self.size[1], 0, self._encoded[0] - self.size[0],
                                     cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self._writer.write(bgr)
        self.frames_written += 1

    def close(self) -> Path:
        """Finish the file and move it into place; a video with no frames is an error (and no file)."""
        if self._done:
            return self.path
        self._done = True
        self._writer.release()
        try:
            if self.frames_written == 0:
                raise VideoError(self.path, "no frames were written")
            if not self._tmp.exists() or self._tmp.stat().st_size == 0:
                raise VideoError(self.path, f"the {self.codec} encoder produced no data")
            with open(self._tmp, "rb+") as f:
                os.fsync(f.fileno())
            give_new_file_mode(self._tmp, self.path)
            os.replace(self._tmp, self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial video (cancelled or failed job)."""
        if self._done:
            return
        self._done = True
        self._writer.release()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if getattr(self, "_writer", None) is not None and not getattr(self, "_done", True):
            self.abort()
