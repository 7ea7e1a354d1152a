"""Agreement, first divergence, predictions and SynOps on hand-made records."""

import numpy as np

from helpers import mlp_graph
from snndeploy.harness import Tolerances, compare_pair, first_divergence, predictions
from snndeploy.synops import count_ops, energy_summary
from snndeploy.targets import load_target


def test_first_divergence_is_earliest_sample_then_step():
    a = np.zeros((3, 4, 5))
    b = a.copy()
    b[2, 0, 1] = 1
    b[1, 3, 4] = 1
    b[1, 2, 0] = 1
    assert first_divergence(a, b) == {"sample": 1, "step": 2, "neuron": 0}
    assert first_divergence(a, a) is None


def test_predictions_sum_over_time_ties_to_lowest_index():
    out = np.zeros((2, 3, 4))
    out[0, :, 2] = 1
    out[1, 0, 1] = out[1, 1, 3] = 1  # a tie between classes 1 and 3
    assert predictions(out).tolist() == [2, 1]


def test_compare_pair_counts_mismatches_and_fails_below_tolerance():
    rng = np.random.default_rng(0)
    g = mlp_graph(rng, sizes=(4, 10, 3))
    a = {n: (rng.random((20, 10, s)) < 0.3).astype(float) for n, s in [("lif1", 10), ("lif2", 3)]}
    a["out"] = a["lif2"]
    b = {k: v.copy() for k, v in a.items()}
    b["lif1"][5, 7, 2] = 1 - b["lif1"][5, 7, 2]
    rep = compare_pair(g, "x", a, "y", b, "out", Tolerances())
    assert rep["nodes"]["lif1"]["mismatches"] == 1
    assert rep["nodes"]["lif1"]["spike_agreement"] == 1 - 1 / 2000
    assert rep["first_divergence"] == {"node": "lif1", "sample": 5, "step": 7, "neuron": 2}
    assert rep["prediction_agreement"] == 1.0 and rep["passed"]  # 0.9995 >= 0.999
    strict = compare_pair(g, "x", a, "y", b, "out", Tolerances(min_spike_agreement=1.0))
    assert not strict["passed"]


def test_synops_equal_an_independent_count():
    rng = np.random.default_rng(1)
    g = mlp_graph(rng, sizes=(5, 6, 2))
    g.nodes["fc1"].weight[:, 0] = 0  # input 0 has no fan-out
    g.nodes["fc1"].weight[3, 1] = 0
    rec = {"in": (rng.random((3, 4, 5)) < 0.5).astype(float), "lif1": (rng.random((3, 4, 6)) < 0.5).astype(float)}
    counts = count_ops(g, rec)
    w = g.nodes["fc1"].weight
    for b in range(3):
        expected = 0
        for t in range(4):
            for j in range(5):
                if rec["in"][b, t, j]:
                    expected += sum(1 for i in range(6) if w[i, j] != 0)
        assert counts["fc1"]["synops"][b] == expected
    assert counts["lif1"]["neuron_updates"].tolist() == [24, 24, 24]
    e = energy_summary(counts, load_target("loihi"))
    syn = np.mean(counts["fc1"]["synops"]) + np.mean(counts["fc2"]["synops"])
    # Loihi: 81 pJ per active (spiking) update, 52 pJ per inactive one, 1.7 pJ per spike; lif2 is not recorded (silent)
    spikes = rec["lif1"].sum(axis=(1, 2)).mean()
    neurons = spikes * 81.0 + (24 - spikes + 8) * 52.0 + spikes * 1.7
    assert np.isclose(e["energy_nj_per_sample"] * 1e3, syn * 23.6 + neurons)
