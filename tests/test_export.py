"""Our Norse -> NIR exporter and the two re-imports (our interpreter, nirtorch with a node map)."""

import nir
import numpy as np
import pytest
import torch

from snndeploy.backends import get_backend
from snndeploy.frontends.norse import nirtorch_node_map, to_nir
from snndeploy.ir import graph as G
from snndeploy.train.networks import SpikingMLP

DT = 1e-3


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = SpikingMLP(12, [9], 4, tau_mem=2e-2, v_th=0.3, dt=DT, init_gain=6.0)
    with torch.no_grad():
        m.layers["fc1"].bias.uniform_(-0.1, 0.3)  # a non-zero bias must survive export
        m.layers["fc2"].weight.abs_()  # excitatory read-out, so that the output layer spikes
    return m


def test_export_writes_full_parameters_and_reads_back(model, tmp_path):
    g = to_nir(model, 12, DT, {"encoding": {"kind": "poisson", "steps": 5}})
    path = tmp_path / "m.nir"
    G.save_graph(g, path)
    back = nir.read(str(path))  # nir's own reader, with type checking
    assert float(back.metadata["dt"]) == DT
    assert G.graph_config(back)["encoding"]["steps"] == 5
    lif = back.nodes["lif1"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (9,)
    np.testing.assert_allclose(lif.tau, 2e-2, rtol=1e-6)  # seconds, not multiplied by dt
    np.testing.assert_allclose(lif.v_threshold, 0.3, rtol=1e-6)
    fc = back.nodes["fc1"]
    assert isinstance(fc, nir.Affine)
    np.testing.assert_allclose(fc.bias, model.layers["fc1"].bias.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(fc.weight, model.layers["fc1"].weight.detach().numpy(), rtol=1e-6)
    assert back.edges == [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]


def _inputs(seed=1, B=6, T=30, n=12):
    return (np.random.default_rng(seed).random((B, T, n)) < 0.4).astype(np.float32)


def test_reimport_with_our_interpreter_gives_the_same_spikes(model, tmp_path):
    x = _inputs()
    with torch.no_grad():
        ref = model.double()(torch.as_tensor(x, dtype=torch.float64).transpose(0, 1)).transpose(0, 1).numpy()
    G.save_graph(to_nir(model.float(), 12, DT), tmp_path / "m.nir")
    g = G.load_graph(tmp_path / "m.nir")
    out = get_backend("norse").run(g, x, G.graph_dt(g, None)).outputs["output"]
    assert ref.sum() > 0
    np.testing.assert_array_equal(out, ref)


def test_reimport_with_nirtorch_node_map_gives_the_same_spikes(model, tmp_path):
    import nirtorch

    x = _inputs(seed=2)
    G.save_graph(to_nir(model, 12, DT), tmp_path / "m.nir")
    g = G.load_graph(tmp_path / "m.nir")
    ours = get_backend("norse", precision="float32").run(g, x, DT).outputs["output"]
    mod = nirtorch.nir_to_torch(g, nirtorch_node_map(DT))
    state = None
    outs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            o, state = mod(torch.as_tensor(x[:, t]), state)
            outs.append(o.numpy())
    theirs = np.stack(outs, 1)
    assert ours.sum() > 0
    np.testing.assert_array_equal(theirs, ours)


@pytest.mark.lava
def test_lifcell_exports_as_cubalif_with_w_in_tau_syn_over_dt(tmp_path):
    """Norse's current-based LIFCell: our CubaLIF export reproduces its spikes on norse and lava-float."""
    from norse.torch import LIFCell, LIFParameters

    from snndeploy.train.networks import SpikingNet

    torch.manual_seed(1)
    p = LIFParameters(
        tau_syn_inv=torch.as_tensor(1 / 5e-3), tau_mem_inv=torch.as_tensor(1 / 1e-2), v_th=torch.as_tensor(0.3)
    )
    layers = {
        "fc1": torch.nn.Linear(6, 8),
        "lif1": LIFCell(p, dt=DT),
        "fc2": torch.nn.Linear(8, 3),
        "lif2": LIFCell(p, dt=DT),
    }
    with torch.no_grad():
        layers["fc1"].weight.uniform_(0, 1.5)
        layers["fc2"].weight.uniform_(0, 1.5)
    model = SpikingNet(layers, "super", 100.0, DT).double()
    x = _inputs(seed=3, B=3, T=25, n=6)
    with torch.no_grad():
        ref = model(torch.as_tensor(x, dtype=torch.float64).transpose(0, 1)).transpose(0, 1).numpy()
    G.save_graph(to_nir(model.float(), 6, DT), tmp_path / "c.nir")
    g = G.load_graph(tmp_path / "c.nir")
    node = g.nodes["lif1"]
    assert isinstance(node, nir.CubaLIF)
    np.testing.assert_allclose(node.w_in, 5e-3 / DT, rtol=1e-6)
    out = get_backend("norse").run(g, x, DT).outputs
    assert ref.sum() > 0
    np.testing.assert_array_equal(out["output"], ref)
    lava = get_backend("lava-float").run(g, x, DT).outputs
    np.testing.assert_array_equal(lava["lif1"], out["lif1"])
    np.testing.assert_array_equal(lava["lif2"], out["lif2"])
