"""The ``brian2`` backend (real Brian2, numpy code generation) against the ``norse`` reference.

Every comparison asserts that the reference is not trivial (its spiking populations spike), that
brian2 records the Input, the Output and every neuron population with norse's shapes, that every
spike record is equal (agreement 1.0) and that every membrane potential is within 1e-9 (measured:
0 on the NIR paper's graphs and the peer fixtures, at most a few 1e-15 on the random graphs, from
the order of the composed chains' sums). ``integration="exact"`` is checked against the NIR
paper's analytic trace (``lif_exact.csv``) and against a matrix exponential.
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest

from snndeploy.backends import BACKENDS, get_backend
from snndeploy.backends.brian2 import Brian2Backend
from snndeploy.errors import InputError, UnsupportedNodeError
from snndeploy.ir import graph as G
from snndeploy.ir.analysed import analyse
from snndeploy.reference import DEFINED_TYPES

PEERS = Path(__file__).parent / "fixtures" / "peers"
PAPER_DT = 1e-4
V_ATOL = 1e-9
ANALYTIC_SPIKES = [460, 510, 710, 760]  # lif_exact.csv, lif_norse.csv (README of the conformance folder)


def _bernoulli(seed, shape, p):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)


def _compare(graph, x, dt, silent=(), **kw):
    """norse and brian2 on the same input: records equal (spikes) or within V_ATOL (graded, v)."""
    ag = analyse(graph) if not hasattr(graph, "order") else graph
    ref = get_backend("norse").run(ag, x, dt)
    res = Brian2Backend(**kw).run(ag, x, dt)
    assert res.backend == "brian2"
    must = {ag.input_node, ag.output_node, *ag.neurons}
    assert set(res.outputs) == must, f"brian2 records {sorted(res.outputs)}, expected {sorted(must)}"
    assert set(res.states) == set(ag.neurons)
    for n in ag.spiking_nodes:  # two silent networks agree trivially
        if n not in silent:
            assert ref.outputs[n].sum() > 0, f"norse: '{n}' ({ag.type_name(n)}) is silent: the comparison tests nothing"
    for n in sorted(must):
        a, b = ref.outputs[n], res.outputs[n]
        assert a.shape == b.shape, f"'{n}': norse {a.shape}, brian2 {b.shape}"
        if n == ag.input_node or ag.nodes[n].is_spiking or np.isin(a, (0.0, 1.0)).all():
            np.testing.assert_array_equal(b, a, err_msg=f"spikes of '{n}'")
        else:
            np.testing.assert_allclose(b, a, atol=V_ATOL, rtol=0, err_msg=f"graded output of '{n}'")
    for n in ag.neurons:
        a, b = ref.states[n]["v"], res.states[n]["v"]
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=V_ATOL, rtol=0, err_msg=f"v of '{n}'")
    return ref, res


# --------------------------------------------------------------------------- registry, refusals


def test_registered_and_supports_derived_from_the_registries():
    assert "brian2" in BACKENDS
    b = get_backend("brian2")
    assert isinstance(b, Brian2Backend) and b.name == "brian2"
    assert b.supports == DEFINED_TYPES - {"Delay"}
    assert set(b.refused_why) == {"Delay"}
    assert get_backend("brian2", integration="exact").integration == "exact"
    with pytest.raises(InputError, match="integration"):
        Brian2Backend(integration="rk4")


def _chain(nodes, in_shape=(3,), out_shape=(3,)):
    all_nodes = {"in": nir.Input(input_type={"input": np.array(in_shape)}), **nodes}
    all_nodes["out"] = nir.Output(output_type={"output": np.array(out_shape)})
    names = list(all_nodes)
    return nir.NIRGraph(nodes=all_nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)


def _lif(n=3, **kw):
    p = dict(tau=np.full(n, 5e-3), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    return nir.LIF(**{**p, **kw})


def test_refusals_name_node_type_and_reason():
    g = _chain({"fc": nir.Linear(weight=np.eye(3)), "d": nir.Delay(delay=np.full(3, 2e-3)), "lif": _lif()})
    with pytest.raises(UnsupportedNodeError) as e:
        get_backend("brian2").check(g, 1e-3)
    assert e.value.backend == "brian2" and e.value.node == "d" and e.value.node_type == "Delay"
    assert "synaptic delays" in str(e.value)
    # a cycle through linear nodes only: nothing holds the previous step
    nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "a": nir.Linear(weight=np.eye(3)),
        "b": nir.Linear(weight=0.5 * np.eye(3)),
        "lif": _lif(),
        "out": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("in", "a"), ("a", "lif"), ("lif", "b"), ("b", "a"), ("lif", "out")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    with pytest.raises(UnsupportedNodeError, match="back edge 'b -> a' enters a Linear"):
        get_backend("brian2").check(g, 1e-3)
    with pytest.raises(InputError, match="dt must be"):
        get_backend("brian2").check(_chain({"lif": _lif()}), 0.0)


# --------------------------------------------------------------------------- the NIR paper's graphs


@pytest.fixture(scope="module")
def lif_trace(paper):
    return np.loadtxt(paper / "lif_exact.csv", delimiter=",")


def test_lif_norse_euler_equals_the_reference(paper, lif_trace, lif_norse_csv):
    g = G.load_graph(paper / "lif_norse.nir")
    x = lif_trace[:, 0].reshape(1, -1, 1)
    ref, res = _compare(g, x, PAPER_DT)
    assert np.flatnonzero(res.outputs["1"][0, :, 0]).tolist() == ANALYTIC_SPIKES
    assert np.flatnonzero(lif_norse_csv[:, 2]).tolist() == ANALYTIC_SPIKES  # the paper's own Norse trace
    assert np.max(np.abs(res.states["1"]["v"] - ref.states["1"]["v"])) == 0.0  # measured: bit for bit


def test_lif_norse_exact_reproduces_the_analytic_trace(paper, lif_trace):
    """Zero-order hold of each step's input, Brian2's exact update, reset at the threshold crossing
    (docs/brian2.md): the analytic event-based simulation's spikes, and its voltage to 3e-9 (the
    rest: that simulation computes the crossing time partly in float32, the file's parameters)."""
    g = G.load_graph(paper / "lif_norse.nir")
    x = lif_trace[:, 0].reshape(1, -1, 1)
    exact = Brian2Backend(integration="exact").run(g, x, PAPER_DT)
    assert np.flatnonzero(exact.outputs["1"][0, :, 0]).tolist() == ANALYTIC_SPIKES
    assert np.flatnonzero(lif_trace[:, 2]).tolist() == ANALYTIC_SPIKES
    v = exact.states["1"]["v"][0, :, 0]
    assert np.max(np.abs(v - lif_trace[:, 1])) < 5e-9
    assert exact.info["integration"] == "exact"
    # the Euler mode is a different discretization: same spikes here, voltages ~1e-3 apart
    euler = get_backend("brian2").run(g, x, PAPER_DT)
    np.testing.assert_array_equal(euler.outputs["1"], exact.outputs["1"])
    assert np.max(np.abs(euler.states["1"]["v"][0, :, 0] - lif_trace[:, 1])) > 1e-4


def test_two_lif_neurons(paper):
    """lif1 starts above threshold (v_leak 1.2 > 1) and fires at step 0; lif2 (threshold 20, 0.01 per
    input spike at dt = 1e-4) cannot fire on any input of this length: its v is compared."""
    g = G.load_graph(paper / "two_lif_neurons.nir")
    ref, _ = _compare(g, _bernoulli(12, (3, 400, 1), 0.3), PAPER_DT, silent=("lif2",))
    assert np.all(ref.outputs["lif1"][:, 0] == 1) and ref.outputs["lif1"].sum() >= 6
    assert np.all(ref.states["lif2"]["v"][:, 1:] > 0)


@pytest.mark.slow
def test_cnn_sinabs(paper):
    g, conv = G.open_graph(paper / "cnn_sinabs.nir", exporter="sinabs")
    assert conv.dt == 1.0
    _, res = _compare(g, _bernoulli(11, (2, 20, 2, 34, 34), 0.15), conv.dt)
    assert res.info["synapses_per_sample"] > 1_000_000  # the composed conv chains, dense per source


@pytest.mark.parametrize("name", ["braille_noDelay_bias_zero.nir", "braille_noDelay_noBias_subtract.nir"])
def test_recurrent_braille_graphs(paper, name):
    g, conv = G.open_graph(paper / name, exporter="snntorch")
    ag = analyse(g)
    assert ag.back_edges == {("lif1.w_rec", "lif1.lif")}
    _compare(ag, _bernoulli(21, (3, 60, 12), 0.3), conv.dt)


# --------------------------------------------------------------------------- random graphs


def _neuron(kind, n, rng):
    ones = np.ones(n)
    if kind == "LIF":  # v_leak != v_reset, per-neuron everything
        return nir.LIF(
            tau=rng.uniform(5e-3, 2e-2, n),
            r=rng.uniform(5, 15, n),
            v_leak=rng.uniform(0, 0.3, n),
            v_threshold=ones,
            v_reset=rng.uniform(-0.2, 0.1, n),
        )
    if kind == "IF":
        return nir.IF(r=rng.uniform(0.5, 1.5, n), v_threshold=rng.uniform(0.5, 1.5, n), v_reset=0 * ones)
    if kind == "LI":
        return nir.LI(tau=rng.uniform(5e-3, 2e-2, n), r=rng.uniform(5, 15, n), v_leak=rng.normal(0, 0.1, n))
    cuba = dict(
        tau_syn=rng.uniform(2e-3, 5e-3, n),
        tau_mem=rng.uniform(5e-3, 2e-2, n),
        r=rng.uniform(5, 15, n),
        v_leak=0 * ones,
        w_in=rng.uniform(2, 5, n),
    )
    if kind == "CubaLI":
        return nir.CubaLI(**cuba)
    return nir.CubaLIF(**cuba, v_threshold=ones, v_reset=0 * ones)


def random_graph(seed, kinds, recurrent=False, n_in=5):
    """Input -> (Affine -> neuron) per kind -> Output; ``recurrent``: a self-recurrent Linear on the first
    population and an Affine from the last population back into the first (a cycle over every layer,
    which Lava refuses). A graded LI/CubaLI in the middle feeds the next Affine."""
    rng = np.random.default_rng(seed)
    sizes = [n_in] + [int(rng.integers(3, 7)) for _ in kinds]
    nodes = {"in": nir.Input(input_type={"input": np.array([n_in])})}
    edges, prev = [], "in"
    for k, kind in enumerate(kinds):
        w = rng.normal(0.3, 1.0, (sizes[k + 1], sizes[k])) / np.sqrt(sizes[k])
        w[0] = np.abs(w[0]) + 0.3  # unit 0 excitatory: the reference spikes
        nodes[f"fc{k}"] = nir.Affine(weight=w, bias=rng.normal(0, 0.05, sizes[k + 1]))
        nodes[f"n{k}"] = _neuron(kind, sizes[k + 1], rng)
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"n{k}")]
        prev = f"n{k}"
    nodes["out"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "out"))
    if recurrent:
        nodes["w_self"] = nir.Linear(weight=rng.normal(0, 0.5, (sizes[1], sizes[1])))
        nodes["w_back"] = nir.Affine(
            weight=rng.normal(0, 0.5, (sizes[1], sizes[-1])), bias=rng.normal(0, 0.05, sizes[1])
        )
        edges += [("n0", "w_self"), ("w_self", "n0"), (prev, "w_back"), ("w_back", "n0")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


RANDOM = [
    (0, ("LIF", "IF", "LIF"), False),
    (1, ("CubaLIF", "LI", "LIF"), False),
    (2, ("IF", "LIF", "CubaLI"), False),
    (3, ("LIF", "CubaLIF"), True),
    (4, ("CubaLIF", "LIF", "IF"), True),
]


@pytest.mark.parametrize("seed,kinds,recurrent", RANDOM, ids=[f"{s}-{'-'.join(k)}{'-rec' * r}" for s, k, r in RANDOM])
def test_random_graphs(seed, kinds, recurrent):
    g = random_graph(seed, kinds, recurrent)
    ag = analyse(g)
    assert bool(ag.back_edges) == recurrent
    _compare(ag, _bernoulli(seed, (2, 30, 5), 0.3), 1e-3)


def test_graded_input_and_graded_sources():
    """Non-binary input values reach the first population as they are (TimedArray), and an LI's
    voltage feeds the next layer (a graded source, which Lava refuses)."""
    g = random_graph(1, ("CubaLIF", "LI", "LIF"))
    x = np.random.default_rng(5).normal(0.3, 0.5, (2, 30, 5))
    _, res = _compare(g, x, 1e-3)
    np.testing.assert_array_equal(res.outputs["in"], x)


def test_chunks_of_samples_are_independent():
    """A network per sample (max_synapses below one sample's) gives what one network of all samples
    gives: the replicated samples do not interact, and each starts from the initial state."""
    g = random_graph(4, ("CubaLIF", "LIF", "IF"), recurrent=True)
    x = _bernoulli(7, (3, 25, 5), 0.4)
    one = Brian2Backend().run(g, x, 1e-3)
    each = Brian2Backend(max_synapses=1).run(g, x, 1e-3)
    assert one.info["samples_per_network"] == 3 and each.info["samples_per_network"] == 1
    for n in one.outputs:
        np.testing.assert_array_equal(each.outputs[n], one.outputs[n])
    alone = Brian2Backend().run(g, x[2:], 1e-3)
    for n in one.outputs:
        np.testing.assert_array_equal(alone.outputs[n], one.outputs[n][2:])


# --------------------------------------------------------------------------- every node type, peers, a model


def _node_matrix_graphs():
    from test_node_matrix import GRAPHS

    supported = DEFINED_TYPES - {"Delay"}
    return {t: b for t, b in GRAPHS.items() if t in supported and t not in ("Input", "Output", "Affine")}


@pytest.mark.parametrize("type_name", sorted(_node_matrix_graphs()))
def test_every_supported_node_type(type_name):
    """The node matrix's graph for each type (tests/test_node_matrix.py), with its input."""
    from test_node_matrix import BATCH, DT, SEED, STEPS

    g = _node_matrix_graphs()[type_name]()
    shape = tuple(int(s) for s in g.nodes["in"].input_type["input"])
    x = _bernoulli(SEED, (BATCH, STEPS, *shape), 0.4)
    ref, _ = _compare(g, x, DT)
    for n, out in ref.outputs.items():
        assert np.any(out != 0), f"norse: '{n}' is zero: the graph tests nothing"


PEER_FILES = ["snntorch/recurrent_zero.nir", "sinabs/cnn_single.nir", "spikingjelly/cuba.nir", "rockpool/mlp.nir"]


@pytest.mark.parametrize("file", PEER_FILES)
def test_peer_fixtures(file):
    """Graphs written by the peers' real exporters, read with their exporter profile, on the input
    the peer simulated (tests/test_peer_fixtures.py)."""
    entry = next(e for e in json.loads((PEERS / "manifest.json").read_text()) if e.get("file") == file)
    g, conv = G.open_graph(PEERS / file, exporter=entry["framework"])
    ag = analyse(g)
    d = np.load(PEERS / file.replace(".nir", ".npz"))
    x = d["input"].reshape(d["input"].shape[:2] + ag.input_shape)
    _compare(ag, x, conv.dt)


@pytest.mark.slow
def test_a_trained_model(tmp_path):
    """models/digits_conv.toml (Conv2d, AvgPool2d, Flatten, Affine, four LIF layers), trained as
    tests/test_models.py trains it (1 epoch on 32 samples), exported, on two encoded test digits."""
    from snndeploy.harness.inputs import dataset_input
    from snndeploy.train.config import load_model_config
    from snndeploy.train.loop import train

    cfg = load_model_config("digits_conv")
    cfg["train"].update(limit_train=32, limit_test=8, batch_size=16)
    _, art = train(cfg, tmp_path, device="cpu", epochs=1, data_dir=None, quiet=True)
    g = G.load_graph(art["graph"])
    x, _, _ = dataset_input(g, cfg["dataset"], 2, None)
    ag = analyse(g)
    assert {"Conv2d", "AvgPool2d", "Flatten", "Affine", "LIF"} <= {ag.type_name(n) for n in ag.order}
    _compare(ag, x, G.graph_dt(g, None))


# --------------------------------------------------------------------------- exact integration


def _one_cuba(kind, tau_syn, tau_mem):
    one = np.ones(1)
    p = dict(tau_syn=tau_syn * one, tau_mem=tau_mem * one, r=2 * one, v_leak=0.1 * one, w_in=1.5 * one)
    node = nir.CubaLI(**p) if kind == "CubaLI" else nir.CubaLIF(**p, v_threshold=10 * one, v_reset=0 * one)
    return _chain({"n": node}, (1,), (1,))


def test_exact_cuba_equals_the_matrix_exponential():
    """Brian2's exact update of the current-based pair (I, v), input held over each step, equals the
    zero-order-hold propagator exp([[A, B], [0, 0]] dt) computed by scipy."""
    from scipy.linalg import expm

    dt, ts, tm = 1e-3, 2e-3, 5e-3
    x = np.random.default_rng(0).random((1, 50, 1))
    res = Brian2Backend(integration="exact").run(_one_cuba("CubaLI", ts, tm), x, dt)
    m = np.zeros((4, 4))
    m[:2, :2] = [[-1 / ts, 0], [2 / tm, -1 / tm]]  # d(I, v)/dt = A (I, v) + B (S, 1)
    m[:2, 2:] = [[1.5 / ts, 0], [0, 0.1 / tm]]
    e = expm(m * dt)
    s, want = np.array([0.0, 0.1]), []
    for t in range(x.shape[1]):
        s = e[:2, :2] @ s + e[:2, 2:] @ np.array([x[0, t, 0], 1.0])
        want.append(s[1])
    np.testing.assert_allclose(res.states["n"]["v"][0, :, 0], want, atol=1e-12, rtol=0)
    np.testing.assert_array_equal(res.outputs["out"], res.states["n"]["v"])  # the graded output is v


def test_exact_refuses_equal_time_constants():
    with pytest.raises(UnsupportedNodeError, match="tau_mem .* equals tau_syn"):
        get_backend("brian2", integration="exact").check(_one_cuba("CubaLIF", 5e-3, 5e-3), 1e-3)
    get_backend("brian2").check(_one_cuba("CubaLIF", 5e-3, 5e-3), 1e-3)  # Euler has no such division


def test_exact_runs_a_recurrent_graph(paper):
    g, conv = G.open_graph(paper / "braille_noDelay_bias_zero.nir", exporter="snntorch")
    x = _bernoulli(21, (2, 60, 12), 0.3)
    exact = Brian2Backend(integration="exact").run(g, x, conv.dt)
    euler = Brian2Backend().run(g, x, conv.dt)
    assert {n: a.shape for n, a in exact.outputs.items()} == {n: a.shape for n, a in euler.outputs.items()}
    assert exact.outputs["lif1.lif"].sum() > 0 and exact.outputs["lif2"].sum() > 0


# --------------------------------------------------------------------------- the CLI


@pytest.mark.lava
@pytest.mark.slow
def test_cli_compare_three_backends(paper, tmp_path):
    from snndeploy.cli import main

    x = _bernoulli(3, (2, 40, 12), 0.3)
    np.savez(tmp_path / "in.npz", spikes=x)
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            str(paper / "braille_noDelay_bias_zero.nir"),
            "--exporter",
            "snntorch",
            "--backends",
            "norse,brian2,lava-float",
            "--input",
            str(tmp_path / "in.npz"),
            "--out",
            str(out),
        ]
    )
    rep = json.loads((out / "report.json").read_text())
    assert code == (0 if rep["passed"] else 1)
    assert set(rep["backends"]) == {"norse", "brian2", "lava-float"}
    pair = next(p for p in rep["pairs"] if {p["a"], p["b"]} == {"norse", "brian2"})
    assert pair["spike_agreement"] == 1.0 and pair["prediction_agreement"] == 1.0
    assert set(pair["nodes"]) == {"lif1.lif", "lif2"}
    assert all(v["mismatches"] == 0 for v in pair["nodes"].values())
