"""Operation counts and energy: against independent counts (plain loops over records and weights)
and against the constants read straight from targets/*.toml."""

from pathlib import Path

import nir
import numpy as np
import pytest
from helpers import bernoulli, mlp_graph

from snndeploy.energy.counts import COUNT_KEYS, count_ops, counts_equal, ops_summary
from snndeploy.energy.estimate import energy_summary
from snndeploy.energy.mapping import mapping_estimate
from snndeploy.energy.targets import load_target
from snndeploy.errors import InputError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TARGETS = Path(__file__).resolve().parents[1] / "targets"


def _records(rng, g, B=3, T=5):
    sizes = {n: int(np.prod(node.output_type["output"])) for n, node in g.nodes.items()}
    return {
        "in": bernoulli(rng, (B, T, sizes["in"]), 0.4),
        "lif1": bernoulli(rng, (B, T, sizes["lif1"]), 0.5),
        "lif2": bernoulli(rng, (B, T, sizes["lif2"]), 0.5),
    }


def _loop_synops(x, w):
    """sum over steps and inputs of [x != 0] * (non-zero weights in that input's column), per sample."""
    B, T, n_in = x.shape
    out = []
    for b in range(B):
        total = 0
        for t in range(T):
            for j in range(n_in):
                if x[b, t, j] != 0:
                    total += sum(1 for i in range(w.shape[0]) if w[i, j] != 0)
        out.append(total)
    return out


@pytest.fixture
def mlp():
    rng = np.random.default_rng(7)
    g = mlp_graph(rng, sizes=(6, 5, 3))
    g.nodes["fc1"].weight[:, 2] = 0  # input 2 reaches nothing
    g.nodes["fc1"].weight[1, 4] = 0
    g.nodes["fc2"].weight[0, :] = 0
    return g, _records(rng, g)


def test_counts_equal_loops_over_records_and_weights(mlp):
    g, rec = mlp
    c = count_ops(g, rec)
    B, T = rec["in"].shape[:2]
    for layer, src in (("fc1", "in"), ("fc2", "lif1")):
        w = g.nodes[layer].weight
        expected = _loop_synops(rec[src], w)
        assert c[layer]["synops"].tolist() == expected
        assert c[layer]["synops_ac"].tolist() == expected  # binary input: accumulates
        assert c[layer]["synops_mac"].tolist() == [0] * B
        assert c[layer]["dense_ops"].tolist() == [w.shape[0] * w.shape[1] * T] * B  # all weights, every step
        assert c[layer]["dense_macs"].tolist() == [w.shape[0] * w.shape[1]] * B  # one ANN pass
        assert c[layer]["dense_ops_nonzero"].tolist() == [int(np.sum(w != 0)) * T] * B
    for pop, n in (("lif1", 5), ("lif2", 3)):
        spikes = [int(sum(1 for t in range(T) for i in range(n) if rec[pop][b, t, i])) for b in range(B)]
        assert c[pop]["neuron_updates"].tolist() == [n * T] * B
        assert c[pop]["neuron_updates_active"].tolist() == spikes
        assert c[pop]["neuron_updates_inactive"].tolist() == [n * T - s for s in spikes]
        np.testing.assert_allclose(c[pop]["activation_sparsity"], [1 - s / (n * T) for s in spikes])


def test_graded_input_counts_as_mac(mlp):
    g, rec = mlp
    rec = dict(rec, **{"in": rec["in"] * 0.5})  # graded, same zero pattern
    c = count_ops(g, rec)
    assert c["fc1"]["synops_ac"].tolist() == [0, 0, 0]
    assert c["fc1"]["synops_mac"].tolist() == _loop_synops(rec["in"], g.nodes["fc1"].weight)
    assert c["fc2"]["synops_mac"].tolist() == [0, 0, 0]  # lif1 still spikes


def test_linear_records_of_a_backend_are_ignored(mlp):
    g, rec = mlp
    noisy = dict(rec, fc1=np.full((3, 5, 5), 7.0), fc2=np.zeros((3, 5, 3)))  # norse records these; Lava does not
    assert counts_equal(count_ops(g, rec), count_ops(g, noisy))


def test_counts_differ_when_a_spike_differs(mlp):
    g, rec = mlp
    other = {k: v.copy() for k, v in rec.items()}
    other["lif1"][1, 2, 3] = 1 - other["lif1"][1, 2, 3]
    assert counts_equal(count_ops(g, rec), count_ops(g, {k: v.copy() for k, v in rec.items()}))
    assert not counts_equal(count_ops(g, rec), count_ops(g, other))


def test_missing_record_names_the_population(mlp):
    g, rec = mlp
    del rec["lif1"]
    with pytest.raises(InputError, match="lif1.*fc2"):
        count_ops(g, rec)


def _conv_graph(rng):
    conv = nir.Conv2d(
        input_shape=(4, 5),
        weight=rng.normal(0, 1, (2, 1, 3, 3)),
        stride=(1, 2),
        padding=(1, 1),
        dilation=1,
        groups=1,
        bias=np.zeros(2),
    )
    conv.weight[1, 0, 1, 1] = 0
    conv.input_type = {"input": np.array([1, 4, 5])}
    shape = tuple(int(v) for v in conv.output_type["output"])
    ones = np.ones(shape)
    nodes = {
        "in": nir.Input(input_type={"input": np.array([1, 4, 5])}),
        "conv": conv,
        "lif": nir.LIF(tau=1e-2 * ones, r=ones, v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones),
        "out": nir.Output(output_type={"output": np.array(shape)}),
    }
    return nir.NIRGraph(nodes=nodes, edges=[("in", "conv"), ("conv", "lif"), ("lif", "out")]), shape


def test_conv2d_synops_equal_loops_over_taps():
    rng = np.random.default_rng(3)
    g, (C, Ho, Wo) = _conv_graph(rng)
    x = bernoulli(rng, (2, 4, 1, 4, 5), 0.5)
    c = count_ops(g, {"in": x, "lif": np.zeros((2, 4, C, Ho, Wo))})
    w = g.nodes["conv"].weight
    fan = np.zeros((4, 5), dtype=int)  # taps with a non-zero weight that read input pixel (h, v)
    for co in range(C):
        for oh in range(Ho):
            for ow in range(Wo):
                for kh in range(3):
                    for kw in range(3):
                        h, v = oh * 1 - 1 + kh, ow * 2 - 1 + kw
                        if 0 <= h < 4 and 0 <= v < 5 and w[co, 0, kh, kw] != 0:
                            fan[h, v] += 1
    expected = [
        int(sum(fan[h, v] for t in range(4) for h in range(4) for v in range(5) if x[b, t, 0, h, v])) for b in range(2)
    ]
    assert c["conv"]["synops_ac"].tolist() == expected
    assert c["conv"]["dense_macs"].tolist() == [C * Ho * Wo * 9] * 2
    assert c["conv"]["dense_ops_nonzero"].tolist() == [int(fan.sum()) * 4] * 2


@pytest.mark.parametrize("target", sorted(p.stem for p in TARGETS.glob("*.toml") if p.stem != "loihi2"))
def test_energy_is_counts_times_toml_constants(mlp, target):
    g, rec = mlp
    c = count_ops(g, rec)
    with open(TARGETS / f"{target}.toml", "rb") as f:
        raw = tomllib.load(f)
    expected = 0.0
    for const in raw["energy"].values():
        assert "source" in const and "estimate" in const  # every constant says where it is from
        if "per" in const:
            expected += const["value"] * sum(float(np.mean(v[const["per"]])) for v in c.values() if const["per"] in v)
    e = energy_summary(c, load_target(target))
    assert np.isclose(e["energy_nj_per_sample"] * 1e3, expected, rtol=1e-12)
    assert np.isclose(sum(v["energy_pj_per_sample"] for v in e["per_node"].values()), expected, rtol=1e-12)
    assert e["estimate"] == any(k.get("estimate") for k in raw["energy"].values() if "per" in k)


def test_loihi_energy_by_hand(mlp):
    g, rec = mlp
    c = count_ops(g, rec)
    m = lambda k: sum(float(np.mean(v[k])) for v in c.values() if k in v)  # noqa: E731
    e = energy_summary(c, load_target("loihi"))
    hand = 23.6 * m("synops") + 52 * m("neuron_updates_inactive") + 81 * m("neuron_updates_active") + 1.7 * m("spikes")
    assert np.isclose(e["energy_nj_per_sample"] * 1e3, hand)
    ann = energy_summary(c, load_target("ann_fp32_45nm"))
    assert np.isclose(ann["energy_nj_per_sample"] * 1e3, 4.6 * (6 * 5 + 5 * 3))
    assert set(e["not_charged"]) == {"hop_east_west_pj", "hop_north_south_pj"}


def test_ops_summary_totals(mlp):
    g, rec = mlp
    c = count_ops(g, rec)
    s = ops_summary(c)
    for k in COUNT_KEYS:
        assert np.isclose(s["totals"][k], sum(float(np.mean(v[k])) for v in c.values() if k in v))
    zeros = sum(float(np.mean(c[p]["neuron_updates"] - c[p]["spikes"])) for p in ("lif1", "lif2"))
    assert np.isclose(s["activation_sparsity"], zeros / (5 * 5 + 3 * 5))


def test_loihi2_mapping_counts_cores():
    rng = np.random.default_rng(0)
    g = mlp_graph(rng, sizes=(100, 10000, 4))
    m = mapping_estimate(g, load_target("loihi2"))
    # 10000 neurons / 8192 per core -> 2; 1e6 8-bit synapses / 128 KiB -> 8 cores
    assert m["per_node"]["lif1"]["cores_by_neurons"] == 2
    assert m["per_node"]["lif1"]["cores"] == int(np.ceil(100 * 10000 / 131072)) == 8
    assert m["per_node"]["lif1"]["fan_in_exceeds_core_limit"] is False
    assert m["per_node"]["lif2"]["fan_in_exceeds_core_limit"] is True and m["estimate"] is True  # 10000 > 4096
    assert m["chips"] == int(np.ceil(m["cores"] / 128))


def test_bad_target_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[energy]\nx = { value = 1.0, per = "flops", source = "me" }\n')
    with pytest.raises(InputError, match="per is 'flops'"):
        load_target(str(bad))
    bad.write_text("[energy]\nx = { value = 1.0 }\n")
    with pytest.raises(InputError, match="'value' and 'source'"):
        load_target(str(bad))
    with pytest.raises(InputError, match="known targets: .*loihi"):
        load_target("nonesuch")


def test_every_energy_constant_has_a_grade_and_no_loihi2_per_op_figure():
    from snndeploy.energy.targets import GRADES

    for path in TARGETS.glob("*.toml"):
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        tables = [raw.get("energy", {})] + list(raw.get("regimes", {}).values())
        for table in tables:
            for key, const in table.items():
                assert const.get("grade") in GRADES, (path.name, key)
        if path.stem == "loihi2":  # no public per-operation energy exists for Loihi 2: never invent one
            assert not any("per" in c for c in raw.get("energy", {}).values())
            assert "regimes" not in raw


def test_energy_ranges_by_hand(mlp):
    """ANN fp32: low = arithmetic only (4.6 pJ per MAC), high = weights and activations in a 1 MB SRAM
    (+ 50 pJ per 32-bit word: half a 100 pJ 64-bit read) under the weight-stationary reuse model;
    Loihi: high adds 7 pJ (one hop each way) per spike. The SNN/ANN ratio range pairs the ends."""
    from snndeploy.energy.estimate import ratio_ranges

    g, rec = mlp
    c = count_ops(g, rec)
    m = lambda k: sum(float(np.mean(v[k])) for v in c.values() if k in v)  # noqa: E731
    macs = 6 * 5 + 5 * 3  # the mlp fixture: 6 -> 5 -> 3
    words = (6 * 5 + 5 * 3) + (6 + 5) + (5 + 3)  # weights once, inputs read once, outputs written once
    ann = energy_summary(c, load_target("ann_fp32_45nm"))
    assert ann["range"]["low"] == {"nj": pytest.approx(4.6 * macs / 1e3), "regime": "published constants"}
    assert ann["range"]["high"]["regime"] == "weights and activations in 1 MB SRAM"
    assert ann["range"]["high"]["nj"] == pytest.approx((4.6 * macs + 50.0 * words) / 1e3)
    snn = energy_summary(c, load_target("loihi"))
    assert snn["range"]["high"]["nj"] - snn["range"]["low"]["nj"] == pytest.approx(7.0 * m("spikes") / 1e3)
    (r,) = [r for r in ratio_ranges({"loihi": snn, "ann_fp32_45nm": ann}) if r["ann"] == "ann_fp32_45nm"]
    assert r["low"] == pytest.approx(snn["range"]["low"]["nj"] / ann["range"]["high"]["nj"])
    assert r["high"] == pytest.approx(snn["range"]["high"]["nj"] / ann["range"]["low"]["nj"])
    assert r["low"] < r["high"]


def test_a_target_constant_without_grade_is_refused(tmp_path):
    bad = tmp_path / "nograde.toml"
    bad.write_text('[energy]\nx = { value = 1.0, per = "synops", source = "me" }\n')
    with pytest.raises(InputError, match="grade is None; expected one of: measured silicon"):
        load_target(str(bad))
