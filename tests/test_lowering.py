"""Each lowering function against the NIR equation, written out independently in numpy."""

import nir
import numpy as np
import pytest
from helpers import mlp_graph

from snndeploy.errors import GraphError, UnsupportedNodeError
from snndeploy.lower.neurons import PlanFor, lower_if, lower_li, lower_lif
from snndeploy.lower.plan import FLOAT_SUPPORTED, build_plan
from snndeploy.reference.neurons import if_params, li_params, lif_params

DT = 1e-3


def lava_float_step(nl, v_lava, current):
    """Lava's floating-point LIF update (lava/proc/lif/models.py) on lowered parameters, du = 1."""
    u = nl.input_scale * current  # Dense weights carry the input scale
    v = v_lava * (1 - nl.dv) + u + nl.bias
    s = v > nl.vth
    return s, np.where(s, 0.0, v)


@pytest.mark.parametrize("seed", range(3))
def test_lif_lowering_matches_nir_equation(seed):
    rng = np.random.default_rng(seed)
    n = 50
    node = nir.LIF(
        tau=rng.uniform(2e-3, 5e-2, n),
        r=rng.uniform(0.2, 3, n),
        v_leak=np.full(n, 0.3),
        v_threshold=rng.uniform(0.5, 1.5, n),
        v_reset=np.full(n, 0.3),
    )
    nl = lower_lif(lif_params("lif", node), DT, PlanFor("test", FLOAT_SUPPORTED))
    v = rng.uniform(-1, 1.5, n)
    i = rng.normal(0, 2, n)
    # NIR, forward Euler: v <- v + dt/tau ((v_leak - v) + r I); spike if v > thr; reset to v_reset
    v_nir = v + DT / node.tau * ((node.v_leak - v) + node.r * i)
    s_nir = v_nir > node.v_threshold
    v_nir = np.where(s_nir, node.v_reset, v_nir)
    s, v_l = lava_float_step(nl, v - nl.v_offset, i)
    np.testing.assert_array_equal(s, s_nir)
    np.testing.assert_allclose(v_l + nl.v_offset, v_nir, rtol=0, atol=1e-12)
    assert np.all(nl.du == 1.0)


def test_if_lowering_matches_nir_equation():
    rng = np.random.default_rng(5)
    n = 40
    node = nir.IF(r=rng.uniform(0.5, 2, n), v_threshold=rng.uniform(0.5, 1, n), v_reset=np.full(n, -0.2))
    nl = lower_if(if_params("if", node), DT, PlanFor("test", FLOAT_SUPPORTED))
    v, i = rng.uniform(-1, 1, n), rng.normal(0, 1, n)
    v_nir = v + node.r * i  # IF: one step integrates one input, no dt
    s_nir = v_nir > node.v_threshold
    v_nir = np.where(s_nir, node.v_reset, v_nir)
    s, v_l = lava_float_step(nl, v - nl.v_offset, i)
    np.testing.assert_array_equal(s, s_nir)
    np.testing.assert_allclose(v_l + nl.v_offset, v_nir, atol=1e-12)


def test_li_lowering_matches_nir_equation():
    rng = np.random.default_rng(6)
    n = 30
    node = nir.LI(tau=rng.uniform(5e-3, 2e-2, n), r=rng.uniform(0.5, 2, n), v_leak=rng.normal(0, 0.5, n))
    nl = lower_li(li_params("li", node), DT, PlanFor("test", FLOAT_SUPPORTED))
    v, i = rng.uniform(-1, 1, n), rng.normal(0, 5, n)
    v_nir = v + DT / node.tau * ((node.v_leak - v) + node.r * i)
    s, v_l = lava_float_step(nl, v - nl.v_offset, i)
    assert not s.any()
    np.testing.assert_allclose(v_l + nl.v_offset, v_nir, atol=1e-12)


def test_lif_with_v_leak_unequal_v_reset_is_refused_with_reason():
    node = nir.LIF(
        tau=np.full(2, 1e-2), r=np.ones(2), v_leak=np.array([0.0, 0.1]), v_threshold=np.ones(2), v_reset=np.zeros(2)
    )
    with pytest.raises(UnsupportedNodeError, match="v_leak .* differs from v_reset"):
        lower_lif(lif_params("lif", node), DT, PlanFor("lava-float", FLOAT_SUPPORTED))


def test_plan_folds_affine_bias_and_counts_depth():
    rng = np.random.default_rng(7)
    g = mlp_graph(rng, sizes=(4, 3, 2))
    plan = build_plan(g, DT, PlanFor("lava-float", FLOAT_SUPPORTED))
    assert {k: plan.topology.depth[k] for k in ("in", "lif1", "lif2")} == {"in": 0, "lif1": 1, "lif2": 2}
    fc1, lif1 = g.nodes["fc1"], g.nodes["lif1"]
    a = DT / lif1.tau * lif1.r
    conn = next(c for c in plan.conns if c.dst == "lif1")
    np.testing.assert_allclose(conn.weight, a[:, None] * fc1.weight)
    np.testing.assert_allclose(plan.neurons["lif1"].bias, a * fc1.bias)
    assert conn.via == "fc1"


def test_unequal_path_depths_are_refused():
    rng = np.random.default_rng(8)
    g = mlp_graph(rng, sizes=(3, 3, 3))
    g.nodes["skip"] = nir.Linear(weight=np.eye(3))
    g.edges += [("in", "skip"), ("skip", "lif2")]
    with pytest.raises(GraphError, match="paths with"):
        build_plan(g, DT, PlanFor("lava-float", FLOAT_SUPPORTED))
