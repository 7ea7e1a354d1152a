"""`snndeploy export` for a user's model factory, and the example scripts a user starts from."""

import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from snndeploy.cli import main

REPO = Path(__file__).resolve().parents[1]
FACTORY = f"{REPO / 'scripts' / 'example_user_model.py'}:build"


def test_export_a_factory_with_weights(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from example_user_model import build
    finally:
        sys.path.remove(str(REPO / "scripts"))
    torch.manual_seed(5)
    trained = build()
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    rc = main(
        [
            "export",
            "--model",
            FACTORY,
            "--weights",
            str(tmp_path / "w.pt"),
            "--input-shape",
            "64",
            "--dt",
            "1e-3",
            "--out",
            str(tmp_path / "m.nir"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    g = nir.read(str(tmp_path / "m.nir"))
    assert [type(g.nodes[n]).__name__ for n in ("0", "1", "2", "3")] == ["Affine", "LIF", "Affine", "CubaLIF"]
    np.testing.assert_array_equal(g.nodes["0"].weight, trained[0].weight.detach().numpy())


@pytest.mark.parametrize(
    "argv, text",
    [
        (["--model", "no_such_module_xyz:build"], "cannot import 'no_such_module_xyz'"),
        (["--model", f"{REPO / 'scripts' / 'example_user_model.py'}:nothing"], "has no callable 'nothing'"),
        (["--model", "build"], "expected MODULE:FACTORY"),
        (["--model", FACTORY, "--input-shape", "a,b"], "expected integers separated by commas"),
        (["--model", FACTORY, "--weights", "WEIGHTS"], "cannot be loaded into the model"),
    ],
)
def test_export_refuses_bad_arguments_by_name(tmp_path, capsys, argv, text):
    torch.save({"wrong": torch.zeros(1)}, tmp_path / "bad.pt")
    argv = [a.replace("WEIGHTS", str(tmp_path / "bad.pt")) for a in argv]
    if "--input-shape" not in argv:
        argv += ["--input-shape", "64"]
    rc = main(["export", *argv, "--dt", "1e-3", "--out", str(tmp_path / "m.nir")])
    assert rc == 2 and text in capsys.readouterr().err
    assert not (tmp_path / "m.nir").exists()


@pytest.mark.slow
@pytest.mark.lava
def test_the_example_scripts_run(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "example_user_model.py"), "--epochs", "2", "--out", "out/user_model"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("snndeploy comparison: PASSED")
    assert (tmp_path / "out" / "user_model" / "report.html").is_file()
    ci = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(REPO / "scripts" / "example_test_equivalence.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ci.returncode == 0 and "1 passed" in ci.stdout, ci.stdout[-2000:]
