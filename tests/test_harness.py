"""Agreement, first divergence, predictions and SynOps on hand-made records."""

import numpy as np
from helpers import mlp_graph

from snndeploy.energy.counts import count_ops, counts_equal, merge_counts
from snndeploy.energy.estimate import energy_summary
from snndeploy.energy.targets import load_target
from snndeploy.harness.agreement import Tolerances, compare_pair, first_divergence, merge_pairs, predictions


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


def _chunks(rec, bounds):
    return [(s, {k: v[s:e] for k, v in rec.items()}) for s, e in zip(bounds[:-1], bounds[1:])]


def test_pairs_merged_over_chunks_equal_one_comparison():
    """compare in chunks: counts add, the earliest divergence wins, even when it is in a later chunk."""
    rng = np.random.default_rng(4)
    g = mlp_graph(rng, sizes=(4, 10, 3))
    a = {n: (rng.random((20, 10, s)) < 0.3).astype(float) for n, s in [("lif1", 10), ("lif2", 3)]}
    a["out"] = a["lif2"]
    b = {k: v.copy() for k, v in a.items()}
    for s, t, j in [(17, 1, 4), (9, 8, 0), (9, 3, 6)]:  # lif1 first differs at sample 9, step 3
        b["lif1"][s, t, j] = 1 - b["lif1"][s, t, j]
    b["lif2"][12, 0, 1] = 1 - b["lif2"][12, 0, 1]
    b["out"] = b["lif2"]
    tol = Tolerances(min_spike_agreement=0.9999)
    whole = compare_pair(g, "x", a, "y", b, "out", tol)
    bounds = [0, 7, 14, 20]
    parts = [
        compare_pair(g, "x", ca, "y", cb, "out", tol, sample_offset=s)
        for (s, ca), (_, cb) in zip(_chunks(a, bounds), _chunks(b, bounds))
    ]
    assert parts[0]["first_divergence"] is None  # the divergence is in the second chunk
    merged = merge_pairs(parts, tol)
    assert merged == whole
    assert merged["first_divergence"] == {"node": "lif1", "sample": 9, "step": 3, "neuron": 6}
    assert merged["nodes"]["lif1"]["mismatches"] == 3 and merged["nodes"]["lif2"]["mismatches"] == 1
    assert not merged["passed"]


def test_counts_merged_over_chunks_equal_one_count():
    """A layer whose input is binary in one chunk but graded in another counts as MAC overall."""
    rng = np.random.default_rng(5)
    g = mlp_graph(rng, sizes=(5, 6, 2))
    rec = {"in": (rng.random((9, 4, 5)) < 0.5).astype(float), "lif1": (rng.random((9, 4, 6)) < 0.5).astype(float)}
    rec["in"][7, 2, 3] = 0.5  # graded input only in the last chunk
    whole = count_ops(g, rec)
    parts = [count_ops(g, c) for _, c in _chunks(rec, [0, 4, 6, 9])]
    assert parts[0]["fc1"]["binary_input"] and not parts[2]["fc1"]["binary_input"]
    merged = merge_counts(parts)
    assert counts_equal(merged, whole) and merged.keys() == whole.keys()
    assert not merged["fc1"]["binary_input"] and merged["fc1"]["synops_ac"].sum() == 0
    np.testing.assert_array_equal(merged["lif1"]["activation_sparsity"], whole["lif1"]["activation_sparsity"])
