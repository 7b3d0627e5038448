"""Deployable models: exported graphs on ONNX Runtime and OpenVINO give torch's detections, int8 records its
origin, bad artefacts get one line naming the file, nothing is overwritten, and no telemetry id is written."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.deploy.artefacts import CACHE_ENV, DeployError, model_digest
from core.deploy.export import export_model, read_export
from core.detect import Detector
from _file_helpers import small_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Every test here caches its exports in a temporary folder, never in the user's."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        yield root


@pytest.fixture(scope="module")
def small(cache):
    model = small_model()
    return model, export_model(model)


def _same_detections(a, b, *, box_tol=0.5, score_tol=1e-3):
    """Each detection of `b` has its own partner in `a`: same label, score within score_tol, box within box_tol."""
    assert len(a) == len(b)
    used = np.zeros(len(a), bool)
    for box, score, label in zip(b.boxes, b.scores, b.labels):
        cand = (~used) & (a.labels == label) & (np.abs(a.scores - score) <= score_tol)
        cand &= np.abs(a.boxes - box).max(axis=1) <= box_tol
        assert cand.any(), f"detection {box.tolist()} {score:.5f} (class {label}) not reproduced"
        used[np.flatnonzero(cand)[0]] = True


# -- the official reference bundle ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(ref_dir, cache):
    from core.model.checkpoint import load_model

    model = load_model(ref_dir / "checkpoint.pth").model
    export_model(model)  # once, into the test cache; both backends read it
    classes = sorted(ref_dir.glob("class_*.png"))
    torch_dets = Detector(model, "cpu", target_size=1000).detect(ref_dir / "target.png", classes)
    return model, classes, torch_dets


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_backends_reproduce_torch_on_reference(reference, ref_dir, backend):
    model, classes, torch_dets = reference
    det = Detector(model, "cpu", target_size=1000, backend=backend)
    assert det.describe() == f"{backend} fp32 on CPU"
    dets = det.detect(ref_dir / "target.png", classes)
    assert len(torch_dets) == 109
    _same_detections(dets, torch_dets)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_backends_reproduce_official_detections(reference, ref_dir, backend):
    """Raw graph outputs on the official inputs, decoded by the shared Python path, give OS2D's detections."""
    from core.model import box_coder

    model = reference[0]
    inputs = torch.load(ref_dir / "inputs.pt", weights_only=True)
    outputs = torch.load(ref_dir / "outputs.pt", weights_only=True)
    net = Detector(model, "cpu", backend=backend).net
    out = net(inputs["target_image"], class_feats=net.class_features(inputs["class_images"]))
    assert tuple(out.fm_hw) == tuple(outputs["fm_size_hw"].tolist())
    h, w = inputs["target_image"].shape[-2:]
    lvl = box_coder.PyramidLevel(out.loc[0], out.cls[0], (h, w), out.fm_hw, net.box_size, net.stride,
                                 corners=out.corners[0])
    det = box_coder.decode_detections([lvl], [0, 1], nms_iou_threshold=0.3)
    from core.detect import Detections

    mine = Detections(det.boxes.numpy(), det.scores.numpy(), det.labels.numpy())
    official = Detections(outputs["detections_boxes_xyxy"].numpy(), outputs["detections_scores"].numpy(),
                          outputs["detections_labels"].numpy())
    _same_detections(mine, official)


# -- graphs ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_graphs_take_other_sizes_and_class_counts(small, backend):
    from core.model.inference import inference_model

    model, exported = small
    assert exported.info["opset"] == 17 and exported.info["parent_sha256"] == model_digest(model)
    net = Detector(model, "cpu", backend=backend).net
    ref = inference_model(model)
    g = torch.Generator().manual_seed(1)
    for (h, w), c in (((301, 517), 3), ((640, 352), 1)):  # neither the traced example (443x591) nor 2 classes
        x = torch.randn(1, 3, h, w, generator=g)
        classes = [torch.randn(3, 240, 200, generator=g) for _ in range(c)]
        feats = net.class_features(classes)
        with torch.inference_mode():
            want_feats = ref.class_features(classes)
            want = ref(x, class_feats=want_feats)
        got = net(x, class_feats=feats)
        assert got.fm_hw == want.fm_hw and got.cls.shape == (1, c, want.fm_hw[0] * want.fm_hw[1])
        assert torch.allclose(feats, want_feats, atol=1e-4, rtol=1e-4)
        assert (got.cls - want.cls).abs().max() < 1e-4
        assert (got.loc - want.loc).abs().max() < 1e-3


def test_a_repeated_size_runs_on_a_graph_compiled_for_it(small):
    """A video's frames share one size: from its second frame OpenVINO runs a graph fixed to that size (its
    fast kernels), with the dynamic graph's outputs; a size met once compiles nothing."""
    model, _ = small
    net = Detector(model, "cpu", backend="openvino").net
    graph = net._target
    g = torch.Generator().manual_seed(2)
    feats = net.class_features([torch.randn(3, 240, 200, generator=g)])
    once = net(torch.randn(1, 3, 257, 311, generator=g), class_feats=feats)
    assert once.cls.shape[-1] > 0 and not graph._static
    x = torch.randn(1, 3, 300, 400, generator=g)
    first = net(x, class_feats=feats)  # dynamic graph
    assert not graph._static
    second = net(x, class_feats=feats)  # compiled for 300x400 and one class
    assert len(graph._static) == 1
    assert (first.cls - second.cls).abs().max() < 1e-4 and (first.loc - second.loc).abs().max() < 1e-3
    for k in range(graph.STATIC_KEEP + 1):  # the least recently used fixed size is dropped
        y = torch.randn(1, 3, 200 + 16 * k, 240, generator=g)
        net(y, class_feats=feats)
        net(y, class_feats=feats)
    assert len(graph._static) == graph.STATIC_KEEP


def test_an_older_cached_export_is_made_again_but_an_older_folder_still_reads(small, tmp_path):
    from core.deploy.artefacts import EXPORT_JSON, read_sidecar, write_sidecar

    model, exported = small
    old = tmp_path / "old"
    shutil.copytree(exported.folder, old)
    info = {k: v for k, v in read_sidecar(old / EXPORT_JSON, "export").items() if k not in ("format", "kind")}
    write_sidecar(old / EXPORT_JSON, "export", dict(info, export_version=1))
    assert read_export(old, model_digest(model))["export_version"] == 1  # a user's folder of version 1 still runs
    write_sidecar(exported.sidecar, "export", dict(info, export_version=1))  # the cache now holds version 1
    again = export_model(model)
    assert not again.cached and again.info["export_version"] == info["export_version"]
    write_sidecar(old / EXPORT_JSON, "export", dict(info, export_version=99))
    with pytest.raises(DeployError, match="export format 99"):
        read_export(old)


def test_export_is_cached_by_model_digest(small, cache):
    model, exported = small
    assert exported.folder == cache / "deploy" / model_digest(model) / "export"
    again = export_model(model)
    assert again.cached and again.folder == exported.folder
    assert json.loads(exported.sidecar.read_text())["versions"]["torch"] == torch.__version__


def test_export_never_overwrites(small, tmp_path):
    model, _ = small
    out = tmp_path / "deploy"
    export_model(model, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(DeployError) as e:
        export_model(model, out)
    assert "refusing to overwrite" in str(e.value) and str(out) in str(e.value) and "\n" not in str(e.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a user's own file of the same name is left alone too
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "class.onnx").write_bytes(b"my own file")
    with pytest.raises(DeployError, match="class.onnx: file exists"):
        export_model(model, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["class.onnx"]
    assert (mine / "class.onnx").read_bytes() == b"my own file"


def _foreign_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(path))


@pytest.mark.parametrize("damage", ["truncated", "png", "text", "empty", "foreign", "edited"])
def test_bad_onnx_gets_one_line_naming_the_file(small, tmp_path, damage):
    model, exported = small
    out = tmp_path / "deploy"
    shutil.copytree(exported.folder, out)
    target = out / "target.onnx"
    data = target.read_bytes()
    if damage == "truncated":
        target.write_bytes(data[: len(data) // 3])
    elif damage == "png":
        target.write_bytes((REPO / "resources" / "icons" / "os2d-studio.png").read_bytes())
    elif damage == "text":
        target.write_text("hello, not a model\n")
    elif damage == "empty":
        target.write_bytes(b"")
    elif damage == "foreign":
        _foreign_onnx(target)
    else:  # same graph, one weight byte changed: the sidecar's sha256 catches it
        b = bytearray(data)
        b[len(b) // 2] ^= 0xFF
        target.write_bytes(bytes(b))
    for backend in ("onnxruntime", "openvino"):
        with pytest.raises(DeployError) as e:
            Detector(model, "cpu", backend=backend, deploy_dir=out)
        msg = str(e.value)
        assert msg.startswith(f"{target}: ") and "\n" not in msg, msg


def test_bad_ir_and_sidecar_get_one_line(small, tmp_path):
    from core.deploy.artefacts import check_ir_files
    from core.deploy.runtime import read_quantized

    xml = tmp_path / "target_int8.xml"
    xml.write_bytes((REPO / "resources" / "icons" / "os2d-studio.png").read_bytes())
    with pytest.raises(DeployError, match=r"target_int8.xml: not an OpenVINO IR \(a PNG image\)"):
        check_ir_files(xml)
    xml.write_text('<?xml version="1.0"?>\n<net name="x" version="11"></net>\n')
    with pytest.raises(DeployError, match=r"target_int8.bin: weights of the OpenVINO IR are missing"):
        check_ir_files(xml)
    (tmp_path / "quantize.json").write_text("{not json")
    with pytest.raises(DeployError, match=r"quantize.json: not a JSON sidecar"):
        read_quantized(tmp_path)
    # an export of another model is refused by name
    other = small_model(seed=1)
    with pytest.raises(DeployError, match=r"export.json: exported from another model"):
        read_export(small[1].folder, model_digest(other))


def test_backend_choices_say_what_is_wrong(small):
    from core.deploy.runtime import supports_bf16

    model, _ = small
    with pytest.raises(DeployError, match="precision int8: the torch backend runs fp32 only"):
        Detector(model, "cpu", precision="int8")
    with pytest.raises(DeployError, match="backend tensorrt: unknown backend"):
        Detector(model, "cpu", backend="tensorrt")
    with pytest.raises(DeployError, match="precision int8: no int8 model of this model yet"):
        Detector(model, "cpu", backend="openvino", precision="int8")
    with pytest.raises(DeployError, match="device tpu: not an OpenVINO device"):
        Detector(model, "tpu", backend="openvino")
    if supports_bf16():
        assert Detector(model, "cpu", backend="openvino", precision="bf16").describe() == "openvino bf16 on CPU"
    else:
        with pytest.raises(DeployError, match="precision bf16: the CPU here has no native bf16"):
            Detector(model, "cpu", backend="openvino", precision="bf16")


# -- int8 ------------------------------------------------------------------------------------------------
def test_quantized_model_names_its_parent_and_calibration(small, tmp_path):
    from core.data.grozi import open_dataset
    from core.deploy.quantize import QuantizeConfig, quantize
    from core.importance.calibration import build_calibration
    from core.jobs import CancelToken
    from core.resources import benchmark_dir

    model, _ = small
    calib = build_calibration(open_dataset(benchmark_dir(), "train"), 2, 256)
    steps = []
    res = quantize(model, calib, tmp_path / "int8", source_path="parent.pt", source_sha256="ab" * 32,
                   progress=lambda d, t, m: steps.append((d, t, m)))
    side = json.loads(res.sidecar.read_text())
    assert side["kind"] == "quantize" and side["parent_sha256"] == model_digest(model)
    assert side["parent_file"] == {"path": "parent.pt", "sha256": "ab" * 32}
    assert side["calibration"]["image_ids"] == list(calib.provenance.image_ids)
    assert side["calibration"]["dataset"] == calib.provenance.dataset and side["calibration"]["target_size"] == 256
    assert set(side["int8_parts"]) == set(QuantizeConfig().int8_parts)
    assert set(side["ignored_scope"]["kept_float"]) == {"transform_output", "head"}
    assert side["ignored_scope"]["nncf_patterns"] and side["int8_vs_fp32_on_calibration"]["images"] == 2
    assert side["versions"]["nncf"] and side["versions"]["openvino"]
    assert all(d <= t for d, t, _ in steps) and steps[-1][0] == steps[-1][1]
    # the folder is a complete deploy folder, and the cache has the same model for --precision int8
    det = Detector(model, "cpu", backend="openvino", precision="int8", deploy_dir=res.folder)
    assert det.describe() == "openvino int8 on CPU"
    cached = Detector(model, "cpu", backend="openvino", precision="int8")
    img = np.random.default_rng(0).integers(0, 255, (200, 260, 3), dtype=np.uint8)
    a, b = det.detect(img, [img[:80, :90]], target_size=256), cached.detect(img, [img[:80, :90]], target_size=256)
    assert np.array_equal(a.scores, b.scores)
    with pytest.raises(DeployError, match="refusing to overwrite"):
        quantize(model, calib, tmp_path / "int8")
    # a second copy from the cache names the file it was asked for
    again = quantize(model, calib, tmp_path / "again", source_path="other.pt", source_sha256="cd" * 32)
    assert again.cached and json.loads(again.sidecar.read_text())["parent_file"]["path"] == "other.pt"
    token = CancelToken()
    token.cancel()
    from core.jobs import Cancelled

    with pytest.raises(Cancelled):
        quantize(model, calib, tmp_path / "cancelled", config=QuantizeConfig(int8_parts=("trunk",)), cancel=token)
    assert not (tmp_path / "cancelled").exists()


# -- telemetry -------------------------------------------------------------------------------------------
def _run_isolated(code: str, home: Path) -> None:
    """A fresh interpreter (NNCF disables telemetry by itself under pytest and in CI, so neither may leak in)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "TF_BUILD", "JENKINS_URL", "NNCF_CI", "NNCF_DEV") and not k.startswith("PYTEST")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO))
    subprocess.run([sys.executable, "-c", code], env=env, cwd=str(home), check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_deploy_code_writes_no_telemetry_client_id(tmp_path):
    # the premise: the client NNCF creates on import writes an id under the home folder (no tracking id
    # given here, so this probe sends nothing)
    plain = tmp_path / "plain"
    plain.mkdir()
    _run_isolated("from openvino_telemetry import Telemetry\n"
                  "Telemetry(app_name='probe', app_version='0', tid=None, backend='ga4', enable_opt_in_dialog=False)",
                  plain)
    assert any((plain / "intel").glob("*cid*")), "openvino_telemetry no longer writes a client id; revisit telemetry.py"
    # through our deploy code, with a real quantization (the call NNCF reports): nothing
    ours = tmp_path / "ours"
    ours.mkdir()
    _run_isolated(
        "import core.deploy.quantize, nncf, numpy as np, openvino as ov\n"
        "from openvino import opset13 as ops\n"
        "x = ops.parameter([1, 3, 8, 8], np.float32, name='x')\n"
        "w = ops.constant(np.random.rand(4, 3, 3, 3).astype(np.float32))\n"
        "m = ov.Model([ops.relu(ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1]))], [x])\n"
        "data = [np.random.rand(1, 3, 8, 8).astype(np.float32) for _ in range(2)]\n"
        "nncf.quantize(m, nncf.Dataset(data), subset_size=2)\n"
        "from nncf.telemetry.wrapper import NNCFTelemetryStub, telemetry\n"
        "assert isinstance(telemetry, NNCFTelemetryStub)\n", ours)
    assert not (ours / "intel").exists()


# -- command line ----------------------------------------------------------------------------------------
def test_cli_export_then_detect_on_each_backend(small, tmp_path, capsys):
    from core.cli import main as cli_main
    from core.model.checkpoint import save_model
    from core.resources import samples_dir

    model, _ = small
    path = save_model(model, tmp_path / "m.pt")
    out = tmp_path / "deploy"
    assert cli_main(["export", "--model", str(path), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    side = json.loads((out / "export.json").read_text())
    assert side["parent_file"]["path"] == str(path) and side["opset"] == 17
    assert cli_main(["export", "--model", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out / 'target.onnx'}: file exists") and "\n" not in err
    scores = {}
    for backend in ("torch", "onnxruntime", "openvino"):
        js = tmp_path / f"{backend}.json"
        args = ["detect", "--model", str(path), "--class-image", str(samples_dir() / "class_83.png"),
                "--image", str(samples_dir() / "class_80.png"), "--target-size", "256", "--device", "cpu",
                "--min-score", "-1", "--json", str(js), "--backend", backend]
        if backend != "torch":
            args += ["--deploy-dir", str(out)]
        assert cli_main(args) == 0
        assert (f"on {backend} fp32 on CPU" if backend != "torch" else "on cpu") in capsys.readouterr().out
        scores[backend] = [d["score"] for d in json.loads(js.read_text())["detections"]]
    assert scores["onnxruntime"] == pytest.approx(scores["torch"], abs=2e-5)
    assert scores["openvino"] == pytest.approx(scores["torch"], abs=2e-5)


def test_availability_lists_every_choice_with_a_reason(small):
    from core.deploy.runtime import BACKENDS, PRECISIONS, availability, supports_bf16

    model, _ = small
    table = availability(model)
    assert set(table) == {(b, p) for b in BACKENDS for p in PRECISIONS}
    assert table[("torch", "fp32")] == table[("onnxruntime", "fp32")] == table[("openvino", "fp32")] == ""
    assert "fp32 only" in table[("torch", "int8")] and "fp32 only" in table[("onnxruntime", "bf16")]
    assert (table[("openvino", "bf16")] == "") == supports_bf16()
    assert all("\n" not in why for why in table.values())


def test_a_sidecar_records_a_checksum_that_reading_verifies(tmp_path):
    import json

    from core.deploy.artefacts import read_sidecar, write_sidecar

    path = tmp_path / "export.json"
    write_sidecar(path, "export", {"opset": 17, "parent": {"sha256": "ab" * 32}})
    assert read_sidecar(path, "export")["opset"] == 17
    data = json.loads(path.read_text())
    assert len(data["content_sha256"]) == 64
    data["opset"] = 18
    path.write_text(json.dumps(data))
    with pytest.raises(DeployError, match=r"export.json: damaged: content does not match its checksum"):
        read_sidecar(path, "export")


def test_latency_per_runtime_times_what_runs_and_says_why_not(cache):
    from core.deploy.latency import RUNTIMES, time_runtimes
    from core.jobs import CancelToken, Cancelled

    model = small_model(seed=7)  # its own digest: no int8 model of it in the cache
    seen = []
    rows = time_runtimes(model, input_size=(128, 160), repeats=1, warmup=0,
                         progress=lambda d, t, m="": seen.append(m))
    by = {r.runtime: r for r in rows}
    assert list(by) == [f"{b}:{p}" for b, p in RUNTIMES]
    for name in ("torch:fp32", "onnxruntime:fp32", "openvino:fp32"):
        assert by[name].ms is not None and by[name].ms > 0 and not by[name].skipped
    assert by["openvino:int8"].ms is None and "quantize" in by["openvino:int8"].skipped
    assert (by["openvino:bf16"].ms is None) == bool(by["openvino:bf16"].skipped)
    assert "timing openvino fp32" in seen
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        time_runtimes(model, repeats=1, cancel=token)
