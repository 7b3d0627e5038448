"""Files the tool writes get the modes any program's files get: 0666 less the umask."""

import os
import stat

import pytest

from core.io import atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask():
    def set_mask(mask):
        old.append(os.umask(mask))

    old = []
    yield set_mask
    if old:
        os.umask(old[0])


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_respect_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    p = atomic_write_text(tmp_path / "sub" / "plan.json", "{}\n")
    assert stat.S_IMODE(p.stat().st_mode) == expected
    assert not list(p.parent.glob(".*tmp"))


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    p = tmp_path / "model.pt"
    p.write_bytes(b"old")
    p.chmod(0o640)
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and stat.S_IMODE(p.stat().st_mode) == 0o640


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_saved_model_is_readable_by_others(tmp_path, umask):
    import torch

    from core.model.checkpoint import atomic_torch_save

    umask(0o022)
    atomic_torch_save({"x": torch.zeros(1)}, tmp_path / "m.pt")
    assert stat.S_IMODE((tmp_path / "m.pt").stat().st_mode) == 0o644
