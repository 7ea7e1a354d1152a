"""Per-neuron time constants and thresholds (trained tau, snnTorch learn_beta, PLIF): one Lava process per
population on both Lava backends, whatever the parameters, and the mapping estimate counts the parameter sets."""

import nir
import numpy as np
import pytest

import snndeploy

DT = 1e-3
SIZES = (784, 512, 256, 10)


def per_neuron_mlp(seed: int = 0) -> nir.NIRGraph:
    """A 784-512-256-10 Affine/LIF MLP whose every neuron has its own tau (5-20 ms) and threshold (0.8-1.2)."""
    rng = np.random.default_rng(seed)
    nodes = {"in": nir.Input(input_type={"input": np.array([SIZES[0]])})}
    edges, prev = [], "in"
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        # mean drive ~ 3 thresholds at a 20 % input rate (every layer spikes at ~10-40 %)
        rate_in = 0.2
        w = rng.normal(3.0 / (rate_in * n_in), 1.0 / np.sqrt(n_in), size=(n_out, n_in))
        nodes[f"fc{i}"] = nir.Affine(weight=w, bias=rng.uniform(-0.05, 0.05, n_out))
        nodes[f"lif{i}"] = nir.LIF(
            tau=rng.uniform(5e-3, 20e-3, n_out),
            r=np.ones(n_out),
            v_leak=np.zeros(n_out),
            v_threshold=rng.uniform(0.8, 1.2, n_out),
            v_reset=np.zeros(n_out),
        )
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["out"] = nir.Output(output_type={"output": np.array([SIZES[-1]])})
    edges.append((prev, "out"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})


@pytest.mark.lava
@pytest.mark.slow
def test_per_neuron_mlp_runs_on_all_four_backends():
    g = per_neuron_mlp()
    rng = np.random.default_rng(1)
    x = (rng.random((2, 25, SIZES[0])) < 0.2).astype(np.float64)
    rep = snndeploy.compare(g, x, ["norse", "lava-float"])
    ref = snndeploy.run(g, x, "norse").outputs
    for i in range(3):  # the reference spikes in every layer, so agreement is not trivial
        rate = ref[f"lif{i}"].mean()
        assert 0.01 < rate < 0.6, (f"lif{i}", rate)
    assert rep.passed and rep.pairs[0]["spikes_equal"], rep.summary()
    info = rep.data["backends"]["lava-float"]["info"]
    # one process per population: source, 3 PopLIF, 3 Dense, the Output's recorder, 3 spike recorders,
    # the drive sources of populations with a bias... counted from the run, bounded by a small number
    assert info["processes"] < 20, info["processes"]
    fixed = snndeploy.run(g, x, "lava-fixed")
    emu = snndeploy.run(g, x, "loihi-emu")
    for node in ("lif0", "lif1", "lif2"):
        assert np.array_equal(fixed.outputs[node], emu.outputs[node]), node
        for var in ("u", "v"):
            assert np.array_equal(fixed.states[node][var], emu.states[node][var]), (node, var)
    assert fixed.outputs["lif2"].sum() > 0
    # the fixed-point runs follow the float ones closely (quantized tau and thresholds)
    assert np.mean(fixed.outputs["lif0"] == ref["lif0"]) > 0.95


def test_mapping_counts_parameter_sets():
    from snndeploy.energy.mapping import mapping_estimate
    from snndeploy.energy.targets import load_target

    m = mapping_estimate(per_neuron_mlp(), load_target("loihi2"))
    per = m["per_node"]
    assert [per[f"lif{i}"]["parameter_sets"] for i in range(3)] == [512, 256, 10]
    assert per["lif0"]["max_parameter_sets_per_core"] <= 512
    uniform = nir.NIRGraph.from_list(
        nir.Affine(weight=np.ones((4, 3)), bias=np.zeros(4)),
        nir.LIF(tau=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4), v_reset=np.zeros(4)),
    )
    (row,) = mapping_estimate(uniform, load_target("loihi2"))["per_node"].values()
    assert row["parameter_sets"] == 1 == row["max_parameter_sets_per_core"]
