"""Image loading handles the formats users have; bad images get clear errors."""

import cv2
import numpy as np
import pytest
from PIL import Image

from core.data.images import ImageError, load_image, preprocess, pyramid, size_preserving_aspect


def _rgb(h=40, w=60):
    g = np.random.default_rng(0)
    return g.integers(0, 255, size=(h, w, 3), dtype=np.uint8)


def test_color_order_is_rgb(tmp_path):
    img = np.zeros((10, 12, 3), np.uint8)
    img[..., 0] = 255  # red in RGB
    Image.fromarray(img).save(tmp_path / "red.png")
    out = load_image(tmp_path / "red.png")
    assert out.shape == (10, 12, 3) and out[0, 0].tolist() == [255, 0, 0]


def test_grayscale_rgba_16bit(tmp_path):
    gray = (np.arange(200).reshape(10, 20) % 256).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = load_image(tmp_path / "g.png")
    assert g.shape == (10, 20, 3) and np.array_equal(g[..., 0], gray) and np.array_equal(g[..., 2], gray)

    rgba = np.dstack([_rgb(10, 20), np.full((10, 20), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    a = load_image(tmp_path / "a.png")
    assert a.shape == (10, 20, 3) and np.array_equal(a, rgba[..., :3])  # alpha dropped as PIL's convert("RGB")

    deep = (np.arange(300).reshape(10, 30) * 200).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    d = load_image(tmp_path / "d.png")
    assert d.dtype == np.uint8 and d[0, -1, 0] == round(deep[0, -1] / 257)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(_rgb(20, 40))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "r.jpg").shape[:2] == (40, 20)


@pytest.mark.parametrize("content,problem", [(b"", "file is empty"), (b"not an image at all", "cannot decode")])
def test_bad_images(tmp_path, content, problem):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=problem) as e:
        load_image(p)
    assert str(p) in str(e.value)


def test_missing_image(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "nope.png")


def test_resize_rule_and_pyramid():
    assert size_preserving_aspect(600, 800, 1000) == (866, 1154)
    t = preprocess(_rgb(300, 400), 240)
    assert t.shape == (3, 207, 277)
    levels = pyramid(_rgb(300, 400), 240, (0.5, 1.0))
    assert [lv.tensor.shape[-1] for lv in levels] == [138, 277]
    sx, sy = levels[0].scale_to_original
    assert sx == pytest.approx(400 / 138) and sy == pytest.approx(300 / 103)
