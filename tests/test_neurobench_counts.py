"""Our operation counts (snndeploy.energy.counts) against NeuroBench 2.3.0's own figures.

The fixtures (tests/fixtures/neurobench, made by scripts/neurobench_counts.sh in a separate venv with
neurobench 2.3.0 + snnTorch 1.0.0) hold two snnTorch networks exported with snnTorch's own NIR exporter,
their input, the spikes snnTorch produced inside NeuroBench's run, and what NeuroBench's ``Benchmark.run``
reported: per sample (one run per sample) and for the whole batch, plus a per-layer breakdown made with
NeuroBench's own functions. Every expected value here comes from those JSON files, never from our code.

The graph is run with ``norse``; its spikes must equal snnTorch's, so both count the same activity.
Where the definitions agree the figures must be equal exactly; where they differ (documented in each
test and in the fixture's ``definitions``), the difference is asserted explicitly:

- AC vs MAC: NeuroBench decides per layer *per forward call* (one time step, the whole batch) and calls
  {0, 1, -1} spiking (neurobench/metrics/utils/layers/input.py); we decide per layer over the whole run
  and call only {0, 1} binary (snndeploy/energy/counts.py ``_layer_events``). The totals are equal.
- Dense: NeuroBench runs an all-ones input through an all-ones copy of the layer, so a Conv2d's
  zero-padding taps are not counted; our ``dense_ops`` counts output size x C_in x kh x kw (padding
  taps included).
- Membrane updates: NeuroBench counts a neuron's update only if its membrane changed in that step (all
  neurons in the first step); our ``neuron_updates`` is neurons x steps.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from snndeploy.backends import get_backend
from snndeploy.energy.counts import count_ops, ops_summary
from snndeploy.ir.analysed import analyse
from snndeploy.ir.graph import open_graph

FIX = Path(__file__).parent / "fixtures" / "neurobench"
NAMES = ("mlp", "cnn", "mlp_graded")
#: whether each weighted layer's input is binary ({0, 1} over the whole run) by OUR definition: what the
#: network and its input are (spike input; a layer after a LIF; after an AvgPool; a graded input)
BINARY_BY_OUR_DEFINITION = {
    "mlp": {"fc1": True, "fc2": True},
    "cnn": {"conv1": True, "fc2": False},  # fc2 reads AvgPool2d of spikes: 0, 0.25, 0.5, ...
    "mlp_graded": {"fc1": False, "fc2": True},  # input has 0.5 and -1 entries at some steps
}


@functools.cache
def _case(name):
    meta = json.loads((FIX / f"{name}.json").read_text())
    d = np.load(FIX / meta["files"]["npz"])
    graph, conv = open_graph(FIX / meta["files"]["nir"], exporter="snntorch")
    ag = analyse(graph)
    x = d["input"].astype(np.float32)
    res = get_backend("norse").run(ag, x.reshape(x.shape[:2] + ag.input_shape), conv.dt)
    B = x.shape[0]
    # per sample: one count_ops per sample, as NeuroBench's per-sample runs (batch size 1)
    per_sample = [count_ops(ag, {n: v[i : i + 1] for n, v in res.outputs.items()}) for i in range(B)]
    batch = count_ops(ag, res.outputs)
    return meta, d, ag, conv, res, per_sample, batch


def _synapses(counts):
    return {n: c for n, c in counts.items() if c["layer"] == "synapse"}


def _neurons(counts):
    return {n: c for n, c in counts.items() if c["layer"] == "neuron"}


def _tot(counts, key, i=0):
    return int(sum(int(np.asarray(c[key])[i]) for c in counts.values() if key in c))


def _split_difference(name, layers):
    """Effective ops NeuroBench put in ACs that we put in MACs: the ops, at the steps NeuroBench called
    spiking ({0, 1, -1} in that step's input), of the layers whose input is not binary by our definition."""
    return sum(
        ops
        for n, lay in layers.items()
        if lay["layer"] == "synapse" and not BINARY_BY_OUR_DEFINITION[name][n]
        for ops, s in zip(lay["effective_ops_per_step"], lay["spiking_per_step"])
        if s == "1"
    )


def _padding_taps(graph, node, T):
    """Conv2d kernel taps that fall on zero padding, per sample over T steps, from the NIR geometry alone."""
    c = graph.nodes[node]
    if type(c).__name__ != "Conv2d":
        return 0
    w = np.asarray(c.weight)
    n_in = np.asarray(c.input_shape).reshape(-1)[-2:]
    stride, pad, dil = (np.broadcast_to(np.asarray(a).reshape(-1), (2,)) for a in (c.stride, c.padding, c.dilation))
    inside, total = 1, 1
    for ax in range(2):
        k, n = w.shape[2 + ax], int(n_in[ax])
        n_out = (n + 2 * pad[ax] - dil[ax] * (k - 1) - 1) // stride[ax] + 1
        taps = [o * stride[ax] - pad[ax] + j * dil[ax] for o in range(n_out) for j in range(k)]
        inside *= sum(0 <= p < n for p in taps)
        total *= n_out * k
    return int(w.shape[0] * w.shape[1] * (total - inside) * T)


# --------------------------------------------------------------------------- the fixtures


def test_fixtures_are_neurobench_2_3_0_and_small():
    total = sum(p.stat().st_size for p in FIX.iterdir())
    assert total < 200_000, f"tests/fixtures/neurobench is {total} bytes"
    for name in NAMES:
        meta = json.loads((FIX / f"{name}.json").read_text())
        assert meta["versions"]["neurobench"] == "2.3.0"
        assert meta["versions"]["snntorch"] and meta["versions"]["torch"]
        metrics = {d["metric"] for d in meta["definitions"]}
        assert {"SynapticOperations", "ActivationSparsity", "MembraneUpdates", "NeuronOperations"} <= metrics
        for d in meta["definitions"]:
            for where in d["refs"].values():
                path, line = where.rsplit(":", 1)
                assert path.startswith("neurobench/") and path.endswith(".py") and int(line) > 0, where
        assert len(meta["neurobench"]["per_sample"]) == meta["model"]["batch"]


@pytest.mark.parametrize("name", NAMES)
def test_norse_reproduces_snntorch_spikes(name):
    """Counts are only comparable on the same activity: every Leaky layer's spikes, exactly."""
    meta, d, ag, conv, res, _, _ = _case(name)
    assert conv.dt == pytest.approx(meta["model"]["dt_assumed_by_exporter"])
    layers = [k for k in d.files if k.startswith("spikes__")]
    assert len(layers) == 2
    for k in layers:
        node = k[len("spikes__") :]
        ours = res.outputs[node].reshape(d[k].shape)
        assert np.array_equal(ours, d[k].astype(ours.dtype)), f"{name}/{node}: norse spikes differ from snnTorch's"


# --------------------------------------------------------------------------- synaptic operations


@pytest.mark.parametrize("name", NAMES)
def test_effective_synaptic_operations_per_layer_and_step_input(name):
    """Per layer, per sample: our effective synops == the sum over steps of NeuroBench's single_layer_MACs
    (non-zero inputs x non-zero weights, bias not counted; the first layer's input is counted too)."""
    meta, _, ag, _, _, per_sample, _ = _case(name)
    for i, counts in enumerate(per_sample):
        nb_layers = meta["per_layer"]["per_sample"][i]
        assert set(_synapses(counts)) == {n for n, v in nb_layers.items() if v["layer"] == "synapse"}
        for n, c in _synapses(counts).items():
            assert int(c["synops"][0]) == sum(nb_layers[n]["effective_ops_per_step"]), (name, i, n)
            assert bool(c["binary_input"]) is BINARY_BY_OUR_DEFINITION[name][n], (name, n)
    # the biases are non-zero, so equality means neither side counts them
    for n in BINARY_BY_OUR_DEFINITION[name]:
        assert np.any(np.asarray(ag.graph.nodes[n].bias) != 0), n


@pytest.mark.parametrize("name", NAMES)
def test_effective_acs_and_macs_per_sample(name):
    """SynapticOperations' Effective_ACs / Effective_MACs, per sample: the total is equal exactly; the
    AC/MAC split is equal exactly unless NeuroBench's per-step decision differs from our per-run one."""
    meta, *_, per_sample, _ = _case(name)
    diffs = []
    for i, counts in enumerate(per_sample):
        nb = meta["neurobench"]["per_sample"][i]["SynapticOperations"]
        ac, mac = _tot(counts, "synops_ac"), _tot(counts, "synops_mac")
        assert ac + mac == nb["Effective_ACs"] + nb["Effective_MACs"], (name, i)
        diff = _split_difference(name, meta["per_layer"]["per_sample"][i])
        assert ac + diff == nb["Effective_ACs"], (name, i)
        assert mac - diff == nb["Effective_MACs"], (name, i)
        diffs.append(diff)
    if name == "mlp_graded":  # the difference is exercised: steps of +-1 spikes are ACs for NeuroBench
        assert all(v > 0 for v in diffs)
    else:  # spike input and a graded layer with graded input at every step: equal exactly
        assert diffs == [0] * len(diffs)
    if name == "cnn":
        assert all(meta["neurobench"]["per_sample"][i]["SynapticOperations"]["Effective_MACs"] > 0 for i in range(6))


@pytest.mark.parametrize("name", NAMES)
def test_dense_operations_per_sample(name):
    """SynapticOperations' Dense: every weight every step, like our dense_ops, except a Conv2d's taps on
    zero padding, which NeuroBench's all-ones run does not count and our dense_ops does."""
    meta, _, ag, _, _, per_sample, _ = _case(name)
    T = meta["model"]["steps"]
    pad = {n: _padding_taps(ag.graph, n, T) for n in BINARY_BY_OUR_DEFINITION[name]}
    assert (sum(pad.values()) > 0) is (name == "cnn")
    for i, counts in enumerate(per_sample):
        nb = meta["neurobench"]["per_sample"][i]["SynapticOperations"]["Dense"]
        assert _tot(counts, "dense_ops") - sum(pad.values()) == nb, (name, i)
        for n, c in _synapses(counts).items():
            assert int(c["dense_ops"][0]) - pad[n] == meta["per_layer"]["per_sample"][i][n]["dense_ops_per_step"] * T


# --------------------------------------------------------------------------- neurons


@pytest.mark.parametrize("name", NAMES)
def test_activation_sparsity_per_sample(name):
    """ActivationSparsity: zero outputs / outputs of every spiking layer (the output layer included, not
    the input), pooled: equal exactly; ActivationSparsityByLayer per node: equal to the last bit's order."""
    meta, *_, per_sample, _ = _case(name)
    torch_of = {v: k for k, v in meta["model"]["nir_node_of_torch_module"].items()}
    for i, counts in enumerate(per_sample):
        nb = meta["neurobench"]["per_sample"][i]
        entries, spikes = _tot(_neurons(counts), "neuron_updates"), _tot(_neurons(counts), "spikes")
        assert (entries - spikes) / entries == nb["ActivationSparsity"], (name, i)
        for n, c in _neurons(counts).items():
            assert float(c["activation_sparsity"][0]) == pytest.approx(
                nb["ActivationSparsityByLayer"][torch_of[n]], rel=1e-14, abs=0
            )
            assert int(c["spikes"][0]) == meta["per_layer"]["per_sample"][i][n]["nonzero_outputs"]


@pytest.mark.parametrize("name", NAMES)
def test_membrane_updates_and_neuron_operations_per_sample(name):
    """MembraneUpdates counts an update only when the membrane changed (all neurons at the first step);
    our neuron_updates is neurons x steps. The difference is exactly the (neuron, step >= 1) whose
    membrane stayed the same, which we find again in norse's own membrane record."""
    meta, _, _, _, res, per_sample, _ = _case(name)
    factor = meta["neurobench"]["neuron_ops_per_update"]["Leaky"]
    for i, counts in enumerate(per_sample):
        nb = meta["neurobench"]["per_sample"][i]
        unchanged_total = 0
        for n, c in _neurons(counts).items():
            lay = meta["per_layer"]["per_sample"][i][n]
            assert int(c["neuron_updates"][0]) == lay["numel_all_steps"]
            v = res.states[n]["v"][i]
            unchanged = int(np.sum(v[1:] == v[:-1]))  # ours: membrane after step t == after step t-1
            assert int(c["neuron_updates"][0]) - unchanged == lay["membrane_updates"], (name, i, n)
            unchanged_total += unchanged
        ours = _tot(counts, "neuron_updates")
        assert ours - unchanged_total == nb["MembraneUpdates"], (name, i)
        assert factor * ours == nb["NeuronOperations"]["Neuron Dense Ops"], (name, i)
        assert factor * (ours - unchanged_total) == nb["NeuronOperations"]["Effective Neuron Ops"], (name, i)
    # the difference is exercised (zero reset: a neuron that spikes two steps running stays at 0)
    assert sum(_tot(c, "neuron_updates") for c in per_sample) > sum(
        s["MembraneUpdates"] for s in meta["neurobench"]["per_sample"]
    )


# --------------------------------------------------------------------------- the whole batch at once


@pytest.mark.parametrize("name", NAMES)
def test_batch_figures(name):
    """One NeuroBench run on the whole batch reports means per sample; so does ops_summary. The AC/MAC
    decision is then NeuroBench's per step over the whole batch, ours over the whole batch and run."""
    meta, *_, batch = _case(name)
    nb = meta["neurobench"]["batch"]
    B = meta["model"]["batch"]
    T = meta["model"]["steps"]
    syn = _synapses(batch)
    ac = sum(int(c["synops_ac"].sum()) for c in syn.values())
    mac = sum(int(c["synops_mac"].sum()) for c in syn.values())
    diff = _split_difference(name, meta["per_layer"]["batch"])
    assert (ac + diff) / B == nb["SynapticOperations"]["Effective_ACs"]
    assert (mac - diff) / B == nb["SynapticOperations"]["Effective_MACs"]
    # the batch decision: ours over the whole batch equals the per-sample one here
    assert {n: bool(c["binary_input"]) for n, c in syn.items()} == BINARY_BY_OUR_DEFINITION[name]
    dense = sum(int(c["dense_ops"].sum()) for c in syn.values())
    _, _, ag, *_ = _case(name)
    pad = sum(_padding_taps(ag.graph, n, T) for n in syn) * B
    assert (dense - pad) / B == nb["SynapticOperations"]["Dense"]
    neu = _neurons(batch)
    entries = sum(int(c["neuron_updates"].sum()) for c in neu.values())
    spikes = sum(int(c["spikes"].sum()) for c in neu.values())
    # ActivationSparsity is a "stateless" metric: Benchmark adds result * batch_size / dataset_len
    assert ((entries - spikes) / entries) * B / B == nb["ActivationSparsity"]
    summary = ops_summary(batch)
    assert summary["activation_sparsity"] == pytest.approx(nb["ActivationSparsity"], rel=1e-14, abs=0)
    assert summary["totals"]["synops"] == pytest.approx(
        nb["SynapticOperations"]["Effective_ACs"] + nb["SynapticOperations"]["Effective_MACs"], rel=1e-14, abs=0
    )
    unchanged = sum(
        lay["numel_all_steps"] - lay["membrane_updates"]
        for lay in meta["per_layer"]["batch"].values()
        if lay["layer"] == "neuron"
    )
    assert (entries - unchanged) / B == nb["MembraneUpdates"]
