"""Checkpoints: every layout loads safely; every bad file gets one clear line naming it."""

import pickle

import numpy as np
import pytest
import torch

from core.cli import main as cli_main
from core.model.checkpoint import CheckpointError, load_model, save_model
from core.model.os2d import ModelConfig, OS2DModel


def _small(backbone="resnet18", **kw):
    torch.manual_seed(0)
    m = OS2DModel(ModelConfig(backbone=backbone, **kw))
    with torch.no_grad():  # non-trivial BN and transform so outputs depend on every tensor
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
        m.os2d_head_creator.aligner.parameter_regressor.linear.weight.normal_(0, 1e-3)
    return m.eval()


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 3, 128, 160, generator=g), [torch.randn(3, 96, 80, generator=g)]


def test_own_format_roundtrip_identical_outputs(tmp_path):
    m = _small()
    p = save_model(m, tmp_path / "m.pt", meta={"eval_scale": 640, "metric": np.float64(0.5)})
    loaded = load_model(p)
    assert loaded.kind == "os2d-studio" and loaded.meta["eval_scale"] == 640
    x, c = _inputs()
    with torch.no_grad():
        a, b = m(x, c), loaded.model(x, c)
    assert torch.equal(a.cls, b.cls) and torch.equal(a.loc, b.loc)
    # the shared trunk is stored once
    data = torch.load(p, weights_only=True)
    assert not any(k.startswith("net_label_features") for k in data["state_dict"])


def test_official_layout_with_numpy_metric_loads_weights_only(tmp_path):
    m = _small("resnet34", simplified_affine=True, inverse_geom=False)
    path = tmp_path / "best.pth"
    torch.save({"net": m.state_dict(), "optimizer": {}, "criterion_value": np.float64(0.9),
                "criterion_dataset": "grozi-val-new-cl"}, path)
    loaded = load_model(path)
    assert loaded.kind == "official"
    assert loaded.model.config.backbone == "resnet34" and loaded.model.config.simplified_affine
    assert loaded.meta["official_keys"]["criterion_value"] == pytest.approx(0.9)


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", pytest.param("resnet50", marks=pytest.mark.slow),
                                  pytest.param("resnet101", marks=pytest.mark.slow)])
def test_every_trunk_is_recognised(tmp_path, arch):
    m = OS2DModel(ModelConfig(backbone=arch))
    torch.save({"net": m.state_dict()}, tmp_path / "m.pth")
    assert load_model(tmp_path / "m.pth").model.config.backbone == arch


def test_pruned_shapes_rebuild_without_parent(tmp_path):
    m = _small()
    # shrink layer1.0's inner channels by hand: conv1 out, bn1, conv2 in
    blk = m.net_feature_maps.layer1[0]
    keep = torch.arange(0, 64, 2)
    new1 = torch.nn.Conv2d(64, 32, 3, padding=1, bias=False)
    new1.weight.data = blk.conv1.weight.data[keep].clone()
    bn = torch.nn.BatchNorm2d(32)
    for n in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, n).data = getattr(blk.bn1, n).data[keep].clone()
    new2 = torch.nn.Conv2d(32, 64, 3, padding=1, bias=False)
    new2.weight.data = blk.conv2.weight.data[:, keep].clone()
    blk.conv1, blk.bn1, blk.conv2 = new1, bn.eval(), new2
    p = save_model(m, tmp_path / "pruned.pt")
    loaded = load_model(p)
    assert loaded.model.net_feature_maps.layer1[0].conv1.out_channels == 32
    x, c = _inputs()
    with torch.no_grad():
        assert torch.equal(m(x, c).cls, loaded.model(x, c).cls)


def test_save_never_overwrites(tmp_path):
    m = _small()
    p = save_model(m, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="refusing to overwrite"):
        save_model(m, p)
    with pytest.raises(CheckpointError, match="input model"):
        save_model(m, p, overwrite=True, protect=(p,))
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _bad_files(tmp_path):
    m = _small()
    files = {}
    (tmp_path / "empty.pt").write_bytes(b"")
    files["empty.pt"] = "file is empty"
    (tmp_path / "text.pt").write_text("hello, not a model")
    files["text.pt"] = "not a PyTorch checkpoint (it looks like a text file)"
    good = save_model(m, tmp_path / "good.pt")
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["truncated.pt"] = "truncated or corrupt"
    torch.save({"net": _Evil()}, tmp_path / "evil.pt")
    files["evil.pt"] = "refusing to run code"
    with open(tmp_path / "pickle.pt", "wb") as f:
        pickle.dump({"net": _Evil()}, f)
    files["pickle.pt"] = "not a PyTorch checkpoint (it looks like a Python pickle"
    torch.save({"foo": torch.zeros(1)}, tmp_path / "foreign.pt")
    files["foreign.pt"] = "unknown checkpoint layout"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, tmp_path / "imagenet.pt")
    files["imagenet.pt"] = "not an OS2D model"
    sd = m.state_dict()
    sd.pop("os2d_head_creator.aligner.parameter_regressor.conv.0.weight")
    torch.save({"net": sd}, tmp_path / "missing.pt")
    files["missing.pt"] = "missing keys"
    sd = m.state_dict()
    sd["os2d_head_creator.aligner.parameter_regressor.linear.weight"] = torch.zeros(5, 64, 5, 5)
    torch.save({"net": sd}, tmp_path / "wrongarch.pt")
    files["wrongarch.pt"] = "expected 6 (v2) or 4 (v1)"
    sd = {k: v for k, v in m.state_dict().items() if "layer3.1" not in k}
    torch.save({"net": sd}, tmp_path / "trunk.pt")
    files["trunk.pt"] = "unrecognized trunk"
    files["absent.pt"] = "file not found"
    return files


def test_bad_files_give_clear_errors(tmp_path):
    for name, problem in _bad_files(tmp_path).items():
        with pytest.raises(CheckpointError) as e:
            load_model(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and problem in str(e.value), name


def test_cli_prints_one_line_for_bad_files(tmp_path, capsys):
    for name, problem in _bad_files(tmp_path).items():
        assert cli_main(["info", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and name in err and problem in err, err


# -- what a file that is no model says ---------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model_file(tmp_path_factory):
    """A heavily pruned ResNet-18 model saved in our format: a real file, small enough to copy often."""
    from core.prune.plan import PruningPlan, resolve
    from core.importance.result import data_free_importance
    from core.prune.surgery import prune_model
    from core.prune.units import find_units

    m = _small()
    units = find_units(m)
    kept = resolve(PruningPlan(ratio=0.9, min_channels=4), units, data_free_importance(m, units=units))
    return save_model(prune_model(m, kept, units=units), tmp_path_factory.mktemp("model") / "small.pt")


def _message(path):
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    return str(e.value)


def test_foreign_files_are_named(tmp_path):
    from core.resources import samples_dir

    SAMPLES_DIR = samples_dir()
    cases = {
        "image.pt": ((SAMPLES_DIR / "class_83.png").read_bytes(), "not a PyTorch checkpoint (it looks like a PNG image)"),
        "photo.pt": ((SAMPLES_DIR / "shelf.jpg").read_bytes(), "not a PyTorch checkpoint (it looks like a JPEG image)"),
        "notes.pt": (b"hello, not a model\n", "not a PyTorch checkpoint (it looks like a text file)"),
        "plan.pt": (b'{"format": "os2d-studio-plan", "ratio": 0.3}\n', "not a PyTorch checkpoint (it looks like a JSON file)"),
        "doc.pt": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not a PyTorch checkpoint (it looks like a PDF document)"),
        "random.pt": (np.random.default_rng(0).bytes(4096), "not a PyTorch checkpoint"),
        "empty.pt": (b"", "file is empty"),
    }
    for name, (data, problem) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert _message(tmp_path / name) == f"{tmp_path / name}: {problem}", name
    (tmp_path / "folder.pt").mkdir()
    assert _message(tmp_path / "folder.pt") == f"{tmp_path / 'folder.pt'}: is a directory, expected a model file"


def test_truncated_model_says_so(tmp_path, small_model_file):
    data = small_model_file.read_bytes()
    for n in (1, 3, 100, 4096, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1):
        p = tmp_path / f"cut{n}.pt"
        p.write_bytes(data[:n])
        assert _message(p) == f"{p}: truncated or corrupt ({n:,} bytes, expected more)", n


def test_legacy_format_truncated_says_so(tmp_path):
    import io

    buf = io.BytesIO()
    torch.save({"net": {"x": torch.arange(1000.0)}}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    for n in (5, 200, len(data) // 2, len(data) - 10):
        p = tmp_path / f"legacy{n}.pt"
        p.write_bytes(data[:n])
        assert _message(p) == f"{p}: truncated or corrupt ({n:,} bytes, expected more)", n


def test_no_library_text_in_messages(tmp_path, small_model_file):
    data = small_model_file.read_bytes()
    rng = np.random.default_rng(1)
    for i in range(20):
        p = tmp_path / f"damaged{i}.pt"
        cut = bytearray(data[: int(rng.integers(1, len(data)))])
        cut[int(rng.integers(0, len(cut)))] ^= 0xFF
        p.write_bytes(bytes(cut))
        msg = _message(p)
        assert msg.startswith(f"{p}: ") and "\n" not in msg, msg
        for word in ("miniz", "PytorchStreamReader", "weights_only", "Errno", "pop from", "central directory"):
            assert word not in msg, msg


def test_one_rule_for_the_scale_a_model_runs_at():
    """Its own scale, else the dataset's, else OS2D's default (GroZi's 1280)."""
    from types import SimpleNamespace

    from core.model.checkpoint import OS2D_TARGET_SIZE, LoadedModel

    own = LoadedModel(None, "", "os2d-studio", {"eval_scale": 1100})
    none = LoadedModel(None, "", "official", {})
    assert own.eval_scale == 1100.0 and own.scale(SimpleNamespace(eval_scale=720)) == 1100.0
    assert none.eval_scale is None and none.scale(SimpleNamespace(eval_scale=720)) == 720.0
    assert none.scale() == OS2D_TARGET_SIZE == 1280.0
    assert LoadedModel(None, "", "x", {"eval_scale": "big"}).eval_scale is None
