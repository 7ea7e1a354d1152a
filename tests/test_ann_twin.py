"""The ANN twin (``snndeploy train --ann-twin``): real short trainings on the 8x8 digits, checked from
the written ``ann.onnx`` with onnxruntime here, not from what the training says about itself."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from snndeploy.cli import main
from snndeploy.data.datasets import get_dataset
from snndeploy.errors import BackendError, InputError
from snndeploy.train.config import load_model_config

EPOCHS = 2  # enough for the twin to be far above chance on the digits, a few seconds on a CPU
CHANCE = 0.1
ABOVE_CHANCE = 0.5
#: the configs with a twin trained here, and the ONNX input shape of one sample
TWIN_MODELS = {"digits_mlp": (64,), "digits_conv": (1, 8, 8)}


def _train(out, model: str, *extra: str) -> int:
    args = ["train", "--model", model, "--dataset", "digits", "--epochs", str(EPOCHS), "--device", "cpu"]
    return main(args + list(extra) + ["--out", str(out)])


@pytest.fixture(scope="module", params=sorted(TWIN_MODELS))
def twin_run(request, tmp_path_factory):
    """(model name, output folder) of one ``train --ann-twin`` run."""
    out = tmp_path_factory.mktemp(request.param)
    assert _train(out, request.param, "--ann-twin") == 0
    return request.param, out


def _twin(out) -> dict:
    return json.loads((out / "metrics.json").read_text())["ann_twin"]


def _test_split(model: str):
    """The digits test split as the twin sees it: clip(max_prob * x, 0, 1) of the config's Poisson code."""
    cfg = load_model_config(model)
    assert cfg["encoding"]["kind"] == "poisson"
    ds = get_dataset("digits")
    x = np.clip(ds.x_test * cfg["encoding"].get("max_prob", 1.0), 0.0, 1.0).astype(np.float32)
    return x.reshape((len(x),) + TWIN_MODELS[model]), ds.y_test


def test_writes_onnx_and_metrics(twin_run):
    model, out = twin_run
    assert (out / "ann.onnx").is_file() and (out / "model.nir").is_file()
    twin = _twin(out)
    assert twin["onnx"] == "ann.onnx" and twin["epochs"] == EPOCHS and twin["test_samples"] == 450
    assert twin["train_wall_s"] > 0
    assert "onnxruntime" in twin["how"] and twin["architecture"].endswith("(logits)")
    assert not list(out.glob(".tmp-*"))  # written atomically


def test_onnxruntime_accuracy_recomputed_here(twin_run):
    """Run ann.onnx on the whole test split here: the accuracy metrics.json states, far above chance."""
    model, out = twin_run
    x, y = _test_split(model)
    sess = ort.InferenceSession(str(out / "ann.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = sess.run(None, {sess.get_inputs()[0].name: x})
    acc = float((logits.argmax(1) == y).mean())
    twin = _twin(out)
    # one batch here, batches of 256 there: allow one sample of float noise between the two
    assert acc == pytest.approx(twin["test_accuracy"], abs=1 / len(y))
    assert twin["torch_test_accuracy"] == pytest.approx(acc, abs=1 / len(y))
    assert acc > ABOVE_CHANCE > CHANCE


def test_any_batch_size(twin_run):
    """The batch axis is dynamic: one sample, and an odd batch, give the logits of the whole batch."""
    model, out = twin_run
    x, _ = _test_split(model)
    sess = ort.InferenceSession(str(out / "ann.onnx"), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    whole = sess.run(None, {name: x})[0]
    for lo, hi in [(0, 1), (3, 10)]:
        np.testing.assert_allclose(sess.run(None, {name: x[lo:hi]})[0], whole[lo:hi], rtol=1e-5, atol=1e-5)


def test_parameters_are_the_onnx_initializers(twin_run):
    model, out = twin_run
    proto = onnx.load(str(out / "ann.onnx"))
    counted = sum(int(np.prod(init.dims)) for init in proto.graph.initializer)
    assert _twin(out)["parameters"] == counted
    ops = [n.op_type for n in proto.graph.node]
    assert ops[-1] == "Gemm"  # logits: no ReLU after the last layer
    assert ops.count("Relu") == (1 if model == "digits_mlp" else 3)  # one per hidden neuron layer
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["snndeploy.model"] == model and meta["snndeploy.input"].startswith("clip(max_prob * x, 0, 1)")


def test_without_flag_no_twin(tmp_path):
    assert _train(tmp_path, "digits_mlp") == 0
    assert not (tmp_path / "ann.onnx").exists()
    assert "ann_twin" not in json.loads((tmp_path / "metrics.json").read_text())


def test_cli_prints_the_twin(tmp_path, capsys):
    """The one-line summary names the onnxruntime accuracy and the parameter count."""
    assert _train(tmp_path, "digits_mlp", "--ann-twin") == 0
    twin = _twin(tmp_path)
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("ANN twin"))
    assert f"{100 * twin['test_accuracy']:.2f} %" in line and f"{twin['parameters']} parameters" in line


def test_twin_input_rules():
    from snndeploy.train.ann import twin_input

    x = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    assert twin_input(x, {"kind": "poisson", "max_prob": 1.5})[0].tolist() == [[0.0, 0.75, 1.0]]
    assert twin_input(x, {"kind": "direct", "scale": 2.0})[0].tolist() == [[0.0, 1.0, 2.0]]
    assert twin_input(x, {"kind": "noisy_repeat", "keep": 0.5})[0].tolist() == [[0.0, 0.25, 0.5]]
    assert twin_input(x, {"kind": "latency"})[0].tolist() == x.tolist()
    with pytest.raises(InputError, match="encoding kind 'morse'"):
        twin_input(x, {"kind": "morse"})


def test_torch_and_onnxruntime_must_agree():
    from snndeploy.train.ann import check_agreement

    a = np.zeros(2000, dtype=np.int64)
    b = a.copy()
    b[:2] = 1
    check_agreement(a, b)  # 1 in 1000: float noise
    b[:3] = 1
    with pytest.raises(BackendError, match="3 of 2000"):
        check_agreement(a, b)


def test_compare_report_puts_the_snn_beside_its_twin(twin_run, tmp_path, capsys):
    """A compare of the trained model.nir finds the twin beside it: the twin's accuracy as onnxruntime
    gives it here, training times from metrics.json, energy ranges from the report's own estimates."""
    model, out = twin_run
    rep_dir = tmp_path / "rep"
    args = ["compare", str(out / "model.nir"), "--backends", "norse,loihi-emu", "--dataset", "digits"]
    assert main(args + ["--samples", "40", "--out", str(rep_dir)]) in (0, 1)
    rep = json.loads((rep_dir / "report.json").read_text())
    sec = rep["ann_twin"]
    x, y = _test_split(model)
    sess = ort.InferenceSession(str(out / "ann.onnx"), providers=["CPUExecutionProvider"])
    ort_acc = float(np.mean(sess.run(None, {sess.get_inputs()[0].name: x})[0].argmax(1) == y))
    assert sec["twin"]["accuracy"] == pytest.approx(ort_acc) and sec["twin"]["test_samples"] == len(y)
    metrics = json.loads((out / "metrics.json").read_text())
    assert sec["snn"]["train_wall_s"] == metrics["train_wall_s"] > 0
    assert sec["twin"]["train_wall_s"] == metrics["ann_twin"]["train_wall_s"] > 0
    assert sec["snn"]["accuracy"] == {b: rep["backends"][b]["accuracy"] for b in ("norse", "loihi-emu")}
    est = rep["backends"]["norse"]["estimates"]
    assert set(sec["twin"]["energy"]) == {t for t, e in est.items() if e["kind"] == "ann"} != set()
    for t, e in sec["twin"]["energy"].items():
        assert 0 < e["low_nj"] <= e["high_nj"] and e["low_nj"] == est[t]["range"]["low"]["nj"]
    assert "loihi" in sec["snn"]["energy"]
    assert sec["snn"]["parameters"] == metrics["ann_twin"]["parameters"]  # same layers, same weights count
    md = (rep_dir / "report.md").read_text()
    assert "## The SNN and its ANN twin" in md and f"{100 * ort_acc:.2f} %" in md
    assert "The SNN and its ANN twin" in (rep_dir / "report.html").read_text()
    assert "ANN twin (ReLU" in capsys.readouterr().out


def test_no_twin_section_for_another_models_metrics(twin_run, tmp_path):
    """metrics.json beside the graph, but of another config (its hash differs): no twin section."""
    import shutil

    model, out = twin_run
    d = tmp_path / "copy"
    shutil.copytree(out, d)
    m = json.loads((d / "metrics.json").read_text())
    m["config_hash"] = "0" * 16
    (d / "metrics.json").write_text(json.dumps(m))
    args = ["compare", str(d / "model.nir"), "--backends", "norse,loihi-emu", "--dataset", "digits"]
    assert main(args + ["--samples", "10", "--out", str(tmp_path / "rep")]) in (0, 1)
    assert "ann_twin" not in json.loads((tmp_path / "rep" / "report.json").read_text())


def test_a_twin_entry_without_its_figures_is_named_not_fatal(twin_run, tmp_path):
    import shutil

    model, out = twin_run
    d = tmp_path / "copy"
    shutil.copytree(out, d)
    m = json.loads((d / "metrics.json").read_text())
    del m["ann_twin"]["parameters"]
    (d / "metrics.json").write_text(json.dumps(m))
    args = ["compare", str(d / "model.nir"), "--backends", "norse,loihi-emu", "--dataset", "digits"]
    assert main(args + ["--samples", "10", "--out", str(tmp_path / "rep")]) in (0, 1)
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert "ann_twin" not in rep and "lacks parameters" in rep["ann_twin_skipped"]
    assert "ANN twin not shown" in (tmp_path / "rep" / "report.md").read_text()
