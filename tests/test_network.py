"""The seed network (a LIF group driven by Poisson input, in physical units) on four backends, drawn side by
side: brian2 and lava-float equal norse spike for spike, lava-fixed is close; the page renders."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from snndeploy.errors import InputError
from snndeploy.frontends.seed import build_network, load_network_config

REPO = Path(__file__).resolve().parents[1]


def test_physical_units_become_nir_by_hand():
    """A jump of `weight` volts per input spike is W = weight * tau / dt (Euler, r = 1)."""
    cfg = load_network_config("seed_poisson_lif")
    g, x = build_network(cfg)
    w = g.nodes["synapses"].weight
    jump = cfg["synapses"]["weight"] * cfg["neurons"]["tau_m"] / cfg["dt"]
    assert set(np.unique(w)) == {0.0, jump}
    assert abs(np.mean(w > 0) - cfg["synapses"]["p_connect"]) < 0.02
    assert x.shape == (1, round(cfg["duration"] / cfg["dt"]), cfg["input"]["n"])
    assert abs(x.mean() - cfg["input"]["rate"] * cfg["dt"]) < 0.2 * cfg["input"]["rate"] * cfg["dt"]
    lif = g.nodes["lif"]
    assert np.all(lif.v_leak == cfg["neurons"]["v_rest"]) and np.all(lif.v_threshold == cfg["neurons"]["v_threshold"])


@pytest.mark.lava
@pytest.mark.slow
def test_seed_network_on_four_backends(tmp_path):
    from snndeploy.report.network import run_network

    rep = run_network("seed_poisson_lif", tmp_path / "net")
    b = rep["backends"]
    assert b["norse"]["spikes"] > 100, "the network must fire for the comparison to mean anything"
    for name in ("brian2", "lava-float"):
        assert b[name]["spike_agreement_with_norse"] == 1.0
    assert b["lava-fixed"]["spike_agreement_with_norse"] > 0.99
    assert json.loads((tmp_path / "net" / "network.json").read_text())["backends"] == json.loads(json.dumps(b))
    page = (tmp_path / "net" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2


@pytest.mark.lava
@pytest.mark.slow
def test_seed_network_page_renders_in_headless_chromium(tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")):
        pytest.skip("chromium not installed (apt-get install -y chromium); cannot check the page renders")
    from PIL import Image

    from snndeploy.report.network import run_network

    run_network("seed_poisson_lif", tmp_path / "net", ("norse", "brian2"))
    png = tmp_path / "shot.png"
    subprocess.run(
        [str(REPO / "scripts" / "screenshot_report.sh"), str(tmp_path / "net" / "report.html"), str(png)], check=True
    )
    img = np.asarray(Image.open(png).convert("L"))
    assert np.mean(img < 250) > 0.01, "screenshot is nearly blank (a blank page is 0)"


def test_bad_network_configs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_network_config("nonesuch")
    bad = tmp_path / "n.toml"
    bad.write_text('kind = "network"\ndt = 1e-4\nduration = 0.01\nseed = 1\n[neurons]\nn = 2\n[input]\nn = 2\n')
    with pytest.raises(InputError, match="lacks the key 'synapses'"):
        load_network_config(str(bad))


def test_network_command(tmp_path, capsys):
    from snndeploy.cli import main

    rc = main(["network", "seed_poisson_lif", "--backends", "norse,brian2", "--out", str(tmp_path / "n")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "brian2" in out and "agreement with norse 1.000000" in out
    assert main(["network", "seed_poisson_lif", "--backends", "norse,loihi9", "--out", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()
