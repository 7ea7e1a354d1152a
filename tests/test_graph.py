"""Loading, validation, dt and input checks: the errors name what and where."""

import nir
import numpy as np
import pytest
from helpers import mlp_graph

from snndeploy.backends import get_backend
from snndeploy.errors import GraphError, InputError, UnsupportedNodeError
from snndeploy.ir import graph as G


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        G.load_graph(tmp_path / "nope.nir")


def test_not_a_nir_file(tmp_path):
    p = tmp_path / "x.nir"
    p.write_text("hello")
    with pytest.raises(GraphError, match="not a NIR file"):
        G.load_graph(p)


def test_conformance_graph_loads_with_type_check(paper):
    g = G.load_graph(paper / "lif_norse.nir")
    assert set(g.nodes) == {"input", "0", "1", "output"}
    assert G.topological_order(g)[0] == "input"


def test_missing_dt_is_an_error(paper):
    g = G.load_graph(paper / "lif_norse.nir")
    with pytest.raises(InputError, match="carries no dt.*--dt"):
        G.graph_dt(g, None)
    assert G.graph_dt(g, 1e-4) == 1e-4


def test_dt_conflict_and_metadata(rng=np.random.default_rng(0)):
    g = mlp_graph(rng, dt_meta=1e-3)
    assert G.graph_dt(g, None) == 1e-3
    with pytest.raises(InputError, match="contradicts"):
        G.graph_dt(g, 1e-4)
    with pytest.raises(InputError, match="positive"):
        G.graph_dt(g, -1.0)


def test_input_shape_mismatch_names_shapes():
    g = mlp_graph(np.random.default_rng(1))
    with pytest.raises(InputError, match=r"expects per step \(6,\)"):
        G.check_input(g, np.zeros((2, 5, 7)))
    with pytest.raises(InputError, match="expected"):
        G.check_input(g, np.zeros((2, 6)))
    assert G.check_input(g, np.zeros((2, 5, 2, 3))).shape == (2, 5, 6)


@pytest.mark.parametrize("backend", ["norse", "lava-float"])
def test_unsupported_node_is_named(backend):
    c1 = nir.Conv1d(
        input_shape=3, weight=np.ones((1, 1, 1)), stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(1)
    )  # a type neither backend runs (Threshold now runs on both)
    c1.input_type, c1.output_type = {"input": np.array([1, 3])}, {"output": np.array([1, 3])}
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([1, 3])}),
            "c1": c1,
            "out": nir.Output(output_type={"output": np.array([1, 3])}),
        },
        edges=[("in", "c1"), ("c1", "out")],
        type_check=False,
    )
    with pytest.raises(UnsupportedNodeError) as e:
        get_backend(backend).run(g, np.zeros((1, 4, 1, 3)), 1e-3)
    msg = str(e.value)
    assert "'c1'" in msg and "Conv1d" in msg and backend in msg and "Supported node types" in msg and "LIF" in msg


def test_non_finite_parameter_is_named(tmp_path):
    g = mlp_graph(np.random.default_rng(2))
    g.nodes["fc1"].weight[0, 0] = np.nan
    with pytest.raises(GraphError, match=r"'fc1'.*'weight'"):
        G.validate_graph(g)


def test_cycle_is_refused_naming_nodes():
    g = mlp_graph(np.random.default_rng(3))
    g.edges.append(("lif1", "fc1"))
    with pytest.raises(GraphError, match="recurrent cycle"):
        G.topological_order(g)
