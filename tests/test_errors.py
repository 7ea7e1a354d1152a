"""Exit codes that mean one thing, checks before work, and atomic writes that leave nothing behind."""

import json
import os
import stat

import nir
import numpy as np
import pytest

import snndeploy
from snndeploy.cli import main
from snndeploy.errors import EXIT_BAD_INPUT, EXIT_NOT_PASSED, EXIT_RUNTIME, OutputError
from snndeploy.report import markdown
from snndeploy.util import files

DT = 1e-3


def _graph(path):
    rng = np.random.default_rng(0)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([4])}),
        "fc": nir.Affine(weight=rng.uniform(0.5, 2.0, (3, 4)), bias=np.zeros(3)),
        "lif1": nir.LIF(
            tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.1), v_reset=np.zeros(3)
        ),
        "out": nir.Output(output_type={"output": np.array([3])}),
    }
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif1"), ("lif1", "out")], metadata={"dt": DT})
    nir.write(str(path), g)
    x = (rng.random((2, 10, 4)) < 0.5).astype(np.float64)
    np.savez(path.parent / "in.npz", spikes=x)
    return path, path.parent / "in.npz"


def test_a_torch_error_inside_the_norse_backend_names_the_node_and_exits_3(tmp_path, monkeypatch, capsys):
    from snndeploy.reference import neurons

    def broken(i, v, p, dt):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setitem(neurons.NEURONS, "LIF", neurons.NeuronKind(neurons.lif_params, broken))
    g, x = _graph(tmp_path / "g.nir")
    rc = main(["run", str(g), "--backend", "norse", "--input", str(x), "--out", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert rc == EXIT_RUNTIME
    assert "node 'lif1' (LIF) failed at step 0" in err and "mat1 and mat2" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def test_an_unexpected_error_exits_3_with_one_line_and_the_traceback_only_under_debug(tmp_path, monkeypatch, capsys):
    from snndeploy.harness import inputs

    def boom(path):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(inputs, "load_input_npz", boom)
    g, x = _graph(tmp_path / "g.nir")
    argv = ["run", str(g), "--backend", "norse", "--input", str(x), "--out", str(tmp_path / "o.npz")]
    assert main(argv) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected ZeroDivisionError in 'run': division by zero")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["--debug"] + argv) == EXIT_RUNTIME
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["file", "empty", "under-file"])
def test_out_is_checked_before_any_backend_runs(tmp_path, monkeypatch, capsys, bad):
    from snndeploy.backends import norse

    def never(*a, **k):
        raise AssertionError("a backend ran although --out was unusable")

    monkeypatch.setattr(norse.NorseBackend, "run", never)
    g, x = _graph(tmp_path / "g.nir")
    (tmp_path / "afile").write_text("x")
    out = {"file": str(tmp_path / "afile"), "empty": "", "under-file": str(tmp_path / "afile" / "rep")}[bad]
    rc = main(["compare", str(g), "--backends", "norse,lava-float", "--input", str(x), "--out", out])
    assert rc == EXIT_BAD_INPUT
    assert "--out" in capsys.readouterr().err


def _threshold_graph(tmp_path):
    """A graph lava-fixed and loihi-emu refuse (a stateless Threshold) and the others run."""
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.array([[1.0, 0.0], [0.5, 0.5]])),
            "th": nir.Threshold(threshold=np.full(2, 0.4)),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("in", "fc"), ("fc", "th"), ("th", "out")],
        metadata={"dt": DT},
    )
    nir.write(str(tmp_path / "t.nir"), g)
    np.savez(tmp_path / "in.npz", spikes=np.ones((1, 5, 2)))
    return ["compare", str(tmp_path / "t.nir"), "--input", str(tmp_path / "in.npz"), "--out", str(tmp_path / "rep")]


def test_compare_goes_on_past_a_refusing_backend(tmp_path, capsys):
    """lava-fixed refuses the Threshold node: norse and loihi-emu? no, loihi-emu refuses too; norse and
    lava-float run and are compared, the refusal is listed (backend, node, type, reason), the report is
    written and the exit code says "not passed"."""
    rc = main(_threshold_graph(tmp_path) + ["--backends", "norse,lava-fixed,lava-float"])
    assert rc == EXIT_NOT_PASSED
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["passed"] is False
    assert [(r["backend"], r["node"], r["type"]) for r in rep["refused"]] == [("lava-fixed", "th", "Threshold")]
    assert "Threshold" in rep["refused"][0]["reason"] and "12-bit decay" in rep["refused"][0]["reason"]
    assert sorted(rep["backends"]) == ["lava-float", "norse"] and rep["reference"] == "norse"
    (pair,) = rep["pairs"]
    assert (pair["a"], pair["b"], pair["passed"]) == ("norse", "lava-float", True)
    # the reference spikes (1*1 > 0.4 and 0.5+0.5 > 0.4 at every step): the agreement is not trivial
    ref = snndeploy.run(str(tmp_path / "t.nir"), np.ones((1, 5, 2)), "norse").outputs["th"]
    assert ref.sum() == 10
    out = capsys.readouterr().out
    assert "lava-fixed  REFUSED node th (Threshold)" in out
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Refused" in md and "| lava-fixed | th | Threshold |" in md
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<h2>Refused" in html and "<td>th</td>" in html


def test_every_backend_refuses_before_any_runs(tmp_path, monkeypatch, capsys):
    """When no backend can run the graph, nothing runs, nothing is written, exit 2 with the refusal."""
    rc = main(_threshold_graph(tmp_path) + ["--backends", "lava-fixed,loihi-emu"])
    assert rc == EXIT_BAD_INPUT
    assert "backend 'lava-fixed' cannot run node 'th' of type Threshold" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_zero_epochs_are_refused_and_nothing_is_written(tmp_path, capsys):
    rc = main(["train", "--model", "digits_mlp", "--dataset", "digits", "--epochs", "0", "--out", str(tmp_path / "t")])
    assert rc == EXIT_BAD_INPUT
    assert "train.epochs (or --epochs) must be a whole number >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_a_failing_group_write_leaves_no_file_and_no_temporary_file(tmp_path, monkeypatch):
    calls = []
    real = files.Path.write_bytes

    def fail_second(self, data):
        calls.append(self)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(files.Path, "write_bytes", fail_second)
    with pytest.raises(OutputError, match="No space left"):
        files.write_files(tmp_path / "rep", {"a.json": b"1", "b.md": b"2", "c.html": b"3"})
    assert not (tmp_path / "rep").exists()  # neither the files, nor a temporary file, nor the folder made for them
    (tmp_path / "kept").mkdir()
    calls.clear()
    with pytest.raises(OutputError):
        files.write_files(tmp_path / "kept", {"a.json": b"1", "b.md": b"2"})
    assert os.listdir(tmp_path / "kept") == []  # a folder that existed stays


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        files.write_bytes(tmp_path / "x.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x.json").st_mode) == 0o640


def test_json_refuses_nan_instead_of_writing_invalid_json():
    with pytest.raises(ValueError):
        files.json_bytes({"energy": float("nan")})


def test_markdown_cells_are_escaped():
    text = markdown.table(["node", "x"], [[markdown.Code("a|b\nc`d"), "1|2"]])
    lines = text.splitlines()
    assert len(lines) == 3  # header, rule, one row: the newline did not split the row
    assert lines[2] == "| `a\\|b c'd` | 1\\|2 |"


def test_record_folders_of_sigkilled_runs_are_swept_and_live_ones_kept(tmp_path, monkeypatch):
    import tempfile

    from snndeploy.runtime.lava import RECORD_DIR_PREFIX, remove_stale_record_folders

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead_pid = 2**22 + 12345  # above Linux's default pid_max (2**22): no such process
    assert not os.path.exists(f"/proc/{dead_pid}")
    (tmp_path / f"{RECORD_DIR_PREFIX}{dead_pid}-abc").mkdir()
    (tmp_path / f"{RECORD_DIR_PREFIX}{dead_pid}-abc" / "0-spk.npy").write_bytes(b"x" * 100)
    (tmp_path / f"{RECORD_DIR_PREFIX}{os.getpid()}-def").mkdir()
    (tmp_path / "someone-elses").mkdir()
    remove_stale_record_folders()
    assert sorted(os.listdir(tmp_path)) == sorted([f"{RECORD_DIR_PREFIX}{os.getpid()}-def", "someone-elses"])
