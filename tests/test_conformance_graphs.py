"""norse vs lava-float on the NIR paper's graphs (../shared/conformance/nir-paper), dt = 1e-4 s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snndeploy.backends import get_backend
from snndeploy.errors import GraphError
from snndeploy.ir import graph as G

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "nir-paper"
DT = 1e-4  # the paper's graphs carry no dt
MIN_AGREEMENT = 0.999


def _spiking_nodes(graph):
    from snndeploy.reference import NeuronParams
    from snndeploy.reference import read_record as params_of

    out = []
    for n, node in graph.nodes.items():
        if type(node).__name__ in ("Input", "Output"):
            continue
        p = params_of(n, node)
        if isinstance(p, NeuronParams) and p.spiking:
            out.append(n)
    return out


def _agreement(graph, x, dt=DT):
    ref = get_backend("norse").run(graph, x, dt)
    lava = get_backend("lava-float", record_states=True).run(graph, x, dt)
    agree = {}
    for n in _spiking_nodes(graph):
        a, b = ref.outputs[n], lava.outputs[n]
        assert a.shape == b.shape, f"{n}: {a.shape} vs {b.shape}"
        agree[n] = float((a == b).mean())
    return agree, ref, lava


@pytest.mark.lava
@pytest.mark.slow
def test_cnn_sinabs_norse_vs_lava_float():
    """Read as Sinabs wrote it (--exporter sinabs: time in steps, dt = 1, IF per step)."""
    g, conv = G.open_graph(PAPER / "cnn_sinabs.nir", exporter="sinabs")
    assert conv.dt == 1.0 and conv.exporter.integrate == "per step"
    x = (np.random.default_rng(11).random((2, 20, 2, 34, 34)) < 0.15).astype(np.float64)
    agree, ref, _ = _agreement(g, x, conv.dt)
    assert set(agree) == {"1", "3", "6", "10", "12"}
    assert ref.outputs["12"].sum() > 0 and ref.outputs["1"].sum() > 0, "inputs too weak to test anything"
    assert min(agree.values()) >= MIN_AGREEMENT, agree


@pytest.mark.lava
def test_two_lif_neurons_norse_vs_lava_float():
    g = G.load_graph(PAPER / "two_lif_neurons.nir")
    x = (np.random.default_rng(12).random((3, 40, 1)) < 0.2).astype(np.float64)
    agree, ref, lava = _agreement(g, x)
    assert min(agree.values()) >= MIN_AGREEMENT, agree
    # lif1 has v_leak 1.2 > threshold: it fires on step 0 (Lava needs its start-value drive for that)
    assert np.all(ref.outputs["lif1"][:, 0] == 1)
    for n in ("lif1", "lif2"):
        np.testing.assert_allclose(lava.states[n]["v"], ref.states[n]["v"], atol=1e-9)


@pytest.mark.lava
@pytest.mark.parametrize("name", ["braille_noDelay_bias_zero.nir", "braille_noDelay_noBias_subtract.nir"])
def test_recurrent_braille_graphs_run_with_the_cycle_cut_at_its_back_edge(name):
    """The cycle lif1.lif <-> lif1.w_rec runs (back edge w_rec -> lif: previous step); the full
    agreement check on longer inputs is in test_recurrent.py."""
    g, conv = G.open_graph(PAPER / name, exporter="snntorch")  # the paper's Braille graphs: snnTorch, dt 1e-4
    assert conv.dt == DT
    assert G.recurrent_order(g).back_edges == {("lif1.w_rec", "lif1.lif")}
    with pytest.raises(GraphError, match=r"recurrent cycle lif1\.(lif|w_rec) -> lif1\.(lif|w_rec) -> "):
        G.topological_order(g)  # the DAG-only order still names the cycle
    x = (np.random.default_rng(13).random((1, 12, 12)) < 0.4).astype(np.float64)
    agree, ref, _ = _agreement(g, x)
    assert set(agree) == {"lif1.lif", "lif2"}
    assert min(agree.values()) >= MIN_AGREEMENT, agree
