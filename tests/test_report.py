"""report.md / report.html from a real comparison (norse vs lava-float), and `snndeploy energy`."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import nir
import numpy as np
import pytest
from helpers import bernoulli, mlp_graph

from snndeploy.cli import main
from snndeploy.errors import EXIT_BAD_INPUT

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph_and_input(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    rng = np.random.default_rng(5)
    g = mlp_graph(rng, sizes=(8, 12, 4), dt_meta=1e-3)
    nir.write(str(d / "g.nir"), g)
    np.savez(d / "in.npz", spikes=bernoulli(rng, (6, 20, 8), 0.4), labels=rng.integers(0, 4, 6))
    return d


@pytest.fixture(scope="module")
def compared(graph_and_input):
    out = graph_and_input / "cmp"
    code = main(
        [
            "compare",
            str(graph_and_input / "g.nir"),
            "--backends",
            "norse,lava-float",
            "--input",
            str(graph_and_input / "in.npz"),
            "--out",
            str(out),
        ]
    )
    assert code in (0, 1)
    return out


@pytest.mark.lava
def test_report_html_is_self_contained(compared):
    page = (compared / "report.html").read_text()
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?(?:https?:|//)", page)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    imgs = re.findall(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(imgs) >= 5  # accuracy, raster, traces, agreement over time, energy
    for b in imgs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"
    for title in (
        "Accuracy and agreement",
        "Spikes, sample",
        "Membrane traces",
        "Agreement per layer over time",
        "Energy per inference",
        "Loihi 2 mapping",
    ):
        assert title in page


@pytest.mark.lava
def test_report_md_and_json_carry_counts_and_energy(compared):
    import json

    rep = json.loads((compared / "report.json").read_text())
    pair = rep["pairs"][0]
    if pair["spikes_equal"]:
        assert pair["counts_equal"] is True
    ests = rep["backends"]["norse"]["estimates"]
    assert {"loihi", "truenorth", "ann_fp32_45nm", "ann_int8_45nm"} <= set(ests)
    assert rep["energy"]["mapping"]["cores"] >= 2
    md = (compared / "report.md").read_text()
    assert "operation counts equal:" in md and "## Energy per inference" in md and "(estimate)" in md
    assert "pre-silicon simulation" in md and "measured silicon" in md  # evidence grades of the constants
    assert "range over regimes" in md and "No public per-operation energy exists for Loihi 2" in md


@pytest.mark.lava
@pytest.mark.slow
def test_report_html_renders_in_headless_chromium(compared, tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")):
        pytest.skip("chromium not installed (apt-get install -y chromium); cannot check the page renders")
    import matplotlib.image as mpimg

    png = tmp_path / "shot.png"
    subprocess.run(
        [str(REPO / "scripts" / "screenshot_report.sh"), str(compared / "report.html"), str(png)],
        check=True,
        timeout=120,
    )
    img = mpimg.imread(str(png))
    assert img.shape[0] >= 2000 and img.shape[1] >= 1000
    non_white = np.mean(np.any(img[..., :3] < 0.9, axis=-1))
    assert non_white > 0.05, f"screenshot is nearly blank ({non_white:.3%} non-white pixels)"
    colours = len(np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)[::7], axis=0))
    assert colours > 50, "screenshot has too few colours to hold the plots"


def test_energy_command_prints_estimates(graph_and_input, capsys):
    code = main(
        ["energy", str(graph_and_input / "g.nir"), "--input", str(graph_and_input / "in.npz"), "--target", "truenorth"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "truenorth:" in out and "nJ per inference" in out
    assert "ann_fp32_45nm" in out and "Loihi 2 mapping estimate" in out and "SynOps AC" in out
    # ranges with named ends, and the SNN/ANN ratio as a range
    assert "(published constants)" in out and "(weights and activations in 1 MB SRAM)" in out
    assert "loihi / ann_fp32_45nm:" in out and "x (published constants vs weights and activations in 1 MB SRAM)" in out
    assert out.count("loihi / ann_fp32_45nm:") == 1  # each ratio once (it was printed twice)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "{d}/missing.npz"], "does not exist"),
        (["--input", "{d}/in.npz", "--target", "gpu9000"], "target 'gpu9000' not found"),
        (["--input", "{d}/in.npz", "--target", "loihi2"], "has no energy constants"),
        (["--input", "{d}/in.npz", "--backend", "spinnaker"], "unknown backend 'spinnaker'"),
        (["--input", "{d}/bad.npz"], "input"),
        (["--input", "{d}/in.npz", "--dt", "-1"], "--dt must be a positive"),
    ],
)
def test_energy_command_bad_input(graph_and_input, capsys, args, message):
    d = graph_and_input
    np.savez(d / "bad.npz", spikes=np.zeros((2, 5, 7)))  # 7 inputs, graph wants 8
    code = main(["energy", str(d / "g.nir")] + [a.format(d=d) for a in args])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert err.startswith("error: ") and message in err


def test_readme_node_table_is_generated_from_the_registries():
    """The README's node-type x backend table equals what the registries say now (regenerate it with
    scripts/readme_node_table.py); and it is not empty: every backend runs LIF, none runs Conv1d."""
    from pathlib import Path

    from snndeploy.report.support import readme_with_table, support_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert readme_with_table(readme) == readme, "README node table is stale: run scripts/readme_node_table.py"
    table = support_markdown()
    assert "| `LIF` | runs | runs | runs | runs |" in table
    assert "| `Conv1d` | refused (1) | refused (1) | refused (1) | refused (1) |" in table
    assert "| `Delay` | runs | refused" in table


@pytest.mark.lava
def test_fixed_point_only_comparison_draws_no_empty_trace_plot(tmp_path):
    """Both backends record raw 24-bit states: no membrane plot in NIR units can be drawn, so none is
    (no empty axes, no matplotlib legend warning)."""
    import warnings

    from snndeploy import api

    rng = np.random.default_rng(11)
    g = mlp_graph(rng, sizes=(6, 8, 3), dt_meta=1e-3)
    x = bernoulli(rng, (3, 20, 6), 0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = api.compare(g, x, ["loihi-emu", "lava-fixed"])
        report.write(tmp_path / "r")
    assert report.data["pairs"][0]["spike_agreement"] == 1.0
    ref = api.run(g, x, "loihi-emu")
    assert ref.outputs["lif1"].sum() > 0 and ref.outputs["lif2"].sum() > 0  # not two silent networks
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Membrane traces" not in html and "Spikes, sample" in html
    assert not [w for w in caught if "No artists with labels" in str(w.message)]
