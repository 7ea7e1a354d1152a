"""ONNX ReLU ANN -> rate-coded SNN (snndeploy convert): accuracy close to the ANN's, on norse and loihi-emu;
the converted graph compares like any other; what cannot be converted is refused naming the ONNX node."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from snndeploy.cli import main
from snndeploy.data.datasets import get_dataset
from snndeploy.errors import EXIT_BAD_INPUT

#: accuracy the converted SNN may lose against its ANN on digits at T = 64 (450 test samples)
MAX_LOSS = 0.04


def _train(model: nn.Module, shape, steps: int = 150) -> nn.Module:
    torch.manual_seed(0)
    ds = get_dataset("digits")
    x, y = torch.as_tensor(ds.x_train).reshape((-1,) + shape), torch.as_tensor(ds.y_train).long()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _export(model: nn.Module, shape, path, dynamic_feature_axis: bool = False):
    axes = {"x": {0: "batch"}, "y": {0: "batch"}}
    if dynamic_feature_axis:
        axes["x"][1] = "features"
    torch.onnx.export(
        model,
        torch.zeros((1,) + shape),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes=axes,
        dynamo=False,
    )
    return path


class _ReshapeMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = nn.Linear(64, 48), nn.BatchNorm1d(48), nn.Linear(48, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x.view(-1, 64)))))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 12, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(12 * 4 * 4, 10),
    )


def _ort_accuracy(path, shape) -> float:
    import onnxruntime as ort

    ds = get_dataset("digits")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"x": ds.x_test.reshape((-1,) + shape).astype(np.float32)})[0]
    return float(np.mean(logits.argmax(1) == ds.y_test))


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)), (64,)),
        (_ReshapeMlp, (1, 64)),
        (cnn, (1, 8, 8)),
    ],
    ids=["mlp", "reshape-batchnorm-mlp", "cnn"],
)
def test_convert_keeps_the_ann_accuracy(tmp_path, capsys, build, shape):
    path = _export(_train(build(), shape), shape, tmp_path / "ann.onnx")
    rc = main(["convert", str(path), "--dataset", "digits", "--steps", "64", "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((tmp_path / "out" / "conversion.json").read_text())
    ann = _ort_accuracy(path, shape)
    assert rep["ann_accuracy"] == pytest.approx(ann) and ann > 0.85
    for backend in ("norse", "loihi-emu"):
        snn = rep["snn"][backend]
        assert snn["samples"] == 450
        assert snn["accuracy"] >= ann - MAX_LOSS, (backend, snn["accuracy"], ann)
        assert all(0.0 < r < 1.0 for r in snn["firing_rate"].values()), snn["firing_rate"]
    assert rep["parity_max_abs_diff"] < 1e-3
    assert [layer["threshold"] for layer in rep["layers"]] == [1.0] * len(rep["layers"])
    assert "ANN (onnxruntime)  accuracy" in capsys.readouterr().out


@pytest.mark.lava
def test_converted_graph_compares_like_any_other(tmp_path):
    path = _export(_train(cnn(), (1, 8, 8)), (1, 8, 8), tmp_path / "cnn.onnx")
    assert (
        main(
            [
                "convert",
                str(path),
                "--dataset",
                "digits",
                "--steps",
                "32",
                "--samples",
                "60",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    rc = main(
        ["compare", str(tmp_path / "c" / "model.nir"), "--dataset", "digits", "--samples", "20"]
        + ["--backends", "norse,lava-float,loihi-emu", "--out", str(tmp_path / "rep")]
    )
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    norse_lava = rep["pairs"][0]
    assert (norse_lava["b"], norse_lava["spike_agreement"]) == ("lava-float", 1.0)
    assert rep["input"].startswith("digits test split, first 20 samples, encoding")
    assert rc in (0, 1)  # norse vs loihi-emu is quantized: it may miss the default tolerance


def _onnx_with(tmp_path, layers, shape=(64,), name="bad.onnx", **kw):
    return _export(nn.Sequential(*layers).eval(), shape, tmp_path / name, **kw)


@pytest.mark.parametrize(
    "make, text",
    [
        (lambda t: _onnx_with(t, [nn.Linear(64, 10), nn.Sigmoid()]), "op type Sigmoid: a non-ReLU activation"),
        (
            lambda t: _onnx_with(
                t, [nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 10)], (1, 8, 8)
            ),
            "op type MaxPool: max pooling has no rate-coded equivalent",
        ),
        (
            lambda t: _onnx_with(t, [nn.Linear(64, 10)], dynamic_feature_axis=True),
            "has a dynamic size on axis 1 ('features')",
        ),
        (
            lambda t: (t / "x.onnx", (t / "x.onnx").write_bytes(b"not a protobuf at all"))[0],
            "is not a valid ONNX model",
        ),
        (lambda t: t / "missing.onnx", "does not exist"),
    ],
    ids=["sigmoid", "maxpool", "dynamic-shape", "corrupt", "missing"],
)
def test_what_cannot_be_converted_is_refused_and_nothing_is_written(tmp_path, capsys, make, text):
    path = make(tmp_path)
    rc = main(["convert", str(path), "--dataset", "digits", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == EXIT_BAD_INPUT and text in err, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--headroom", "0.5"], "--headroom must be 'auto' or a finite number >= 1, got '0.5'"),
        (["--headroom", "inf"], "--headroom must be 'auto' or a finite number >= 1, got 'inf'"),
        (["--headroom", "lots"], "--headroom must be 'auto' or a finite number >= 1, got 'lots'"),
        (["--encoding", "latency"], "--encoding must be one of poisson, direct, got 'latency'"),
        (["--headroom", "auto"], "--headroom auto needs 1000 calibration + 1000 validation training samples"),
    ],
    ids=["headroom-below-1", "headroom-infinite", "headroom-not-a-number", "encoding", "auto-without-enough-data"],
)
def test_bad_conversion_options_are_refused_and_nothing_is_written(tmp_path, capsys, extra, text):
    path = _onnx_with(tmp_path, [nn.Linear(64, 10)], name="ok.onnx")
    rc = main(["convert", str(path), "--dataset", "digits", "--out", str(tmp_path / "out")] + extra)
    err = capsys.readouterr().err
    assert rc == EXIT_BAD_INPUT and text in err, err
    assert not (tmp_path / "out").exists()


def test_headroom_auto_picks_the_best_on_training_samples_and_reproduces(tmp_path, capsys):
    """digits has 1347 training samples: 300 calibrate, the last 1000 choose. Converting again with the
    chosen headroom given explicitly gives the same SNN, so the same test accuracy."""
    from snndeploy.train.convert import AUTO_HEADROOMS

    shape = (64,)
    path = _export(
        _train(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)), shape), shape, tmp_path / "a.onnx"
    )
    common = ["convert", str(path), "--dataset", "digits", "--steps", "16", "--calibration", "300"]
    assert main(common + ["--headroom", "auto", "--out", str(tmp_path / "auto")]) == 0
    auto = json.loads((tmp_path / "auto" / "conversion.json").read_text())
    tried = auto["headroom_auto"]["tried"]
    assert [t["headroom"] for t in tried] == list(AUTO_HEADROOMS)
    assert all(0.5 < t["validation_accuracy"] <= 1.0 for t in tried)
    best = max(t["validation_accuracy"] for t in tried)
    assert auto["headroom"] == min(t["headroom"] for t in tried if t["validation_accuracy"] == best)
    assert "chosen on training samples" in capsys.readouterr().out
    assert main(common + ["--headroom", str(auto["headroom"]), "--out", str(tmp_path / "fixed")]) == 0
    fixed = json.loads((tmp_path / "fixed" / "conversion.json").read_text())
    assert fixed["headroom_auto"] is None and fixed["headroom"] == auto["headroom"]
    for b in ("norse", "loihi-emu"):
        assert fixed["snn"][b]["accuracy"] == auto["snn"][b]["accuracy"]


def test_direct_encoding_is_written_and_evaluated_where_graded_input_runs(tmp_path, capsys):
    """The intensity as a current every step: norse evaluates it; loihi-emu takes binary spikes only
    and says so in conversion.json instead of failing the conversion."""
    shape = (64,)
    path = _export(
        _train(nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)), shape), shape, tmp_path / "a.onnx"
    )
    args = ["convert", str(path), "--dataset", "digits", "--steps", "32", "--encoding", "direct"]
    rc = main(args + ["--out", str(tmp_path / "d")])
    assert rc == 0
    rep = json.loads((tmp_path / "d" / "conversion.json").read_text())
    assert rep["encoding"] == {"kind": "direct", "scale": 1.0, "steps": 32}
    assert rep["snn"]["norse"]["accuracy"] >= _ort_accuracy(path, shape) - MAX_LOSS
    assert "binary spikes" in rep["snn"]["loihi-emu"]["refused"]
    assert "loihi-emu   not evaluated" in capsys.readouterr().out
    from snndeploy.ir.graph import read_graph

    meta = json.loads(read_graph(str(tmp_path / "d" / "model.nir"))[0].metadata["snndeploy_config"])
    assert meta["encoding"]["kind"] == "direct"


def test_headroom_auto_chooses_on_the_end_of_the_training_split(tmp_path, monkeypatch):
    """The samples that choose the headroom are the last 1000 of the training split (labels compared
    with the dataset's own), never test samples and not the calibration samples at its start."""
    from snndeploy.train import convert as C

    seen = []
    real = C.evaluate_snn

    def spy(graph, x_enc, labels, dt, backend):
        seen.append(np.asarray(labels).copy())
        return real(graph, x_enc, labels, dt, backend)

    monkeypatch.setattr(C, "evaluate_snn", spy)
    shape = (64,)
    path = _export(
        _train(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), shape), shape, tmp_path / "a.onnx"
    )
    args = ["convert", str(path), "--dataset", "digits", "--steps", "8", "--calibration", "300", "--headroom", "auto"]
    assert main(args + ["--out", str(tmp_path / "o")]) == 0
    ds = get_dataset("digits")
    choosing = seen[: len(C.AUTO_HEADROOMS)]
    assert all(np.array_equal(y, ds.y_train[-1000:]) for y in choosing)
    assert all(np.array_equal(y, ds.y_test) for y in seen[len(C.AUTO_HEADROOMS) :])  # then the test split
