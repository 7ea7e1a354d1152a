"""The leaky-integrator (membrane) readout: training side, export, and every backend."""

import nir
import numpy as np
import pytest
import torch

from snndeploy.backends import get_backend
from snndeploy.errors import InputError
from snndeploy.frontends.norse import to_nir
from snndeploy.harness.agreement import predictions, readout_description
from snndeploy.harness.compare import compare_runs
from snndeploy.ir import graph as G
from snndeploy.report.markdown import render_markdown
from snndeploy.train.networks import SpikingConvNet, SpikingMLP

DT = 1e-3
T = 16


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(1)
    m = SpikingMLP(12, [20], 5, tau_mem=2e-2, v_th=0.5, dt=DT, init_gain=[6.0, 1.0], readout="membrane")
    return m.double()


@pytest.fixture(scope="module")
def spikes():
    rng = np.random.default_rng(3)
    return (rng.random((6, T, 12)) < 0.3).astype(np.float64)  # (B, T, features)


def test_li_readout_integrates_without_spiking(model):
    """v_t = v_{t-1} + dt/tau (-v_{t-1} + I_t): checked against the recurrence written out here."""
    li = model.layers["li2"]
    i_seq = torch.randn(T, 3, 5, dtype=torch.float64)
    from snndeploy.train.neurons import li_box_over_time

    a = float(DT * li.p.tau_mem_inv)  # dt/tau as Norse computes it (float32 parameter)
    assert a == pytest.approx(DT / 2e-2, rel=1e-6)

    out = li_box_over_time(i_seq, li)
    expect, prev = [], torch.zeros(3, 5, dtype=torch.float64)
    for i in i_seq:
        prev = prev + a * (-prev + i)
        expect.append(prev)
    assert torch.allclose(out, torch.stack(expect), rtol=0, atol=1e-14)
    assert not torch.isin(out, torch.tensor([0.0, 1.0], dtype=torch.float64)).all()  # graded, not spikes


def test_li_readout_exports_as_nir_li_and_norse_backend_reproduces_it(model, spikes, tmp_path):
    g = to_nir(model, 12, DT, {"readout": {"kind": "membrane"}})
    path = tmp_path / "li.nir"
    G.save_graph(g, path)
    back = G.load_graph(path)
    li = back.nodes["li2"]
    assert isinstance(li, nir.LI) and li.tau.shape == (5,)
    np.testing.assert_allclose(li.tau, 2e-2, rtol=1e-6)  # seconds
    np.testing.assert_allclose(li.r, 1.0)
    with torch.no_grad():
        torch_out = model(torch.as_tensor(spikes).transpose(0, 1)).transpose(0, 1).numpy()
    _, out = G.io_nodes(back)
    ref = get_backend("norse").run(back, spikes, DT).outputs[out]
    assert ref.shape == (6, T, 5)
    np.testing.assert_allclose(ref, torch_out, rtol=1e-5, atol=1e-6)  # exported float32 vs float64 module
    assert np.array_equal(predictions(ref), torch_out.sum(1).argmax(1))
    assert "membrane potential" in readout_description(back)


@pytest.mark.slow
def test_li_readout_on_lava_float_and_fixed(model, spikes):
    g = to_nir(model, 12, DT, {"readout": {"kind": "membrane"}})
    _, out = G.io_nodes(g)
    ref = get_backend("norse").run(g, spikes, DT)
    lava = get_backend("lava-float").run(g, spikes, DT)
    np.testing.assert_allclose(lava.outputs[out], ref.outputs[out], rtol=1e-5, atol=1e-5)
    assert np.array_equal(predictions(lava.outputs[out]), predictions(ref.outputs[out]))
    fixed = get_backend("lava-fixed").run(g, spikes, DT)
    emu = get_backend("loihi-emu").run(g, spikes, DT)
    assert np.array_equal(fixed.outputs[out], emu.outputs[out])  # bit-exact pair
    assert np.abs(fixed.outputs[out]).max() > 0


@pytest.mark.slow
def test_compare_report_says_how_an_li_readout_is_read(model, spikes):
    g = to_nir(model, 12, DT, {"readout": {"kind": "membrane"}})
    labels = np.arange(6) % 5
    rep, _ = compare_runs(g, "li.nir", ["norse", "lava-float"], spikes, labels, DT, "test spikes", show_progress=False)
    assert "membrane potential" in rep["accuracy_how"]
    pair = rep["pairs"][0]
    assert pair["output_max_abs_diff"] < 1e-5 and pair["prediction_agreement"] == 1.0
    md = render_markdown(rep)
    assert "membrane potential summed over time" in md and "graded output: largest difference" in md


def test_spiking_output_is_read_as_spike_counts():
    torch.manual_seed(0)
    g = to_nir(SpikingMLP(4, [3], 2, init_gain=4.0), 4, DT)
    assert "spike counts" in readout_description(g)


def test_conv_net_li_readout_names_the_last_layer():
    m = SpikingConvNet((1, 8, 8), 3, channels=(2, 3), hidden=4, readout="membrane")
    assert list(m.layers)[-1] == "li4"
    assert list(SpikingConvNet((1, 8, 8), 3, channels=(2, 3), hidden=4).layers)[-1] == "lif4"


def test_unknown_readout_is_named(tmp_path):
    from snndeploy.train.config import load_model_config
    from snndeploy.train.loop import train

    cfg = load_model_config("digits_mlp")
    cfg["readout"] = {"kind": "max_membrane"}
    with pytest.raises(
        InputError, match="readout.kind .max_membrane. unknown; available: spike_count, membrane, mean_output"
    ):
        train(cfg, tmp_path, device="cpu", epochs=1, quiet=True)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_readout_must_fit_the_architecture(tmp_path):
    from snndeploy.train.config import load_model_config
    from snndeploy.train.loop import train

    cfg = load_model_config("digits_mlp")
    cfg["readout"] = {"kind": "mean_output"}
    with pytest.raises(InputError, match="readout.kind 'mean_output' does not go with model.arch 'mlp'"):
        train(cfg, tmp_path, device="cpu", epochs=1, quiet=True)
    cfg = load_model_config("digits_graded")
    cfg["readout"] = {"kind": "membrane"}
    with pytest.raises(InputError, match="readout.kind 'membrane' does not go with model.arch 'graded_mlp'"):
        train(cfg, tmp_path, device="cpu", epochs=1, quiet=True)
