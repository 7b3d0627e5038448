"""`os2d-studio detect`: the JSON holds every detection above --min-score; --max-detections caps the picture."""

import json

import pytest
import torch

from core.cli import main as cli_main
from core.model.checkpoint import save_model
from core.model.os2d import ModelConfig, OS2DModel
from core.resources import samples_dir


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(OS2DModel(ModelConfig("resnet18")).eval(), tmp_path_factory.mktemp("m") / "m.pt")


def _detect(model_file, tmp_path, name, *extra):
    out = tmp_path / f"{name}.json"
    args = ["detect", "--model", str(model_file), "--class-image", str(samples_dir() / "class_83.png"),
            "--image", str(samples_dir() / "shelf.jpg"), "--target-size", "192", "--device", "cpu",
            "--max-detections", "3", "--nms-iou", "1.0", "--json", str(out), *extra]
    assert cli_main(args) == 0
    return [d["score"] for d in json.loads(out.read_text())["detections"]]


def test_json_holds_every_detection_above_min_score(model_file, tmp_path, capsys):
    every = _detect(model_file, tmp_path, "all", "--min-score", "-1", "--out", str(tmp_path / "drawn.png"))
    assert len(every) > 3  # more than the drawing cap (no NMS: a random model has many overlapping boxes)
    assert f"3 shown of {len(every)} detections" in capsys.readouterr().out
    ranked = sorted(every, reverse=True)
    k = next(i for i in range(len(ranked) // 2, len(ranked) - 1) if ranked[i] > ranked[i + 1])
    threshold = (ranked[k] + ranked[k + 1]) / 2
    above = _detect(model_file, tmp_path, "above", "--min-score", repr(threshold))
    assert len(above) == k + 1 > 3 and min(above) >= threshold
