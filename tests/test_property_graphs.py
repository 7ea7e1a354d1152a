"""Random feed-forward graphs from the supported set: norse and lava-float agree spike for spike."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from snndeploy.backends import get_backend

DT = 1e-3


def _neuron(kind, shape, rng):
    n, ones = int(np.prod(shape)), np.ones(shape)
    if kind == "LIF":  # v_leak != v_reset exercises Lava's start-value drive
        return nir.LIF(tau=rng.uniform(3e-3, 2e-2, shape), r=rng.uniform(5, 15, shape), v_leak=0.2 * ones,
                       v_threshold=ones, v_reset=0.0 * ones)
    if kind == "IF":
        return nir.IF(r=ones, v_threshold=rng.uniform(0.5, 1.5, shape), v_reset=0.0 * ones)
    return nir.CubaLIF(tau_syn=rng.uniform(2e-3, 5e-3, shape), tau_mem=rng.uniform(5e-3, 2e-2, shape),
                       r=rng.uniform(5, 15, shape), v_leak=0.0 * ones, v_threshold=ones, v_reset=0.0 * ones,
                       w_in=rng.uniform(2, 5, shape))


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
    conv = nir.Conv2d(input_shape=(H, H), weight=rng.normal(0, 1.0, (c1, C // groups, 3, 3)), stride=stride,
                      padding=pad, dilation=1, groups=groups, bias=rng.normal(0, 0.1, c1))
    conv.input_type = {"input": np.array([C, H, H])}
    shape = tuple(int(v) for v in conv.output_type["output"])
    nodes = {"in": nir.Input(input_type={"input": np.array([C, H, H])}), "conv": conv}
    edges, prev = [("in", "conv")], "conv"
    if pool:
        o = (shape[0], (shape[1] - 2) // 2 + 1, (shape[2] - 2) // 2 + 1)
        nodes["pool"] = _typed(getattr(nir, pool)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                  padding=np.array([0, 0])), shape, o)
        edges.append((prev, "pool"))
        prev, shape = "pool", o
    nodes["scale"] = nir.Scale(scale=rng.uniform(0.5, 2.0, shape))
    nodes["n1"] = _neuron(k1, shape, rng)
    edges += [(prev, "scale"), ("scale", "n1")]
    n = int(np.prod(shape))
    m = draw(st.integers(2, 6))
    nodes["flat"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
    nodes["fc"] = nir.Affine(weight=rng.normal(0, 1.0, (m, n)), bias=rng.normal(0, 0.1, m))
    nodes["skip"] = nir.Linear(weight=rng.normal(0, 0.5, (m, n)))  # a second edge into n2, summed
    nodes["n2"] = _neuron(k2, (m,), rng)
    nodes["out"] = nir.Output(output_type={"output": np.array([m])})
    edges += [("n1", "flat"), ("flat", "fc"), ("fc", "n2"), ("flat", "skip"), ("skip", "n2"), ("n2", "out")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    x = (rng.random((2, 15, C, H, H)) < 0.3).astype(np.float64)
    return g, x


@pytest.mark.lava
@pytest.mark.slow
@settings(derandomize=True, max_examples=5, deadline=None)
@given(graphs())
def test_random_feed_forward_graphs_norse_vs_lava_float(case):
    g, x = case
    ref = get_backend("norse").run(g, x, DT)
    lava = get_backend("lava-float").run(g, x, DT)
    for n in ("n1", "n2", "out"):
        agree = float((ref.outputs[n] == lava.outputs[n]).mean())
        assert agree >= 0.999, (n, agree)
