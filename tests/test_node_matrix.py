"""Node-type x backend matrix: every node class the installed ``nir`` defines, on every backend.

``PLACED`` is written by hand from the docs (docs/semantics.md, docs/conventions.md,
docs/fixed_point.md, README "Backends"), not copied from the code's supported sets:

- ``norse`` (the reference) runs every type the reference defines;
- ``lava-float`` runs everything but Delay ("Lava's DelayDense delays per synapse, but a chain
  of linear nodes is composed into one synapse process", docs/conventions.md);
- ``lava-fixed`` and ``loihi-emu`` run the linear chains (composed, then quantized) and the
  neurons whose float lowering has no current memory (LIF, IF, LI: ``du = 1``); they refuse
  Delay (docs/conventions.md) and Threshold (``dv = 1`` is ``dv = 4096``, not representable,
  docs/fixed_point.md "Traps"). The docs do not list the fixed-point neuron types; the rows for
  CubaLIF / CubaLI (a current decay ``du < 1``) and I (no leak, no threshold: an unbounded
  24-bit state) follow the refusal reasons in snndeploy/lower/fixed.py;
- ``Conv1d``: no backend, the reference defines no semantics for it.

A type that a newer ``nir`` adds fails :func:`test_every_nir_node_type_is_placed` until it is
placed here (and in the reference / lowering, or with a documented refusal).

Each "run" cell runs a tiny graph that exercises its type with seeded binary input spikes and
compares with the reference: ``lava-float`` equals ``norse`` (spikes exactly, graded values
within 1e-9); the fixed-point backends equal each other bit for bit. The reference must be
non-trivial (every recorded node spikes / is nonzero), so two silent networks cannot agree
trivially. Each "refused" cell checks the refusal names node, type, backend and a reason.
"""

from __future__ import annotations

import functools
import inspect
import re

import nir
import numpy as np
import pytest

from snndeploy.backends import BACKENDS, get_backend
from snndeploy.errors import UnsupportedNodeError
from snndeploy.ir.analysed import analyse

DT = 1e-3
BATCH, STEPS = 2, 20
SEED = 1234
FIXED = ("lava-fixed", "loihi-emu")
LAVA = ("lava-float", "lava-fixed", "loihi-emu")  # loihi-emu cells compare with lava-fixed, which runs Lava

R, X = "run", "refused"
ALL_RUN = {"norse": R, "lava-float": R, "lava-fixed": R, "loihi-emu": R, "brian2": R}
FLOAT_ONLY = {"norse": R, "lava-float": R, "lava-fixed": X, "loihi-emu": X, "brian2": R}

#: nir type name -> backend -> "run" | "refused" (by hand, from the docs; see the module docstring)
PLACED = {
    "Input": ALL_RUN,
    "Output": ALL_RUN,
    "Affine": ALL_RUN,
    "Linear": ALL_RUN,
    "Scale": ALL_RUN,
    "Conv2d": ALL_RUN,
    "SumPool2d": ALL_RUN,
    "AvgPool2d": ALL_RUN,
    "Flatten": ALL_RUN,
    "LIF": ALL_RUN,
    "IF": ALL_RUN,
    "LI": ALL_RUN,
    "CubaLIF": ALL_RUN,
    "CubaLI": ALL_RUN,
    "I": FLOAT_ONLY,
    "Threshold": FLOAT_ONLY,
    "Delay": {"norse": R, "lava-float": X, "lava-fixed": X, "loihi-emu": X, "brian2": X},
    "Conv1d": {"norse": X, "lava-float": X, "lava-fixed": X, "loihi-emu": X, "brian2": X},
}

_NOT_DEFINED = "defines no semantics"
_DELAY_DENSE = "Lava's DelayDense"
#: (type, backend) -> a phrase the refusal's reason must contain
REASONS = {
    **{("Conv1d", b): _NOT_DEFINED for b in ("norse", "lava-float", "lava-fixed", "loihi-emu", "brian2")},
    ("Delay", "brian2"): "synaptic delays",
    **{("Delay", b): _DELAY_DENSE for b in LAVA},
    **{("I", b): "never leaks or resets" for b in FIXED},
    **{("Threshold", b): "4096" for b in FIXED},
}


def nir_node_types():
    return {
        name
        for name, c in inspect.getmembers(nir, inspect.isclass)
        if issubclass(c, nir.NIRNode) and c not in (nir.NIRNode, nir.NIRGraph)
    }


# --------------------------------------------------------------------------- graph builders


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng([SEED, salt])


def _graph(in_shape, nodes, out_shape):
    """Input -> nodes (a chain, in dict order) -> Output."""
    all_nodes = {
        "in": nir.Input(input_type={"input": np.array(in_shape)}),
        **nodes,
        "out": nir.Output(output_type={"output": np.array(out_shape)}),
    }
    names = list(all_nodes)
    return nir.NIRGraph(nodes=all_nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)


def _typed(node, i, o):
    node.input_type, node.output_type = {"input": np.array(i)}, {"output": np.array(o)}
    return node


def _lif(shape, threshold=1.0, r=1.0):
    ones = np.ones(shape)
    return nir.LIF(tau=5e-3 * ones, r=r * ones, v_leak=0 * ones, v_threshold=threshold * ones, v_reset=0 * ones)


def _affine(rng, n_out, n_in, bias=0.1):
    return nir.Affine(weight=rng.uniform(1.0, 3.0, (n_out, n_in)), bias=np.full(n_out, bias))


def _conv2d(rng, c_in, c_out, k, in_hw):
    w = rng.uniform(0.5, 1.5, (c_out, c_in, k, k))
    node = nir.Conv2d(input_shape=in_hw, weight=w, stride=1, padding=0, dilation=1, groups=1, bias=np.full(c_out, 0.05))
    out_hw = tuple(s - k + 1 for s in in_hw)
    return _typed(node, (c_in, *in_hw), (c_out, *out_hw))


def g_base():
    """Input -> Affine -> LIF -> Output: exercises Input, Output, Affine and LIF."""
    rng = _rng(0)
    return _graph((4,), {"fc": _affine(rng, 3, 4), "lif": _lif(3)}, (3,))


def _vector_map(rng, node, n_out):
    """Input -> Affine -> LIF -> <map> -> Affine -> LIF -> Output."""
    nodes = {"fc1": _affine(rng, 4, 4), "lif1": _lif(4), "m": node, "fc2": _affine(rng, 3, n_out), "lif2": _lif(3)}
    return _graph((4,), nodes, (3,))


def g_linear():
    rng = _rng(1)
    return _vector_map(rng, nir.Linear(weight=rng.uniform(1.0, 3.0, (4, 4))), 4)


def g_scale():
    rng = _rng(2)
    return _vector_map(rng, nir.Scale(scale=rng.uniform(1.0, 3.0, 4)), 4)


def g_delay():
    return _vector_map(_rng(3), nir.Delay(delay=np.full(4, 2 * DT)), 4)  # 2 whole steps


def _image_pre(rng):
    """Input (1, 4, 4) -> Conv2d 1x1 -> LIF (1, 4, 4): a spiking image population."""
    return {"c0": _conv2d(rng, 1, 1, 1, (4, 4)), "lif1": _lif((1, 4, 4), threshold=0.5, r=3.0)}


def g_conv2d():
    rng = _rng(4)
    nodes = {**_image_pre(rng), "conv": _conv2d(rng, 1, 2, 3, (4, 4)), "lif2": _lif((2, 2, 2), threshold=0.5)}
    return _graph((1, 4, 4), nodes, (2, 2, 2))


def _pool(kind, salt):
    rng = _rng(salt)
    pool = _typed(
        getattr(nir, kind)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        (1, 4, 4),
        (1, 2, 2),
    )
    nodes = {**_image_pre(rng), "pool": pool, "lif2": _lif((1, 2, 2), threshold=0.5, r=4.0)}
    return _graph((1, 4, 4), nodes, (1, 2, 2))


def g_sumpool2d():
    return _pool("SumPool2d", 5)


def g_avgpool2d():
    return _pool("AvgPool2d", 6)


def g_flatten():
    rng = _rng(7)
    flat = nir.Flatten(input_type={"input": np.array([1, 4, 4])}, start_dim=0)
    _typed(flat, (1, 4, 4), (16,))
    nodes = {**_image_pre(rng), "flat": flat, "fc2": _affine(rng, 3, 16, bias=0.0), "lif2": _lif(3, threshold=4.0)}
    return _graph((1, 4, 4), nodes, (3,))


def _spiking(rng, node):
    """Input -> Affine -> <spiking neuron> -> Affine -> LIF -> Output (its spikes feed a synapse)."""
    nodes = {"fc1": _affine(rng, 3, 4), "n": node, "fc2": _affine(rng, 3, 3), "lif2": _lif(3)}
    return _graph((4,), nodes, (3,))


def _graded(rng, node):
    """Input -> Affine -> <graded neuron> -> Output (on Lava a graded output can only go to the Output)."""
    return _graph((4,), {"fc1": _affine(rng, 3, 4), "n": node}, (3,))


def g_if():
    ones = np.ones(3)
    return _spiking(_rng(8), nir.IF(r=ones, v_threshold=4.0 * ones, v_reset=0 * ones))


def g_li():
    ones = np.ones(3)
    return _graded(_rng(9), nir.LI(tau=5e-3 * ones, r=ones, v_leak=0 * ones))


def _cuba_prm():
    ones = np.ones(3)
    return dict(tau_syn=2e-3 * ones, tau_mem=5e-3 * ones, r=ones, v_leak=0 * ones, w_in=2 * ones)


def g_cubalif():
    ones = np.ones(3)
    return _spiking(_rng(10), nir.CubaLIF(**_cuba_prm(), v_threshold=1.5 * ones, v_reset=0 * ones))


def g_cubali():
    return _graded(_rng(11), nir.CubaLI(**_cuba_prm()))


def g_integrator():
    return _graded(_rng(12), nir.I(r=np.full(3, 0.5)))


def g_threshold():
    return _spiking(_rng(13), nir.Threshold(threshold=np.full(3, 3.5)))


def g_conv1d():
    node = nir.Conv1d(
        input_shape=5, weight=np.ones((1, 1, 2)), stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(1)
    )
    return _graph((1, 5), {"c1": _typed(node, (1, 5), (1, 4))}, (1, 4))


#: nir type name -> the graph that exercises it (Input and Output are in every graph; the base one stands for them)
GRAPHS = {
    "Input": g_base,
    "Output": g_base,
    "Affine": g_base,
    "LIF": g_base,
    "Linear": g_linear,
    "Scale": g_scale,
    "Conv2d": g_conv2d,
    "SumPool2d": g_sumpool2d,
    "AvgPool2d": g_avgpool2d,
    "Flatten": g_flatten,
    "IF": g_if,
    "LI": g_li,
    "CubaLIF": g_cubalif,
    "CubaLI": g_cubali,
    "I": g_integrator,
    "Threshold": g_threshold,
    "Delay": g_delay,
    "Conv1d": g_conv1d,
}


def _spikes(graph) -> np.ndarray:
    shape = tuple(int(s) for s in graph.nodes["in"].input_type["input"])
    return (np.random.default_rng(SEED).random((BATCH, STEPS, *shape)) < 0.4).astype(np.float64)


def _nodes_of_type(graph, type_name):
    return [n for n, node in graph.nodes.items() if type(node).__name__ == type_name]


@functools.cache
def _result(builder, backend):
    """One run per (graph, backend) for the whole module: the Lava runs are the slow part."""
    g = builder()
    return get_backend(backend).run(g, _spikes(g), DT)


# --------------------------------------------------------------------------- the table


def test_every_nir_node_type_is_placed():
    defined, placed = nir_node_types(), set(PLACED)
    assert defined, "found no node classes in nir"
    problems = [
        f"nir defines node type {t} that snndeploy has not placed: add it to the reference / lowering, "
        f"or document its refusal, then add it to PLACED in tests/test_node_matrix.py"
        for t in sorted(defined - placed)
    ]
    problems += [
        f"PLACED lists node type {t}, which the installed nir ({nir.__version__}) does not define"
        for t in sorted(placed - defined)
    ]
    assert not problems, "\n".join(problems)


def test_table_covers_every_backend_and_has_a_graph_per_type():
    for t, row in PLACED.items():
        assert set(row) == set(BACKENDS), f"{t}: backends {sorted(row)} != {sorted(BACKENDS)}"
        assert set(row.values()) <= {R, X}, f"{t}: {row}"
    assert set(GRAPHS) == set(PLACED)
    refused = {(t, b) for t, row in PLACED.items() for b, c in row.items() if c == X}
    assert set(REASONS) == refused


CELLS = [(t, b) for t in PLACED for b in BACKENDS]


@pytest.mark.parametrize("type_name,backend", CELLS, ids=[f"{t}-{b}" for t, b in CELLS])
def test_supports_matches_table(type_name, backend):
    runs = type_name in get_backend(backend).supports
    assert runs == (PLACED[type_name][backend] == R), (
        f"{backend}.supports {'contains' if runs else 'lacks'} {type_name}, "
        f"but PLACED says '{PLACED[type_name][backend]}'"
    )


@pytest.mark.parametrize("type_name", list(GRAPHS))
def test_graph_exercises_its_type(type_name):
    g = GRAPHS[type_name]()
    assert _nodes_of_type(g, type_name), f"the graph for {type_name} holds no {type_name} node"


# --------------------------------------------------------------------------- run cells


def _cell_params(kind):
    params = []
    for t, row in PLACED.items():
        for b, c in row.items():
            if c != kind:
                continue
            marks = [pytest.mark.lava, pytest.mark.slow] if (kind == R and b in LAVA) else []
            params.append(pytest.param(t, b, marks=marks, id=f"{t}-{b}"))
    return params


def _check_shapes(res, ag):
    for n, out in res.outputs.items():
        assert n in ag.nodes, f"{res.backend} recorded unknown node '{n}'"
        assert out.shape == (BATCH, STEPS, *ag.shape(n)), f"{res.backend}: node '{n}' has shape {out.shape}"
    assert ag.output_node in res.outputs, f"{res.backend} did not record the Output"


def _is_spike_record(ag, n):
    """Input spikes, a spiking neuron, or an Output recording one."""
    if n == ag.input_node or ag.nodes[n].is_spiking:
        return True
    preds = ag.preds(n)
    return n == ag.output_node and len(preds) == 1 and ag.nodes[preds[0]].is_spiking


def _check_reference_nontrivial(ref, ag):
    for n, out in ref.outputs.items():
        assert np.any(out != 0), f"norse: node '{n}' ({ag.type_name(n)}) is silent / zero: the cell tests nothing"
        if _is_spike_record(ag, n):
            assert set(np.unique(out)) <= {0.0, 1.0}, f"norse: node '{n}' spikes are not 0/1"
            if ag.nodes[n].is_spiking:
                assert out.sum() < out.size, f"norse: node '{n}' fires on every step: saturated, choose weaker weights"


@pytest.mark.parametrize("type_name,backend", _cell_params(R))
def test_run_cell(type_name, backend):
    builder = GRAPHS[type_name]
    g = builder()
    ag = analyse(g)
    under_test = _nodes_of_type(g, type_name)
    assert under_test, f"the graph for {type_name} holds no {type_name} node"
    get_backend(backend).check(g, DT)  # raises nothing for a supported cell

    ref = _result(builder, "norse")
    _check_shapes(ref, ag)
    assert set(ref.outputs) == set(ag.nodes), "norse records every node"
    _check_reference_nontrivial(ref, ag)
    if type_name == "Delay":  # the reference's Delay really shifts by 2 steps
        d = under_test[0]
        src = ag.preds(d)[0]
        np.testing.assert_array_equal(ref.outputs[d][:, 2:], ref.outputs[src][:, :-2])
        np.testing.assert_array_equal(ref.outputs[d][:, :2], 0)

    if backend == "norse":
        return
    res = _result(builder, backend)
    assert res.backend == backend
    _check_shapes(res, ag)

    if backend in ("lava-float", "brian2"):
        common = set(res.outputs) & set(ref.outputs)
        must = {ag.input_node, ag.output_node, *ag.neurons}
        assert must <= common, f"{backend} did not record {sorted(must - common)}"
        for n in sorted(common):
            if _is_spike_record(ag, n):
                np.testing.assert_array_equal(res.outputs[n], ref.outputs[n], err_msg=f"spikes of '{n}'")
            else:
                np.testing.assert_allclose(res.outputs[n], ref.outputs[n], atol=1e-9, rtol=0, err_msg=f"'{n}'")
        return

    # fixed point: not equal to float; lava-fixed and loihi-emu must be bit-identical
    lava, emu = _result(builder, "lava-fixed"), _result(builder, "loihi-emu")
    assert set(lava.outputs) == set(emu.outputs)
    assert {ag.input_node, ag.output_node, *ag.spiking_nodes} <= set(lava.outputs)
    for n in sorted(lava.outputs):
        np.testing.assert_array_equal(lava.outputs[n], emu.outputs[n], err_msg=f"output of '{n}'")
        assert np.any(lava.outputs[n] != 0), f"lava-fixed: node '{n}' is silent / zero"
    assert set(lava.states) == set(emu.states)
    for n in sorted(lava.states):
        assert set(lava.states[n]) == set(emu.states[n])
        for k in lava.states[n]:
            np.testing.assert_array_equal(lava.states[n][k], emu.states[n][k], err_msg=f"state {k} of '{n}'")


# --------------------------------------------------------------------------- refused cells


@pytest.mark.parametrize("type_name,backend", _cell_params(X))
def test_refused_cell(type_name, backend):
    g = GRAPHS[type_name]()
    nodes = _nodes_of_type(g, type_name)
    assert nodes, f"the graph for {type_name} holds no {type_name} node"
    b = get_backend(backend)
    with pytest.raises(UnsupportedNodeError) as info:
        b.check(g, DT)
    e = info.value
    assert (e.backend, e.node_type) == (backend, type_name)
    assert e.node in nodes, f"refusal names node '{e.node}', not one of the {type_name} nodes {nodes}"
    msg = str(e)
    m = re.search(
        rf"backend '{re.escape(backend)}' cannot run node '{re.escape(e.node)}' of type {type_name}: "
        r"(.+)\. Supported node types: ",
        msg,
    )
    assert m, f"refusal does not name backend, node, type and a reason: {msg}"
    assert REASONS[(type_name, backend)] in m.group(1), f"reason lacks '{REASONS[(type_name, backend)]}': {msg}"
    with pytest.raises(UnsupportedNodeError) as info_run:
        b.run(g, _spikes(g), DT)
    assert (info_run.value.node, info_run.value.node_type) == (e.node, type_name)
