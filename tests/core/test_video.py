"""Frame sources and the atomic video writer (small videos written here with OpenCV)."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.data.video import (
    CameraSource, ImageFolderSource, VideoError, VideoFileSource, VideoWriter, open_source,
)
from core.resources import samples_dir

from _video_helpers import FPS, H, N, W, frame_rgb, write_cv2  # noqa: E402


@pytest.fixture(scope="module")
def mp4(tmp_path_factory) -> Path:
    return write_cv2(tmp_path_factory.mktemp("v") / "clip.mp4", "mp4v")


@pytest.fixture(scope="module")
def avi(tmp_path_factory) -> Path:
    return write_cv2(tmp_path_factory.mktemp("v") / "clip.avi", "MJPG")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_writer_reader_roundtrip(tmp_path, suffix):
    out = tmp_path / f"rt{suffix}"
    with VideoWriter(out, FPS, (W, H)) as w:
        for i in range(N):
            w.write(frame_rgb(i))
    assert w.path == out and out.exists() and leftovers(tmp_path) == [out.name]
    with VideoFileSource(out) as src:
        assert (src.frame_count, src.size, src.fps) == (N, (W, H), FPS)
        frames = list(src)
    assert [f.index for f in frames] == list(range(N))
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(N)])
    for i, f in enumerate(frames):
        assert f.rgb.shape == (H, W, 3) and f.rgb.dtype == np.uint8
        # lossy codecs: close to what was written, and the patch is where frame i put it
        assert np.abs(f.rgb.astype(int) - frame_rgb(i)).mean() < 6
        assert f.rgb[45, 8 * i + 15].min() > 200


@pytest.mark.parametrize("name", ["mp4", "avi"])
def test_seek_is_exact(request, name):
    path = request.getfixturevalue(name)
    with VideoFileSource(path) as src:
        sequential = [f.rgb for f in src]
        assert len(sequential) == N
        for idx in (7, 2, 11, 0, 5, 5):
            src.seek(idx)
            assert src.position == idx
            f = src.read()
            assert f.index == idx and f.timestamp == pytest.approx(idx / FPS)
            assert np.array_equal(f.rgb, sequential[idx]), idx
        src.seek(10)
        assert [f.index for f in src] == [10, 11]
        with pytest.raises(VideoError, match="cannot seek to frame 12"):
            src.seek(N)


def test_grab_advances_without_decoding(mp4):
    with VideoFileSource(mp4) as src:
        assert src.read(decode=False).rgb is None
        assert src.read().index == 1


def test_image_folder_source(tmp_path):
    for i in (3, 0, 2, 1):  # written out of order: sorted by name
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), cv2.cvtColor(frame_rgb(i), cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(tmp_path, fps=5) as src:
        assert isinstance(src, ImageFolderSource)
        assert (src.frame_count, src.size, src.fps) == (4, (W, H), 5.0)
        frames = list(src)
        assert [f.index for f in frames] == [0, 1, 2, 3]
        assert [f.timestamp for f in frames] == pytest.approx([0, 0.2, 0.4, 0.6])
        for i, f in enumerate(frames):
            assert np.array_equal(f.rgb, frame_rgb(i))  # PNG is lossless
        src.seek(2)
        assert np.array_equal(src.read().rgb, frame_rgb(2))
        assert src.read().index == 3 and src.read() is None


def test_image_folder_errors(tmp_path):
    with pytest.raises(VideoError, match="no images"):
        ImageFolderSource(tmp_path)
    (tmp_path / "a.png").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "0.png"), frame_rgb(0))
    src = ImageFolderSource(tmp_path)
    src.read()
    with pytest.raises(VideoError, match=r"frame 1 could not be read.*a\.png.*empty"):
        src.read()


def test_open_errors_name_the_file(tmp_path):
    with pytest.raises(VideoError, match=r"missing\.mp4: file not found"):
        open_source(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoError, match=r"notes\.mp4: not a video \(it looks like a text file\)$"):
        open_source(text)
    shutil.copy(samples_dir() / "class_83.png", tmp_path / "still.mp4")  # OpenCV would open it as one frame
    with pytest.raises(VideoError, match=r"still\.mp4: not a video \(it looks like a PNG image\)$"):
        open_source(tmp_path / "still.mp4")
    (tmp_path / "unknown.mp4").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(VideoError, match=r"unknown\.mp4: cannot open as a video"):
        open_source(tmp_path / "unknown.mp4")
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.avi: file is empty"):
        open_source(empty)
    with pytest.raises(VideoError, match="is a directory"):
        VideoFileSource(tmp_path)
    with pytest.raises(VideoError, match="camera:N"):
        open_source("camera:front")
    with pytest.raises(VideoError, match="camera:97: cannot open the camera"):
        CameraSource(97)
    assert issubclass(VideoError, ValueError)  # the CLI prints it as one line


def test_truncated_avi_raises_naming_the_frame(avi, tmp_path):
    """MJPG .avi keeps its frame count in the header: a truncated file opens, then fails mid-stream.
    Default (strict): VideoError naming the first frame that cannot be decoded, after the good ones."""
    cut = tmp_path / "cut.avi"
    data = avi.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    got = []
    with VideoFileSource(cut) as src:
        assert src.frame_count == N
        with pytest.raises(VideoError, match=r"cut\.avi: frame (\d+) could not be decoded.*12 frames") as err:
            for f in src:
                got.append(f.index)
    assert 0 < len(got) < N and got == list(range(len(got)))
    assert f"frame {len(got)} could not" in str(err.value)
    # non-strict: the good frames, then a clean end with the reason kept
    with VideoFileSource(cut, strict=False) as src:
        assert [f.index for f in src] == got
        assert src.error is not None and f"frame {len(got)}" in src.error


def test_truncated_mp4_fails_at_open(mp4, tmp_path):
    """OpenCV's mp4 writer puts the index last: a truncated .mp4 cannot be opened at all."""
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"cut\.mp4: cannot open as a video.*truncated"):
        VideoFileSource(cut)


def test_writer_is_atomic(tmp_path):
    out = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, FPS, (W, H)) as w:
            w.write(frame_rgb(0))
            assert leftovers(tmp_path) and not out.exists()  # only the temporary file so far
            raise RuntimeError("job failed")
    assert leftovers(tmp_path) == []
    w = VideoWriter(out, FPS, (W, H))
    w.write(frame_rgb(0))
    w.abort()  # cancelled job
    assert leftovers(tmp_path) == []
    w = VideoWriter(out, FPS, (W, H))
    with pytest.raises(VideoError, match="no frames"):
        w.close()
    assert leftovers(tmp_path) == []


def test_writer_falls_back_and_fixes_sizes(tmp_path):
    w = VideoWriter(tmp_path / "y.mp4", FPS, (W + 1, H + 1), codecs=[("XXXX", ".mp4"), ("MJPG", ".avi")])
    assert w.codec == "MJPG" and w.path == tmp_path / "y.avi"
    for i in range(3):
        w.write(frame_rgb(i))  # another size: resized to (W + 1, H + 1), padded to even for the encoder
    assert w.close() == tmp_path / "y.avi" and leftovers(tmp_path) == ["y.avi"]
    with open_source(tmp_path / "y.avi") as src:
        assert src.frame_count == 3 and src.size == (W + 2, H + 2)
    with pytest.raises(VideoError, match=r"z\.mp4: cannot open a video writer \(tried XXXX \.mp4\)"):
        VideoWriter(tmp_path / "z.mp4", FPS, (W, H), codecs=[("XXXX", ".mp4")])
    assert leftovers(tmp_path) == ["y.avi"]


def test_written_videos_get_the_usual_file_mode(tmp_path):
    """Not mkstemp's 0600: what a plain open gives under the umask (0644 under 022)."""
    import os

    import numpy as np

    from core.data.video import VideoWriter

    old = os.umask(0o022)
    try:
        w = VideoWriter(tmp_path / "v.avi", 10, (64, 48))
        w.write(np.zeros((48, 64, 3), np.uint8))
        out = w.close()
    finally:
        os.umask(old)
    assert oct(os.stat(out).st_mode & 0o777) == oct(0o644)
