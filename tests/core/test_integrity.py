"""Our own files carry a checksum of their content and every load verifies it; any model file with
values no trained network has (NaN, infinities, negative BN variances) is refused, naming the layer."""

import json
import zipfile

import numpy as np
import pytest
import torch

from core.cli import main as cli_main
from core.importance.result import ImportanceFileError, ImportanceResult
from core.model.checkpoint import (CHECKSUM_KEY, CheckpointError, file_sha256, load_model, read_checked, read_file,
                                   save_checked)
from core.model.os2d import ModelConfig, OS2DModel
from core.resources import default_model_path

from _file_helpers import (entry_data_offset, flip_byte, rewrite_entry, save_small_model, small_importance,  # noqa: E402
                           tensor_entries)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_small_model(tmp_path_factory.mktemp("m") / "small.pt")


def _error(path, exc=CheckpointError, load=load_model):
    with pytest.raises(exc) as e:
        load(path)
    return str(e.value)


# -- model files -------------------------------------------------------------------------------------
def test_saved_model_reloads_with_its_checksum_verified(model_file):
    assert CHECKSUM_KEY in read_file(model_file)
    loaded = load_model(model_file)
    assert loaded.verified and loaded.sha256 == file_sha256(model_file)


def test_flipped_tensor_byte_is_caught_by_our_checksum_even_with_valid_zip_crcs(model_file, tmp_path):
    big = tensor_entries(model_file)[0]
    damaged = tmp_path / "damaged.pt"
    rewrite_entry(model_file, damaged, big.filename, lambda b: flip_byte(b, len(b) // 2))
    with zipfile.ZipFile(damaged) as z:
        assert z.testzip() is None  # every zip CRC matches: only our checksum can tell
    data = read_file(damaged)  # torch reads it without complaint
    assert not all(torch.equal(v, read_file(model_file)["state_dict"][k]) for k, v in data["state_dict"].items())
    assert _error(damaged) == f"{damaged}: damaged: content does not match its checksum"


def test_flipped_byte_in_place_is_caught(model_file, tmp_path):
    data = model_file.read_bytes()
    for i, info in enumerate(tensor_entries(model_file)[:3]):
        at = entry_data_offset(model_file, info) + info.file_size // 3
        p = tmp_path / f"inplace{i}.pt"
        p.write_bytes(flip_byte(data, at))
        assert _error(p) == f"{p}: damaged: content does not match its checksum"


def test_changed_meta_or_config_is_caught(model_file, tmp_path):
    payload = read_file(model_file)
    for what, change in (("meta", lambda d: d["meta"].update(eval_scale=999)),
                         ("config", lambda d: d["config"].update(class_image_size=200)),
                         ("tensor", lambda d: d["state_dict"]["net_feature_maps.conv1.weight"].mul_(1.001)),
                         ("checksum", lambda d: d.update({CHECKSUM_KEY: 12}))):
        d = read_file(model_file)
        change(d)
        torch.save(d, tmp_path / f"{what}.pt")
        assert _error(tmp_path / f"{what}.pt") == f"{tmp_path / what}.pt: damaged: content does not match its checksum"
    torch.save(payload, tmp_path / "same.pt")  # the same content re-saved: the zip differs, the checksum holds
    assert load_model(tmp_path / "same.pt").verified


def test_files_without_a_checksum_load_as_before(model_file, tmp_path):
    payload = read_file(model_file)
    del payload[CHECKSUM_KEY]
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.kind == "os2d-studio" and not loaded.verified


def test_default_model_loads_and_info_prints_its_sha256(capsys):
    path = default_model_path()
    if not path.exists():
        pytest.skip("the default model is not in this checkout")
    assert cli_main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"sha256      {file_sha256(path)}" in out


def test_info_says_when_the_checksum_was_verified(model_file, capsys):
    assert cli_main(["info", str(model_file)]) == 0
    assert f"sha256      {file_sha256(model_file)} (content checksum verified)" in capsys.readouterr().out
    assert cli_main(["info", "--json", str(model_file)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["sha256"] == file_sha256(model_file) and d["content_checksum_verified"] is True


@pytest.mark.parametrize("key, value, problem", [
    ("net_feature_maps.layer1.0.bn1.running_var", -0.5, "holds negative values"),
    ("net_feature_maps.layer2.0.conv1.weight", float("nan"), "holds NaN values"),
    ("os2d_head_creator.aligner.parameter_regressor.linear.weight", float("inf"), "holds infinite values"),
    ("net_feature_maps.bn1.running_mean", float("-inf"), "holds infinite values"),
])
def test_official_layout_with_impossible_values_is_refused(tmp_path, key, value, problem):
    torch.manual_seed(0)
    sd = OS2DModel(ModelConfig("resnet18")).state_dict()
    sd[key].view(-1)[3] = value
    path = tmp_path / "official.pth"
    torch.save({"net": sd, "optimizer": {}}, path)
    assert _error(path) == f"{path}: layer {key} {problem}"


def test_own_format_with_nan_is_refused_even_when_its_checksum_matches(tmp_path):
    from _file_helpers import small_model
    from core.model.checkpoint import save_model

    m = small_model()
    with torch.no_grad():
        m.net_feature_maps.layer3[0].conv2.weight.view(-1)[0] = float("nan")
    p = save_model(m, tmp_path / "nan.pt")
    assert _error(p) == f"{p}: layer net_feature_maps.layer3.0.conv2.weight holds NaN values"


# -- importance results ------------------------------------------------------------------------------
def test_importance_result_records_and_verifies_its_arrays(tmp_path):
    res = small_importance()
    npz, js = res.save(tmp_path / "r")
    assert "arrays_sha256" in json.loads(js.read_text())
    back = ImportanceResult.load(js)
    np.testing.assert_array_equal(back.score("weight_l1", res.units[0]), res.score("weight_l1", res.units[0]))

    # the same arrays in another npz layout still load
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez_compressed(npz, **dict(reversed(list(arrays.items()))))
    ImportanceResult.load(js)

    # one value changed, the npz otherwise valid (its zip CRCs are right)
    key = next(k for k in arrays if k.startswith("score"))
    arrays[key] = arrays[key].copy()
    arrays[key][2] += 1e-9
    np.savez(npz, **arrays)
    assert _error(js, ImportanceFileError, ImportanceResult.load) == f"{npz}: damaged: content does not match its checksum"


def test_importance_flipped_byte_in_place_is_caught(tmp_path):
    npz, js = small_importance().save(tmp_path / "r")
    with zipfile.ZipFile(npz) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = npz.read_bytes()
    npz.write_bytes(flip_byte(data, entry_data_offset(npz, info) + info.file_size - 5))
    assert _error(js, ImportanceFileError, ImportanceResult.load) == f"{npz}: damaged: content does not match its checksum"


def test_importance_result_without_arrays_checksum_loads_as_before(tmp_path):
    npz, js = small_importance().save(tmp_path / "r")
    meta = json.loads(js.read_text())
    del meta["arrays_sha256"]
    js.write_text(json.dumps(meta))
    ImportanceResult.load(js)


# -- resume checkpoints ------------------------------------------------------------------------------
def _resume_payload() -> dict:
    """What a training run's last.pt holds: weights, an optimizer's state (int keys), history and config."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(layer.parameters())
    layer(torch.ones(2, 4)).sum().backward()
    opt.step()
    return {"model": layer.state_dict(), "optimizer": opt.state_dict(),
            "state": {"iteration": 2, "history": [{"loss": 1.5}, {"loss": float("nan")}], "best_map": None},
            "config": {"dataset": "d", "extra_train": ()}, "meta": {"eval_scale": 240.0}}


def test_resume_payload_round_trips_with_its_digest(tmp_path):
    p = save_checked(_resume_payload(), tmp_path / "last.pt")
    assert CHECKSUM_KEY in torch.load(p, weights_only=True)
    back = read_checked(p)
    assert CHECKSUM_KEY not in back and back["state"]["iteration"] == 2
    assert torch.equal(back["model"]["weight"], _resume_payload()["model"]["weight"])


def test_damaged_resume_payload_is_refused(tmp_path):
    p = save_checked(_resume_payload(), tmp_path / "last.pt")
    big = tensor_entries(p)[0]
    damaged = tmp_path / "damaged.pt"
    rewrite_entry(p, damaged, big.filename, lambda b: flip_byte(b, len(b) // 2))  # zip CRCs stay right
    assert _error(damaged, load=read_checked) == f"{damaged}: damaged: content does not match its checksum"
    changed = torch.load(p, weights_only=True)
    changed["state"]["iteration"] = 3  # a value changed, the digest kept
    torch.save(changed, tmp_path / "changed.pt")
    assert _error(tmp_path / "changed.pt", load=read_checked).endswith(": damaged: content does not match its checksum")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(p.read_bytes()[:-200])
    assert _error(cut, load=read_checked).startswith(f"{cut}: truncated or corrupt")


def test_resume_payload_without_digest_reads_as_before(tmp_path):
    torch.save(_resume_payload(), tmp_path / "old.pt")
    assert read_checked(tmp_path / "old.pt")["state"]["iteration"] == 2
