"""Recurrent cycles: back edges carry the previous step (docs/conventions.md, Recurrence).

norse against an independent numpy loop of the documented equations; norse vs lava-float
on the NIR paper's Braille graphs and a random recurrent graph; sample isolation on Lava.
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest
from helpers import bernoulli

from snndeploy.backends import get_backend
from snndeploy.errors import GraphError
from snndeploy.ir import graph as G
from snndeploy.lower import plan as lava_plan
from snndeploy.lower.plan import build_plan

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "nir-paper"
BRAILLE = ["braille_noDelay_bias_zero.nir", "braille_noDelay_noBias_subtract.nir"]
DT_PAPER = 1e-4  # the paper's graphs carry no dt
DT = 1e-3
MIN_AGREEMENT = 0.999


def _recurrent_graph(rng, n_in=5, n_hid=6, n_out=3, rec_bias=0.1, self_edge_first=False):
    """in -> fc1 -> lif1 (CubaLIF) <-> w_rec (Affine) ; lif1 -> fc2 -> lif2 (LIF) <-> w_rec2 (Linear) -> out."""
    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=rng.normal(0, 2.0, (n_hid, n_in)), bias=rng.normal(0, 0.1, n_hid)),
        "lif1": nir.CubaLIF(
            tau_syn=rng.uniform(2e-3, 5e-3, n_hid),
            tau_mem=rng.uniform(5e-3, 2e-2, n_hid),
            r=rng.uniform(0.8, 1.5, n_hid),
            v_leak=np.zeros(n_hid),
            v_threshold=rng.uniform(0.2, 0.5, n_hid),
            v_reset=np.zeros(n_hid),
            w_in=rng.uniform(1, 3, n_hid),
        ),
        "w_rec": nir.Affine(weight=rng.normal(0, 1.0, (n_hid, n_hid)), bias=rec_bias * rng.normal(0, 1, n_hid)),
        "fc2": nir.Affine(weight=rng.normal(0, 1.5, (n_out, n_hid)), bias=rng.normal(0, 0.05, n_out)),
        "lif2": nir.LIF(
            tau=rng.uniform(5e-3, 2e-2, n_out),
            r=rng.uniform(0.5, 2, n_out),
            v_leak=np.zeros(n_out),
            v_threshold=rng.uniform(0.3, 1.0, n_out),
            v_reset=np.zeros(n_out),
        ),
        "w_rec2": nir.Linear(weight=rng.normal(0, 1.0, (n_out, n_out))),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [
        ("in", "fc1"),
        ("fc1", "lif1"),
        ("lif1", "w_rec"),
        ("w_rec", "lif1"),
        ("lif1", "fc2"),
        ("fc2", "lif2"),
        ("lif2", "w_rec2"),
        ("w_rec2", "lif2"),
        ("lif2", "out"),
    ]
    if self_edge_first:  # the back edge listed first, as in the Braille files
        edges = edges[3:4] + edges[:3] + edges[4:]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={})


def _numpy_reference(g, x, dt):
    """The documented equations, step by step, without torch or Norse."""
    n = g.nodes
    B, T = x.shape[:2]
    a1, b1 = dt / n["lif1"].tau_mem, dt / n["lif1"].tau_syn
    a2 = dt / n["lif2"].tau
    I1 = np.zeros((B, n["lif1"].r.size))
    v1 = np.broadcast_to(n["lif1"].v_leak, I1.shape).copy()
    v2 = np.broadcast_to(n["lif2"].v_leak, (B, n["lif2"].r.size)).copy()
    # the back edges' values: the previous step's w_rec outputs; at step 0 the response to silent
    # spikes, i.e. w_rec's bias (snnTorch's recurrent nn.Linear adds it from step 0)
    rec1, rec2 = n["w_rec"].bias, None
    z1s, z2s, v1s = [], [], []
    for t in range(T):
        s1 = x[:, t] @ n["fc1"].weight.T + n["fc1"].bias + (0 if rec1 is None else rec1)
        I1 = I1 + b1 * (n["lif1"].w_in * s1 - I1)
        v1 = v1 + a1 * ((n["lif1"].v_leak - v1) + n["lif1"].r * I1)
        z1 = (v1 > n["lif1"].v_threshold).astype(float)
        v1 = np.where(z1 > 0, n["lif1"].v_reset, v1)
        s2 = z1 @ n["fc2"].weight.T + n["fc2"].bias + (0 if rec2 is None else rec2)
        v2 = v2 + a2 * ((n["lif2"].v_leak - v2) + n["lif2"].r * s2)
        z2 = (v2 > n["lif2"].v_threshold).astype(float)
        v2 = np.where(z2 > 0, n["lif2"].v_reset, v2)
        rec1 = z1 @ n["w_rec"].weight.T + n["w_rec"].bias
        rec2 = z2 @ n["w_rec2"].weight.T
        z1s.append(z1), z2s.append(z2), v1s.append(v1)
    return np.stack(z1s, 1), np.stack(z2s, 1), np.stack(v1s, 1)


# --------------------------------------------------------------------------- back-edge rule


@pytest.mark.parametrize("name", BRAILLE)
def test_braille_back_edge_is_the_recurrent_weight_into_the_neuron(name):
    s = G.recurrent_order(G.load_graph(PAPER / name))
    assert s.back_edges == {("lif1.w_rec", "lif1.lif")}
    assert s.order.index("lif1.lif") < s.order.index("lif1.w_rec") < s.order.index("lif2")


@pytest.mark.parametrize("self_edge_first", [False, True])
def test_back_edges_do_not_depend_on_edge_listing_for_a_chain(self_edge_first):
    g = _recurrent_graph(np.random.default_rng(0), self_edge_first=self_edge_first)
    assert G.recurrent_order(g).back_edges == {("w_rec", "lif1"), ("w_rec2", "lif2")}


def test_dag_has_no_back_edges_and_keeps_the_topological_order(paper):
    g = G.load_graph(paper / "cnn_sinabs.nir")
    s = G.recurrent_order(g)
    assert s.back_edges == frozenset() and list(s.order) == G.topological_order(g)


def test_cycle_unreachable_from_the_input_is_refused():
    g = _recurrent_graph(np.random.default_rng(1))
    g.nodes["x"] = nir.Linear(weight=np.eye(3))
    g.nodes["y"] = nir.Linear(weight=np.eye(3))
    g.edges += [("x", "y"), ("y", "x")]
    with pytest.raises(GraphError, match=r"cycle (x -> y -> x|y -> x -> y) that is not reachable from the Input"):
        G.recurrent_order(g)


# --------------------------------------------------------------------------- norse (reference)


def test_norse_matches_numpy_loop_of_the_documented_equations():
    rng = np.random.default_rng(2)
    g = _recurrent_graph(rng, rec_bias=0.3)
    x = bernoulli(rng, (3, 40, 5), p=0.4)
    res = get_backend("norse").run(g, x, DT)
    z1, z2, v1 = _numpy_reference(g, x, DT)
    assert z1.sum() > 0 and z2.sum() > 0, "inputs too weak to test anything"
    np.testing.assert_array_equal(res.outputs["lif1"], z1)
    np.testing.assert_array_equal(res.outputs["lif2"], z2)
    np.testing.assert_allclose(res.states["lif1"]["v"], v1, atol=1e-9)


# --------------------------------------------------------------------------- Lava plan: what is refused


def test_cycle_across_two_depths_is_refused_naming_edge_and_delay():
    g = _recurrent_graph(np.random.default_rng(3))
    g.nodes["back"] = nir.Linear(weight=np.ones((6, 3)))
    g.edges.append(("lif2", "back"))
    g.edges.append(("back", "lif1"))
    with pytest.raises(GraphError, match=r"back edge 'back -> lif1'.*delay of 2 steps"):
        build_plan(g, DT, "lava-float", supported=lava_plan.FLOAT_SUPPORTED, drives=True)


# --------------------------------------------------------------------------- norse vs lava-float


def _spiking(g):
    from snndeploy.reference import NeuronParams
    from snndeploy.reference import read_record as params_of

    return [
        n
        for n, node in g.nodes.items()
        if type(node).__name__ not in ("Input", "Output")
        and isinstance(params_of(n, node), NeuronParams)
        and params_of(n, node).spiking
    ]


def _agreement(g, x, dt):
    ref = get_backend("norse").run(g, x, dt)
    lava = get_backend("lava-float", record_states=True).run(g, x, dt)
    return {n: float((ref.outputs[n] == lava.outputs[n]).mean()) for n in _spiking(g)}, ref, lava


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("name", BRAILLE)
def test_braille_norse_vs_lava_float(name):
    g = G.load_graph(PAPER / name)
    x = bernoulli(np.random.default_rng(21), (3, 60, 12), p=0.3)
    agree, ref, lava = _agreement(g, x, DT_PAPER)
    assert set(agree) == {"lif1.lif", "lif2"}
    assert ref.outputs["lif1.lif"].sum() > 0 and ref.outputs["lif2"].sum() > 0, "inputs too weak to test anything"
    assert min(agree.values()) >= MIN_AGREEMENT, agree
    np.testing.assert_allclose(lava.states["lif1.lif"]["v"], ref.states["lif1.lif"]["v"], atol=1e-9)


@pytest.mark.lava
@pytest.mark.slow
def test_random_recurrent_graph_norse_vs_lava_float():
    rng = np.random.default_rng(5)
    g = _recurrent_graph(rng, rec_bias=0.3)
    x = bernoulli(rng, (3, 40, 5), p=0.4)
    agree, ref, lava = _agreement(g, x, DT)
    assert ref.outputs["lif1"].sum() > 0 and ref.outputs["lif2"].sum() > 0
    assert min(agree.values()) >= MIN_AGREEMENT, agree
    for n in ("lif1", "lif2"):
        np.testing.assert_allclose(lava.states[n]["v"], ref.states[n]["v"], atol=1e-9)


# --------------------------------------------------------------------------- sample isolation on Lava


def _latch_graph():
    """An IF population that, once it fires, fires on every step (self-excitation 2 > threshold 1)."""
    n = 4
    return nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([n])}),
            "fc": nir.Linear(weight=2 * np.eye(n)),
            "if1": nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n)),
            "rec": nir.Linear(weight=2 * np.eye(n)),
            "fc2": nir.Linear(weight=np.ones((2, n))),
            "if2": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
            "out": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[
            ("in", "fc"),
            ("fc", "if1"),
            ("if1", "rec"),
            ("rec", "if1"),
            ("if1", "fc2"),
            ("fc2", "if2"),
            ("if2", "out"),
        ],
        metadata={},
    )


def _isolation_case():
    T = 12
    busy = np.zeros((T, 4))
    busy[2, :] = 1  # latches every neuron on: it fires to the end of the window and beyond
    quiet = np.zeros((T, 4))
    quiet[5, 1] = 1  # latches neuron 1 at step 5 only
    return np.stack([busy, quiet]), quiet[None]


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["lava-float", "lava-fixed"])
def test_lava_sample_does_not_depend_on_the_previous_sample(backend):
    g = _latch_graph()
    both, alone = _isolation_case()
    lava = get_backend(backend)
    after, single = lava.run(g, both, DT), lava.run(g, alone, DT)
    ref = get_backend("norse").run(g, alone, DT)
    assert after.outputs["if1"][0, -1].all(), "the first sample must still fire on its last step"
    for n in ("if1", "if2"):
        np.testing.assert_array_equal(after.outputs[n][1], single.outputs[n][0])
        np.testing.assert_array_equal(single.outputs[n], ref.outputs[n])
    assert ref.outputs["if1"][0, :5].sum() == 0 and ref.outputs["if1"][0, 5:, 1].all()


@pytest.mark.lava
@pytest.mark.slow
def test_isolation_test_detects_a_leak_without_muting(monkeypatch):
    """Without the output gate the previous sample's tail spikes reach the next sample's step 0
    (Lava forks its process models from this process: the patch reaches them)."""
    from snndeploy.runtime.lavaprocs import neurons as procs

    monkeypatch.setattr(procs._PopLifResetModel, "_muted", lambda self: False)
    both, _ = _isolation_case()
    after = get_backend("lava-float").run(_latch_graph(), both, DT)
    assert after.outputs["if1"][1, 0].all()


# --------------------------------------------------------------------------- fixed point: lava-fixed == loihi-emu


def _fixed_pair(g, x, dt):
    fixed = get_backend("lava-fixed").run(g, x, dt)
    emu = get_backend("loihi-emu").run(g, x, dt)
    for n in _spiking(g):
        np.testing.assert_array_equal(fixed.outputs[n], emu.outputs[n], err_msg=n)
        for var in ("u", "v"):
            np.testing.assert_array_equal(fixed.states[n][var], emu.states[n][var], err_msg=f"{n}.{var}")
    return fixed, emu


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("name", BRAILLE)
def test_braille_lava_fixed_equals_loihi_emu(name):
    g = G.load_graph(PAPER / name)
    x = bernoulli(np.random.default_rng(21), (3, 60, 12), p=0.3)
    fixed, _ = _fixed_pair(g, x, DT_PAPER)
    ref = get_backend("norse").run(g, x, DT_PAPER)
    assert fixed.outputs["lif1.lif"].sum() > 0 and fixed.outputs["lif2"].sum() > 0
    # quantized, not exact: most spikes of the recurrent layer still agree with the float reference
    assert (fixed.outputs["lif1.lif"] == ref.outputs["lif1.lif"]).mean() > 0.9


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 9])
def test_random_cuba_recurrent_graph_lava_fixed_equals_loihi_emu(seed):
    rng = np.random.default_rng(seed)
    g = _recurrent_graph(rng, rec_bias=0.3)  # CubaLIF with a bias into its current, both recurrences
    x = bernoulli(rng, (3, 40, 5), p=0.4)
    fixed, _ = _fixed_pair(g, x, DT)
    assert fixed.outputs["lif1"].sum() > 0 and fixed.outputs["lif2"].sum() > 0
    rep = fixed.info["quantization"]
    assert rep["lif1"]["du"] != (4095,), "the CubaLIF current must decay (du < 1)"


def test_emulator_back_edge_reads_the_previous_step():
    """loihi-emu on a latch (self-excitation): a neuron that fires at step t fires again at t+1, and
    nothing arrives at step 0."""
    g = _latch_graph()
    both, alone = _isolation_case()
    emu = get_backend("loihi-emu").run(g, both, DT)
    assert emu.outputs["if1"][0, :2].sum() == 0 and emu.outputs["if1"][0, 2:].all()
    assert emu.outputs["if1"][1, :5].sum() == 0 and emu.outputs["if1"][1, 5:, 1].all()
