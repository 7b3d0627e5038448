import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_REF = REPO.parent / "shared" / "os2d" / "ref"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    if not (SHARED_REF / "checkpoint.pth").exists():
        pytest.skip(f"official reference bundle not found at {SHARED_REF}")
    return SHARED_REF
