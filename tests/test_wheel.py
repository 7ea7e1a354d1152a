"""The wheel works outside the checkout: targets and model configs ship inside the package."""

import os
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed (without dependencies: the test venv has them)
    into a folder of its own, which comes first on PYTHONPATH."""
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        pip + ["wheel", "--no-deps", "--no-build-isolation", str(REPO), "-w", str(tmp / "dist")],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").glob("snndeploy-*.whl")
    subprocess.run(
        pip + ["install", "--no-deps", "--target", str(tmp / "site"), str(wheel)], check=True, capture_output=True
    )
    env = dict(os.environ, PYTHONPATH=str(tmp / "site"))
    work = tmp / "elsewhere"  # not the checkout
    work.mkdir()
    return env, work


def _snndeploy(installed, *args):
    env, work = installed
    return subprocess.run(
        [sys.executable, "-m", "snndeploy", *args], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_package_comes_from_the_wheel(installed):
    env, work = installed
    out = subprocess.run(
        [sys.executable, "-c", "import snndeploy; print(snndeploy.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out.startswith(env["PYTHONPATH"]) and not out.startswith(str(REPO))


def test_energy_runs_from_the_wheel(installed):
    env, work = installed
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Affine(weight=rng.uniform(0.5, 2, (3, 4)), bias=np.zeros(3)),
            "lif": nir.LIF(
                tau=np.full(3, 1e-2), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.1), v_reset=np.zeros(3)
            ),
            "out": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")],
        metadata={"dt": 1e-3},
    )
    nir.write(str(work / "g.nir"), g)
    np.savez(work / "in.npz", spikes=(rng.random((2, 10, 4)) < 0.5).astype(np.float64))
    done = _snndeploy(installed, "energy", "g.nir", "--input", "in.npz", "--target", "truenorth")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "truenorth:" in done.stdout and "nJ per inference" in done.stdout and "ann_fp32_45nm" in done.stdout


def test_train_runs_from_the_wheel(installed):
    env, work = installed
    done = _snndeploy(
        installed, "train", "--model", "digits_mlp", "--dataset", "digits", "--epochs", "1", "--out", "trained"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "trained" / "model.nir").is_file() and "test accuracy" in done.stdout


def test_version_from_the_wheel(installed):
    done = _snndeploy(installed, "--version")
    assert done.returncode == 0 and done.stdout.startswith("snndeploy ")
