"""The packaged one-folder executable (packaging/os2d-studio.spec): built, then its `--self-test` run offscreen.

Marked `package` (a build takes minutes and several GB), so neither `make test` nor `make test-slow` runs it:
`make test-package` builds into dist/ and runs this with PACKAGE_DIR=dist/os2d-studio; without PACKAGE_DIR
the test builds into a temporary folder itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "packaging" / "os2d-studio.spec"
NAME = "os2d-studio"
EXE = NAME + (".exe" if sys.platform == "win32" else "")
# what must not be in the bundle: tests, development tools, the Triton compiler
NOT_BUNDLED = ("triton", "pytest", "_pytest", "pytestqt", "importlinter", "grimp", "IPython", "tkinter", "tests")

pytestmark = [pytest.mark.slow, pytest.mark.package, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory) -> Path:
    given = os.environ.get("PACKAGE_DIR")
    if given:
        d = Path(given).resolve()
        if not (d / EXE).is_file():
            pytest.fail(f"PACKAGE_DIR={given}: no {EXE} there (run `make package` first)")
        return d
    pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (make package installs it)")
    tmp = tmp_path_factory.mktemp("package")
    r = subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                        "--distpath", str(tmp / "dist"), "--workpath", str(tmp / "build"), str(SPEC)],
                       cwd=REPO, capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp / "dist" / NAME


def test_bundle_contents(package_dir):
    internal = package_dir / "_internal"
    res = internal / "resources"
    assert (res / "models" / "default.pt").is_file()
    assert (res / "samples" / "samples.json").is_file() and (res / "samples" / "demo.mp4").is_file()
    assert (res / "icons" / "os2d-studio.png").is_file()
    assert (res / "studies" / "seed-table.json").is_file()  # the Metrics tab's study
    # torchvision's native ops (nms, roi_align), which PyInstaller's hook misses for torchvision >= 0.29
    assert list((internal / "torchvision").glob("_C*")), "torchvision's _C extension is not bundled"
    # OpenVINO's CPU plugin and its IR reader (loaded by file name: without them it sees no device, or
    # cannot read an int8 model)
    ov = internal / "openvino"
    for lib in ("openvino_intel_cpu_plugin", "openvino_ir_frontend", "openvino_onnx_frontend"):
        assert list(ov.rglob(f"*{lib}*")), f"OpenVINO's {lib} is not bundled"
    present = [name for name in NOT_BUNDLED if (internal / name).exists()]
    assert not present, f"development files in the bundle: {present}"


def test_self_test_of_the_built_executable(package_dir, tmp_path):
    from app.selftest import SELF_TEST_STEPS

    env = {k: v for k, v in os.environ.items() if k not in ("OS2D_STUDIO_RESOURCES", "PYTHONPATH", "PYTHONHOME")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    # run from an unrelated folder: everything must come from the bundle, nothing from the source tree
    r = subprocess.run([str(package_dir / EXE), "--self-test"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=1200)
    out = r.stdout
    assert r.returncode == 0, f"exit {r.returncode}\n{out[-4000:]}\n{r.stderr[-4000:]}"
    assert "packaged executable" in out
    assert str(package_dir / "_internal" / "resources") in out  # the bundled model and samples were used
    for name, _ in SELF_TEST_STEPS:
        assert f"[ok]   {name}" in out
    assert "combined on 3 calibration images" in out and "30 % by combined" in out
    summary = out.split("summary:\n", 1)[1]
    for topic in ("model", "importance", "pruning", "detection", "video"):
        assert f"  {topic} " in summary
    assert f"self-test passed ({len(SELF_TEST_STEPS)} steps)" in out


def test_failing_step_is_named_by_the_executable(package_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OS2D_STUDIO_RESOURCES", "PYTHONPATH")}
    env["QT_QPA_PLATFORM"] = "offscreen"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint" * 8)
    r = subprocess.run([str(package_dir / EXE), str(bad), "--self-test"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1
    assert "self-test FAILED at step 'load model'" in r.stdout
