"""Integrator (NIR ``I``), Threshold and Delay: norse against independent numpy of the documented
equation (docs/conventions.md), lava-float against norse, and Delay's refusals."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from snndeploy.backends import get_backend
from snndeploy.errors import GraphError, UnsupportedNodeError

DT = 1e-3


def _graph(in_shape, nodes, edges, out_shape):
    all_nodes = {
        "in": nir.Input(input_type={"input": np.array(in_shape)}),
        **nodes,
        "out": nir.Output(output_type={"output": np.array(out_shape)}),
    }
    return nir.NIRGraph(nodes=all_nodes, edges=edges, type_check=False)


def _chain(in_shape, nodes, out_shape):
    names = ["in", *nodes, "out"]
    return _graph(in_shape, nodes, list(zip(names[:-1], names[1:])), out_shape)


def _norse(g, x):
    return get_backend("norse").run(g, x, DT)


# --------------------------------------------------------------------------- norse vs numpy


def test_integrator_norse():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.5, 2.0, size=(2, 3))
    x = rng.normal(size=(3, 12, 2, 3))
    res = _norse(_chain((2, 3), {"i": nir.I(r=r)}, (2, 3)), x)
    v, ref = np.zeros((3, 2, 3)), np.zeros_like(x)
    for t in range(x.shape[1]):
        v = v + r * x[:, t]  # v <- v + r I, initial 0, no dt
        ref[:, t] = v
    np.testing.assert_allclose(res.outputs["i"], ref, atol=1e-12)
    np.testing.assert_allclose(res.states["i"]["v"], ref, atol=1e-12)


def test_threshold_norse_is_strict():
    th = np.array([0.0, 0.5, -0.25, 1.0])
    x = np.array([0.0, 0.5, -0.25, 1.0])[None, None] + np.array([-1e-3, 0.0, 1e-3])[None, :, None]  # (1, 3, 4)
    x = np.concatenate([x, np.random.default_rng(1).normal(size=(1, 3, 4))], axis=1)
    res = _norse(_chain((4,), {"th": nir.Threshold(threshold=th)}, (4,)), x)
    ref = (x > th).astype(float)  # z = heaviside(I - threshold), strict: I == threshold gives 0
    assert ref[0, 1].sum() == 0 and ref.sum() > 0
    np.testing.assert_array_equal(res.outputs["th"], ref)


def test_delay_norse_per_element_ring_buffer():
    rng = np.random.default_rng(2)
    steps = np.array([[0, 1, 3], [5, 2, 1]])
    x = rng.normal(size=(2, 9, 2, 3))
    res = _norse(_chain((2, 3), {"d": nir.Delay(delay=steps * DT)}, (2, 3)), x)
    ref = np.zeros_like(x)
    for t in range(x.shape[1]):
        for idx in np.ndindex(steps.shape):
            k = steps[idx]
            if t >= k:
                ref[(slice(None), t) + idx] = x[(slice(None), t - k) + idx]  # y(t) = x(t - k), 0 before
    np.testing.assert_array_equal(res.outputs["d"], ref)


def test_delay_in_a_chain_delays_spikes():
    """Linear -> Delay -> IF: the IF integrates the input k steps late."""
    rng = np.random.default_rng(3)
    w, k = rng.normal(size=(3, 4)), 4
    nodes = {
        "fc": nir.Linear(weight=w),
        "d": nir.Delay(delay=np.full(3, k * DT)),
        "n": nir.IF(r=np.ones(3), v_threshold=np.full(3, 1e9), v_reset=np.zeros(3)),
    }
    x = rng.normal(size=(2, 10, 4))
    res = _norse(_chain((4,), nodes, (3,)), x)
    cur = np.concatenate([np.zeros((2, k, 3)), (x @ w.T)[:, :-k]], axis=1)
    np.testing.assert_allclose(res.states["n"]["v"], np.cumsum(cur, axis=1), atol=1e-12)


@pytest.mark.parametrize("delay", [1.5e-3, 2.5e-4])
def test_delay_not_whole_steps_is_refused_named(delay):
    g = _chain((2,), {"dly": nir.Delay(delay=np.array([1e-3, delay]))}, (2,))
    with pytest.raises(GraphError, match=rf"node 'dly' \(Delay\) field 'delay' is {delay} s at element 1"):
        _norse(g, np.zeros((1, 3, 2)))


def test_delay_within_tolerance_is_accepted():
    g = _chain((1,), {"d": nir.Delay(delay=np.array([2e-3 * (1 + 1e-9)]))}, (1,))
    x = np.arange(5.0).reshape(1, 5, 1)
    np.testing.assert_array_equal(_norse(g, x).outputs["d"][0, :, 0], [0, 0, 0, 1, 2])


def test_negative_delay_is_refused():
    g = _chain((1,), {"d": nir.Delay(delay=np.array([-1e-3]))}, (1,))
    with pytest.raises(GraphError, match=r"node 'd' \(Delay\) field 'delay' must be >= 0"):
        _norse(g, np.zeros((1, 3, 1)))


# --------------------------------------------------------------------------- lava-float


def test_delay_refused_on_lava_float_named():
    g = _chain((2,), {"dly": nir.Delay(delay=np.full(2, DT))}, (2,))
    with pytest.raises(
        UnsupportedNodeError,
        match=r"backend 'lava-float' cannot run node 'dly' of type Delay: "
        r"Lava's DelayDense delays per synapse",
    ):
        get_backend("lava-float").run(g, np.zeros((1, 3, 2)), DT)


@pytest.mark.parametrize("backend", ["lava-fixed", "loihi-emu"])
def test_fixed_point_refuses_new_types(backend):
    for node in (nir.I(r=np.ones(2)), nir.Threshold(threshold=np.zeros(2))):
        g = _chain((2,), {"x": node}, (2,))
        with pytest.raises(UnsupportedNodeError, match=rf"backend '{backend}' cannot run node 'x'"):
            get_backend(backend).run(g, np.zeros((1, 3, 2)), DT)


def test_integrator_output_cannot_feed_a_synapse_on_lava():
    from snndeploy.lower.plan import FLOAT_SUPPORTED, build_plan

    nodes = {"i": nir.I(r=np.ones(2)), "fc": nir.Linear(weight=np.eye(2))}
    with pytest.raises(UnsupportedNodeError, match=r"node 'i' of type I: its graded output feeds 'fc'"):
        build_plan(_chain((2,), nodes, (2,)), DT, "lava-float", supported=FLOAT_SUPPORTED, drives=True)


@pytest.mark.lava
@pytest.mark.slow
def test_threshold_and_integrator_lava_float_equal_norse():
    """Affine -> Threshold -> Affine (bias folded) -> I -> Output: spikes of the Threshold feed a synapse."""
    rng = np.random.default_rng(5)
    w1, b1 = rng.normal(size=(5, 4)), rng.normal(scale=0.3, size=5)
    w2, b2 = rng.normal(size=(3, 5)), rng.normal(scale=0.3, size=3)
    nodes = {
        "fc1": nir.Affine(weight=w1, bias=b1),
        "th": nir.Threshold(threshold=rng.uniform(-0.5, 0.5, 5)),
        "fc2": nir.Affine(weight=w2, bias=b2),
        "i": nir.I(r=rng.uniform(0.5, 2.0, 3)),
    }
    g = _chain((4,), nodes, (3,))
    x = (rng.random((2, 15, 4)) < 0.4).astype(float)
    ref, got = _norse(g, x).outputs, get_backend("lava-float").run(g, x, DT).outputs
    assert 0 < ref["th"].sum() < ref["th"].size
    np.testing.assert_array_equal(got["th"], ref["th"])
    np.testing.assert_allclose(got["i"], ref["i"], atol=1e-9)
    np.testing.assert_allclose(got["out"], ref["out"], atol=1e-9)


@pytest.mark.lava
@pytest.mark.slow
def test_threshold_lava_float_forgets_v():
    """A drive just above threshold every step fires every step: no memory, reset irrelevant;
    one far below never fires (v does not accumulate)."""
    th = np.array([0.2, 0.2, 5.0])
    nodes = {"fc": nir.Affine(weight=np.eye(3), bias=np.array([0.0, 0.21, 0.0])), "th": nir.Threshold(threshold=th)}
    g = _chain((3,), nodes, (3,))
    x = np.zeros((1, 12, 3))
    x[0, :, 0] = 0.3  # above threshold every step
    x[0, :, 2] = 1.0  # sum would cross 5 after 6 steps if v integrated
    ref, got = _norse(g, x).outputs, get_backend("lava-float").run(g, x, DT).outputs
    np.testing.assert_array_equal(ref["th"][0], np.tile([1.0, 1.0, 0.0], (12, 1)))
    np.testing.assert_array_equal(got["th"], ref["th"])
