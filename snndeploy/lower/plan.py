"""Lowering an analysed NIR graph to a Lava plan: populations, projections, delays (numpy only).

The plan is the mathematics of the lowering, shared by every Lava backend (``lava-float``
runs it as it is; the fixed-point backends quantize it first, :mod:`.fixed`). Neurons are
lowered one function per type (:mod:`.neurons`), linear chains composed into one matrix per
source population (:mod:`.chains`).

Delays: a Lava ``Dense`` sends at step s what it received at step s-1, so a node reached
through k Dense processes lags the NIR timeline by k steps. The plan records that depth per
node; every path into a node must have the same depth (NIR's Affine/Linear are instantaneous).

Recurrence: a back edge (:func:`snndeploy.ir.graph.recurrent_order`) into population Q carries
the previous step's value of its source. Its chain is composed like any other into a Dense
from population P (``Conn.back_edge`` set); P's output of NIR step t then reaches Q at Lava
step ``t + dP + 1``, where Q integrates NIR step ``t + dP + 1 - dQ``: the NIR delay of one step
is kept exactly when ``dQ == dP`` (self-recurrence, or a cycle between populations of equal
depth); other cycle lengths are refused. Depths are counted over forward connections only. A
bias on the back-edge chain acts from step 0 (at step 0 the edge carries the chain's response to
a silent source, docs/conventions.md), so it folds into the neuron's bias as a forward edge's
does. Sample isolation: the back-edge Dense holds P's last step of the previous window when Q is
reset, so P's output is gated on that (unrecorded) step (``mute``; ``PopLIF``'s ``mute_offset``,
see :mod:`snndeploy.runtime.lava`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from ..errors import GraphError, UnsupportedNodeError
from ..ir.analysed import AnalysedGraph, as_analysed, check_supported
from ..reference import IO_TYPES, MAPS
from .chains import AffineMap, compose_node, sum_maps
from .neurons import NEURON_LOWERINGS, U_BIAS_KINDS, NeuronLowering, PlanFor

#: linear (instantaneous) node types that the plan composes into Dense weights: every reference map
LINEAR_TYPES = frozenset(MAPS)
#: what ``lava-float`` runs: every type with a lowering
FLOAT_SUPPORTED = IO_TYPES | LINEAR_TYPES | frozenset(NEURON_LOWERINGS)
#: node types no Lava backend runs yet, with the reason given in the refusal
REFUSED_WHY = {
    "Delay": (
        "Lava's DelayDense delays per synapse, but the plan composes each linear chain into one "
        "synapse process, so a Delay inside a chain would need a different delay per path through it "
        "(future work)"
    ),
}


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
class Topology:
    """What every plan of one graph shares, float or fixed: ends, depths, back edges."""

    input_node: str
    input_shape: Tuple[int, ...]
    depth: Dict[str, int]  # Lava steps behind the NIR timeline, per recorded node
    output_node: str
    output_from: str  # neuron node whose spikes/voltage are the output, or the Output node itself
    output_shape: Tuple[int, ...] = ()
    back_edges: FrozenSet[Tuple[str, str]] = frozenset()

    @property
    def max_depth(self) -> int:
        return max(self.depth.values())


@dataclass(frozen=True, eq=False)
class LavaPlan:
    """A float plan: populations in Lava's float units and their projections."""

    topology: Topology
    neurons: Dict[str, NeuronLowering]
    conns: List[Conn]
    output_bias: Optional[np.ndarray] = None  # Affine bias added on the host for a synapse -> Output


@dataclass
class _Wiring:
    """What wiring accumulates, population by population (local to one build_plan call)."""

    conns: List[Conn] = field(default_factory=list)
    bias_add: Dict[str, np.ndarray] = field(default_factory=dict)
    u_bias: Dict[str, np.ndarray] = field(default_factory=dict)
    output_bias: Optional[np.ndarray] = None


def build_plan(
    graph, dt: float, backend: str, supported=FLOAT_SUPPORTED, drives: bool = False, constant_drive: bool = False
) -> LavaPlan:
    """Lower a NIR graph (or an analysed one) to a LavaPlan (pure; the graph is not changed).

    ``drives``: the runtime provides a drive source per population (``v_start``, ``u_bias``);
    without it, LIFs with v_leak != v_reset and constant input into u are refused.
    ``constant_drive``: the runtime has the drive's "every step" channel only (constant input into u).
    """
    ag = as_analysed(graph)
    ctx = PlanFor(backend, frozenset(supported), drives, drives or constant_drive)
    check_supported(ag, backend, ctx.supported, REFUSED_WHY)
    neurons = {n: NEURON_LOWERINGS[ag.record(n).kind](ag.record(n), dt, ctx) for n in ag.neurons}
    _check_back_edges(ag, neurons, ctx)
    maps = _compose_maps(ag, neurons, ctx)
    wiring = _Wiring(bias_add={n: np.zeros(nl.size) for n, nl in neurons.items()})
    for n in [m for m in ag.order if m in neurons]:
        _wire_population(ag, n, neurons, maps, wiring, ctx)
    _wire_output(ag, neurons, maps, wiring, ctx)
    muted = {c.src for c in wiring.conns if c.back_edge is not None}
    neurons = {
        n: replace(
            nl,
            bias=nl.bias + wiring.bias_add[n],
            u_bias=wiring.u_bias.get(n),
            mute=n in muted,
        )
        for n, nl in neurons.items()
    }
    return LavaPlan(_topology(ag, neurons, wiring.conns), neurons, wiring.conns, wiring.output_bias)


def _topology(ag: AnalysedGraph, neurons: Dict[str, NeuronLowering], conns: List[Conn]) -> Topology:
    out_node, out_preds = ag.output_node, ag.preds(ag.output_node)
    output_from = out_preds[0] if (len(out_preds) == 1 and out_preds[0] in neurons) else out_node
    depth = _depths(ag.input_node, [c for c in conns if c.back_edge is None])
    _check_back_delays(conns, depth)
    if output_from != out_node:
        depth[out_node] = depth[output_from]  # the Output records that neuron: same lag
    output_shape = neurons[output_from].shape if output_from in neurons else ag.shape(out_node)
    return Topology(ag.input_node, ag.input_shape, depth, out_node, output_from, output_shape, ag.back_edges)


def _check_source(n: str, consumer: str, neurons: Dict[str, NeuronLowering], ctx: PlanFor) -> None:
    if n in neurons and not neurons[n].spiking:
        raise UnsupportedNodeError(
            ctx.backend,
            n,
            neurons[n].kind,
            ctx.supported,
            why=f"its graded output feeds '{consumer}'; on Lava a graded (LI, CubaLI, I) output can only go to "
            "the Output node",
        )


def _check_back_edges(ag: AnalysedGraph, neurons: Dict[str, NeuronLowering], ctx: PlanFor) -> None:
    for src, dst in sorted(ag.back_edges):
        if dst not in neurons:
            raise UnsupportedNodeError(
                ctx.backend,
                dst,
                ag.type_name(dst),
                ctx.supported,
                why=(
                    f"the recurrent back edge '{src} -> {dst}' enters a {ag.type_name(dst)}; on Lava "
                    "a back edge must enter a neuron population"
                ),
            )


def _compose_maps(ag: AnalysedGraph, neurons: Dict[str, NeuronLowering], ctx: PlanFor) -> Dict[str, AffineMap]:
    """Every node's value as an affine map of source populations (the Input, spiking neurons)."""
    maps: Dict[str, AffineMap] = {}
    for n in ag.order:
        if n == ag.input_node or n in neurons:
            size = int(np.prod(ag.shape(n)))
            maps[n] = AffineMap({n: np.eye(size)}, np.zeros(size))
            continue
        if not ag.preds(n):
            raise GraphError(f"node '{n}' ({ag.type_name(n)}) has no incoming edge")
        if n == ag.output_node:
            continue
        for q in ag.preds(n):
            _check_source(q, n, neurons, ctx)
        maps[n] = compose_node(ag, n, maps)
    return maps


def _via(ag: AnalysedGraph, sources, neurons) -> Optional[str]:
    """The linear nodes a projection lowers (for reports), or None for an identity edge."""
    return ",".join(q for q in sources if ag.record(q) is not None and q not in neurons) or None


def _wire_population(ag: AnalysedGraph, n: str, neurons, maps, wiring: _Wiring, ctx: PlanFor) -> None:
    """The edges into population ``n``: one Dense per back edge (carrying the previous step), one
    per forward source population; biases folded into the neuron (or its current, for Cuba kinds)."""
    nl = neurons[n]
    if not ag.preds(n):
        raise GraphError(f"node '{n}' has no incoming edge")
    for q in ag.preds(n):
        _check_source(q, n, neurons, ctx)
    for q in [q for q in ag.preds(n) if ag.is_back_edge(q, n)]:
        value = maps[q]
        if value.bias.size != nl.size:
            raise GraphError(f"back edge '{q} -> {n}' carries {value.bias.size} values, node has {nl.size} neurons")
        for src, w in value.weights.items():
            if src not in neurons:
                raise UnsupportedNodeError(
                    ctx.backend,
                    n,
                    nl.kind,
                    ctx.supported,
                    why=f"the recurrent back edge '{q} -> {n}' carries the Input '{src}' directly; on Lava a "
                    "back edge must start at a spiking population",
                )
            wiring.conns.append(
                Conn(src, n, nl.input_scale[:, None] * w, graded=False, via=_via(ag, [q], neurons), back_edge=(q, n))
            )
    # a back edge's chain adds its bias from step 0 on (docs/conventions.md), as a forward edge's does
    back_bias = [maps[q] for q in ag.preds(n) if ag.is_back_edge(q, n)]
    fwd = [q for q in ag.preds(n) if not ag.is_back_edge(q, n)]
    value = sum_maps([maps[q] for q in fwd] + back_bias, n)
    if value.bias.size != nl.size:
        raise GraphError(f"edges into '{n}' carry {value.bias.size} values, node has {nl.size} neurons")
    via = _via(ag, fwd, neurons)
    for src, w in sum_maps([maps[q] for q in fwd], n).weights.items() if fwd else ():
        wiring.conns.append(Conn(src, n, nl.input_scale[:, None] * w, graded=False, via=via))
    if nl.kind not in U_BIAS_KINDS:
        wiring.bias_add[n] = wiring.bias_add[n] + nl.input_scale * value.bias
    elif np.any(value.bias):
        if not ctx.constant_drive:
            raise UnsupportedNodeError(
                ctx.backend,
                n,
                nl.kind,
                ctx.supported,
                why="a constant (bias) input into its synaptic current needs a drive source",
            )
        wiring.u_bias[n] = nl.input_scale * value.bias


def _wire_output(ag: AnalysedGraph, neurons, maps, wiring: _Wiring, ctx: PlanFor) -> None:
    """The Output: recorded from one neuron population, or through synapses (bias added on the host)."""
    n = ag.output_node
    preds = ag.preds(n)
    if not preds:
        raise GraphError(f"Output node '{n}' has no incoming edge")
    if len(preds) == 1 and preds[0] in neurons:
        return  # the Output records that neuron's spikes (or an LI's voltage)
    for q in preds:
        _check_source(q, n, neurons, ctx)
        if q == ag.input_node or q in neurons:
            raise UnsupportedNodeError(
                ctx.backend,
                n,
                "Output",
                ctx.supported,
                why=f"it is fed by '{q}' directly; Lava records the Output through synapses or from one neuron",
            )
    value = sum_maps([maps[q] for q in preds], n)
    via = _via(ag, preds, neurons)
    for src, w in value.weights.items():
        wiring.conns.append(Conn(src, n, w, graded=False, via=via))
    wiring.output_bias = value.bias


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
                "supported"
            )


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
                        "Lava delays each by one step, so the NIR timing cannot be kept (add Delay support first)"
                    )
                pending.remove(c)
                progressed = True
        if not progressed:
            raise GraphError(f"nodes {[c.dst for c in pending]} are not reachable from the Input '{in_node}'")
    return depth
