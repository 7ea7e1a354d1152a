"""A user's own Norse model (not from models/) exports and deploys: norse on the exported graph equals
the torch model's own spikes step by step, and lava-float equals norse."""

import nir
import numpy as np
import pytest
import torch
from norse.torch import (
    IAFCell,
    IAFParameters,
    LIBoxCell,
    LICell,
    LIFBoxCell,
    LIFBoxParameters,
    LIFCell,
    LIFParameters,
    LIFRecurrentCell,
    LIParameters,
    SequentialState,
)

import snndeploy
from snndeploy.errors import GraphError
from snndeploy.ir import graph as G

DT = 1e-3


def _run_torch(model, x, cells):
    """Step the torch model; record each named cell's output (spikes, or v for LI) per step."""
    rec = {name: [] for name in cells}
    hooks = [
        mod.register_forward_hook(lambda m, i, o, n=name: rec[n].append(o[0].detach().clone()))
        for name, mod in cells.items()
    ]
    state = None
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = model(x[:, t], state)
    for h in hooks:
        h.remove()
    return {n: torch.stack(v, 1).numpy() for n, v in rec.items()}


def _seeded(model, scale):
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.uniform_(m.weight, -0.5 * scale, 1.5 * scale)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    return model.double().eval()


def test_sequential_state_mlp_exports_and_deploys(tmp_path):
    model = _seeded(
        SequentialState(
            torch.nn.Linear(8, 16),
            LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / 0.02), v_th=torch.tensor(0.4)), dt=DT),
            torch.nn.Dropout(0.3),
            torch.nn.Linear(16, 4),
            LIFCell(
                LIFParameters(
                    tau_syn_inv=torch.tensor(1 / 0.005), tau_mem_inv=torch.tensor(1 / 0.01), v_th=torch.tensor(0.3)
                ),
                dt=DT,
            ),
        ),
        scale=2.0,
    )
    x = (np.random.default_rng(1).random((4, 40, 8)) < 0.4).astype(np.float64)
    want = _run_torch(model, torch.as_tensor(x), {"1": model[1], "4": model[4]})
    graph = snndeploy.export(model, (8,), DT, tmp_path / "user.nir")
    assert [type(graph.nodes[n]).__name__ for n in ("0", "1", "3", "4")] == ["Affine", "LIF", "Affine", "CubaLIF"]
    assert "2" not in graph.nodes  # Dropout is the identity in eval mode
    assert graph.metadata["exporter"].startswith("snndeploy")
    # provenance: the file names its exporter profile, so it runs as written with no --exporter or --dt
    assert graph.metadata["snndeploy_exporter"] == "snndeploy"
    _, conv = G.open_graph(tmp_path / "user.nir")
    assert (conv.exporter.name, conv.exporter_from, conv.dt) == ("snndeploy", "graph metadata", DT)
    got = snndeploy.run(snndeploy.load(tmp_path / "user.nir"), x, "norse").outputs
    for name in ("1", "4"):
        assert want[name].sum() > 0, f"torch layer {name} is silent: the comparison would prove nothing"
        np.testing.assert_array_equal(got[name], want[name])
    lava = snndeploy.run(graph, x, "lava-float").outputs
    for name in ("1", "4"):
        np.testing.assert_array_equal(lava[name], got[name])


def test_nested_containers_conv_iaf_and_leaky_integrators(tmp_path):
    model = _seeded(
        SequentialState(
            torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.AvgPool2d(2)),
            LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / 0.01), v_th=torch.tensor(0.3)), dt=DT),
            torch.nn.Flatten(),
            torch.nn.Linear(8, 6),
            IAFCell(IAFParameters(v_th=torch.tensor(0.8)), dt=DT),
            torch.nn.Linear(6, 3),
            LICell(LIParameters(tau_syn_inv=torch.tensor(1 / 0.005), tau_mem_inv=torch.tensor(1 / 0.01)), dt=DT),
        ),
        scale=1.5,
    )
    x = (np.random.default_rng(2).random((3, 30, 1, 4, 4)) < 0.5).astype(np.float64)
    want = _run_torch(model, torch.as_tensor(x), {"1": model[1], "4": model[4], "6": model[6]})
    graph = snndeploy.export(model, (1, 4, 4), DT)
    assert [type(graph.nodes[n]).__name__ for n in ("0.0", "0.1", "4", "6")] == ["Conv2d", "AvgPool2d", "IF", "CubaLI"]
    got = snndeploy.run(graph, x, "norse").outputs
    for name in ("1", "4"):
        assert want[name].sum() > 0, f"torch layer {name} is silent"
        np.testing.assert_array_equal(got[name], want[name])
    assert np.abs(want["6"]).max() > 0
    np.testing.assert_allclose(got["6"], want["6"], rtol=1e-6, atol=1e-9)  # NIR holds float32 parameters


def test_a_box_leaky_integrator_readout(tmp_path):
    model = _seeded(SequentialState(torch.nn.Linear(5, 3), LIBoxCell(dt=DT)), scale=1.0)
    x = (np.random.default_rng(3).random((2, 20, 5)) < 0.5).astype(np.float64)
    want = _run_torch(model, torch.as_tensor(x), {"1": model[1]})
    got = snndeploy.run(snndeploy.export(model, (5,), DT), x, "norse").outputs["1"]
    assert np.abs(want["1"]).max() > 0
    np.testing.assert_allclose(got, want["1"], rtol=1e-6, atol=1e-9)  # NIR holds float32 parameters


class _Custom(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(x) * 2


@pytest.mark.lava
def test_recurrent_cell_model_exports_and_deploys(tmp_path):
    """A user's SequentialState(Linear, LIFRecurrentCell, Linear, LIFCell), not from models/: the exported
    graph (LIFRecurrentCell as Linear -> CubaLIF <-> Linear) gives the torch model's own spikes on norse,
    lava-float equals norse, and the fixed-point backends run it bit-exactly with each other."""
    torch.manual_seed(3)
    p = LIFParameters(tau_syn_inv=torch.tensor(1 / 0.005), tau_mem_inv=torch.tensor(1 / 0.01), v_th=torch.tensor(0.3))
    model = SequentialState(
        torch.nn.Linear(6, 10),
        LIFRecurrentCell(10, 12, p=p, dt=DT),
        torch.nn.Linear(12, 4),
        LIFCell(p, dt=DT),
    )
    with torch.no_grad():
        model[0].weight.uniform_(-0.2, 0.8)
        model[0].bias.zero_()
        model[1].input_weights.uniform_(-0.3, 1.0)
        model[1].recurrent_weights.uniform_(-0.6, 0.6).fill_diagonal_(0.0)
        model[2].weight.uniform_(-0.3, 1.0)
        model[2].bias.zero_()
    model = model.double().eval()
    x = (np.random.default_rng(4).random((3, 50, 6)) < 0.3).astype(np.float64)
    want = _run_torch(model, torch.as_tensor(x), {"1": model[1], "3": model[3]})
    graph = snndeploy.export(model, (6,), DT, tmp_path / "rec.nir")
    assert {("1.lif", "1.w_rec"), ("1.w_rec", "1.lif"), ("1.w_in", "1.lif")} <= set(graph.edges)
    got = snndeploy.run(tmp_path / "rec.nir", x, "norse").outputs
    for cell, node in (("1", "1.lif"), ("3", "3")):
        assert want[cell].sum() > 0, f"torch layer {cell} is silent: the comparison would prove nothing"
        np.testing.assert_array_equal(got[node], want[cell], err_msg=node)
    lava = snndeploy.run(graph, x, "lava-float").outputs
    for node in ("1.lif", "3"):
        np.testing.assert_array_equal(lava[node], got[node], err_msg=node)
    fixed, emu = snndeploy.run(graph, x, "lava-fixed"), snndeploy.run(graph, x, "loihi-emu")
    for node in ("1.lif", "3"):
        np.testing.assert_array_equal(fixed.outputs[node], emu.outputs[node], err_msg=node)


class _TwoBranches(torch.nn.Module):
    """A user's own forward: two LIF branches from the input, summed into a LIF readout."""

    def __init__(self):
        super().__init__()
        p = LIFBoxParameters(tau_mem_inv=torch.tensor(1 / 0.01), v_th=torch.tensor(0.3))
        self.fc_a, self.fc_b = torch.nn.Linear(6, 8), torch.nn.Linear(6, 5)
        self.lif_a, self.lif_b = LIFBoxCell(p, dt=DT), LIFBoxCell(p, dt=DT)
        self.fc_oa, self.fc_ob = torch.nn.Linear(8, 3), torch.nn.Linear(5, 3)
        self.lif_o = LIFBoxCell(p, dt=DT)

    def forward(self, x, state=None):
        sa, sb, so = (None, None, None) if state is None else state
        za, sa = self.lif_a(self.fc_a(x), sa)
        zb, sb = self.lif_b(self.fc_b(x), sb)
        z, so = self.lif_o(self.fc_oa(za) + self.fc_ob(zb), so)
        return z, (sa, sb, so)


class _UsesRelu(_TwoBranches):
    def forward(self, x, state=None):
        z, s = self.lif_a(torch.relu(self.fc_a(x)), None)
        return z, s


@pytest.mark.lava
def test_a_traced_forward_with_branches_exports_and_deploys(tmp_path):
    model = _seeded(_TwoBranches(), 0.6)
    x = (np.random.default_rng(6).random((3, 40, 6)) < 0.3).astype(np.float64)
    cells = {"lif_a": model.lif_a, "lif_b": model.lif_b, "lif_o": model.lif_o}
    want = _run_torch(model, torch.as_tensor(x), cells)
    graph = snndeploy.export(model, (6,), DT)
    assert {("fc_oa", "lif_o"), ("fc_ob", "lif_o"), ("input", "fc_a"), ("input", "fc_b")} <= set(graph.edges)
    got = snndeploy.run(graph, x, "norse").outputs
    for name in cells:
        assert want[name].sum() > 0, f"torch layer {name} is silent: the comparison would prove nothing"
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    lava = snndeploy.run(graph, x, "lava-float").outputs
    np.testing.assert_array_equal(lava["lif_o"], got["lif_o"])


def test_a_forward_that_cannot_be_traced_is_refused_naming_the_operation():
    with pytest.raises(GraphError, match=r"uses 'relu' \(call_function\).*only calls of exportable modules"):
        snndeploy.export(_UsesRelu(), (6,), DT)


@pytest.mark.parametrize(
    "model, text",
    [
        (
            lambda: SequentialState(torch.nn.Sequential(_Custom())),
            "module '0.0' of type _Custom has no NIR exporter (a container inside a Sequential is not traced",
        ),
        (
            lambda: SequentialState(torch.nn.Linear(4, 3), torch.nn.ReLU()),
            "module '1' of type ReLU has no NIR exporter",
        ),
        (lambda: SequentialState(torch.nn.Linear(4, 3), LIFBoxCell(dt=1e-4)), "module '1' uses dt=0.0001"),
    ],
)
def test_what_cannot_be_exported_is_refused_by_path_and_type(model, text):
    with pytest.raises(GraphError) as e:
        snndeploy.export(model(), (4,), DT)
    assert text in str(e.value)
    assert "supported:" in str(e.value) or "dt=" in text


def test_the_exported_graph_round_trips_through_nir(tmp_path):
    model = SequentialState(torch.nn.Linear(3, 2), LIFBoxCell(dt=DT))
    snndeploy.export(model, (3,), DT, tmp_path / "m.nir")
    g = nir.read(str(tmp_path / "m.nir"))
    assert set(g.nodes) == {"input", "0", "1", "output"} and float(g.metadata["dt"]) == DT
