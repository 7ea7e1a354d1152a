"""Random feed-forward graphs from the supported set: norse and lava-float agree spike for spike."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snndeploy.backends import get_backend

DT = 1e-3
GROUPS = 3  # distinct values of each Lava-scalar parameter per population (see _neuron)


def _neuron(kind, shape, rng):
    # The parameters that set Lava's per-process scalars (tau, tau_syn, v_threshold) take GROUPS
    # random values per population, scattered over its neurons: the lowering still splits each
    # population into interleaved groups, but into a few Lava processes rather than one per neuron
    # (one per neuron: up to ~600 forked Lava processes for one example, 14 GB; after the model
    # tests in the same session, the machine's 23 GB ran out). r and w_in (in the weights) stay per neuron.
    ones, pick = np.ones(shape), rng.integers(0, GROUPS, shape)
    per_group = lambda lo, hi: rng.uniform(lo, hi, GROUPS)[pick]  # noqa: E731
    if kind == "LIF":  # v_leak != v_reset exercises Lava's start-value drive
        return nir.LIF(
            tau=per_group(3e-3, 2e-2),
            r=rng.uniform(5, 15, shape),
            v_leak=0.2 * ones,
            v_threshold=ones,
            v_reset=0.0 * ones,
        )
    if kind == "IF":
        return nir.IF(r=ones, v_threshold=per_group(0.5, 1.5), v_reset=0.0 * ones)
    return nir.CubaLIF(
        tau_syn=per_group(2e-3, 5e-3),
        tau_mem=per_group(5e-3, 2e-2),
        r=rng.uniform(5, 15, shape),
        v_leak=0.0 * ones,
        v_threshold=ones,
        v_reset=0.0 * ones,
        w_in=rng.uniform(2, 5, shape),
    )


def _typed(node, i, o):
    node.input_type, node.output_type = {"input": np.array(i)}, {"output": np.array(o)}
    return node


@st.composite
def graphs(draw):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    C, H = draw(st.integers(1, 2)), draw(st.integers(5, 7))
    k1 = draw(st.sampled_from(["LIF", "IF", "CubaLIF"]))
    k2 = draw(st.sampled_from(["LIF", "IF", "CubaLIF"]))
    c1 = 2 * draw(st.integers(1, 2))
    stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    groups = draw(st.sampled_from([1, C]))
    pool = draw(st.sampled_from([None, "SumPool2d", "AvgPool2d"]))
    # Signed random weights left the reference silent in about 5 % of cases (every input into a
    # small population net inhibitory), and two silent networks agree trivially. So one path always
    # spikes: output channel 0 of the conv and unit 0 of n2 get excitatory weights only; the other
    # channels and units stay signed (and fc/skip are scaled by fan-in), so most cases keep neurons
    # between silent and saturated. Measured on 3000 cases with the reference: no population silent
    # in any sample; median spike rate n1 0.48, n2 0.44 (before: 0.25, 0.18 with 5 % / 7 % silent).
    w_conv = rng.normal(0, 1.0, (c1, C // groups, 3, 3))
    w_conv[0] = rng.uniform(0.2, 0.6, w_conv[0].shape)
    conv = nir.Conv2d(
        input_shape=(H, H),
        weight=w_conv,
        stride=stride,
        padding=pad,
        dilation=1,
        groups=groups,
        bias=rng.normal(0, 0.1, c1),
    )
    conv.input_type = {"input": np.array([C, H, H])}
    shape = tuple(int(v) for v in conv.output_type["output"])
    nodes = {"in": nir.Input(input_type={"input": np.array([C, H, H])}), "conv": conv}
    edges, prev = [("in", "conv")], "conv"
    if pool:
        o = (shape[0], (shape[1] - 2) // 2 + 1, (shape[2] - 2) // 2 + 1)
        nodes["pool"] = _typed(
            getattr(nir, pool)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            shape,
            o,
        )
        edges.append((prev, "pool"))
        prev, shape = "pool", o
    nodes["scale"] = nir.Scale(scale=rng.uniform(0.5, 2.0, shape))
    nodes["n1"] = _neuron(k1, shape, rng)
    edges += [(prev, "scale"), ("scale", "n1")]
    n = int(np.prod(shape))
    m = draw(st.integers(2, 6))
    nodes["flat"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
    w_fc, w_skip = rng.normal(0, 1.0, (m, n)), rng.normal(0, 0.5, (m, n))
    w_fc[0], w_skip[0] = rng.uniform(0.5, 1.5, n), rng.uniform(0.25, 0.75, n)  # unit 0 excitatory (above)
    w_fc, w_skip = w_fc / np.sqrt(n), w_skip / np.sqrt(n)  # fan-in scaling: n is 2 to 196
    nodes["fc"] = nir.Affine(weight=w_fc, bias=rng.normal(0, 0.1, m))
    nodes["skip"] = nir.Linear(weight=w_skip)  # a second edge into n2, summed
    nodes["n2"] = _neuron(k2, (m,), rng)
    nodes["out"] = nir.Output(output_type={"output": np.array([m])})
    edges += [("n1", "flat"), ("flat", "fc"), ("fc", "n2"), ("flat", "skip"), ("skip", "n2"), ("n2", "out")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    x = (rng.random((2, 15, C, H, H)) < 0.3).astype(np.float64)
    return g, x


def _assert_reference_spikes(g, x, ref):
    """Both spiking populations (and the output they feed) spike in every sample of the batch."""
    for n in ("n1", "n2", "out"):
        per_sample = ref.outputs[n].reshape(len(x), -1).sum(axis=1)
        assert (per_sample > 0).all(), (
            f"reference (norse) '{n}' ({type(g.nodes[n]).__name__}) is silent in a sample: "
            f"spikes per sample {per_sample.tolist()}"
        )


@pytest.mark.slow
@settings(derandomize=True, max_examples=100, deadline=None)
@given(graphs())
def test_generated_graphs_spike_in_the_reference(case):
    """The generator itself, over many more cases than the Lava comparison can afford: the reference
    (norse only, fast) spikes in both populations on every generated case."""
    g, x = case
    _assert_reference_spikes(g, x, get_backend("norse").run(g, x, DT))


@pytest.mark.lava
@pytest.mark.slow
@settings(derandomize=True, max_examples=5, deadline=None)
@given(graphs())
def test_random_feed_forward_graphs_norse_vs_lava_float(case):
    g, x = case
    ref = get_backend("norse").run(g, x, DT)
    _assert_reference_spikes(g, x, ref)  # two silent networks agree trivially
    lava = get_backend("lava-float").run(g, x, DT)
    for n in ("n1", "n2", "out"):
        agree = float((ref.outputs[n] == lava.outputs[n]).mean())
        assert agree >= 0.999, (n, agree)
