"""The command line end to end, and its handling of bad input (exit code, message, no artifact)."""

import json

import nir
import numpy as np
import pytest

from snndeploy.cli import main
from snndeploy.errors import EXIT_BAD_INPUT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    assert (
        main(
            [
                "train",
                "--model",
                "digits_mlp",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--device",
                "cpu",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_train_writes_artifacts(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["test_samples"] == 450
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    g = nir.read(str(trained / "model.nir"))
    assert float(g.metadata["dt"]) == 1e-3
    assert (trained / "checkpoint.pt").is_file()


@pytest.mark.lava
def test_compare_end_to_end(trained, tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            str(trained / "model.nir"),
            "--backends",
            "norse,lava-float",
            "--dataset",
            "digits",
            "--samples",
            "4",
            "--out",
            str(out),
        ]
    )
    rep = json.loads((out / "report.json").read_text())
    assert code == (0 if rep["passed"] else 1)
    assert set(rep["backends"]) == {"norse", "lava-float"}
    for b in rep["backends"].values():
        assert b["samples"] == 4 and 0 <= b["accuracy"] <= 1 and b["synops_per_sample"] >= 0
    (pair,) = rep["pairs"]
    assert pair["a"] == "norse" and pair["b"] == "lava-float"
    assert set(pair["nodes"]) == {"lif1", "lif2"}
    assert (out / "report.md").read_text().startswith("# snndeploy comparison")
    assert "lif1" in capsys.readouterr().out


def test_run_writes_every_node(trained, tmp_path):
    x = (np.random.default_rng(0).random((3, 7, 64)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "in.npz", spikes=x)
    assert (
        main(
            [
                "run",
                str(trained / "model.nir"),
                "--backend",
                "norse",
                "--input",
                str(tmp_path / "in.npz"),
                "--out",
                str(tmp_path / "out.npz"),
            ]
        )
        == 0
    )
    with np.load(tmp_path / "out.npz") as f:
        assert set(f.files) == {"input", "fc1", "lif1", "fc2", "lif2", "output"}
        assert f["lif1"].shape == (3, 7, 128) and f["output"].shape == (3, 7, 10)
        np.testing.assert_array_equal(f["input"], x)


def _bad(capsys, argv, must_contain, absent):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT, err
    for piece in must_contain:
        assert piece in err, err
    assert not absent.exists(), f"{absent} was written despite the error"


def test_bad_missing_graph(tmp_path, capsys):
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 2, 1)))
    _bad(
        capsys,
        [
            "run",
            str(tmp_path / "missing.nir"),
            "--backend",
            "norse",
            "--input",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "o.npz"),
        ],
        ["missing.nir", "does not exist"],
        tmp_path / "o.npz",
    )


def test_bad_not_nir(tmp_path, capsys):
    (tmp_path / "g.nir").write_text("not hdf5")
    _bad(
        capsys,
        [
            "compare",
            str(tmp_path / "g.nir"),
            "--backends",
            "norse,lava-float",
            "--dataset",
            "digits",
            "--out",
            str(tmp_path / "rep"),
        ],
        ["g.nir", "not a NIR file"],
        tmp_path / "rep",
    )


def test_bad_unsupported_node(tmp_path, capsys):
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([2])}),
            "thr": nir.Delay(delay=np.full(2, 1e-3)),  # Lava refuses Delay
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("in", "thr"), ("thr", "out")],
    )
    nir.write(str(tmp_path / "g.nir"), g)
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 3, 2)))
    _bad(
        capsys,
        [
            "run",
            str(tmp_path / "g.nir"),
            "--backend",
            "lava-float",
            "--input",
            str(tmp_path / "in.npz"),
            "--dt",
            "1e-3",
            "--out",
            str(tmp_path / "o.npz"),
        ],
        ["'thr'", "Delay", "lava-float", "Supported node types"],
        tmp_path / "o.npz",
    )


def test_bad_input_shape(paper, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 5, 3)))
    _bad(
        capsys,
        [
            "compare",
            str(paper / "lif_norse.nir"),
            "--backends",
            "norse,lava-float",
            "--input",
            str(tmp_path / "in.npz"),
            "--dt",
            "1e-4",
            "--out",
            str(tmp_path / "rep"),
        ],
        ["in.npz", "(1, 5, 3)", "expects per step (1,)"],
        tmp_path / "rep",
    )


def test_bad_missing_dt(paper, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 5, 1)))
    _bad(
        capsys,
        [
            "run",
            str(paper / "lif_norse.nir"),
            "--backend",
            "norse",
            "--input",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "o.npz"),
        ],
        ["carries no dt", "--dt"],
        tmp_path / "o.npz",
    )


def test_bad_input_file_without_spikes(paper, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", data=np.zeros((1, 5, 1)))
    _bad(
        capsys,
        [
            "run",
            str(paper / "lif_norse.nir"),
            "--backend",
            "norse",
            "--input",
            str(tmp_path / "in.npz"),
            "--dt",
            "1e-4",
            "--out",
            str(tmp_path / "o.npz"),
        ],
        ["no array 'spikes'"],
        tmp_path / "o.npz",
    )


def test_bad_unknown_backend(paper, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 5, 1)))
    _bad(
        capsys,
        [
            "run",
            str(paper / "lif_norse.nir"),
            "--backend",
            "loihi9",
            "--input",
            str(tmp_path / "in.npz"),
            "--dt",
            "1e-4",
            "--out",
            str(tmp_path / "o.npz"),
        ],
        ["unknown backend 'loihi9'"],
        tmp_path / "o.npz",
    )


def test_qat_reports_what_the_exported_graph_does(trained, tmp_path, capsys):
    """The before/after figures are recomputed here from the written graph and must match."""
    from snndeploy.backends import get_backend
    from snndeploy.harness.agreement import predictions
    from snndeploy.harness.inputs import dataset_input
    from snndeploy.ir import graph as G

    out = tmp_path / "qat"
    assert main(["qat", "--from", str(trained), "--epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    rep = json.loads((out / "qat.json").read_text())
    assert set(rep["before"]) == set(rep["after"]) >= {"norse_accuracy", "loihi_emu_accuracy", "prediction_agreement"}
    g = G.load_graph(out / "model.nir")
    x, y, _ = dataset_input(g, "digits", None)
    emu = predictions(get_backend("loihi-emu", record_states=False).run(g, x, 1e-3).outputs["output"])
    ref = predictions(get_backend("norse").run(g, x, 1e-3).outputs["output"])
    assert np.mean(emu == y) == rep["after"]["loihi_emu_accuracy"]
    assert np.mean(ref == y) == rep["after"]["norse_accuracy"]
    assert "after" in capsys.readouterr().out


def test_qat_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    _bad(capsys, ["qat", "--from", str(tmp_path), "--out", str(tmp_path / "q")], ["no checkpoint"], tmp_path / "q")


@pytest.mark.lava
def test_compare_recurrent_conformance_graph(paper, tmp_path):
    """A recurrent graph from snnTorch (Braille) goes through compare, counts and reports."""
    x = (np.random.default_rng(4).random((2, 40, 12)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "in.npz", spikes=x)
    out = tmp_path / "rep"
    code = main(
        [
            "compare",
            str(paper / "braille_noDelay_bias_zero.nir"),
            "--backends",
            "norse,lava-float",
            "--input",
            str(tmp_path / "in.npz"),
            "--dt",
            "1e-4",
            "--out",
            str(out),
        ]
    )
    rep = json.loads((out / "report.json").read_text())
    assert code == 0 and rep["passed"]
    assert set(rep["pairs"][0]["nodes"]) == {"lif1.lif", "lif2"}
    assert (out / "report.html").is_file()


def test_resume_continues_exactly(tmp_path):
    """1 epoch + resume to 2 epochs gives the same weights as 2 epochs straight (CPU, seeded)."""
    import torch

    base = ["train", "--model", "digits_mlp", "--dataset", "digits", "--device", "cpu", "--seed", "5"]
    assert main(base + ["--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main(base + ["--epochs", "1", "--out", str(tmp_path / "resumed")]) == 0
    first = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert main(base + ["--epochs", "2", "--resume", "--out", str(tmp_path / "resumed")]) == 0
    m = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    # the training time counts both runs' epochs: the first run's from the checkpoint's history
    assert m["train_wall_s"] == pytest.approx(first["train_wall_s"] + m["history"][1]["wall_s"])
    assert m["train_wall_s_this_run"] >= m["history"][1]["wall_s"] and m["train_wall_s"] > m["train_wall_s_this_run"]
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert b["epoch"] == 2 and len(b["history"]) == 2
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0)


def test_resume_with_another_config_is_refused(tmp_path, capsys):
    base = ["train", "--model", "digits_mlp", "--dataset", "digits", "--device", "cpu", "--epochs", "1"]
    assert main(base + ["--seed", "1", "--out", str(tmp_path)]) == 0
    assert main(base + ["--seed", "2", "--resume", "--out", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "another config" in capsys.readouterr().err


@pytest.mark.lava
def test_lava_failure_is_reported_stopped_and_leaves_nothing(paper, tmp_path, capsys, monkeypatch):
    """Lava breaking mid-run: exit 3, the message names the backend and the step, no report written."""
    import lava.magma.core.run_conditions as rc

    from snndeploy.errors import EXIT_RUNTIME

    def broken(*a, **k):
        raise RuntimeError("simulated Lava failure")

    monkeypatch.setattr(rc, "RunSteps", broken)
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 5, 1)))
    out = tmp_path / "rep"
    code = main(
        [
            "compare",
            str(paper / "lif_norse.nir"),
            "--backends",
            "norse,lava-float",
            "--input",
            str(tmp_path / "in.npz"),
            "--dt",
            "1e-4",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_RUNTIME, err
    assert "lava-float" in err and "simulated Lava failure" in err and "after 0 of" in err
    assert not out.exists()
