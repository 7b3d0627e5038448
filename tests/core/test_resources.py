"""Where the default model and the samples are found: the source tree, OS2D_STUDIO_RESOURCES, or a
PyInstaller bundle (`sys._MEIPASS`, the folder holding the bundled `resources/`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core import resources

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv("OS2D_STUDIO_RESOURCES", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)


def test_source_tree(no_override):
    assert resources.resources_dir() == REPO / "resources"
    assert resources.default_model_path() == REPO / "resources" / "models" / "default.pt"
    assert (resources.samples_dir() / "samples.json").is_file()


def test_frozen_bundle(no_override, monkeypatch, tmp_path):
    (tmp_path / "resources" / "models").mkdir(parents=True)
    (tmp_path / "resources" / "samples").mkdir()
    (tmp_path / "resources" / "models" / "default.pt").write_bytes(b"x")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == tmp_path / "resources"
    assert resources.require_default_model() == tmp_path / "resources" / "models" / "default.pt"
    assert resources.samples_dir() == tmp_path / "resources" / "samples"


def test_bundle_without_resources_falls_back_to_the_package(no_override, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == REPO / "resources"


def test_environment_override_wins(no_override, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(REPO), raising=False)
    monkeypatch.setenv("OS2D_STUDIO_RESOURCES", str(tmp_path))
    assert resources.resources_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="default model is missing"):
        resources.require_default_model()


def test_icon_is_bundled_with_the_resources(no_override):
    from PIL import Image

    with Image.open(resources.icon_path()) as im:
        assert im.size == (256, 256) and im.mode == "RGBA"
