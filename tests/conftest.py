import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_REF = REPO.parent / "shared" / "os2d" / "ref"
REF_FIXTURE = Path(__file__).resolve().parent / "data" / "os2d_ref"
REF_CHECKPOINT_ENV = "OS2D_REF_CHECKPOINT"  # where the official reference checkpoint is, when not in SHARED_REF

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def ref_tools():
    """tests/data/make_os2d_ref.py: the digests and the input rebuild the fixture was made with."""
    spec = importlib.util.spec_from_file_location("make_os2d_ref", REF_FIXTURE.parent / "make_os2d_ref.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ref_manifest() -> dict:
    return json.loads((REF_FIXTURE / "fixture.json").read_text())


@pytest.fixture(scope="session")
def ref_dir(tmp_path_factory, ref_tools, ref_manifest) -> Path:
    """The official reference as one folder: the shipped images and outputs, the checkpoint, and inputs.pt
    rebuilt from the images. A missing or different checkpoint, or inputs that no longer come out bit for
    bit, fail every test that uses it (a reference test must not pass by being skipped)."""
    tools = ref_tools
    ckpt = Path(os.environ.get(REF_CHECKPOINT_ENV) or SHARED_REF / "checkpoint.pth")
    expected = ref_manifest["checkpoint"]
    if not ckpt.is_file():
        pytest.fail(f"{ckpt}: the official reference checkpoint is missing ({expected['bytes']:,} bytes, sha256 "
                    f"{expected['sha256'][:12]}…, see tests/data/make_os2d_ref.py); set {REF_CHECKPOINT_ENV} to its path",
                    pytrace=False)
    if tools.file_sha256(ckpt) != expected["sha256"]:
        pytest.fail(f"{ckpt}: not the official reference checkpoint (sha256 differs from "
                    f"{REF_FIXTURE / 'fixture.json'})", pytrace=False)
    for name, sha in ref_manifest["files"].items():
        if tools.file_sha256(REF_FIXTURE / name) != sha:
            pytest.fail(f"{REF_FIXTURE / name}: damaged (sha256 differs from fixture.json)", pytrace=False)
    folder = tmp_path_factory.mktemp("os2d_ref")
    for name in ref_manifest["files"]:
        (folder / name).symlink_to(REF_FIXTURE / name)
    (folder / "checkpoint.pth").symlink_to(ckpt.resolve())
    inputs = tools.rebuild_inputs(folder)
    recorded = {k: ref_manifest["inputs"][k] for k in ("target_image", "class_images")}
    if tools.input_digests(inputs) != recorded:
        pytest.fail("preprocessing the reference images no longer reproduces the official inputs "
                    "(tests/core/test_reference.py::test_preprocessing_is_pixel_identical)", pytrace=False)
    torch.save(inputs, folder / "inputs.pt")
    return folder
