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
LIF shifted by v_leak with an infinite threshold. NIR's Integrator ``I`` (``v <- v + r*I``)
is IF with an infinite threshold (graded output, like LI). ``Threshold``
(``z = I > threshold``, stateless) is ``du = dv = 1``: ``v = v*0 + a_in + bias`` forgets v
every step (``v*(1-dv)`` is exactly 0 for finite v, so the reset to 0 changes nothing),
``vth = threshold``, input scale 1; it spikes, so it may feed further synapses.
``Delay`` is refused on Lava: DelayDense delays per synapse, and a composed chain would
need per-path delays (future work).

CubaLIF (``b = dt/tau_syn``; NIR/Norse order ``I <- (1-b) I + b w_in S`` then
``v <- v + a((v_leak - v) + r I)``, see :mod:`snndeploy.nodes`) maps onto Lava's u with
``u = a*r*I``::

    du = b ;  dv = a ;  a_in = (a*r*b*w_in) * S ;  bias = a*(v_leak - v_reset)

Lava's ``u <- u(1-du) + a_in`` is then ``a r`` times NIR's current update, and
``v <- v(1-dv) + u + bias`` is NIR's voltage update with the *new* current, as in
Norse: both integrate the input into v in the same step. CubaLI is the same with
v shifted by v_leak and an infinite threshold. A constant (bias) input into a Cuba
population enters u, not v (``u_bias``, sent by a drive source, see below).

Initial state: Lava resets v (and u) to 0 at each sample's first step; NIR starts
at ``v = v_leak``. Where ``c = v_leak - v_reset`` is not 0 (a LIF whose leak and reset
differ), the ``lava-float`` plan adds ``init_pulse = (1 - dv) c`` to u on the first
step and ``-(1 - du)(1 - dv) c`` on the second, so that v takes the first step from c
exactly and u forgets the pulse (``build_plan(..., drives=True)``).

Linear chains: a chain of instantaneous nodes (Affine, Linear, Scale, Conv2d,
SumPool2d, AvgPool2d, Flatten; edges into one node summed) between spiking
populations is composed numerically into ONE affine map per (source population,
destination) by pushing identity basis vectors through each node's forward function
(:mod:`snndeploy.linear`), so each chain costs one Dense and one step of delay. Its
bias folds into the neuron bias as Affine's does. Cost: the matrix is dense,
``N_dst x N_src`` float64 (a 16x16x16 -> 16x16x16 conv is 4096 x 4096, 134 MB); a Lava
``Conv`` process would keep only the kernel (future work).

Delays: a Lava ``Dense`` sends at step s what it received at step s-1, so a
node reached through k Dense processes lags the NIR timeline by k steps. The
plan records that depth per node; every path into a node must have the same
depth (NIR's Affine/Linear are instantaneous).

Recurrence: a back edge (:func:`snndeploy.graph.recurrent_order`) into population Q
carries the previous step's value of its source. Its chain is composed like any
other into a Dense from population P (``Conn.back_edge`` set); P's output of NIR step
t then reaches Q at Lava step ``t + dP + 1``, where Q integrates NIR step
``t + dP + 1 - dQ``: the NIR delay of one step is kept exactly when ``dQ == dP``
(self-recurrence, or a cycle between populations of equal depth); other cycle
lengths are refused. Depths are counted over forward connections only. A bias on
the back-edge chain is absent at step 0 (the edge carries zero then), so it is sent
by the drive source from step 1 on (``late_bias``). Sample isolation: the back-edge
Dense holds P's last step of the previous window when Q is reset, so P is muted on
that (unrecorded) step by a large negative drive pulse (``mute``); see lava_runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import graph as G
from ..errors import GraphError, UnsupportedNodeError
from ..nodes import NeuronParams, SynapseParams, params_of

#: what the fixed-point backends (quantize.py) take; unchanged by the float widening
SUPPORTED = frozenset({"Input", "Output", "Affine", "Linear", "LIF", "IF", "LI"})
#: linear (instantaneous) node types that the plan composes into Dense weights
LINEAR_TYPES = frozenset({"Affine", "Linear", "Scale", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten"})
#: what ``lava-float`` runs
FLOAT_SUPPORTED = SUPPORTED | LINEAR_TYPES | {"CubaLIF", "CubaLI", "I", "Threshold"}
#: fixed point: linear chains are composed into one matrix before quantization, so they fit too
FIXED_SUPPORTED = SUPPORTED | LINEAR_TYPES
#: a_in (Lava float units) that silences a back-edge source on the window's last step; any
#: finite value far above |u|, |v|, |bias| works: LIFReset zeroes u and v on the next step
MUTE_CURRENT = 1e30
#: node types no Lava backend runs yet, with the reason given in the refusal
REFUSED_WHY = {
    "Delay": ("Lava's DelayDense delays per synapse, but the plan composes each linear chain into one "
              "synapse process, so a Delay inside a chain would need a different delay per path through it "
              "(future work)"),
}


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
    v_start: Optional[np.ndarray] = None  # Lava v the first step starts from (None: 0, Lava's reset)
    u_bias: Optional[np.ndarray] = None  # constant added to a_in every step (Cuba: bias enters u)
    late_bias: Optional[np.ndarray] = None  # constant added to a_in from NIR step 1 on (bias through a back edge)
    mute: bool = False  # source of a back edge: silenced on the last step of each window (sample isolation)

    @property
    def drives(self) -> Optional[np.ndarray]:
        """(N, 5) weights of the drive source's channels, or None when all are zero.

        Channels (see ``lava_runtime.DRIVE_CHANNELS``): [first step, second step, every step,
        every step from step 1, the window's last step (mute)]."""
        zeros = np.zeros(self.size)
        start = zeros if self.v_start is None else self.v_start
        const = zeros if self.u_bias is None else self.u_bias
        late = zeros if self.late_bias is None else self.late_bias
        mute = np.full(self.size, -MUTE_CURRENT) if self.mute else zeros
        if not (np.any(start) or np.any(const) or np.any(late) or self.mute):
            return None
        pulse = (1 - self.dv) * start
        return np.stack([pulse, -(1 - self.du) * pulse, const, late, mute], axis=1)

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
    back_edge: Optional[Tuple[str, str]] = None  # the NIR back edge it crosses: carries the previous step


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
    back_edges: frozenset = frozenset()  # the graph's back edges (recurrent_order)

    @property
    def max_depth(self) -> int:
        return max(self.depth.values())


# --------------------------------------------------------------------------- per node type


def _check_start(p: NeuronParams, backend: str, drives: bool, supported) -> Optional[np.ndarray]:
    """Lava v to start from (v_leak - v_reset), or refuse if the backend has no drive source."""
    c = (p.v_leak - p.v_reset).reshape(-1)
    if not np.any(c):
        return None
    if drives:
        return c
    i = int(np.argmax(c != 0))
    raise UnsupportedNodeError(
        backend, p.name, p.kind, supported,
        why=(f"v_leak ({p.v_leak.reshape(-1)[i]}) differs from v_reset ({p.v_reset.reshape(-1)[i]}) at neuron {i}; "
             "Lava's LIF starts and resets at one value (0), so the initial state v = v_leak and the "
             "reset value v_reset must be equal"),
    )


def lower_lif(p: NeuronParams, dt: float, backend: str, drives: bool = False, supported=SUPPORTED) -> NeuronLowering:
    start = _check_start(p, backend, drives, supported)
    a = (dt / p.tau).reshape(-1)
    return NeuronLowering(
        p.name, "LIF", p.shape,
        input_scale=a * p.r.reshape(-1), du=np.ones_like(a), dv=a,
        vth=(p.v_threshold - p.v_reset).reshape(-1),
        bias=(a * (p.v_leak - p.v_reset).reshape(-1)),
        v_offset=p.v_reset.reshape(-1), spiking=True, v_start=start,
    )


def lower_if(p: NeuronParams, dt: float, backend: str, drives: bool = False, supported=SUPPORTED) -> NeuronLowering:
    n = int(np.prod(p.shape))
    return NeuronLowering(
        p.name, "IF", p.shape,
        input_scale=p.r.reshape(-1), du=np.ones(n), dv=np.zeros(n),
        vth=(p.v_threshold - p.v_reset).reshape(-1), bias=np.zeros(n),
        v_offset=p.v_reset.reshape(-1), spiking=True,
    )


def lower_li(p: NeuronParams, dt: float, backend: str, drives: bool = False, supported=SUPPORTED) -> NeuronLowering:
    a = (dt / p.tau).reshape(-1)
    return NeuronLowering(
        p.name, "LI", p.shape,
        input_scale=a * p.r.reshape(-1), du=np.ones_like(a), dv=a,
        vth=np.full_like(a, np.inf), bias=np.zeros_like(a),
        v_offset=p.v_leak.reshape(-1), spiking=False,
    )


def lower_cuba_lif(p: NeuronParams, dt: float, backend: str, drives: bool = False, supported=SUPPORTED) -> NeuronLowering:
    start = _check_start(p, backend, drives, supported)
    a, b = (dt / p.tau).reshape(-1), (dt / p.tau_syn).reshape(-1)
    return NeuronLowering(
        p.name, "CubaLIF", p.shape,
        input_scale=a * p.r.reshape(-1) * b * p.w_in.reshape(-1), du=b, dv=a,
        vth=(p.v_threshold - p.v_reset).reshape(-1),
        bias=(a * (p.v_leak - p.v_reset).reshape(-1)),
        v_offset=p.v_reset.reshape(-1), spiking=True, v_start=start,
    )


def lower_cuba_li(p: NeuronParams, dt: float, backend: str, drives: bool = False, supported=SUPPORTED) -> NeuronLowering:
    a, b = (dt / p.tau).reshape(-1), (dt / p.tau_syn).reshape(-1)
    return NeuronLowering(
        p.name, "CubaLI", p.shape,
        input_scale=a * p.r.reshape(-1) * b * p.w_in.reshape(-1), du=b, dv=a,
        vth=np.full_like(a, np.inf), bias=np.zeros_like(a),
        v_offset=p.v_leak.reshape(-1), spiking=False,
    )


def lower_integrator(p: NeuronParams, dt: float, backend: str, drives: bool = False, supported=SUPPORTED) -> NeuronLowering:
    n = int(np.prod(p.shape))
    return NeuronLowering(
        p.name, "I", p.shape,
        input_scale=p.r.reshape(-1), du=np.ones(n), dv=np.zeros(n),
        vth=np.full(n, np.inf), bias=np.zeros(n), v_offset=np.zeros(n), spiking=False,
    )


def lower_threshold(p: NeuronParams, dt: float, backend: str, drives: bool = False, supported=SUPPORTED) -> NeuronLowering:
    n = int(np.prod(p.shape))
    return NeuronLowering(
        p.name, "Threshold", p.shape,
        input_scale=np.ones(n), du=np.ones(n), dv=np.ones(n),  # v = a_in + bias: no memory
        vth=p.v_threshold.reshape(-1), bias=np.zeros(n), v_offset=np.zeros(n), spiking=True,
    )


#: neuron kind -> lowering (params, dt, backend, drives, supported) -> NeuronLowering
NEURON_LOWERINGS: Dict[str, Callable[..., NeuronLowering]] = {
    "LIF": lower_lif,
    "IF": lower_if,
    "LI": lower_li,
    "CubaLIF": lower_cuba_lif,
    "CubaLI": lower_cuba_li,
    "I": lower_integrator,
    "Threshold": lower_threshold,
}

#: neuron kinds whose constant input enters u (a synaptic current), not v
U_BIAS_KINDS = frozenset({"CubaLIF", "CubaLI"})


# --------------------------------------------------------------------------- linear chains


@dataclass(frozen=True, eq=False)
class AffineMap:
    """A node's value as ``sum_src weights[src] @ out(src) + bias``; weights[src] is (N, N_src)."""

    weights: Dict[str, np.ndarray]
    bias: np.ndarray


def compose_linear(p, value: AffineMap) -> AffineMap:
    """The map after one linear node ``p`` (any record with a forward in :mod:`snndeploy.linear`).

    Pushes the columns of each source's matrix (identity basis vectors of the source
    composed so far) and the bias through the node's forward function in float64.
    """
    import torch

    from ..linear import FORWARDS, in_shape_of

    fwd = FORWARDS[_record_kind(p)]
    shape = in_shape_of(p)
    with torch.no_grad():
        zero = fwd(torch.zeros((1,) + shape, dtype=torch.float64), p).reshape(1, -1)
        weights = {}
        for src, w in value.weights.items():
            cols = torch.as_tensor(np.ascontiguousarray(w.T), dtype=torch.float64).reshape((w.shape[1],) + shape)
            weights[src] = (fwd(cols, p).reshape(w.shape[1], -1) - zero).T.numpy()
        bias = fwd(torch.as_tensor(value.bias, dtype=torch.float64).reshape((1,) + shape), p).reshape(-1).numpy()
    return AffineMap(weights, bias)


def _record_kind(p) -> str:
    return p.kind


def _sum_maps(maps: List[AffineMap], node: str) -> AffineMap:
    sizes = {m.bias.size for m in maps}
    if len(sizes) != 1:
        raise GraphError(f"node '{node}': incoming edges carry {sorted(sizes)} values; summed edges must match")
    weights: Dict[str, np.ndarray] = {}
    for m in maps:
        for src, w in m.weights.items():
            weights[src] = weights[src] + w if src in weights else w
    return AffineMap(weights, sum(m.bias for m in maps))


# --------------------------------------------------------------------------- wiring


def build_plan(graph, dt: float, backend: str, supported=SUPPORTED, drives: bool = False) -> LavaPlan:
    """Lower a validated NIR graph to a LavaPlan (pure; the graph is not changed).

    ``drives``: the runtime provides a drive source per population (``v_start``, ``u_bias``);
    without it, LIFs with v_leak != v_reset and constant input into u are refused.
    """
    from .base import check_supported

    for name, node in graph.nodes.items():
        why = REFUSED_WHY.get(type(node).__name__)
        if why is not None:
            raise UnsupportedNodeError(backend, name, type(node).__name__, supported, why=why)
    check_supported(graph, backend, supported)
    schedule = G.recurrent_order(graph)
    order, back = list(schedule.order), schedule.back_edges
    pred = G.predecessors(graph)
    in_node, out_node = G.io_nodes(graph)
    in_shape = G.node_shape(graph.nodes[in_node])
    params = {n: params_of(n, graph.nodes[n]) for n in order if n not in (in_node, out_node)}
    neurons: Dict[str, NeuronLowering] = {}
    for n in order:
        p = params.get(n)
        if isinstance(p, NeuronParams):
            neurons[n] = NEURON_LOWERINGS[p.kind](p, dt, backend, drives, supported)

    def size_of(n: str) -> int:
        return int(np.prod(in_shape)) if n == in_node else neurons[n].size

    def check_source(n: str, consumer: str) -> None:
        if n in neurons and not neurons[n].spiking:
            raise UnsupportedNodeError(
                backend, n, neurons[n].kind, supported,
                why=f"its graded output feeds '{consumer}'; on Lava a graded (LI, CubaLI, I) output can only go to "
                    "the Output node")

    for src, dst in sorted(back):
        if dst not in neurons:
            raise UnsupportedNodeError(
                backend, dst, type(graph.nodes[dst]).__name__, supported,
                why=(f"the recurrent back edge '{src} -> {dst}' enters a {type(graph.nodes[dst]).__name__}; on Lava "
                     "a back edge must enter a neuron population"))
        if not drives:
            raise UnsupportedNodeError(
                backend, dst, neurons[dst].kind, supported,
                why=(f"the recurrent back edge '{src} -> {dst}' needs the drive source that mutes its source at the "
                     "end of each sample window (lava-float only); fixed point does not support recurrence yet"))

    # every node's value as an affine map of source populations (Input, spiking neurons)
    maps: Dict[str, AffineMap] = {}
    for n in order:
        if n == in_node or n in neurons:
            maps[n] = AffineMap({n: np.eye(size_of(n))}, np.zeros(size_of(n)))
            continue
        if not pred[n]:
            raise GraphError(f"node '{n}' ({type(graph.nodes[n]).__name__}) has no incoming edge")
        if n == out_node:
            continue
        for q in pred[n]:
            check_source(q, n)
        value = _sum_maps([maps[q] for q in pred[n]], n)
        p = params[n]
        want = int(np.prod(_in_shape(p)))
        if value.bias.size != want:
            raise GraphError(f"node '{n}' ({p.kind}) expects {want} inputs but its incoming edges carry {value.bias.size}")
        maps[n] = compose_linear(p, value)

    conns: List[Conn] = []
    bias_add: Dict[str, np.ndarray] = {n: np.zeros(nl.size) for n, nl in neurons.items()}
    u_bias: Dict[str, np.ndarray] = {}
    late_bias: Dict[str, np.ndarray] = {}
    output_bias = None
    for n in [m for m in order if m in neurons] + [out_node]:
        if not pred[n]:
            raise GraphError(f"node '{n}' has no incoming edge")
        if n == out_node and len(pred[n]) == 1 and pred[n][0] in neurons:
            continue  # the Output records that neuron's spikes (or an LI's voltage)
        for q in pred[n]:
            check_source(q, n)
        for q in [q for q in pred[n] if (q, n) in back]:  # one Dense per back edge, carrying the previous step
            value = maps[q]
            nl = neurons[n]
            if value.bias.size != nl.size:
                raise GraphError(f"back edge '{q} -> {n}' carries {value.bias.size} values, node has {nl.size} neurons")
            via = q if q in params and q not in neurons else None
            for src, w in value.weights.items():
                if src not in neurons:
                    raise UnsupportedNodeError(
                        backend, n, nl.kind, supported,
                        why=f"the recurrent back edge '{q} -> {n}' carries the Input '{src}' directly; on Lava a "
                            "back edge must start at a spiking population")
                conns.append(Conn(src, n, nl.input_scale[:, None] * w, graded=False, via=via, back_edge=(q, n)))
            if np.any(value.bias):
                late_bias[n] = late_bias.get(n, 0) + nl.input_scale * value.bias
        fwd = [q for q in pred[n] if (q, n) not in back]
        if not fwd:
            continue
        value = _sum_maps([maps[q] for q in fwd], n)
        via = ",".join(q for q in fwd if q in params and q not in neurons) or None
        if n in neurons:
            nl = neurons[n]
            if value.bias.size != nl.size:
                raise GraphError(f"edges into '{n}' carry {value.bias.size} values, node has {nl.size} neurons")
            for src, w in value.weights.items():
                conns.append(Conn(src, n, nl.input_scale[:, None] * w, graded=False, via=via))
            if nl.kind in U_BIAS_KINDS:
                if np.any(value.bias):
                    if not drives:
                        raise UnsupportedNodeError(backend, n, nl.kind, supported,
                                                   why="a constant (bias) input into its synaptic current needs a drive source")
                    u_bias[n] = nl.input_scale * value.bias
            else:
                bias_add[n] = bias_add[n] + nl.input_scale * value.bias
        else:  # the Output node
            for q in pred[n]:
                if q == in_node or q in neurons:
                    raise UnsupportedNodeError(
                        backend, out_node, "Output", supported,
                        why=f"it is fed by '{q}' directly; Lava records the Output through synapses or from one neuron")
            for src, w in value.weights.items():
                conns.append(Conn(src, n, w, graded=False, via=via))
            output_bias = value.bias
    muted = {c.src for c in conns if c.back_edge is not None}
    neurons = {n: replace(nl, bias=nl.bias + bias_add[n], u_bias=u_bias.get(n), late_bias=late_bias.get(n),
                          mute=n in muted) for n, nl in neurons.items()}

    out_preds = pred[out_node]
    if not out_preds:
        raise GraphError(f"Output node '{out_node}' has no incoming edge")
    output_from = out_preds[0] if (len(out_preds) == 1 and out_preds[0] in neurons) else out_node
    depth = _depths(in_node, [c for c in conns if c.back_edge is None])
    _check_back_delays(conns, depth)
    if output_from != out_node:
        depth[out_node] = depth[output_from]  # the Output records that neuron: same lag
    output_shape = neurons[output_from].shape if output_from in neurons else G.node_shape(graph.nodes[out_node])
    return LavaPlan(in_node, in_shape, neurons, conns, depth, out_node, output_from, output_bias, output_shape,
                    back_edges=back)


def _in_shape(p) -> Tuple[int, ...]:
    from ..linear import in_shape_of

    return in_shape_of(p)


def _check_back_delays(conns: List[Conn], depth: Dict[str, int]) -> None:
    """A back-edge Dense from P (depth dP) into Q (dQ) delays by dP + 1 - dQ NIR steps; NIR wants 1."""
    for c in conns:
        if c.back_edge is None:
            continue
        delay = depth[c.src] + 1 - depth[c.dst]
        if delay != 1:
            src, dst = c.back_edge
            raise GraphError(
                f"recurrent back edge '{src} -> {dst}' (from population '{c.src}' at Lava depth {depth[c.src]} into "
                f"'{c.dst}' at depth {depth[c.dst]}) would arrive with a delay of {delay} steps on Lava; NIR wants "
                "1 (the previous step). Only cycles whose populations have equal depth (self-recurrence) are "
                "supported")


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
