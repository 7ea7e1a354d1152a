"""Lowering NIR to Lava's LIF/Dense equations, as a plan of plain numpy arrays.

No Lava import here: this is the mathematics of the lowering, shared by every
Lava backend (``lava-float`` runs the plan as it is; a fixed-point backend
quantizes it first). One lowering function per NIR node type.

Lava's float LIF (``lava.proc.lif.models.AbstractPyLifModelFloat``) computes per step::

    u <- u * (1 - du) + a_in
    v <- v * (1 - dv) + u + bias
    s  = v > vth ;  v <- 0 where s

We match NIR's forward-Euler LIF ``v <- v + a*((v_leak - v) + r*I)`` with
``a = dt/tau`` by working in shifted units ``v' = v - v_reset`` and choosing::

    du = 1                       (u carries no memory: u = a_in)
    dv = a
    a_in = (a*r) * I             (folded into the Dense weights, row-wise)
    bias = a*(v_leak - v_reset) + (a*r) * b   (b: the Affine bias)
    vth  = v_threshold - v_reset

so that ``v'_new = (1-a) v' + a (v_leak - v_reset) + a r I`` — the NIR update
subtracted by v_reset — and Lava's reset to 0 is NIR's reset to v_reset.
IF is the same with ``a`` replaced by 1 in the input scale and ``dv = 0``; LI is
LIF shifted by v_leak with an infinite threshold.

Delays: a Lava ``Dense`` sends at step s what it received at step s-1, so a
node reached through k Dense processes lags the NIR timeline by k steps. The
plan records that depth per node; every path into a node must have the same
depth (NIR's Affine/Linear are instantaneous).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import graph as G
from ..errors import GraphError, UnsupportedNodeError
from ..nodes import NeuronParams, SynapseParams, params_of

SUPPORTED = frozenset({"Input", "Output", "Affine", "Linear", "LIF", "IF", "LI"})


@dataclass(frozen=True, eq=False)
class NeuronLowering:
    """A neuron population in Lava's units; all arrays flattened to (N,)."""

    node: str
    kind: str
    shape: Tuple[int, ...]
    input_scale: np.ndarray  # multiplies every incoming current (folded into weights)
    du: np.ndarray
    dv: np.ndarray
    vth: np.ndarray  # +inf for LI
    bias: np.ndarray  # per step, Lava units (Affine biases are added when wired)
    v_offset: np.ndarray  # NIR v = Lava v + v_offset
    spiking: bool

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class Conn:
    """One synaptic projection ``dst.a_in += weight @ src.out``; weight is (N_dst, N_src)."""

    src: str  # the Input node or a spiking neuron node
    dst: str  # a neuron node, or the Output node (then it is recorded, bias added on the host)
    weight: np.ndarray
    graded: bool  # True when the source sends graded values (non-binary input)
    via: Optional[str] = None  # the NIR Affine/Linear it lowers, or None for an identity edge


@dataclass(frozen=True, eq=False)
class LavaPlan:
    input_node: str
    input_shape: Tuple[int, ...]
    neurons: Dict[str, NeuronLowering]
    conns: List[Conn]
    depth: Dict[str, int]  # Lava steps behind the NIR timeline, per recorded node
    output_node: str
    output_from: str  # neuron node whose spikes/voltage are the output, or the Output node itself
    output_bias: Optional[np.ndarray] = None  # Affine bias added on the host for a synapse -> Output
    output_shape: Tuple[int, ...] = ()

    @property
    def max_depth(self) -> int:
        return max(self.depth.values())


# --------------------------------------------------------------------------- per node type


def lower_lif(p: NeuronParams, dt: float, backend: str) -> NeuronLowering:
    if np.any(p.v_leak != p.v_reset):
        i = int(np.argmax((p.v_leak != p.v_reset).reshape(-1)))
        raise UnsupportedNodeError(
            backend, p.name, "LIF", SUPPORTED,
            why=(f"v_leak ({p.v_leak.reshape(-1)[i]}) differs from v_reset ({p.v_reset.reshape(-1)[i]}) at neuron {i}; "
                 "Lava's LIF starts and resets at one value (0), so the initial state v = v_leak and the "
                 "reset value v_reset must be equal"),
        )
    a = (dt / p.tau).reshape(-1)
    return NeuronLowering(
        p.name, "LIF", p.shape,
        input_scale=a * p.r.reshape(-1), du=np.ones_like(a), dv=a,
        vth=(p.v_threshold - p.v_reset).reshape(-1),
        bias=(a * (p.v_leak - p.v_reset).reshape(-1)),
        v_offset=p.v_reset.reshape(-1), spiking=True,
    )


def lower_if(p: NeuronParams, dt: float, backend: str) -> NeuronLowering:
    n = int(np.prod(p.shape))
    return NeuronLowering(
        p.name, "IF", p.shape,
        input_scale=p.r.reshape(-1), du=np.ones(n), dv=np.zeros(n),
        vth=(p.v_threshold - p.v_reset).reshape(-1), bias=np.zeros(n),
        v_offset=p.v_reset.reshape(-1), spiking=True,
    )


def lower_li(p: NeuronParams, dt: float, backend: str) -> NeuronLowering:
    a = (dt / p.tau).reshape(-1)
    return NeuronLowering(
        p.name, "LI", p.shape,
        input_scale=a * p.r.reshape(-1), du=np.ones_like(a), dv=a,
        vth=np.full_like(a, np.inf), bias=np.zeros_like(a),
        v_offset=p.v_leak.reshape(-1), spiking=False,
    )


NEURON_LOWERINGS: Dict[str, Callable[[NeuronParams, float, str], NeuronLowering]] = {
    "LIF": lower_lif,
    "IF": lower_if,
    "LI": lower_li,
}


# --------------------------------------------------------------------------- wiring


def build_plan(graph, dt: float, backend: str, supported=SUPPORTED) -> LavaPlan:
    """Lower a validated NIR graph to a LavaPlan (pure; the graph is not changed)."""
    from .base import check_supported

    check_supported(graph, backend, supported)
    order = G.topological_order(graph)
    pred = G.predecessors(graph)
    in_node, out_node = G.io_nodes(graph)
    in_shape = G.node_shape(graph.nodes[in_node])
    params = {n: params_of(n, graph.nodes[n]) for n in order if n not in (in_node, out_node)}
    neurons: Dict[str, NeuronLowering] = {}
    for n in order:
        p = params.get(n)
        if isinstance(p, NeuronParams):
            neurons[n] = NEURON_LOWERINGS[p.kind](p, dt, backend)

    def source_of(n: str, consumer: str) -> str:
        """The node whose OutPort drives ``n``'s value: the Input or a spiking neuron."""
        if n == in_node:
            return n
        if n in neurons:
            if not neurons[n].spiking:
                raise UnsupportedNodeError(
                    backend, n, neurons[n].kind, supported,
                    why=f"its graded output feeds '{consumer}'; on Lava an LI output can only go to the Output node")
            return n
        raise UnsupportedNodeError(
            backend, consumer, type(graph.nodes[consumer]).__name__, supported,
            why=f"it is fed by '{n}' ({type(graph.nodes[n]).__name__}); Lava needs a spiking neuron or the Input "
                "before each Affine/Linear (two synapse nodes in a row are not supported yet)")

    def size_of(n: str) -> int:
        return int(np.prod(in_shape)) if n == in_node else neurons[n].size

    conns: List[Conn] = []
    bias_add: Dict[str, np.ndarray] = {n: np.zeros(nl.size) for n, nl in neurons.items()}
    output_bias = None
    for n in order:
        if n not in neurons and n != out_node:
            continue
        for p in pred[n]:
            scale = neurons[n].input_scale if n in neurons else None
            syn = params.get(p)
            if isinstance(syn, SynapseParams):
                (q,) = _single_pred(pred, p, graph, backend, supported)
                src = source_of(q, p)
                if syn.in_features != size_of(src):
                    raise GraphError(f"node '{p}' expects {syn.in_features} inputs but '{src}' has {size_of(src)}")
                w, b = syn.weight, syn.bias
                via = p
            else:
                src = source_of(p, n)
                w, b, via = np.eye(size_of(src)), np.zeros(size_of(src)), None
            if n in neurons:
                if w.shape[0] != neurons[n].size:
                    raise GraphError(f"edge into '{n}' carries {w.shape[0]} values, node has {neurons[n].size} neurons")
                conns.append(Conn(src, n, scale[:, None] * w, graded=False, via=via))
                bias_add[n] = bias_add[n] + scale * b
            else:  # the Output node
                if via is not None:
                    conns.append(Conn(src, n, w, graded=False, via=via))
                    output_bias = b
    neurons = {n: replace(nl, bias=nl.bias + bias_add[n]) for n, nl in neurons.items()}

    out_preds = pred[out_node]
    if len(out_preds) != 1:
        raise GraphError(f"Output node '{out_node}' must have exactly one incoming edge, has {len(out_preds)}")
    output_from = out_preds[0] if out_preds[0] in neurons else out_node
    if out_preds[0] == in_node:
        raise UnsupportedNodeError(backend, out_node, "Output", supported, why="it is fed by the Input directly")

    depth = _depths(in_node, conns)
    output_shape = neurons[output_from].shape if output_from in neurons else G.node_shape(graph.nodes[out_preds[0]])
    return LavaPlan(in_node, in_shape, neurons, conns, depth, out_node, output_from, output_bias, output_shape)


def _single_pred(pred, node, graph, backend, supported):
    if len(pred[node]) != 1:
        raise UnsupportedNodeError(backend, node, type(graph.nodes[node]).__name__, supported,
                                   why=f"it has {len(pred[node])} incoming edges; an Affine/Linear must have one")
    return pred[node]


def _depths(in_node: str, conns: List[Conn]) -> Dict[str, int]:
    depth = {in_node: 0}
    pending = list(conns)
    while pending:
        progressed = False
        for c in list(pending):
            if c.src in depth:
                d = depth[c.src] + 1
                if depth.setdefault(c.dst, d) != d:
                    raise GraphError(
                        f"node '{c.dst}' is reached through paths with {depth[c.dst]} and {d} synapse processes; "
                        "Lava delays each by one step, so the NIR timing cannot be kept (add Delay support first)")
                pending.remove(c)
                progressed = True
        if not progressed:
            raise GraphError(f"nodes {[c.dst for c in pending]} are not reachable from the Input '{in_node}'")
    return depth
