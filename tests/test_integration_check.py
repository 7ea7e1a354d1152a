"""The report's "Euler vs exact integration" line (snndeploy/harness/integration.py).

The expected spike trains are computed here from the equations (docs/brian2.md "Exact
integration"; docs/conventions.md for forward Euler), not with the code under test: one LIF neuron
with a constant input current, at dt/tau = 0.5 where the two conventions part.
"""

from __future__ import annotations

import json
import math

import nir
import numpy as np
import pytest
from helpers import mlp_graph

from snndeploy import api
from snndeploy.cli import main
from snndeploy.errors import EXIT_BAD_INPUT, EXIT_OK

DT, TAU, R, V_TH, V_RESET, W = 1e-3, 2e-3, 1.0, 1.0, 0.0, 1.5
STEPS = 40


def _one_lif(n=1):
    ones = np.ones(n)
    return nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([1])}),
            "fc": nir.Affine(weight=W * np.ones((n, 1)), bias=np.zeros(n)),
            "lif": nir.LIF(
                tau=TAU * ones, r=R * ones, v_leak=0 * ones, v_threshold=V_TH * ones, v_reset=V_RESET * ones
            ),
            "out": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")],
        metadata={"dt": DT},
    )


def _euler_spikes(current):
    v, out = 0.0, []
    for i in current:
        v = v + DT / TAU * (0.0 - v + R * i)
        out.append(v > V_TH)
        if v > V_TH:
            v = V_RESET
    return np.array(out)


def _exact_spikes(current):
    """Constant current over each step; a crossing resets at its time and integrates on."""
    d = math.exp(-DT / TAU)
    v, out = 0.0, []
    for i in current:
        v_inf = R * i
        end = v_inf + (v - v_inf) * d
        spike = end > V_TH
        if spike:
            f = (end - v_inf) / (V_TH - v_inf)  # exp(-(dt - t*)/tau): the part of the step after the crossing
            end = v_inf + (V_RESET - v_inf) * f
        v = end
        out.append(spike)
    return np.array(out)


def _input(samples=3):
    return np.ones((samples, STEPS, 1), dtype=np.float32)


def test_euler_vs_exact_on_one_lif_matches_the_equations():
    current = np.full(STEPS, W)
    euler, exact = _euler_spikes(current), _exact_spikes(current)
    assert euler.sum() > 0 and exact.sum() > 0 and (euler != exact).any()  # the check has something to find
    rep = api.compare(_one_lif(), _input(3), backends=("norse", "brian2"), dt=DT).data
    chk = rep["integration_check"]
    assert chk["ran"] and chk["samples"] == 3 and chk["dt"] == DT
    node = chk["nodes"]["lif"]
    assert node["spikes_euler"] == 3 * int(euler.sum())
    assert node["spikes_exact"] == 3 * int(exact.sum())
    assert node["mismatches"] == 3 * int((euler != exact).sum())
    assert node["entries"] == 3 * STEPS
    assert chk["spike_agreement"] == pytest.approx(1 - (euler != exact).mean())
    assert rep["passed"], "the check informs; norse and brian2 (both Euler) still agree and pass"
    assert rep["pairs"][0]["spike_agreement"] == 1.0


def test_default_on_only_with_brian2_and_capped(monkeypatch):
    from snndeploy.harness import integration

    monkeypatch.setattr(integration, "DEFAULT_SAMPLES", 2)
    x = _input(5)
    with_brian2 = api.compare(_one_lif(), x, backends=("norse", "brian2"), dt=DT).data
    assert with_brian2["integration_check"]["samples"] == 2
    without = api.compare(_one_lif(), x, backends=("norse", "loihi-emu"), dt=DT).data
    assert "integration_check" not in without
    asked = api.compare(_one_lif(), x, backends=("norse", "loihi-emu"), dt=DT, integration_samples=4).data
    assert asked["integration_check"]["ran"] and asked["integration_check"]["samples"] == 4
    off = api.compare(_one_lif(), x, backends=("norse", "brian2"), dt=DT, integration_samples=0).data
    assert "integration_check" not in off


def test_if_only_graph_says_why_not():
    g = mlp_graph(np.random.default_rng(3), kinds=("IF", "IF"), dt_meta=1e-3)
    x = (np.random.default_rng(4).random((2, 20, 6)) < 0.4).astype(np.float32)
    chk = api.compare(g, x, backends=("norse", "brian2")).data["integration_check"]
    assert chk["ran"] is False and "Euler is exact for IF" in chk["why"]


def test_cli_prints_and_writes_the_line(tmp_path, capsys):
    graph = tmp_path / "g.nir"
    nir.write(graph, _one_lif())
    np.savez(tmp_path / "in.npz", spikes=_input(2))
    out = tmp_path / "rep"
    rc = main(
        ["compare", str(graph), "--backends", "norse,brian2", "--input", str(tmp_path / "in.npz"), "--out", str(out)]
    )
    assert rc == EXIT_OK
    printed = capsys.readouterr().out
    current = np.full(STEPS, W)
    agreement = 1 - (_euler_spikes(current) != _exact_spikes(current)).mean()
    line = f"Euler vs exact integration (brian2, dt = 0.001 s, first 2 samples): spike agreement {agreement:.6f}"
    assert line in printed
    assert line in (out / "report.md").read_text()
    assert line in (out / "report.html").read_text()
    assert json.loads((out / "report.json").read_text())["integration_check"]["ran"] is True


def test_cli_refuses_a_negative_count(tmp_path, capsys):
    graph = tmp_path / "g.nir"
    nir.write(graph, _one_lif())
    np.savez(tmp_path / "in.npz", spikes=_input(1))
    out = tmp_path / "rep"
    args = ["compare", str(graph), "--backends", "norse,brian2", "--input", str(tmp_path / "in.npz")]
    rc = main(args + ["--out", str(out), "--integration-check", "-1"])
    assert rc == EXIT_BAD_INPUT
    assert "--integration-check" in capsys.readouterr().err
    assert not out.exists()


def test_a_graded_readout_is_reported_by_its_difference():
    """IF hidden layer (Euler is exact for it) and an LI readout (it is not): no spiking population
    differs, the readout does, and the line says by how much."""
    g = mlp_graph(np.random.default_rng(7), kinds=("IF", "LI"), dt_meta=1e-3)
    x = (np.random.default_rng(8).random((3, 30, 6)) < 0.5).astype(np.float32)
    rep = api.compare(g, x, backends=("norse", "brian2")).data
    chk = rep["integration_check"]
    assert chk["ran"] and chk["spike_agreement"] == 1.0 and chk["output_max_abs_diff"] > 0
    from snndeploy.harness.integration import integration_text

    assert "graded output differs by up to" in integration_text(chk)


def test_a_graph_the_exact_mode_refuses_says_why():
    """CubaLIF with tau_mem == tau_syn: Brian2's closed form divides by their difference."""
    n = 2
    ones = np.ones(n)
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([1])}),
            "fc": nir.Affine(weight=3.0 * np.ones((n, 1)), bias=np.zeros(n)),
            "cuba": nir.CubaLIF(
                tau_syn=5e-3 * ones, tau_mem=5e-3 * ones, r=ones, v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones
            ),
            "out": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("in", "fc"), ("fc", "cuba"), ("cuba", "out")],
        metadata={"dt": DT},
    )
    chk = api.compare(g, _input(2), backends=("norse", "brian2"), dt=DT).data["integration_check"]
    assert chk["ran"] is False and "tau_mem" in chk["why"] and "tau_syn" in chk["why"]
