"""Each node type of the norse backend against an independent numpy computation of its documented equation."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from snndeploy.backends import get_backend
from snndeploy.errors import UnsupportedNodeError

DT = 1e-3


def _graph(in_shape, nodes, edges, out_shape):
    all_nodes = {
        "in": nir.Input(input_type={"input": np.array(in_shape)}),
        **nodes,
        "out": nir.Output(output_type={"output": np.array(out_shape)}),
    }
    return nir.NIRGraph(nodes=all_nodes, edges=edges, type_check=False)


def _typed(node, i, o):
    node.input_type, node.output_type = {"input": np.array(i)}, {"output": np.array(o)}
    return node


def _run(g, x):
    return get_backend("norse").run(g, x, DT).outputs


def _np_conv2d(x, w, b, stride, pad, dil, groups):
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    Ho = (H + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (W + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((B, O, Ho, Wo))
    og = O // groups
    for o in range(O):
        g = o // og
        for i in range(Ho):
            for j in range(Wo):
                for c in range(Cg):
                    for u in range(kh):
                        for v in range(kw):
                            y[:, o, i, j] += (
                                w[o, c, u, v]
                                * xp[:, g * Cg + c, i * stride[0] + u * dil[0], j * stride[1] + v * dil[1]]
                            )
        y[:, o] += b[o]
    return y


def _np_pool(x, k, s, p, avg):
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    Ho, Wo = (H + 2 * p[0] - k[0]) // s[0] + 1, (W + 2 * p[1] - k[1]) // s[1] + 1
    y = np.zeros((B, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            y[:, :, i, j] = xp[:, :, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]].sum(axis=(2, 3))
    return y / (k[0] * k[1]) if avg else y


@pytest.mark.parametrize("stride,pad,dil,groups", [((1, 1), (0, 0), (1, 1), 1), ((2, 1), (1, 2), (1, 2), 2)])
def test_conv2d(stride, pad, dil, groups):
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(4, 4 // groups, 3, 3)), rng.normal(size=4)  # square: nir infers the output from kh only
    x = rng.normal(size=(2, 3, 4, 7, 8))
    ref = _np_conv2d(x.reshape(6, 4, 7, 8), w, b, stride, pad, dil, groups)
    node = nir.Conv2d(input_shape=(7, 8), weight=w, stride=stride, padding=pad, dilation=dil, groups=groups, bias=b)
    node.input_type = {"input": np.array([4, 7, 8])}  # nir writes C_in/groups here
    oshape = tuple(node.output_type["output"])
    assert oshape == ref.shape[1:]
    out = _run(_graph((4, 7, 8), {"c": node}, [("in", "c"), ("c", "out")], oshape), x)
    np.testing.assert_allclose(out["c"].reshape(ref.shape), ref, atol=1e-12)


@pytest.mark.parametrize("kind", ["SumPool2d", "AvgPool2d"])
def test_pools(kind):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 2, 6, 7))
    k, s, p = (2, 3), (2, 2), (1, 0)
    ref = _np_pool(x.reshape(6, 2, 6, 7), k, s, p, kind == "AvgPool2d")
    node = _typed(
        getattr(nir, kind)(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p)), (2, 6, 7), ref.shape[1:]
    )
    out = _run(_graph((2, 6, 7), {"p": node}, [("in", "p"), ("p", "out")], ref.shape[1:]), x)
    np.testing.assert_allclose(out["p"].reshape(ref.shape), ref, atol=1e-12)


def test_scale_and_flatten():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 2, 3, 4))
    s = rng.normal(size=(2, 3, 4))
    nodes = {"s": nir.Scale(scale=s), "f": nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=1)}
    assert tuple(nodes["f"].output_type["output"]) == (2, 12)  # start_dim counts without batch
    out = _run(_graph((2, 3, 4), nodes, [("in", "s"), ("s", "f"), ("f", "out")], (2, 12)), x)
    np.testing.assert_allclose(out["s"], x * s)
    np.testing.assert_allclose(out["f"], (x * s).reshape(2, 3, 2, 12))


def _np_cuba(x, tau_syn, tau_mem, r, v_leak, w_in, v_th=None, v_reset=0.0):
    """I <- I + b(w_in S - I);  v <- v + a((v_leak - v) + r I);  spike v > v_th, reset."""
    a, b = DT / tau_mem, DT / tau_syn
    B, T, N = x.shape
    i, v = np.zeros((B, N)), np.broadcast_to(v_leak, (B, N)).copy()
    zs, vs = np.zeros((B, T, N)), np.zeros((B, T, N))
    for t in range(T):
        i = i + b * (w_in * x[:, t] - i)
        v = v + a * ((v_leak - v) + r * i)
        if v_th is not None:
            z = v > v_th
            v = np.where(z, v_reset, v)
            zs[:, t] = z
        vs[:, t] = v
    return zs, vs


@pytest.mark.parametrize("kind", ["CubaLIF", "CubaLI"])
def test_cuba_neurons(kind):
    rng = np.random.default_rng(4)
    N = 5
    x = (rng.random((2, 30, N)) < 0.4).astype(float)
    prm = dict(
        tau_syn=rng.uniform(2e-3, 5e-3, N),
        tau_mem=rng.uniform(5e-3, 2e-2, N),
        r=rng.uniform(1, 3, N),
        v_leak=rng.uniform(-0.1, 0.1, N),
        w_in=rng.uniform(1, 4, N),
    )
    if kind == "CubaLIF":
        node = nir.CubaLIF(**prm, v_threshold=np.full(N, 0.3), v_reset=np.zeros(N))
        zs, vs = _np_cuba(x, **prm, v_th=0.3, v_reset=0.0)
    else:
        node = nir.CubaLI(**prm)
        zs, vs = _np_cuba(x, **prm)
    res = get_backend("norse").run(_graph((N,), {"n": node}, [("in", "n"), ("n", "out")], (N,)), x, DT)
    np.testing.assert_allclose(res.states["n"]["v"], vs, atol=1e-12)
    if kind == "CubaLIF":
        assert zs.sum() > 0
        np.testing.assert_array_equal(res.outputs["n"], zs)
    else:
        np.testing.assert_allclose(res.outputs["n"], vs, atol=1e-12)


def test_several_edges_into_one_node_are_summed():
    rng = np.random.default_rng(5)
    w1, w2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    nodes = {
        "a": nir.Linear(weight=w1),
        "b": nir.Linear(weight=w2),
        "n": nir.IF(r=np.ones(3), v_threshold=np.full(3, 1e9), v_reset=np.zeros(3)),
    }
    g = _graph((4,), nodes, [("in", "a"), ("in", "b"), ("a", "n"), ("b", "n"), ("n", "out")], (3,))
    x = rng.normal(size=(2, 5, 4))
    res = get_backend("norse").run(g, x, DT)
    np.testing.assert_allclose(res.states["n"]["v"], np.cumsum(x @ (w1 + w2).T, axis=1), atol=1e-12)


@pytest.mark.parametrize("backend", ["norse", "lava-float"])
def test_unsupported_node_names_node_type_backend(backend):
    node = _typed(
        nir.Conv1d(
            input_shape=5, weight=np.ones((1, 1, 2)), stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(1)
        ),
        (1, 5),
        (1, 4),
    )
    g = _graph((1, 5), {"c1": node}, [("in", "c1"), ("c1", "out")], (1, 4))
    with pytest.raises(UnsupportedNodeError, match=rf"backend '{backend}' cannot run node 'c1' of type Conv1d"):
        get_backend(backend).run(g, np.zeros((1, 2, 1, 5)), DT)
